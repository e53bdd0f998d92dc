//! `jdsh.report(models, images, image, caption, queries, …)`: what models find, as one
//! self-contained HTML page (pictures inline, no network). It runs the queries the way a user
//! would — text queries against a relation of pictures, a few pictures against a relation of
//! texts, and an evaluation protocol — and hands the results to the trainer's renderer
//! (`jdsh_trainer::report`), which knows nothing of PostgreSQL.
//!
//! Images are ranked either in memory (every row of `images` encoded once per model: fine for
//! the thousands of rows one looks at) or, with `codes`, by the stored code columns through their
//! index (`ORDER BY code <~> jdsh.encode_text(model, query) LIMIT k`: reads k rows a query, for
//! tables of any size). Everything runs as the calling user.

use jdsh_core::code::{hamming, Code};
use jdsh_trainer::eval;
use jdsh_trainer::report::{self as page, ImageHit, ImageQuery, ModelCard, Page, TextHit, TextQuery};
use jdsh_trainer::Model;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode as E};
use std::sync::Arc;

use super::evaluate::{encode, measure, Protocol};
use super::registry;
use super::source::{self, quote_ident, Input, LabelMap};
use crate::fmgr::{raise, raise_with_hint, required};

/// The most hits per query a page shows.
const MAX_K: i32 = 100;

/// The ks the evaluation section reports besides MAP@all (none: the page shows MAP@all and the
/// curves).
const NO_KS: [usize; 0] = [];

fn names(list: Vec<Option<String>>, what: &str) -> Vec<String> {
    list.into_iter()
        .map(|s| {
            s.unwrap_or_else(|| {
                raise(E::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{what} must not contain NULL"))
            })
        })
        .collect()
}

fn bytes_of(input: Input, column: &str) -> Vec<Vec<u8>> {
    match input {
        Input::Bytes(b) => b,
        _ => raise_with_hint(
            E::ERRCODE_DATATYPE_MISMATCH,
            format!("image column \"{column}\" is not bytea: the page shows PNG/JPEG bytes"),
            "Pass the bytea column to show as image => …, and a feature column the models encode as encode => ….",
        ),
    }
}

fn texts_of(input: Input, column: &str) -> Vec<String> {
    match input {
        Input::Texts(t) => t,
        _ => raise(
            E::ERRCODE_DATATYPE_MISMATCH,
            format!("column \"{column}\" is not text: the page shows it as text"),
        ),
    }
}

/// A model with what the page says about it.
struct Shown {
    name: String,
    model: Arc<Model>,
    card: ModelCard,
}

fn load(name: &str) -> Shown {
    let (version, model) = registry::load_versioned(name, None);
    let card = ModelCard {
        name: name.to_string(),
        version,
        method: model.meta().method.to_string(),
        bits: model.meta().bits,
    };
    Shown { name: name.to_string(), model, card }
}

/// The picture and the encoder input of the first row of `from` whose `caption` column is `wanted`.
fn image_row(from: &str, image: &str, caption: &str, encode_col: &str, wanted: &str) -> (Vec<u8>, Input) {
    let sql = format!(
        "SELECT {}, {} FROM {from} WHERE {}::text = {} LIMIT 1",
        quote_ident(image),
        quote_ident(encode_col),
        quote_ident(caption),
        // Text from a text[] argument: no NUL byte, so quote_literal never fails.
        pgrx::spi::quote_literal(wanted)
    );
    let mut t = source::read(&sql, &[image, encode_col], None, &mut LabelMap::default());
    if t.rows == 0 {
        raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("no row of the images has caption \"{wanted}\""),
            "image_queries names pictures by their caption column's value.",
        );
    }
    let enc = t.inputs.pop().expect("two columns");
    let shown = bytes_of(t.inputs.pop().expect("two columns"), image).pop().expect("one row");
    (shown, enc)
}

/// The k nearest of `codes` to `q`: (index, distance), nearest first, ties by position.
fn nearest(q: &Code, codes: &[Code], k: usize) -> Vec<(usize, u32)> {
    eval::hamming_ranking(q, codes)
        .into_iter()
        .take(k)
        .map(|j| (j as usize, hamming(q.bytes(), codes[j as usize].bytes())))
        .collect()
}

/// Text queries ranked against every row of `from`, encoded in memory once per model.
fn search_in_memory(
    shown: &[Shown],
    from: &str,
    image: &str,
    caption: &str,
    encode_col: &str,
    queries: &[String],
    k: usize,
) -> Vec<TextQuery> {
    let mut columns = vec![image, caption];
    if encode_col != image {
        columns.push(encode_col);
    }
    let mut t = source::read(from, &columns, None, &mut LabelMap::default());
    let enc = if encode_col != image { Some(t.inputs.pop().expect("three columns")) } else { None };
    let captions = texts_of(t.inputs.pop().expect("caption"), caption);
    let pictures = t.inputs.pop().expect("image");
    let enc = enc.unwrap_or_else(|| pictures.clone());
    let pictures = bytes_of(pictures, image);
    let mut out: Vec<TextQuery> =
        queries.iter().map(|q| TextQuery { text: q.clone(), hits: Vec::new() }).collect();
    for s in shown {
        let codes = encode(&s.model, &s.name, enc.clone(), encode_col, true);
        let qcodes = encode(&s.model, &s.name, Input::Texts(queries.to_vec()), "queries", false);
        for (q, qc) in out.iter_mut().zip(&qcodes) {
            let hits = nearest(qc, &codes, k)
                .into_iter()
                .map(|(j, d)| ImageHit {
                    caption: captions[j].clone(),
                    image: pictures[j].clone(),
                    distance: d,
                })
                .collect();
            q.hits.push(hits);
        }
        pgrx::check_for_interrupts!();
    }
    out
}

/// Text queries answered by each model's stored code column, through its index when it has one.
fn search_by_index(
    shown: &[Shown],
    from: &str,
    image: &str,
    caption: &str,
    codes: &[String],
    queries: &[String],
    k: usize,
) -> Vec<TextQuery> {
    let mut out: Vec<TextQuery> =
        queries.iter().map(|q| TextQuery { text: q.clone(), hits: Vec::new() }).collect();
    for (s, code) in shown.iter().zip(codes) {
        let sql = format!(
            "SELECT {c}::text, {i}, ({code} <~> jdsh.encode_text($1, $2))::int4 FROM {from} \
              ORDER BY {code} <~> jdsh.encode_text($1, $2) LIMIT {k}",
            c = quote_ident(caption),
            i = quote_ident(image),
            code = quote_ident(code),
        );
        for q in out.iter_mut() {
            let hits = Spi::connect(|client| {
                let rows = client.select(&sql, None, &[s.name.as_str().into(), q.text.as_str().into()])?;
                let mut hits = Vec::new();
                for row in rows {
                    let caption: Option<String> = row.get(1)?;
                    let picture: Option<Vec<u8>> = row.get(2)?;
                    let distance: Option<i32> = row.get(3)?;
                    hits.push(ImageHit {
                        caption: caption.unwrap_or_default(),
                        image: picture.unwrap_or_default(),
                        distance: distance.unwrap_or(0).max(0) as u32,
                    });
                }
                Ok::<_, pgrx::spi::SpiError>(hits)
            })
            .unwrap_or_else(|e| {
                raise_with_hint(
                    E::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("cannot rank by code column \"{code}\": {e}"),
                    "codes names one bitcode column per model, in the order of models.",
                )
            });
            q.hits.push(hits);
            pgrx::check_for_interrupts!();
        }
    }
    out
}

/// For each picture named in `wanted`, the texts of `texts` nearest to it under each model.
#[allow(clippy::too_many_arguments)]
fn texts_for_images(
    shown: &[Shown],
    from: &str,
    image: &str,
    caption: &str,
    encode_col: &str,
    texts: &str,
    text_column: &str,
    wanted: &[String],
    k: usize,
) -> Vec<ImageQuery> {
    let t = source::read(texts, &[text_column], None, &mut LabelMap::default());
    let all = texts_of(t.inputs.into_iter().next().expect("one column"), text_column);
    let rows: Vec<(Vec<u8>, Input)> =
        wanted.iter().map(|w| image_row(from, image, caption, encode_col, w)).collect();
    let mut out: Vec<ImageQuery> = wanted
        .iter()
        .zip(&rows)
        .map(|(w, (img, _))| ImageQuery { caption: w.clone(), image: img.clone(), hits: Vec::new() })
        .collect();
    for s in shown {
        let tcodes = encode(&s.model, &s.name, Input::Texts(all.clone()), text_column, false);
        for (q, (_, enc)) in out.iter_mut().zip(&rows) {
            let qc = encode(&s.model, &s.name, enc.clone(), encode_col, true);
            let hits = nearest(&qc[0], &tcodes, k)
                .into_iter()
                .map(|(j, d)| TextHit { text: all[j].clone(), distance: d })
                .collect();
            q.hits.push(hits);
        }
        pgrx::check_for_interrupts!();
    }
    out
}

fn protocols(spec: Option<JsonB>) -> Vec<Protocol> {
    let Some(JsonB(v)) = spec else { return Vec::new() };
    let v = if v.is_object() { serde_json::Value::Array(vec![v]) } else { v };
    serde_json::from_value(v).unwrap_or_else(|e| {
        raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid evaluation protocol: {e}"),
            "evaluation is a JSON array of objects with the keys of jdsh.evaluate: queries, query_column, \
             retrieval, retrieval_column, labels, and optionally direction ('text->image' or 'image->text').",
        )
    })
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false)]
fn report(
    models: Option<Vec<Option<String>>>,
    images: Option<&str>,
    image: Option<&str>,
    caption: Option<&str>,
    queries: Option<Vec<Option<String>>>,
    k: Option<i32>,
    encode: Option<&str>,
    codes: Option<Vec<Option<String>>>,
    texts: Option<&str>,
    text_column: Option<&str>,
    image_queries: Option<Vec<Option<String>>>,
    evaluation: Option<JsonB>,
    title: Option<&str>,
) -> String {
    let models = names(required(models, "models"), "models");
    let (images, image, caption) =
        (required(images, "images"), required(image, "image"), required(caption, "caption"));
    let queries = names(queries.unwrap_or_default(), "queries");
    let k = required(k, "k");
    let image_queries = names(image_queries.unwrap_or_default(), "image_queries");
    let title = title.unwrap_or("jdsh");
    if models.is_empty() {
        raise(E::ERRCODE_INVALID_PARAMETER_VALUE, "models must name at least one model");
    }
    if !(1..=MAX_K).contains(&k) {
        raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("k must be between 1 and {MAX_K}, not {k}"));
    }
    let codes = codes.map(|c| names(c, "codes"));
    if let Some(c) = &codes {
        if c.len() != models.len() {
            raise(
                E::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "codes names {} columns for {} models: give one code column per model",
                    c.len(),
                    models.len()
                ),
            );
        }
    }
    let texts = match (texts, text_column, image_queries.is_empty()) {
        (_, _, true) => None,
        (Some(t), Some(c), false) => Some((t, c)),
        _ => raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            "image_queries needs texts and text_column",
            "Name the relation of texts to search (texts => …) and its text column (text_column => …).",
        ),
    };
    let protocols = protocols(evaluation);
    let shown: Vec<Shown> = models.iter().map(|m| load(m)).collect();
    let from = source::from_item(images);
    let encode_col = encode.unwrap_or(image);
    let k = k as usize;

    let image_search = match &codes {
        Some(c) => search_by_index(&shown, &from, image, caption, c, &queries, k),
        None => search_in_memory(&shown, &from, image, caption, encode_col, &queries, k),
    };
    let text_search = texts
        .map(|(t, c)| texts_for_images(&shown, &from, image, caption, encode_col, t, c, &image_queries, k))
        .unwrap_or_default();
    let evaluation = protocols
        .iter()
        .map(|p| page::Evaluation {
            direction: p.direction.clone().unwrap_or_else(|| format!("{} -> {}", p.queries, p.retrieval)),
            reports: shown.iter().map(|s| measure(&s.name, None, p, &NO_KS, &NO_KS)).collect(),
        })
        .collect();
    let ranked = if codes.is_some() { "stored code columns" } else { "every image encoded once per model" };
    let page = Page {
        title: title.to_string(),
        subtitle: format!("Pictures from {images}, the top {k} by Hamming distance ({ranked})."),
        models: shown.into_iter().map(|s| s.card).collect(),
        image_search,
        text_search,
        evaluation,
    };
    page::render(&page)
}
