//! A model on a benchmark: encode the queries and the retrieval set with the model's two nets,
//! rank by Hamming distance, and report both directions ([`EvalReport`]). The CLI's `eval` and
//! the trainer's tests use it.

use serde::Serialize;

use super::{evaluate_codes, EvalError, Report};
use crate::data::{self, Benchmark, PairedData};
use crate::device::DeviceChoice;
use crate::model::{EncodeError, Model};

/// Both directions of a cross-modal evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub bits: usize,
    pub image_to_text: Report,
    pub text_to_image: Report,
    pub encode_seconds: f64,
}

/// Encodes queries and retrieval set with `model` and ranks by Hamming distance (ties by index).
pub fn evaluate(
    model: &Model,
    bench: &Benchmark,
    map_ks: &[usize],
    precision_ks: &[usize],
    device: DeviceChoice,
) -> Result<EvalReport, String> {
    let t0 = std::time::Instant::now();
    let enc = |p: &PairedData| -> Result<_, String> {
        let i = model.encode_image(&p.image, device).map_err(|e| e.to_string())?;
        let t = model.encode_text(&p.text, device).map_err(|e| e.to_string())?;
        Ok((i, t))
    };
    let (qi, qt) = enc(&bench.query)?;
    let (ri, rt) = enc(&bench.retrieval)?;
    let encode_seconds = t0.elapsed().as_secs_f64();
    let (ql, rl) = match (&bench.query.labels, &bench.retrieval.labels) {
        (Some(q), Some(r)) => (q, r),
        _ => return Err("the benchmark has no labels to evaluate with".into()),
    };
    let i2t = evaluate_codes(&qi, &rt, ql, rl, map_ks, precision_ks).map_err(|e| e.to_string())?;
    let t2i = evaluate_codes(&qt, &ri, ql, rl, map_ks, precision_ks).map_err(|e| e.to_string())?;
    Ok(EvalReport {
        dataset: bench.name.clone(),
        bits: model.bits(),
        image_to_text: i2t,
        text_to_image: t2i,
        encode_seconds,
    })
}

/// Evaluates on a named data set with its own protocol: for emoji the data card's exact one
/// (unseen vendor, subcategory relevance), else the benchmark's query/retrieval split.
pub fn evaluate_named(
    model: &Model,
    name: &str,
    seed: u64,
    map_ks: &[usize],
    precision_ks: &[usize],
    device: DeviceChoice,
) -> Result<EvalReport, String> {
    if name != "emoji" {
        return evaluate(model, &data::load_dataset(name, seed)?, map_ks, precision_ks, device);
    }
    let proto =
        data::emoji_set()?.protocol(data::emoji::LabelLevel::Subcategory).map_err(|e| e.to_string())?;
    let t0 = std::time::Instant::now();
    let s = |e: EncodeError| e.to_string();
    let (i2t, t2i) = (&proto.image_to_text, &proto.text_to_image);
    let qi = model.encode_image(&i2t.query, device).map_err(s)?;
    let rt = model.encode_text(&i2t.retrieval, device).map_err(s)?;
    let qt = model.encode_text(&t2i.query, device).map_err(s)?;
    let ri = model.encode_image(&t2i.retrieval, device).map_err(s)?;
    let encode_seconds = t0.elapsed().as_secs_f64();
    let e = |e: EvalError| e.to_string();
    Ok(EvalReport {
        dataset: "emoji (unseen vendor facebook, subcategory)".into(),
        bits: model.bits(),
        image_to_text: evaluate_codes(
            &qi,
            &rt,
            &i2t.query_labels,
            &i2t.retrieval_labels,
            map_ks,
            precision_ks,
        )
        .map_err(e)?,
        text_to_image: evaluate_codes(
            &qt,
            &ri,
            &t2i.query_labels,
            &t2i.retrieval_labels,
            map_ks,
            precision_ks,
        )
        .map_err(e)?,
        encode_seconds,
    })
}
