//! The `jdsh-train` command line's pieces worth testing apart from argument parsing (built with
//! the `cli` feature): a progress bar implementing [`Progress`], encoding throughput, the PR-curve
//! plot, the plain-file input formats, and the SQL export of data sets. Data sets by name
//! ([`crate::data::load_dataset`]) and evaluation ([`crate::eval::evaluate_named`]) are library
//! code.

pub mod export;
pub mod files;
pub mod plot;

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::data::PairedData;
use crate::device::DeviceChoice;
use crate::model::{EncodeError, Model};
use crate::progress::{Phase, Progress, ProgressEvent};

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
    let n = data.text.len();
    let err = |e: EncodeError| e.to_string();
    let text_batched = per_second(n, || model.encode_text(&data.text, device).map(drop).map_err(err))?;
    let text_single = per_second(n, || {
        for i in 0..n {
            model.encode_text(&data.text.select(&[i]), device).map_err(err)?;
        }
        Ok(())
    })?;
    let image_batched = per_second(n, || model.encode_image(&data.image, device).map(drop).map_err(err))?;
    let image_single = per_second(n, || {
        for i in 0..n {
            model.encode_image(&data.image.select(&[i]), device).map_err(err)?;
        }
        Ok(())
    })?;
    let m = n.min(2000);
    let text_single_torch = per_second(m, || {
        for i in 0..m {
            model.encode_text_torch(&data.text.select(&[i]), DeviceChoice::Cpu).map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Throughput { items: n, text_batched, text_single, image_batched, image_single, text_single_torch })
}
