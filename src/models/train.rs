//! `jdsh.train(name, source, image, text, labels, bits, method, epochs, options)`: reads the
//! pairs through SPI, trains with the trainer crate, stores the model as the next version of
//! `name`, and returns a summary row.
//!
//! Progress goes to the client as NOTICEs (one per epoch, and at most every 10 seconds within a
//! long epoch). Cancellation: the progress callback sees PostgreSQL's `InterruptPending` after
//! every mini-batch and stops training; then `CHECK_FOR_INTERRUPTS` raises the cancel or
//! statement-timeout error as PostgreSQL words it. Nothing is stored before training succeeded,
//! and the error aborts the transaction, so a cancelled run leaves no model row.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use jdsh_trainer::progress::{Phase, ProgressEvent};
use jdsh_trainer::{Method, TrainConfig, TrainError};
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB, PgSqlErrorCode as E};

use super::source::{self, LabelMap};
use super::{errors, registry};
use crate::fmgr::{raise, raise_with_hint};
use crate::gucs;
use jdsh_core::MAX_BITS;

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Merges `options` into `base` key by key (objects recursively); unknown keys are an error
/// listing the valid ones.
fn merge(base: &mut serde_json::Value, options: &serde_json::Value, path: &str) {
    let (Some(b), Some(o)) = (base.as_object_mut(), options.as_object()) else {
        raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("options{path} must be a JSON object"));
    };
    for (k, v) in o {
        match b.get_mut(k) {
            Some(slot) if slot.is_object() && v.is_object() => merge(slot, v, &format!("{path}.{k}")),
            Some(slot) => *slot = v.clone(),
            None => {
                let mut keys: Vec<&String> = b.keys().collect();
                keys.sort();
                let keys: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
                raise_with_hint(
                    E::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!(
                        "unknown training option \"{}{k}\"",
                        if path.is_empty() { String::new() } else { format!("{}.", &path[1..]) }
                    ),
                    format!("Valid options{path}: {}.", keys.join(", ")),
                );
            }
        }
    }
}

/// The training configuration: the method's defaults, `jdsh.device` and `jdsh.threads`, a 10 % hold-out when
/// labels are given (for the returned MAP), then the caller's `epochs` and `options`.
fn config(
    method: Method,
    bits: i32,
    epochs: Option<i32>,
    has_labels: bool,
    options: &serde_json::Value,
) -> TrainConfig {
    if !(1..=MAX_BITS as i32).contains(&bits) {
        raise(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("bits must be between 1 and {MAX_BITS}, not {bits}"),
        );
    }
    let mut cfg = TrainConfig::defaults(method, bits as usize);
    (cfg.device, cfg.threads) = gucs::training_device();
    if has_labels {
        cfg.holdout = 0.1;
    }
    if let Some(e) = epochs {
        if e < 1 {
            raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("epochs must be at least 1, not {e}"));
        }
        cfg.epochs = e as usize;
    }
    let mut value =
        serde_json::to_value(&cfg).unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
    merge(&mut value, options, "");
    let cfg: TrainConfig = serde_json::from_value(value).unwrap_or_else(|e| {
        raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid training options: {e}"))
    });
    if cfg.bits != bits as usize || cfg.method != method {
        raise(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            "set bits and method with their own arguments, not in options",
        );
    }
    cfg
}

/// A query cancel, statement timeout or backend termination is waiting. Other interrupts (e.g.
/// catch-up of shared invalidation messages, set by other sessions' DDL) also raise
/// `InterruptPending` and must not stop training; they are served at the next
/// `CHECK_FOR_INTERRUPTS` after it.
fn cancel_pending() -> bool {
    unsafe {
        std::ptr::read_volatile(&raw const pg_sys::InterruptPending) != 0
            && (std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0
                || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0)
    }
}

/// NOTICEs at the end of every epoch and every 10 s inside one; `Break` on a pending cancel.
struct Notices {
    last: Instant,
}

impl Notices {
    fn event(&mut self, e: &ProgressEvent) -> ControlFlow<()> {
        if cancel_pending() {
            return ControlFlow::Break(());
        }
        let epoch_end = e.phase == Phase::Training && e.batch + 1 == e.batches;
        if epoch_end || self.last.elapsed() >= Duration::from_secs(10) {
            self.last = Instant::now();
            let msg = match e.phase {
                Phase::Preparing => format!("jdsh.train: preparing, elapsed {}", fmt_duration(e.elapsed)),
                Phase::Evaluating => {
                    format!("jdsh.train: measuring hold-out MAP, elapsed {}", fmt_duration(e.elapsed))
                }
                // CCA-ITQ is fitted in closed form: its one event has no loss (NaN).
                Phase::Training => format!(
                    "jdsh.train: epoch {}/{}{}{}, elapsed {}, remaining {}",
                    e.epoch + 1,
                    e.epochs,
                    if epoch_end { String::new() } else { format!(" (batch {}/{})", e.batch + 1, e.batches) },
                    if e.loss.is_finite() { format!(", loss {:.5}", e.loss) } else { String::new() },
                    fmt_duration(e.elapsed),
                    e.remaining.map(fmt_duration).unwrap_or_else(|| "?".into()),
                ),
            };
            pgrx::notice!("{msg}");
        }
        ControlFlow::Continue(())
    }
}

// The row type is spelt out: pg_extern reads the column names from it, not from an alias.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(sql = false)]
fn train(
    name: &str,
    source: &str,
    image: &str,
    text: &str,
    labels: Option<&str>,
    bits: i32,
    method: &str,
    epochs: Option<i32>,
    options: JsonB,
) -> TableIterator<
    'static,
    (
        name!(model, String),
        name!(version, i32),
        name!(method, String),
        name!(bits, i32),
        name!(epochs, i32),
        name!(pairs, i32),
        name!(seconds, f64),
        name!(final_loss, f64),
        name!(map_image_to_text, Option<f64>),
        name!(map_text_to_image, Option<f64>),
    ),
> {
    let method: Method =
        method.parse().unwrap_or_else(|e: String| raise(E::ERRCODE_INVALID_PARAMETER_VALUE, e));
    let cfg = config(method, bits, epochs, labels.is_some(), &options.0);
    // Fail before reading or training, not after minutes of it.
    registry::check_may_write(name);

    let mut map = LabelMap::default();
    let mut table = source::read(source, &[image, text], labels, &mut map);
    pgrx::notice!("jdsh.train: read {} from {}", table.describe(), source);
    let text_input = table.inputs.pop().expect("two columns").into_text(text);
    let image_input = table.inputs.pop().expect("two columns").into_image(image);
    let data = jdsh_trainer::data::PairedData {
        image: image_input,
        text: text_input,
        labels: table.labels.take().map(|sets| map.labels(sets)),
    };

    let mut notices = Notices { last: Instant::now() };
    let mut progress = |e: &ProgressEvent| notices.event(e);
    let model = match jdsh_trainer::train(&data, &cfg, &mut progress) {
        Ok(m) => m,
        Err(TrainError::Cancelled) => {
            // Raises "canceling statement due to user request" / "... statement timeout".
            pgrx::check_for_interrupts!();
            errors::train(TrainError::Cancelled)
        }
        Err(e) => errors::train(e),
    };
    let version = registry::store(name, source, &model);
    let m = &model.meta().metrics;
    let holdout = m.holdout.as_ref();
    TableIterator::once((
        name.to_string(),
        version,
        method.to_string(),
        bits,
        m.epochs as i32,
        m.train_pairs as i32,
        m.seconds,
        m.final_loss,
        holdout.map(|h| h.image_to_text),
        holdout.map(|h| h.text_to_image),
    ))
}
