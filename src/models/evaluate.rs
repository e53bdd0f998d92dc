//! `jdsh.evaluate(model, queries, query_column, retrieval, retrieval_column, labels, ks, direction,
//! version)`: encodes a query relation and a retrieval relation with a model and measures Hamming
//! ranking quality in the backend, with the trainer crate's own evaluation (so the numbers are the
//! CLI's): MAP@all, MAP@k, precision@k and precision within Hamming radius 2.

use jdsh_core::code::Code;
use jdsh_trainer::eval;
use jdsh_trainer::Model;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as E;

use super::source::{self, Input, LabelMap};
use super::{errors, registry};
use crate::fmgr::{raise, raise_with_hint, required};

pub(super) fn encode(model: &Model, name: &str, input: Input, column: &str, image: bool) -> Vec<Code> {
    let device = crate::gucs::batch_device();
    let codes = if image {
        model.encode_image(&input.into_image(column), device)
    } else {
        model.encode_text(&input.into_text(column), device)
    };
    codes.unwrap_or_else(|e| errors::encode(name, e))
}

/// Which side is the image: from `direction` when given, else from the input types.
fn query_is_image(direction: Option<&str>, q: &Input, r: &Input) -> bool {
    match direction.map(|d| d.trim().to_ascii_lowercase().replace(' ', "")) {
        Some(d) if d == "image->text" || d == "i2t" => true,
        Some(d) if d == "text->image" || d == "t2i" => false,
        Some(d) => raise(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown direction \"{d}\": use 'image->text' or 'text->image'"),
        ),
        None => match (q, r) {
            (Input::Bytes(_), _) | (_, Input::Texts(_)) => true,
            (Input::Texts(_), _) | (_, Input::Bytes(_)) => false,
            _ => raise_with_hint(
                E::ERRCODE_INVALID_PARAMETER_VALUE,
                "both columns are feature vectors: cannot tell which side is the image",
                "Pass direction => 'image->text' or direction => 'text->image'.",
            ),
        },
    }
}

/// One direction of an evaluation protocol: a labelled query relation against a labelled
/// retrieval relation (as `jdsh.evaluate` takes them; `jdsh.report` reads a list of them from JSON).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub queries: String,
    pub query_column: String,
    pub retrieval: String,
    pub retrieval_column: String,
    pub labels: String,
    #[serde(default)]
    pub direction: Option<String>,
}

/// Encodes both sides of `spec` with the model and measures Hamming ranking quality (with the
/// precision-recall curve).
pub fn measure(
    model: &str,
    version: Option<i32>,
    spec: &Protocol,
    map_ks: &[usize],
    p_ks: &[usize],
) -> eval::Report {
    let m = registry::load(model, version);
    let mut map = LabelMap::default();
    let labels = spec.labels.as_str();
    let mut q = source::read(&spec.queries, &[&spec.query_column], Some(labels), &mut map);
    let mut r = source::read(&spec.retrieval, &[&spec.retrieval_column], Some(labels), &mut map);
    if q.rows == 0 || r.rows == 0 {
        raise(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("cannot evaluate with {} queries and {} retrieval items", q.rows, r.rows),
        );
    }
    let (qi, ri) = (q.inputs.pop().expect("one column"), r.inputs.pop().expect("one column"));
    let image_queries = query_is_image(spec.direction.as_deref(), &qi, &ri);
    let qc = encode(&m, model, qi, &spec.query_column, image_queries);
    let rc = encode(&m, model, ri, &spec.retrieval_column, !image_queries);
    let ql = map.labels(q.labels.take().unwrap_or_default());
    let rl = map.labels(r.labels.take().unwrap_or_default());
    eval::evaluate_codes(&qc, &rc, &ql, &rl, map_ks, p_ks)
        .unwrap_or_else(|e| raise(E::ERRCODE_INVALID_PARAMETER_VALUE, e.to_string()))
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false)]
fn evaluate(
    model: Option<&str>,
    queries: Option<&str>,
    query_column: Option<&str>,
    retrieval: Option<&str>,
    retrieval_column: Option<&str>,
    labels: Option<&str>,
    ks: Option<Vec<Option<i32>>>,
    direction: Option<&str>,
    version: Option<i32>,
) -> TableIterator<'static, (name!(metric, String), name!(k, Option<i32>), name!(value, f64))> {
    let model = required(model, "model");
    let ks: Vec<usize> = ks
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|k| {
            if k < 1 {
                raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("k must be at least 1, not {k}"))
            } else {
                k as usize
            }
        })
        .collect();
    let spec = Protocol {
        queries: required(queries, "queries").into(),
        query_column: required(query_column, "query_column").into(),
        retrieval: required(retrieval, "retrieval").into(),
        retrieval_column: required(retrieval_column, "retrieval_column").into(),
        labels: required(labels, "labels").into(),
        direction: direction.map(str::to_string),
    };
    let report = measure(model, version, &spec, &ks, &ks);
    let mut rows = vec![("map".to_string(), None, report.map_all)];
    rows.extend(report.map_at.iter().map(|&(k, v)| ("map".to_string(), Some(k as i32), v)));
    rows.extend(report.precision_at.iter().map(|&(k, v)| ("precision".to_string(), Some(k as i32), v)));
    if let Some(p) = report.precision_radius2 {
        rows.push(("precision_radius2".to_string(), None, p));
    }
    TableIterator::new(rows)
}
