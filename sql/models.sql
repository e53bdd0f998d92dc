-- Models in the database: the registry table, training, encoders and evaluation.
--
-- Privileges: everyone may read models and encode with them. Storing a model (jdsh.train,
-- jdsh.import_model) needs INSERT on jdsh.models, changing one (rename, drop) UPDATE/DELETE;
-- a superuser grants them, e.g. GRANT INSERT, UPDATE, DELETE ON jdsh.models TO alice. Row-level
-- security then limits each role to its own models: a name belongs to the role that created it,
-- and only members of that role can add versions, rename or drop it.

CREATE TABLE jdsh.models (
    name     text        NOT NULL CHECK (name <> ''),
    version  integer     NOT NULL CHECK (version > 0),
    method   text        NOT NULL,
    bits     integer     NOT NULL,
    owner    name        NOT NULL DEFAULT current_user,
    created  timestamptz NOT NULL DEFAULT now(),
    -- The table, view or query it was trained from ('imported' for a file).
    source   text,
    -- The full training configuration and the training metrics (hold-out MAP among them).
    params   jsonb       NOT NULL,
    metrics  jsonb       NOT NULL,
    -- The model file: safetensors weights + JSON metadata, as written by jdsh-train.
    model    bytea       NOT NULL,
    PRIMARY KEY (name, version)
);
-- Weights do not compress: store them out of line without trying.
ALTER TABLE jdsh.models ALTER COLUMN model SET STORAGE EXTERNAL;
COMMENT ON TABLE jdsh.models IS 'trained jdsh models: one row per version; encoders use the latest unless a version is named';
-- pg_dump keeps the rows (the table itself belongs to the extension).
SELECT pg_catalog.pg_extension_config_dump('jdsh.models', '');

REVOKE ALL ON jdsh.models FROM PUBLIC;
GRANT SELECT ON jdsh.models TO PUBLIC;
-- Schema jdsh (created in bitcode.sql) holds every function and the models table; without USAGE a
-- role other than a superuser could call none of them ("permission denied for schema jdsh"),
-- not even the encoders that everyone may use.
GRANT USAGE ON SCHEMA jdsh TO PUBLIC;

-- True when no version of model `name` belongs to a role that `role` is not a member of.
-- SECURITY DEFINER so that the policies below can read the table without recursing into them.
CREATE FUNCTION jdsh.model_name_free(name text, role name) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT NOT EXISTS (SELECT 1 FROM jdsh.models m
                              WHERE m.name = $1 AND NOT pg_has_role($2, m.owner, 'USAGE')) $$;

ALTER TABLE jdsh.models ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_read ON jdsh.models FOR SELECT USING (true);
CREATE POLICY models_add ON jdsh.models FOR INSERT
    WITH CHECK (owner = current_user AND jdsh.model_name_free(name, current_user));
CREATE POLICY models_change ON jdsh.models FOR UPDATE
    USING (pg_has_role(owner, 'USAGE'))
    WITH CHECK (pg_has_role(owner, 'USAGE') AND jdsh.model_name_free(name, current_user));
CREATE POLICY models_remove ON jdsh.models FOR DELETE USING (pg_has_role(owner, 'USAGE'));

-- Every change tells all backends to drop their cached models (a relcache invalidation).
CREATE FUNCTION jdsh.models_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'models_changed' LANGUAGE C;
CREATE TRIGGER models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jdsh.models
    FOR EACH STATEMENT EXECUTE FUNCTION jdsh.models_changed();

-- Training ------------------------------------------------------------------------------------

-- The result of jdsh.train (a type, so that its field names need not differ from the arguments).
CREATE TYPE jdsh.train_summary AS (
    model text, version integer, method text, bits integer, epochs integer, pairs integer,
    seconds double precision, final_loss double precision,
    map_image_to_text double precision, map_text_to_image double precision
);

CREATE FUNCTION jdsh.train(name text, source text, image text, text text, labels text DEFAULT NULL,
                           bits integer DEFAULT 64, method text DEFAULT 'jdsh',
                           epochs integer DEFAULT NULL, options jsonb DEFAULT '{}')
    RETURNS SETOF jdsh.train_summary
    AS 'MODULE_PATHNAME', 'train_wrapper' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jdsh.train(text, text, text, text, text, integer, text, integer, jsonb) IS
    'trains a model (jdsh, dcmh or cca-itq) on pairs from a table, view or query and stores it as the next version of name';

-- Encoders ------------------------------------------------------------------------------------
-- STABLE: a model changes only between statements, so `ORDER BY code <~> jdsh.encode_text(...)`
-- encodes once and can use an index.

CREATE FUNCTION jdsh.encode_text(model text, input text) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_text_raw' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_text(model text, input text, version integer) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_text_raw' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_text(model text, input real[]) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_text_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_text(model text, input real[], version integer) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_text_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_image(model text, input bytea) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_image_bytes' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_image(model text, input bytea, version integer) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_image_bytes' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_image(model text, input real[]) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_image_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;
CREATE FUNCTION jdsh.encode_image(model text, input real[], version integer) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'encode_image_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;

-- Batch forms: one forward pass per call; NULL elements give NULL codes. Features come as a
-- two-dimensional real[], one item per row.
CREATE FUNCTION jdsh.encode_texts(model text, inputs text[]) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_texts_raw' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_texts(model text, inputs text[], version integer) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_texts_raw' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_texts(model text, inputs real[]) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_texts_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_texts(model text, inputs real[], version integer) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_texts_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_images(model text, inputs bytea[]) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_images_bytes' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_images(model text, inputs bytea[], version integer) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_images_bytes' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_images(model text, inputs real[]) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_images_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
CREATE FUNCTION jdsh.encode_images(model text, inputs real[], version integer) RETURNS bitcode[]
    AS 'MODULE_PATHNAME', 'encode_images_features' LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;

-- A whole column, batch_size rows per forward pass; returns the number of rows set.
CREATE FUNCTION jdsh.encode_table(model text, tbl regclass, input_column text, code_column text,
                                  modality text DEFAULT NULL, batch_size integer DEFAULT 256,
                                  version integer DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'encode_table_wrapper' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Image features ------------------------------------------------------------------------------
-- What an image extractor computes from PNG/JPEG bytes (efficientnet-lite0: 1280 ImageNet features;
-- handcrafted: colour and gradient statistics), before any model's standardisation: keep them in a
-- real[] column and train and encode from it (jdsh.train, jdsh.encode_image(model, real[])).
-- IMMUTABLE: the weights are pinned by sha256, so the same bytes always give the same features.
CREATE FUNCTION jdsh.image_features(image bytea, extractor text DEFAULT 'efficientnet-lite0')
    RETURNS real[]
    AS 'MODULE_PATHNAME', 'image_features_wrapper' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION jdsh.image_features(bytea, text) IS
    'image features of PNG/JPEG bytes (efficientnet-lite0: 1280-d ImageNet features, or handcrafted)';
-- Batch form: one forward pass (on a GPU when jdsh.device allows); row i of the two-dimensional
-- result belongs to images[i] (NULL image: a row of NULLs).
CREATE FUNCTION jdsh.image_features(images bytea[], extractor text DEFAULT 'efficientnet-lite0')
    RETURNS real[]
    AS 'MODULE_PATHNAME', 'image_features_batch' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 100000;

-- Evaluation ----------------------------------------------------------------------------------

CREATE FUNCTION jdsh.evaluate(model text, queries text, query_column text, retrieval text,
                              retrieval_column text, labels text, ks integer[] DEFAULT '{10,100}',
                              direction text DEFAULT NULL, version integer DEFAULT NULL)
    RETURNS TABLE (metric text, k integer, value double precision)
    AS 'MODULE_PATHNAME', 'evaluate_wrapper' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jdsh.evaluate(text, text, text, text, text, text, integer[], text, integer) IS
    'MAP@all, MAP@k, precision@k and precision within radius 2 of a model on labelled query and retrieval relations';

-- Report page ---------------------------------------------------------------------------------

-- What models find, as one self-contained HTML page (pictures inline, SVG charts, no script, no
-- network): for each text query the top k pictures of `images` per model, side by side; for each
-- picture named in image_queries (by its caption) the nearest texts of `texts`; and, for each
-- direction of an evaluation protocol (jdsh.evaluate's arguments as JSON), MAP@all and the
-- precision-recall curves. Write it from psql:
--   psql -XAtq -o page.html -c "SELECT jdsh.report('{my_model}', 'my_table', 'png', 'name', '{red fruit,cat}')"
CREATE FUNCTION jdsh.report(models text[], images text, image text, caption text,
                            queries text[] DEFAULT '{}', k integer DEFAULT 8,
                            encode text DEFAULT NULL, codes text[] DEFAULT NULL,
                            texts text DEFAULT NULL, text_column text DEFAULT NULL,
                            image_queries text[] DEFAULT '{}', evaluation jsonb DEFAULT NULL,
                            title text DEFAULT 'jdsh: what the models find')
    RETURNS text
    AS 'MODULE_PATHNAME', 'report_wrapper' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jdsh.report(text[], text, text, text, text[], integer, text, text[], text, text, text[], jsonb, text) IS
    'an HTML page showing the pictures and texts models find for queries, with MAP and precision-recall curves';

-- Registry helpers ----------------------------------------------------------------------------

CREATE FUNCTION jdsh.list_models()
    RETURNS TABLE (name text, version integer, latest boolean, method text, bits integer,
                   owner name, created timestamptz, size_bytes integer, source text,
                   epochs integer, seconds double precision,
                   map_image_to_text double precision, map_text_to_image double precision)
    LANGUAGE sql STABLE
    AS $$
        SELECT m.name, m.version, m.version = max(m.version) OVER (PARTITION BY m.name),
               m.method, m.bits, m.owner, m.created, octet_length(m.model), m.source,
               (m.metrics ->> 'epochs')::integer, (m.metrics ->> 'seconds')::double precision,
               (m.metrics #>> '{holdout,image_to_text}')::double precision,
               (m.metrics #>> '{holdout,text_to_image}')::double precision
          FROM jdsh.models m
         ORDER BY m.name, m.version
    $$;

CREATE FUNCTION jdsh.export_model(name text, version integer DEFAULT NULL) RETURNS bytea
    LANGUAGE plpgsql STABLE
    AS $$
    DECLARE
        file bytea;
    BEGIN
        SELECT m.model INTO file FROM jdsh.models m
         WHERE m.name = export_model.name AND (export_model.version IS NULL OR m.version = export_model.version)
         ORDER BY m.version DESC LIMIT 1;
        IF file IS NULL THEN
            RAISE EXCEPTION 'model "%"% does not exist', export_model.name,
                  coalesce(' version ' || export_model.version, '')
                  USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM jdsh.list_models() shows the models.';
        END IF;
        RETURN file;
    END
    $$;

CREATE FUNCTION jdsh.import_model(name text, file bytea, source text DEFAULT 'imported') RETURNS integer
    AS 'MODULE_PATHNAME', 'import_model_wrapper' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION jdsh.import_model(text, bytea, text) IS
    'validates a model file (safetensors + jdsh metadata, e.g. from jdsh-train) and stores it as the next version of name';

CREATE FUNCTION jdsh.model_info(file bytea) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'model_info_wrapper' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Raises the right error when a change found no row: absent, or present but not the caller's.
CREATE FUNCTION jdsh.model_missing(name text, version integer) RETURNS void
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM jdsh.models m
                    WHERE m.name = model_missing.name AND (model_missing.version IS NULL OR m.version = model_missing.version)) THEN
            RAISE EXCEPTION 'must be a member of the role owning model "%"', model_missing.name
                  USING ERRCODE = 'insufficient_privilege';
        END IF;
        RAISE EXCEPTION 'model "%"% does not exist', model_missing.name, coalesce(' version ' || model_missing.version, '')
              USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM jdsh.list_models() shows the models.';
    END
    $$;

CREATE FUNCTION jdsh.drop_model(name text, version integer DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql
    AS $$
    DECLARE
        n integer;
    BEGIN
        DELETE FROM jdsh.models m
         WHERE m.name = drop_model.name AND (drop_model.version IS NULL OR m.version = drop_model.version);
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            PERFORM jdsh.model_missing(drop_model.name, drop_model.version);
        END IF;
        RETURN n;
    END
    $$;
COMMENT ON FUNCTION jdsh.drop_model(text, integer) IS 'drops one version of a model, or all of them; returns how many';

CREATE FUNCTION jdsh.rename_model(name text, new_name text) RETURNS integer
    LANGUAGE plpgsql
    AS $$
    DECLARE
        n integer;
    BEGIN
        IF EXISTS (SELECT 1 FROM jdsh.models m WHERE m.name = rename_model.new_name) THEN
            RAISE EXCEPTION 'model "%" already exists', new_name USING ERRCODE = 'duplicate_object';
        END IF;
        UPDATE jdsh.models m SET name = rename_model.new_name WHERE m.name = rename_model.name;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            PERFORM jdsh.model_missing(rename_model.name, NULL);
        END IF;
        RETURN n;
    END
    $$;
COMMENT ON FUNCTION jdsh.rename_model(text, text) IS 'renames every version of a model; returns how many';

-- Citus ----------------------------------------------------------------------------------------
-- On a Citus cluster every node has its own jdsh.models (CREATE EXTENSION reaches the workers,
-- the rows do not), and the shard queries that Citus sends to the workers run the encoders
-- there: `ORDER BY code <~> jdsh.encode_text('m', ...)` is evaluated on every shard. This copies the
-- coordinator's models to every worker, replacing theirs, in one transaction per worker (whose
-- trigger then tells the worker's backends to drop their cached models). Run it after training,
-- importing, renaming or dropping a model on the coordinator. Not a reference table: reading one
-- inside a shard query is a nested distributed query, which Citus refuses (and the registry's
-- trigger would have to be an "unsafe" one on every shard). jdsh does not link Citus: the calls
-- below are looked up when this runs.
CREATE FUNCTION jdsh.sync_models() RETURNS TABLE (node text, models integer)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        cmd text;
        n integer;
        failed text;
    BEGIN
        IF to_regprocedure('pg_catalog.run_command_on_workers(text, boolean)') IS NULL THEN
            RAISE EXCEPTION 'jdsh.sync_models() copies models to the workers of a Citus cluster, and Citus is not installed in this database'
                  USING ERRCODE = 'feature_not_supported';
        END IF;
        IF NOT citus_is_coordinator() THEN
            RAISE EXCEPTION 'jdsh.sync_models() runs on the Citus coordinator'
                  USING ERRCODE = 'feature_not_supported', HINT = 'Connect to the coordinator: its models are copied to every worker.';
        END IF;
        SELECT count(*)::int,
               'DELETE FROM jdsh.models; '
               || coalesce('INSERT INTO jdsh.models (name, version, method, bits, owner, created, source, params, metrics, model) VALUES '
                           || string_agg(format('(%L, %s, %L, %s, %L, %L, %L, %L, %L, %L)', m.name, m.version, m.method, m.bits,
                                                m.owner, m.created, m.source, m.params, m.metrics, m.model), ', '), 'SELECT')
          INTO n, cmd
          FROM jdsh.models m;
        -- Both statements in one query string: one implicit transaction on each worker.
        SELECT string_agg(format('%s:%s: %s', r.nodename, r.nodeport, r.result), '; ')
          INTO failed
          FROM run_command_on_workers(cmd) r WHERE NOT r.success;
        IF failed IS NOT NULL THEN
            RAISE EXCEPTION 'jdsh.sync_models(): copying the models failed on %', failed
                  USING ERRCODE = 'connection_failure',
                        HINT = 'The other workers have the models. Run jdsh.sync_models() again once the node is back.';
        END IF;
        RETURN QUERY SELECT w.node_name || ':' || w.node_port, n FROM citus_get_active_worker_nodes() w ORDER BY 1;
    END
    $$;
REVOKE ALL ON FUNCTION jdsh.sync_models() FROM PUBLIC;
COMMENT ON FUNCTION jdsh.sync_models() IS
    'Citus: copies the coordinator''s models to every worker (replacing theirs); run it after a model changed';
