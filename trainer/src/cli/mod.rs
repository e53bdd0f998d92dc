//! Pieces of the `jdsh-train` command line that are worth testing apart from argument parsing:
//! dataset loading by name, a progress bar implementing [`Progress`], evaluation of a model on a
//! benchmark, the PR-curve plot, and the plain-file input formats.

pub mod files;
pub mod plot;

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::data::{self, Benchmark, PairedData};
use crate::device::DeviceChoice;
use crate::eval::{self, Report};
use crate::model::Model;
use crate::train::{Phase, Progress, ProgressEvent};

/// Data sets the CLI knows by name.
pub const DATASETS: &str = "wikipedia, mirflickr";

/// Loads a benchmark by name from the shared data folder (`$JDSH_DATA` or `../shared/data`).
pub fn load_dataset(name: &str, seed: u64) -> Result<Benchmark, String> {
    let root = data::data_root();
    match name {
        "wikipedia" => data::wikipedia::load(&root.join("wikipedia")).map_err(|e| e.to_string()),
        "mirflickr" => mirflickr_two_views(&root, seed),
        _ => Err(format!("unknown dataset \"{name}\": use one of {DATASETS}")),
    }
}

/// MIRFlickr has no image features here (data card, section 2), so the benchmark pairs two
/// disjoint views of each item's tags: the "image" view holds the tags in even-numbered columns,
/// the "text" view those in odd-numbered columns. Labels, split (DCMH protocol) and scale are the
/// real ones; the retrieval numbers are tag-view-to-tag-view, NOT image-text.
fn mirflickr_two_views(root: &std::path::Path, seed: u64) -> Result<Benchmark, String> {
    let mir = data::mirflickr::load(&root.join("mirflickr25k")).map_err(|e| e.to_string())?;
    let split = mir.dcmh_split(if seed == 0 { data::mirflickr::DCMH_SEED } else { seed });
    let mut b = mir.benchmark("mirflickr-tag-views", &split, |idx| {
        data::ImageInput::Features(even_odd(&mir.tag_matrix(idx), 0))
    });
    for part in [&mut b.train, &mut b.query, &mut b.retrieval] {
        if let data::TextInput::Features(m) = &part.text {
            let odd = even_odd(m, 1);
            part.text = data::TextInput::Features(odd);
        }
    }
    Ok(b)
}

/// The columns `parity, parity + 2, ...` of `m`.
fn even_odd(m: &data::Matrix, parity: usize) -> data::Matrix {
    let cols: Vec<usize> = (parity..m.cols).step_by(2).collect();
    let mut out = data::Matrix::zeros(m.rows, cols.len());
    for i in 0..m.rows {
        for (k, &j) in cols.iter().enumerate() {
            out.row_mut(i)[k] = m.row(i)[j];
        }
    }
    out
}

/// An indicatif bar over all training steps, with the loss in its message.
pub struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        BarProgress { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for BarProgress {
    fn event(&mut self, e: &ProgressEvent) -> ControlFlow<()> {
        match e.phase {
            Phase::Preparing => self.bar.set_message("preparing"),
            Phase::Evaluating => self.bar.set_message("held-out MAP"),
            Phase::Training => {
                let total = (e.epochs * e.batches) as u64;
                if self.bar.length() != Some(total) {
                    self.bar.set_length(total);
                }
                self.bar.set_position((e.epoch * e.batches + e.batch + 1) as u64);
                if e.batch + 1 == e.batches {
                    self.bar.set_message(format!("epoch {}/{} loss {:.4}", e.epoch + 1, e.epochs, e.loss));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

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
    let i2t = eval::evaluate_codes(&qi, &rt, ql, rl, map_ks, precision_ks).map_err(|e| e.to_string())?;
    let t2i = eval::evaluate_codes(&qt, &ri, ql, rl, map_ks, precision_ks).map_err(|e| e.to_string())?;
    Ok(EvalReport {
        dataset: bench.name.clone(),
        bits: model.bits(),
        image_to_text: i2t,
        text_to_image: t2i,
        encode_seconds,
    })
}
