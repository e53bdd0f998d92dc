//! Pieces of the `jdsh-train` command line that are worth testing apart from argument parsing:
//! dataset loading by name, a progress bar implementing [`Progress`], evaluation of a model on a
//! benchmark, the PR-curve plot, the plain-file input formats, and the SQL export of data sets.

pub mod export;
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
pub const DATASETS: &str = "wikipedia, mirflickr, emoji";

/// Loads a benchmark by name from the shared data folder (`$JDSH_DATA` or `../shared/data`).
pub fn load_dataset(name: &str, seed: u64) -> Result<Benchmark, String> {
    let root = data::data_root();
    match name {
        "wikipedia" => data::wikipedia::load(&root.join("wikipedia")).map_err(|e| e.to_string()),
        "mirflickr" => mirflickr_two_views(&root, seed),
        "emoji" => emoji_set()?.benchmark(data::emoji::LabelLevel::Subcategory).map_err(|e| e.to_string()),
        _ => Err(format!("unknown dataset \"{name}\": use one of {DATASETS}")),
    }
}

fn emoji_set() -> Result<data::emoji::EmojiSet, String> {
    data::emoji::load(&data::emoji_dir())
        .map_err(|e| format!("{e} (run scripts/fetch-emoji.sh to download the emoji packages)"))
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
        return evaluate(model, &load_dataset(name, seed)?, map_ks, precision_ks, device);
    }
    let proto = emoji_set()?.protocol(data::emoji::LabelLevel::Subcategory).map_err(|e| e.to_string())?;
    let t0 = std::time::Instant::now();
    let s = |e: crate::model::EncodeError| e.to_string();
    let (i2t, t2i) = (&proto.image_to_text, &proto.text_to_image);
    let qi = model.encode_image(&i2t.query, device).map_err(s)?;
    let rt = model.encode_text(&i2t.retrieval, device).map_err(s)?;
    let qt = model.encode_text(&t2i.query, device).map_err(s)?;
    let ri = model.encode_image(&t2i.retrieval, device).map_err(s)?;
    let encode_seconds = t0.elapsed().as_secs_f64();
    let e = |e: eval::EvalError| e.to_string();
    Ok(EvalReport {
        dataset: "emoji (unseen vendor facebook, subcategory)".into(),
        bits: model.bits(),
        image_to_text: eval::evaluate_codes(
            &qi,
            &rt,
            &i2t.query_labels,
            &i2t.retrieval_labels,
            map_ks,
            precision_ks,
        )
        .map_err(e)?,
        text_to_image: eval::evaluate_codes(
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

/// Items per second of [`Model::encode_text`] / [`Model::encode_image`], in one call for the whole
/// batch and one call per item (the database's per-row path).
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub items: usize,
    pub text_batched: f64,
    pub text_single: f64,
    pub image_batched: f64,
    pub image_single: f64,
    /// One call per item through libtorch instead of the fast path (over at most 2,000 items).
    pub text_single_torch: f64,
}

fn per_second(items: usize, f: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
    let t0 = std::time::Instant::now();
    f()?;
    Ok(items as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}

/// Measures encoding throughput on `data` (on the CPU fast path when `device` is the CPU).
pub fn encode_throughput(
    model: &Model,
    data: &PairedData,
    device: DeviceChoice,
) -> Result<Throughput, String> {
    use crate::data::{ImageInput, TextInput};
    let n = match &data.text {
        TextInput::Raw(t) => t.len(),
        TextInput::Features(m) => m.rows,
    };
    let err = |e: crate::model::EncodeError| e.to_string();
    let text_batched = per_second(n, || model.encode_text(&data.text, device).map(drop).map_err(err))?;
    let text_single = per_second(n, || {
        for i in 0..n {
            let one = match &data.text {
                TextInput::Raw(t) => TextInput::Raw(vec![t[i].clone()]),
                TextInput::Features(m) => TextInput::Features(m.select(&[i])),
            };
            model.encode_text(&one, device).map_err(err)?;
        }
        Ok(())
    })?;
    let image_batched = per_second(n, || model.encode_image(&data.image, device).map(drop).map_err(err))?;
    let image_single = per_second(n, || {
        for i in 0..n {
            let one = match &data.image {
                ImageInput::Features(m) => ImageInput::Features(m.select(&[i])),
                ImageInput::Encoded(v) => ImageInput::Encoded(vec![v[i].clone()]),
            };
            model.encode_image(&one, device).map_err(err)?;
        }
        Ok(())
    })?;
    let m = n.min(2000);
    let text_single_torch = per_second(m, || {
        for i in 0..m {
            let one = match &data.text {
                TextInput::Raw(t) => TextInput::Raw(vec![t[i].clone()]),
                TextInput::Features(f) => TextInput::Features(f.select(&[i])),
            };
            model.encode_text_torch(&one, DeviceChoice::Cpu).map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Throughput { items: n, text_batched, text_single, image_batched, image_single, text_single_torch })
}

/// A synthetic bag-of-words data set for throughput measurements: `n` texts of 8 words drawn from
/// a `vocab`-word vocabulary (Zipf-like), paired with 128-d non-negative image features.
pub fn synthetic_bow(n: usize, vocab: usize, seed: u64) -> PairedData {
    use crate::data::rng::SeededRng;
    use crate::data::{ImageInput, Labels, Matrix, TextInput};
    let mut rng = SeededRng::new(seed);
    let mut texts = Vec::with_capacity(n);
    let mut img = Vec::with_capacity(n * 128);
    let mut sets = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 10;
        let words: Vec<String> = (0..8)
            .map(|k| {
                // Half the words carry the class, the rest are skewed towards frequent words.
                let w = if k % 2 == 0 {
                    class * (vocab / 10) + rng.below((vocab / 10) as u64) as usize
                } else {
                    let u = rng.next_f64();
                    ((u * u) * vocab as f64) as usize
                };
                format!("w{w}")
            })
            .collect();
        texts.push(words.join(" "));
        img.extend((0..128).map(|d| (rng.next_f64() as f32) * if d % 10 == class { 2.0 } else { 1.0 }));
        sets.push(vec![class as u32]);
    }
    PairedData {
        image: ImageInput::Features(Matrix::new(n, 128, img)),
        text: TextInput::Raw(texts),
        labels: Some(Labels { classes: 10, sets }),
    }
}
