//! The model registry: rows of `jdsh.models` (declared in `sql/models.sql`), loaded once per
//! backend and cached.
//!
//! Cache invalidation rides on PostgreSQL's own machinery: a statement trigger on `jdsh.models`
//! calls [`models_changed`], which queues a relcache invalidation of the table. Every backend
//! (this one included, and again on rollback) processes it at its next command, where the relcache
//! callback registered in [`init`] drops the cache. So a retrained, renamed, dropped or imported
//! model is seen by the next statement of every session, and a cached lookup costs a hash probe.
//! (A backend reads the invalidation queue only at transaction start and when it takes a new
//! lock; [`load`] also reads it at the first lookup of each statement, see [`new_statement`].)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use jdsh_trainer::Model;
use once_cell::sync::Lazy;
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB, PgSqlErrorCode as E};

use super::errors;
use crate::fmgr::{raise, raise_with_hint};

type Key = (String, Option<i32>);

/// (name, requested version or latest) -> (resolved version, model).
type Cache = HashMap<Key, (i32, Arc<Model>)>;
static CACHE: Lazy<Mutex<Cache>> = Lazy::new(|| Mutex::new(HashMap::new()));
/// Set by the relcache callback; the next lookup empties the cache.
static STALE: AtomicBool = AtomicBool::new(false);
/// The statement during which the relcache callback last fired, until a later statement's first
/// lookup has emptied the cache once more (see `load`).
static SEEN_IN: Mutex<Option<Statement>> = Mutex::new(None);
/// OID of `jdsh.models`, learnt at the first load (0 before: nothing cached, nothing to drop).
static MODELS_OID: AtomicU32 = AtomicU32::new(0);

#[pg_guard]
unsafe extern "C-unwind" fn relcache_callback(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // Runs while invalidation messages are processed: no catalog access here, only a flag.
    let models = MODELS_OID.load(Ordering::Relaxed);
    if relid == pg_sys::InvalidOid || (models != 0 && relid.to_u32() == models) {
        STALE.store(true, Ordering::Relaxed);
        *SEEN_IN.lock().unwrap_or_else(|p| p.into_inner()) = Some(statement());
    }
}

pub fn init() {
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relcache_callback), pg_sys::Datum::from(0)) };
}

pg_v1! {
    /// Statement trigger on `jdsh.models`: tells every backend that its cached models are stale.
    fn models_changed(fcinfo) {
        unsafe {
            let trigger = (*fcinfo).context as *mut pg_sys::TriggerData;
            if trigger.is_null() || (*trigger).type_ != pg_sys::NodeTag::T_TriggerData {
                raise(E::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "jdsh.models_changed() must be called as a trigger");
            }
            pg_sys::CacheInvalidateRelcache((*trigger).tg_relation);
        }
        pg_sys::Datum::from(0)
    }
}

fn describe(name: &str, version: Option<i32>) -> String {
    match version {
        Some(v) => format!("model \"{name}\" version {v}"),
        None => format!("model \"{name}\""),
    }
}

/// A statement: (local transaction id, statement start time). `statement_timestamp()` changes
/// with each client message, the local transaction id with each transaction.
type Statement = (u32, i64);

fn statement() -> Statement {
    unsafe {
        // PostgreSQL 17 moved PGPROC.lxid into PGPROC.vxid.
        #[cfg(any(feature = "pg15", feature = "pg16"))]
        let lxid = if pg_sys::MyProc.is_null() { 0 } else { (*pg_sys::MyProc).lxid };
        #[cfg(not(any(feature = "pg15", feature = "pg16")))]
        let lxid = if pg_sys::MyProc.is_null() { 0 } else { (*pg_sys::MyProc).vxid.lxid };
        (lxid, pg_sys::GetCurrentStatementStartTimestamp())
    }
}

/// The statement of the last lookup.
static LAST_STATEMENT: Mutex<Statement> = Mutex::new((0, 0));

/// True at the first lookup of a statement.
fn new_statement() -> bool {
    let now = statement();
    let mut last = LAST_STATEMENT.lock().unwrap_or_else(|p| p.into_inner());
    let changed = *last != now;
    *last = now;
    changed
}

/// The model called `name` (its latest version, or `version`), from the cache or the table.
pub fn load(name: &str, version: Option<i32>) -> Arc<Model> {
    load_versioned(name, version).1
}

/// True on a Citus worker (Citus installed here, and this node not its coordinator), where a
/// missing model usually means one not copied from the coordinator yet. Citus is looked up by
/// name, never linked; asked only on the way to an error.
fn on_citus_worker() -> bool {
    // Two queries: the call would not even parse where Citus is not installed.
    super::citus_installed()
        && Spi::get_one::<bool>("SELECT NOT pg_catalog.citus_is_coordinator()")
            .ok()
            .flatten()
            .unwrap_or(false)
}

/// [`load`], with the version it resolved to.
pub fn load_versioned(name: &str, version: Option<i32>) -> (i32, Arc<Model>) {
    let key: Key = (name.to_string(), version);
    if new_statement() {
        // Inside a transaction block nothing else may read the invalidation queue between two
        // statements: a cached lookup takes no lock, so in READ COMMITTED `BEGIN; SELECT
        // jdsh.encode_text('m', ..); <another session retrains m>; SELECT jdsh.encode_text('m',
        // ..)` kept encoding with the old version although the second statement's snapshot sees
        // the new one. Read it here, once per statement (not per call: one statement, one model).
        unsafe { pg_sys::AcceptInvalidationMessages() };
        // A model loaded during a statement in which a change was seen (by the call above, or
        // earlier: parsing `... FROM t` reads the queue too) was read with a snapshot that may
        // predate the change (a REPEATABLE READ transaction, or a change committed after the
        // statement began). It is right for that statement but must not outlive it, so the first
        // lookup of a later statement empties the cache once more. Without this, `BEGIN ISOLATION
        // LEVEL REPEATABLE READ; <retrain elsewhere>; encode; COMMIT` left the old version
        // cached, and every later statement of the session used it.
        let mut seen_in = SEEN_IN.lock().unwrap_or_else(|p| p.into_inner());
        if seen_in.is_some_and(|s| s != statement()) {
            *seen_in = None;
            STALE.store(true, Ordering::Relaxed);
        }
    }
    {
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if STALE.swap(false, Ordering::Relaxed) {
            cache.clear();
        }
        if let Some((v, m)) = cache.get(&key) {
            return (*v, m.clone());
        }
    }
    // A read-only query: encoders are PARALLEL SAFE, and a parallel worker may load models too.
    let row = Spi::connect(|client| {
        client
            .select(
                "SELECT version, model, tableoid FROM jdsh.models \
                  WHERE name = $1 AND ($2 IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
                Some(1),
                &[name.into(), version.into()],
            )?
            .first()
            .get_three::<i32, Vec<u8>, pg_sys::Oid>()
    });
    let (resolved, bytes, table) = match row {
        Ok((Some(v), Some(b), Some(t))) => (v, b, t),
        Ok(_) | Err(pgrx::spi::SpiError::InvalidPosition) => raise_with_hint(
            E::ERRCODE_UNDEFINED_OBJECT,
            format!("{} does not exist", describe(name, version)),
            if on_citus_worker() {
                "This node is a Citus worker, which has its own jdsh.models: run SELECT * FROM jdsh.sync_models() \
                 on the coordinator to copy the coordinator's models here."
            } else {
                "SELECT * FROM jdsh.list_models() shows the models; jdsh.train or jdsh.import_model adds one."
            },
        ),
        Err(e) => raise(E::ERRCODE_INTERNAL_ERROR, format!("reading jdsh.models: {e}")),
    };
    MODELS_OID.store(table.to_u32(), Ordering::Relaxed);
    let model = Model::from_bytes(&bytes)
        .unwrap_or_else(|e| errors::corrupt_model(&describe(name, Some(resolved)), e));
    let model = Arc::new(model);
    CACHE.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (resolved, model.clone()));
    (resolved, model)
}

/// Checks, before any work is done, that the current user may add a version of `name`.
pub fn check_may_write(name: &str) {
    if name.trim().is_empty() {
        raise(E::ERRCODE_INVALID_PARAMETER_VALUE, "a model name must not be empty");
    }
    let (may_insert, owner) = Spi::get_two_with_args::<bool, String>(
        "SELECT has_table_privilege('jdsh.models', 'INSERT'), \
                (SELECT owner::text FROM jdsh.models WHERE name = $1 \
                   AND NOT pg_has_role(owner, 'USAGE') LIMIT 1)",
        &[name.into()],
    )
    .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, format!("reading jdsh.models: {e}")));
    if may_insert != Some(true) {
        raise_with_hint(
            E::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "permission denied to store models in jdsh.models",
            "A superuser can allow it with GRANT INSERT, UPDATE, DELETE ON jdsh.models TO <role>.",
        );
    }
    if let Some(owner) = owner {
        raise_with_hint(
            E::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("model \"{name}\" belongs to role \"{owner}\""),
            "Only members of the owning role may add versions to a model; pick another name.",
        );
    }
}

/// Stores `model` as the next version of `name` and returns that version.
pub fn store(name: &str, source: &str, model: &Model) -> i32 {
    check_may_write(name);
    let bytes = model
        .to_bytes()
        .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, format!("serialising the model: {e}")));
    let meta = model.meta();
    let json = |v: Result<serde_json::Value, serde_json::Error>| {
        JsonB(v.unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, format!("serialising metadata: {e}"))))
    };
    let params = json(serde_json::to_value(&meta.config));
    let metrics = json(serde_json::to_value(&meta.metrics));
    Spi::connect_mut(|client| {
        // Two sessions storing the same name at once would pick the same version.
        client
            .update(
                "SELECT pg_advisory_xact_lock(hashtextextended('jdsh.models/' || $1, 0))",
                None,
                &[name.into()],
            )
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
        client
            .update(
                "INSERT INTO jdsh.models (name, version, method, bits, source, params, metrics, model) \
                 SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7 \
                   FROM jdsh.models WHERE name = $1 RETURNING version",
                None,
                &[
                    name.into(),
                    meta.method.to_string().into(),
                    (meta.bits as i32).into(),
                    source.into(),
                    params.into(),
                    metrics.into(),
                    bytes.into(),
                ],
            )
            .and_then(|t| t.first().get_one::<i32>())
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, format!("storing the model: {e}")))
            .unwrap_or_else(|| raise(E::ERRCODE_INTERNAL_ERROR, "storing the model returned no version"))
    })
}

/// `jdsh.import_model(name, file bytea, source)`: validates a model file (e.g. written by the
/// `jdsh-train` CLI) and stores it as the next version of `name`.
#[pg_extern(sql = false)]
fn import_model(name: &str, file: &[u8], source: &str) -> i32 {
    let model = Model::from_bytes(file).unwrap_or_else(|e| errors::bad_model_file(e));
    store(name, source, &model)
}

/// `jdsh.model_info(file bytea)`: the metadata of a model file as jsonb, after full validation.
#[pg_extern(sql = false)]
fn model_info(file: &[u8]) -> JsonB {
    let model = Model::from_bytes(file).unwrap_or_else(|e| errors::bad_model_file(e));
    JsonB(
        serde_json::to_value(model.meta())
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, format!("serialising metadata: {e}"))),
    )
}
