//! The entry point the extension and the CLI call: [`train`] validates the data and the
//! configuration, prepares the tensors (`prepare.rs`), runs the method's training loop
//! ([`crate::methods`]: JDSH, DCMH or CCA-ITQ), and assembles the [`Model`] with its metadata and,
//! when asked, the hold-out MAP. Progress is reported at least once per mini-batch through
//! [`Progress`]; returning `Break` cancels promptly with nothing left behind.

use std::time::Instant;

use jdsh_core::rng::SeededRng;
use tch::Device;

use crate::config::{ImageNetKind, Method, TrainConfig};
use crate::data::{ImageInput, PairedData, TextInput};
use crate::device::DeviceChoice;
use crate::error::TrainError;
use crate::eval;
use crate::methods::{cca_itq, dcmh, jdsh};
use crate::model::{EncodeError, HoldoutMap, Model, ModelMeta, TrainMetrics, FORMAT_NAME, FORMAT_VERSION};
use crate::prepare::{check_matrix, prepare};
use crate::progress::{Phase, Progress, Ticker};
use crate::torch;

/// Smallest number of training pairs accepted.
pub const MIN_TRAIN_ROWS: usize = 4;

/// Trains a model on paired data. See the module comment.
pub fn train(data: &PairedData, cfg: &TrainConfig, progress: &mut dyn Progress) -> Result<Model, TrainError> {
    validate(data, cfg)?;
    let device = cfg.device.resolve()?;
    // libtorch panics (through tch) on internal failures; a database backend must get an error.
    torch::catch(|| train_checked(data, cfg, device, progress))
        .unwrap_or_else(|m| Err(TrainError::Internal(m)))
}

fn validate(data: &PairedData, cfg: &TrainConfig) -> Result<(), TrainError> {
    let (ni, nt) = (data.image.len(), data.text.len());
    if ni == 0 && nt == 0 {
        return Err(TrainError::Empty);
    }
    if ni != nt {
        return Err(TrainError::LengthMismatch { images: ni, texts: nt });
    }
    if let ImageInput::Features(m) = &data.image {
        check_matrix(m, "image")?;
    }
    if let TextInput::Features(m) = &data.text {
        check_matrix(m, "text")?;
    }
    if let Some(l) = &data.labels {
        if l.len() != ni {
            return Err(TrainError::LabelCount { labels: l.len(), pairs: ni });
        }
        for (pair, set) in l.sets.iter().enumerate() {
            if let Some(&label) = set.iter().find(|&&c| c as usize >= l.classes) {
                return Err(TrainError::BadLabel { pair, label, classes: l.classes });
            }
        }
    }
    if cfg.method == Method::Dcmh && data.labels.as_ref().is_none_or(|l| l.is_empty()) {
        return Err(TrainError::LabelsRequired { method: cfg.method });
    }
    let bad = |m: &str| Err(TrainError::Config(m.to_string()));
    if cfg.bits == 0 || cfg.bits > jdsh_core::MAX_BITS as usize {
        return bad("bits must be in 1..=4096");
    }
    if cfg.epochs == 0 || cfg.batch_size < 2 {
        return bad("epochs must be >= 1 and batch_size >= 2");
    }
    let rates = [cfg.lr_image, cfg.lr_text, cfg.momentum, cfg.weight_decay];
    if rates.iter().any(|r| !r.is_finite() || *r < 0.0) || cfg.lr_image == 0.0 || cfg.lr_text == 0.0 {
        return bad("learning rates must be > 0, momentum and weight decay >= 0, all finite");
    }
    if !(0.0..1.0).contains(&cfg.dropout) {
        return bad("dropout must be in [0, 1)");
    }
    if !(0.0..0.9).contains(&cfg.holdout) {
        return bad("holdout must be in [0, 0.9)");
    }
    if cfg.image_hidden.iter().chain(&cfg.text_hidden).any(|&h| h == 0 || h > 1 << 16) {
        return bad("hidden layer widths must be in 1..=65536");
    }
    if let ImageNetKind::Cnn { size, channels } = &cfg.image_net {
        if !matches!(data.image, ImageInput::Encoded(_)) {
            return bad("a CNN image net needs encoded images, not feature vectors");
        }
        if !(8..=512).contains(size) || channels.is_empty() || channels.iter().any(|&c| c == 0 || c > 4096) {
            return bad("CNN: size must be in 8..=512 and channels non-empty, each in 1..=4096");
        }
    }
    if cfg.threads == Some(0) {
        return bad("threads must be >= 1");
    }
    let n_train = ni - holdout_count(ni, cfg.holdout, data.labels.is_some());
    if n_train < MIN_TRAIN_ROWS {
        return Err(TrainError::TooFewRows { rows: n_train, min: MIN_TRAIN_ROWS });
    }
    Ok(())
}

fn holdout_count(n: usize, fraction: f64, labelled: bool) -> usize {
    if labelled {
        (n as f64 * fraction).floor() as usize
    } else {
        0
    }
}

fn train_checked(
    data: &PairedData,
    cfg: &TrainConfig,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Model, TrainError> {
    let _rng_turn = torch::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t as i32);
    }
    tch::manual_seed(cfg.seed as i64);
    let mut rng = SeededRng::new(cfg.seed);
    let n_all = data.image.len();
    let n_hold = holdout_count(n_all, cfg.holdout, data.labels.is_some());
    let perm = if n_hold > 0 { rng.permutation(n_all) } else { (0..n_all).collect() };
    let (hold_idx, train_idx) = perm.split_at(n_hold);
    let mut train_idx = train_idx.to_vec();
    train_idx.sort_unstable();
    let train_data = if n_hold > 0 { data.select(&train_idx) } else { data.clone() };

    let mut ticker = Ticker::new(progress);
    ticker.phase(Phase::Preparing, cfg.epochs)?;
    let p = prepare(&train_data, cfg, device)?;
    let start = Instant::now();
    let trained = match cfg.method {
        Method::Jdsh => jdsh::training::train(&p, cfg, device, &mut rng, &mut ticker)?,
        Method::Dcmh => dcmh::training::train(&p, cfg, device, &mut rng, &mut ticker)?,
        Method::CcaItq => cca_itq::training::train(&p, cfg, &mut ticker)?,
    };
    let seconds = start.elapsed().as_secs_f64();
    let meta = ModelMeta {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        method: cfg.method,
        bits: cfg.bits,
        image_net: p.image_spec.clone(),
        text_net: p.text_spec.clone(),
        image_front: p.image_front.clone(),
        text_pipeline: p.text_pipeline.clone(),
        config: cfg.clone(),
        dsdw: trained.dsdw,
        metrics: TrainMetrics {
            epochs: trained.epochs,
            train_pairs: p.n,
            final_loss: trained.final_loss,
            seconds,
            pairs_per_second: (p.n * trained.epochs) as f64 / seconds.max(1e-9),
            holdout: None,
        },
        trainer_version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut model = Model::new(meta, trained.image, trained.text)?;
    if n_hold > 0 {
        ticker.phase(Phase::Evaluating, cfg.epochs)?;
        let held = data.select(hold_idx);
        let map = holdout_map(&model, &held, &train_data, cfg.device)?;
        model.set_holdout(map);
    }
    Ok(model)
}

fn holdout_map(
    model: &Model,
    held: &PairedData,
    train: &PairedData,
    device: DeviceChoice,
) -> Result<Option<HoldoutMap>, TrainError> {
    let (Some(lq), Some(lr)) = (&held.labels, &train.labels) else { return Ok(None) };
    let enc = |e: EncodeError| TrainError::Internal(e.to_string());
    let qi = model.encode_image(&held.image, device).map_err(enc)?;
    let qt = model.encode_text(&held.text, device).map_err(enc)?;
    let ri = model.encode_image(&train.image, device).map_err(enc)?;
    let rt = model.encode_text(&train.text, device).map_err(enc)?;
    let ev = |e: eval::EvalError| TrainError::Internal(e.to_string());
    Ok(Some(HoldoutMap {
        queries: qi.len(),
        retrieval: ri.len(),
        image_to_text: eval::map_at(&qi, &rt, lq, lr, None).map_err(ev)?,
        text_to_image: eval::map_at(&qt, &ri, lq, lr, None).map_err(ev)?,
    }))
}
