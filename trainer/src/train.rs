//! The entry point the extension and the CLI call: [`train`] validates the data, fits the input
//! pipelines, runs JDSH, DCMH or CCA-ITQ, and returns a [`Model`]. Progress is reported at least once
//! per mini-batch through [`Progress`]; returning `Break` cancels promptly with nothing left behind.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::data::rng::SeededRng;
use crate::data::{ImageInput, Matrix, PairedData, TextInput};
use crate::dcmh::{self, DcmhParams};
use crate::device::{DeviceChoice, DeviceError};
use crate::eval;
use crate::image::{decode_rgb_batch, ImageError, ImagePipeline, ImagePipelineConfig};
use crate::jdsh::{self, CosineMap, Dsdw, DsdwChoice, JdshParams};
use crate::model::{
    HoldoutMap, ImageFrontEnd, Model, ModelError, ModelMeta, TrainMetrics, FORMAT_NAME, FORMAT_VERSION,
};
use crate::nets::{jdsh_alpha, scaled_tanh, HashNet, Init, NetInput, NetSpec};
use crate::text::{TextError, TextPipeline, TextPipelineConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Unsupervised: Joint-modal Distribution-based Similarity Hashing (SIGIR 2020).
    Jdsh,
    /// Supervised: Deep Cross-Modal Hashing (CVPR 2017); needs labels.
    Dcmh,
    /// Unsupervised linear baseline: CCA then ITQ rotation.
    CcaItq,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jdsh" => Ok(Method::Jdsh),
            "dcmh" => Ok(Method::Dcmh),
            "cca-itq" | "cca_itq" | "ccaitq" => Ok(Method::CcaItq),
            _ => Err(format!("unknown method \"{s}\": use jdsh, dcmh or cca-itq")),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Jdsh => "jdsh",
            Method::Dcmh => "dcmh",
            Method::CcaItq => "cca-itq",
        })
    }
}

/// The image net: an MLP over features, or a small CNN over decoded pixels (encoded images only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageNetKind {
    Mlp,
    Cnn { size: usize, channels: Vec<usize> },
}

/// Everything training needs besides the data. Start from [`TrainConfig::defaults`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub method: Method,
    pub bits: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rates of the image and text nets (DCMH: the first epoch's; see `dcmh`).
    pub lr_image: f64,
    pub lr_text: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub image_hidden: Vec<usize>,
    pub text_hidden: Vec<usize>,
    /// Dropout after each hidden layer while training (DCMH only; 0 = none).
    #[serde(default)]
    pub dropout: f64,
    pub image_net: ImageNetKind,
    pub seed: u64,
    #[serde(with = "device_text")]
    pub device: DeviceChoice,
    /// libtorch intra-op threads (None: libtorch's default).
    pub threads: Option<usize>,
    pub text_pipeline: TextPipelineConfig,
    pub image_pipeline: ImagePipelineConfig,
    /// Fraction of the pairs held out of training to measure MAP@all on (needs labels; 0 = none).
    pub holdout: f64,
    pub jdsh: JdshParams,
    pub dcmh: DcmhParams,
}

mod device_text {
    use crate::device::DeviceChoice;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &DeviceChoice, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceChoice, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl TrainConfig {
    /// Per-method defaults: the authors' optimiser settings, nets sized for CPU training.
    pub fn defaults(method: Method, bits: usize) -> TrainConfig {
        let text_pipeline = TextPipelineConfig { center: true, ..Default::default() };
        let base = TrainConfig {
            method,
            bits,
            epochs: 100,
            batch_size: 32,
            lr_image: 0.01,
            lr_text: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            image_hidden: vec![1024],
            text_hidden: vec![1024],
            dropout: 0.0,
            image_net: ImageNetKind::Mlp,
            seed: 1,
            device: DeviceChoice::Auto,
            threads: None,
            text_pipeline,
            image_pipeline: ImagePipelineConfig::default(),
            holdout: 0.0,
            jdsh: JdshParams::default(),
            dcmh: DcmhParams::default(),
        };
        match method {
            Method::Jdsh => base,
            Method::Dcmh => {
                // The paper's objective, B = sign(F + G) and alternating updates, with the changes
                // trainer/README.md ("Methods as implemented") explains: the bit-balance term per
                // item (`balance_mean`; the paper's sum over the training set makes F run away),
                // Adam at a constant 3e-3 instead of SGD at logspace(-1.5, -3), no weight decay,
                // dropout 0.2 after the hidden layer (the 1024-unit MLPs memorise 2,000-3,000
                // training items), the paper's batch of 128.
                let dcmh = DcmhParams {
                    adam: true,
                    balance_pairs: false,
                    balance_mean: true,
                    lr_last: DcmhParams::default().lr_first,
                    ..DcmhParams::default()
                };
                TrainConfig {
                    epochs: 30,
                    batch_size: 128,
                    lr_image: 3e-3,
                    lr_text: 3e-3,
                    momentum: 0.0,
                    weight_decay: 0.0,
                    dropout: 0.2,
                    dcmh,
                    ..base
                }
            }
            Method::CcaItq => TrainConfig { epochs: 50, image_hidden: vec![], text_hidden: vec![], ..base },
        }
    }
}

/// What a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fitting pipelines, building tensors, estimating thresholds.
    Preparing,
    /// One mini-batch step done.
    Training,
    /// Measuring the held-out MAP.
    Evaluating,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProgressEvent {
    pub phase: Phase,
    /// 0-based epoch and batch of the step just done.
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    /// Loss of the step just done (NaN outside `Training`).
    pub loss: f64,
    pub elapsed: Duration,
    /// Estimated time to the end of training, from the mean step time so far.
    pub remaining: Option<Duration>,
}

/// Receives progress; `Break` cancels training.
pub trait Progress {
    fn event(&mut self, e: &ProgressEvent) -> ControlFlow<()>;
}

/// A [`Progress`] that ignores every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: &ProgressEvent) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<F: FnMut(&ProgressEvent) -> ControlFlow<()>> Progress for F {
    fn event(&mut self, e: &ProgressEvent) -> ControlFlow<()> {
        self(e)
    }
}

/// Smallest number of training pairs accepted.
pub const MIN_TRAIN_ROWS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training was cancelled")]
    Cancelled,
    #[error("no training data")]
    Empty,
    #[error("{images} images but {texts} texts: every pair needs both")]
    LengthMismatch { images: usize, texts: usize },
    #[error("{labels} label sets for {pairs} pairs")]
    LabelCount { labels: usize, pairs: usize },
    #[error("{rows} training pairs (after the hold-out) is too few; need at least {min}")]
    TooFewRows { rows: usize, min: usize },
    #[error("{method} needs labels, and the data has none")]
    LabelsRequired { method: Method },
    #[error("label {label} of pair {pair} is not below the number of classes ({classes})")]
    BadLabel { pair: usize, label: u32, classes: usize },
    #[error("{modality} feature at row {row}, column {col} is NaN or infinite")]
    NonFinite { modality: &'static str, row: usize, col: usize },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("text pipeline: {0}")]
    Text(#[from] TextError),
    #[error("image pipeline: {0}")]
    Image(#[from] ImageError),
    #[error("training diverged: the loss became {0} at epoch {1}")]
    Diverged(f64, usize),
    #[error("building the model: {0}")]
    Model(#[from] ModelError),
    #[error("internal error in libtorch: {0}")]
    Internal(String),
}

/// Trains a model on paired data. See the module comment.
pub fn train(data: &PairedData, cfg: &TrainConfig, progress: &mut dyn Progress) -> Result<Model, TrainError> {
    validate(data, cfg)?;
    let device = cfg.device.resolve()?;
    // libtorch panics (through tch) on internal failures; a database backend must get an error.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| train_checked(data, cfg, device, progress)))
        .unwrap_or_else(|p| Err(TrainError::Internal(panic_message(&p))))
}

pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

fn image_len(i: &ImageInput) -> usize {
    match i {
        ImageInput::Features(m) => m.rows,
        ImageInput::Encoded(v) => v.len(),
    }
}

fn text_len(t: &TextInput) -> usize {
    match t {
        TextInput::Raw(v) => v.len(),
        TextInput::Features(m) => m.rows,
    }
}

fn check_matrix(m: &Matrix, modality: &'static str) -> Result<(), TrainError> {
    if m.data.len() != m.rows * m.cols || m.cols == 0 {
        return Err(TrainError::Config(format!(
            "{modality} matrix of {} x {} holds {} values",
            m.rows,
            m.cols,
            m.data.len()
        )));
    }
    match m.data.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(TrainError::NonFinite { modality, row: k / m.cols, col: k % m.cols }),
        None => Ok(()),
    }
}

fn validate(data: &PairedData, cfg: &TrainConfig) -> Result<(), TrainError> {
    let (ni, nt) = (image_len(&data.image), text_len(&data.text));
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

fn select_image(i: &ImageInput, idx: &[usize]) -> ImageInput {
    match i {
        ImageInput::Features(m) => ImageInput::Features(m.select(idx)),
        ImageInput::Encoded(v) => ImageInput::Encoded(idx.iter().map(|&k| v[k].clone()).collect()),
    }
}

fn select_text(t: &TextInput, idx: &[usize]) -> TextInput {
    match t {
        TextInput::Features(m) => TextInput::Features(m.select(idx)),
        TextInput::Raw(v) => TextInput::Raw(idx.iter().map(|&k| v[k].clone()).collect()),
    }
}

/// The pairs at `idx`, in that order.
pub fn select_pairs(d: &PairedData, idx: &[usize]) -> PairedData {
    PairedData {
        image: select_image(&d.image, idx),
        text: select_text(&d.text, idx),
        labels: d.labels.as_ref().map(|l| l.select(idx)),
    }
}

fn to_tensor(m: &Matrix, device: Device) -> Tensor {
    Tensor::from_slice(&m.data).reshape([m.rows as i64, m.cols as i64]).to_device(device)
}

/// Counts steps, reports them, and turns `Break` into `Cancelled`.
pub(crate) struct Ticker<'a> {
    progress: &'a mut dyn Progress,
    start: Instant,
    steps_done: usize,
    steps_total: usize,
}

impl<'a> Ticker<'a> {
    fn new(progress: &'a mut dyn Progress, steps_total: usize) -> Self {
        Ticker { progress, start: Instant::now(), steps_done: 0, steps_total }
    }

    fn phase(&mut self, phase: Phase, epochs: usize) -> Result<(), TrainError> {
        let e = ProgressEvent {
            phase,
            epoch: 0,
            epochs,
            batch: 0,
            batches: 0,
            loss: f64::NAN,
            elapsed: self.start.elapsed(),
            remaining: None,
        };
        match self.progress.event(&e) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(TrainError::Cancelled),
        }
    }

    fn step(
        &mut self,
        epoch: usize,
        epochs: usize,
        batch: usize,
        batches: usize,
        loss: f64,
    ) -> Result<(), TrainError> {
        self.steps_done += 1;
        let elapsed = self.start.elapsed();
        let left = self.steps_total.saturating_sub(self.steps_done) as f64;
        let remaining = Some(elapsed.mul_f64(left / self.steps_done as f64));
        let e =
            ProgressEvent { phase: Phase::Training, epoch, epochs, batch, batches, loss, elapsed, remaining };
        match self.progress.event(&e) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(TrainError::Cancelled),
        }
    }
}

/// Tensors of the training pairs.
struct Prepared {
    n: usize,
    /// Net inputs (pipeline outputs, or pixels for a CNN).
    image_in: Tensor,
    text_in: Tensor,
    /// Raw features for JDSH's similarities (before standardisation).
    image_raw: Tensor,
    text_raw: Tensor,
    image_map: CosineMap,
    text_map: CosineMap,
    labels: Option<Tensor>,
    image_front: ImageFrontEnd,
    image_spec: NetSpec,
    text_pipeline: TextPipeline,
    text_spec: NetSpec,
}

fn prepare(d: &PairedData, cfg: &TrainConfig, device: Device) -> Result<Prepared, TrainError> {
    let n = image_len(&d.image);
    let text_pipeline = TextPipeline::fit(&d.text, &cfg.text_pipeline)?;
    let text_m = text_pipeline.transform(&d.text)?;
    check_matrix(&text_m, "text")?;
    let text_raw_m = match &d.text {
        TextInput::Features(m) => m.clone(),
        TextInput::Raw(_) => text_pipeline.transform_sparse(&d.text)?.to_dense(),
    };
    let (image_front, image_m, image_raw_m, image_input) = match &cfg.image_net {
        ImageNetKind::Mlp => {
            let pipeline = ImagePipeline::fit(&d.image, &cfg.image_pipeline)?;
            let m = pipeline.transform(&d.image)?;
            let raw = pipeline.raw_features(&d.image)?;
            let dim = m.cols;
            (ImageFrontEnd::Pipeline { pipeline }, m, raw, NetInput::Vector { dim })
        }
        ImageNetKind::Cnn { size, .. } => {
            let ImageInput::Encoded(images) = &d.image else {
                return Err(TrainError::Config("a CNN image net needs encoded images".into()));
            };
            let pixels = decode_rgb_batch(images, *size)?;
            // JDSH's image similarity needs a fixed feature: the hand-crafted one.
            let raw = if cfg.method == Method::Jdsh {
                ImagePipeline::fit(&d.image, &cfg.image_pipeline)?.raw_features(&d.image)?
            } else {
                Matrix::zeros(n, 1)
            };
            let input = NetInput::Pixels { channels: 3, height: *size, width: *size };
            (ImageFrontEnd::Pixels { size: *size }, pixels, raw, input)
        }
    };
    check_matrix(&image_m, "image")?;
    let conv_channels = match &cfg.image_net {
        ImageNetKind::Cnn { channels, .. } => channels.clone(),
        ImageNetKind::Mlp => vec![],
    };
    let image_spec =
        NetSpec { input: image_input, conv_channels, hidden: cfg.image_hidden.clone(), bits: cfg.bits };
    let text_spec = NetSpec {
        input: NetInput::Vector { dim: text_m.cols },
        conv_channels: vec![],
        hidden: cfg.text_hidden.clone(),
        bits: cfg.bits,
    };
    let mut image_in = to_tensor(&image_m, device);
    if let NetInput::Pixels { height, width, .. } = image_input {
        image_in = image_in.reshape([n as i64, 3, height as i64, width as i64]);
    }
    Ok(Prepared {
        n,
        image_in,
        text_in: to_tensor(&text_m, device),
        image_map: CosineMap::for_features(&image_raw_m.data),
        text_map: CosineMap::for_features(&text_raw_m.data),
        image_raw: to_tensor(&image_raw_m, device),
        text_raw: to_tensor(&text_raw_m, device),
        labels: d.labels.as_ref().map(|l| to_tensor(&l.multi_hot(), device)),
        image_front,
        image_spec,
        text_pipeline,
        text_spec,
    })
}

/// Batches of one epoch: a fresh permutation cut into `batch`-sized pieces. `drop_last` as JDSH's
/// loader does (a 1-item batch has no pairs to compare); DCMH keeps the remainder.
fn epoch_batches(rng: &mut SeededRng, n: usize, batch: usize, drop_last: bool) -> Vec<Vec<i64>> {
    let perm = rng.permutation(n);
    let batch = batch.min(n);
    perm.chunks(batch)
        .filter(|c| !drop_last || c.len() == batch)
        .map(|c| c.iter().map(|&i| i as i64).collect())
        .collect()
}

/// libtorch's random generator is global to the process: weight initialisation and dropout draw
/// from it after `manual_seed`. Trainings in one process (tests run on parallel threads) take
/// turns, so that a seed gives the same model whatever else runs.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn train_checked(
    data: &PairedData,
    cfg: &TrainConfig,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Model, TrainError> {
    let _rng_turn = TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t as i32);
    }
    tch::manual_seed(cfg.seed as i64);
    let mut rng = SeededRng::new(cfg.seed);
    let n_all = image_len(&data.image);
    let n_hold = holdout_count(n_all, cfg.holdout, data.labels.is_some());
    let perm = if n_hold > 0 { rng.permutation(n_all) } else { (0..n_all).collect() };
    let (hold_idx, train_idx) = perm.split_at(n_hold);
    let mut train_idx = train_idx.to_vec();
    train_idx.sort_unstable();
    let train_data = if n_hold > 0 { select_pairs(data, &train_idx) } else { data.clone() };

    let mut ticker = Ticker::new(progress, 0);
    ticker.phase(Phase::Preparing, cfg.epochs)?;
    let p = prepare(&train_data, cfg, device)?;
    let start = Instant::now();
    let (image_values, text_values, dsdw, final_loss, epochs) = match cfg.method {
        Method::Jdsh => train_jdsh(&p, cfg, device, &mut rng, &mut ticker)?,
        Method::Dcmh => train_dcmh(&p, cfg, device, &mut rng, &mut ticker)?,
        Method::CcaItq => train_cca_itq(&p, cfg, &mut ticker)?,
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
        dsdw,
        metrics: TrainMetrics {
            epochs,
            train_pairs: p.n,
            final_loss,
            seconds,
            pairs_per_second: (p.n * epochs) as f64 / seconds.max(1e-9),
            holdout: None,
        },
        trainer_version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut model = Model::new(meta, image_values, text_values)?;
    if n_hold > 0 {
        ticker.phase(Phase::Evaluating, cfg.epochs)?;
        let held = select_pairs(data, hold_idx);
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
    let enc = |e: crate::model::EncodeError| TrainError::Internal(e.to_string());
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

type Trained = (Vec<Vec<f32>>, Vec<Vec<f32>>, Option<Dsdw>, f64, usize);

fn check_loss(loss: f64, epoch: usize) -> Result<(), TrainError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(TrainError::Diverged(loss, epoch))
    }
}

/// The JDSH target of one batch, without gradients.
fn jdsh_target(p: &Prepared, idx: &Tensor, params: &JdshParams, dsdw: Option<&Dsdw>) -> Tensor {
    tch::no_grad(|| {
        let s_i = jdsh::unimodal_similarity(&p.image_raw.index_select(0, idx), p.image_map);
        let s_t = jdsh::unimodal_similarity(&p.text_raw.index_select(0, idx), p.text_map);
        let joint = jdsh::joint_similarity(&s_i, &s_t, params.joint);
        jdsh::target(&joint, dsdw, params.mu)
    })
}

/// Off-diagonal entries of the joint matrix over up to ~64 training batches, for DSDW's thresholds.
fn dsdw_sample(p: &Prepared, cfg: &TrainConfig, rng: &mut SeededRng) -> Vec<f32> {
    let mut values = Vec::new();
    for idx in epoch_batches(rng, p.n, cfg.batch_size, true).into_iter().take(64) {
        let idx = Tensor::from_slice(&idx).to_device(p.image_raw.device());
        let joint = tch::no_grad(|| {
            let s_i = jdsh::unimodal_similarity(&p.image_raw.index_select(0, &idx), p.image_map);
            let s_t = jdsh::unimodal_similarity(&p.text_raw.index_select(0, &idx), p.text_map);
            jdsh::joint_similarity(&s_i, &s_t, cfg.jdsh.joint)
        });
        let b = joint.size()[0];
        let off = joint.masked_select(&Tensor::eye(b, (Kind::Bool, joint.device())).logical_not());
        values.extend(Vec::<f32>::try_from(off.to_device(Device::Cpu)).unwrap_or_default());
    }
    values
}

fn train_jdsh(
    p: &Prepared,
    cfg: &TrainConfig,
    device: Device,
    rng: &mut SeededRng,
    ticker: &mut Ticker<'_>,
) -> Result<Trained, TrainError> {
    let dsdw = match cfg.jdsh.dsdw {
        DsdwChoice::Estimated => Dsdw::estimate(&dsdw_sample(p, cfg, rng)),
        DsdwChoice::PaperMirflickr => Some(Dsdw::paper_mirflickr()),
        DsdwChoice::PaperNusWide => Some(Dsdw::paper_nus_wide()),
        DsdwChoice::Off => None,
    };
    let mut vs = nn::VarStore::new(device);
    let (image_net, text_net) = {
        let root = vs.root();
        let ip = root.sub("image").set_group(0);
        let tp = root.sub("text").set_group(1);
        (HashNet::new(&ip, &p.image_spec, Init::Default), HashNet::new(&tp, &p.text_spec, Init::Default))
    };
    let mut opt = nn::Sgd { momentum: cfg.momentum, dampening: 0.0, wd: cfg.weight_decay, nesterov: false }
        .build(&vs, cfg.lr_image)
        .map_err(|e| TrainError::Internal(e.to_string()))?;
    opt.set_lr_group(0, cfg.lr_image);
    opt.set_lr_group(1, cfg.lr_text);
    let batches_per_epoch = epoch_batches(&mut rng.clone(), p.n, cfg.batch_size, true).len();
    ticker.steps_total = batches_per_epoch * cfg.epochs;
    let mut last = f64::NAN;
    for epoch in 0..cfg.epochs {
        let alpha = jdsh_alpha(epoch);
        let batches = epoch_batches(rng, p.n, cfg.batch_size, true);
        let nb = batches.len();
        for (b, idx) in batches.into_iter().enumerate() {
            let idx = Tensor::from_slice(&idx).to_device(device);
            let s = jdsh_target(p, &idx, &cfg.jdsh, dsdw.as_ref());
            let ci = scaled_tanh(&image_net.forward(&p.image_in.index_select(0, &idx)), alpha);
            let ct = scaled_tanh(&text_net.forward(&p.text_in.index_select(0, &idx)), alpha);
            let l = jdsh::loss(&ci, &ct, &s, &cfg.jdsh);
            opt.backward_step(&l.total);
            last = l.total.double_value(&[]);
            check_loss(last, epoch)?;
            ticker.step(epoch, cfg.epochs, b, nb, last)?;
        }
    }
    vs.freeze();
    Ok((image_net.values(), text_net.values(), dsdw, last, cfg.epochs))
}

fn train_dcmh(
    p: &Prepared,
    cfg: &TrainConfig,
    device: Device,
    rng: &mut SeededRng,
    ticker: &mut Ticker<'_>,
) -> Result<Trained, TrainError> {
    let labels = p.labels.as_ref().ok_or(TrainError::LabelsRequired { method: Method::Dcmh })?;
    let init = Init::Default;
    let (vs_i, vs_t) = (nn::VarStore::new(device), nn::VarStore::new(device));
    let image_net = HashNet::new(&vs_i.root(), &p.image_spec, init);
    let text_net = HashNet::new(&vs_t.root(), &p.text_spec, init);
    let internal = |e: tch::TchError| TrainError::Internal(e.to_string());
    let (mut opt_i, mut opt_t) = if cfg.dcmh.adam {
        let adam = nn::Adam { wd: cfg.weight_decay, ..Default::default() };
        (
            adam.build(&vs_i, cfg.lr_image).map_err(internal)?,
            adam.build(&vs_t, cfg.lr_text).map_err(internal)?,
        )
    } else {
        let sgd = nn::Sgd { momentum: cfg.momentum, dampening: 0.0, wd: cfg.weight_decay, nesterov: false };
        (sgd.build(&vs_i, cfg.lr_image).map_err(internal)?, sgd.build(&vs_t, cfg.lr_text).map_err(internal)?)
    };
    let n = p.n as i64;
    let c = cfg.bits as i64;
    let opts = (Kind::Float, device);
    // The stored outputs of every training item (the paper's F and G), random at the start.
    let mut f = Tensor::randn([n, c], opts);
    let mut g = Tensor::randn([n, c], opts);
    let nb = p.n.div_ceil(cfg.batch_size.min(p.n));
    ticker.steps_total = 2 * nb * cfg.epochs;
    let mut last = f64::NAN;
    // Scale the paper's schedule to the configured first learning rates.
    let (ratio_i, ratio_t) = (cfg.lr_image / cfg.dcmh.lr_first, cfg.lr_text / cfg.dcmh.lr_first);
    for epoch in 0..cfg.epochs {
        let lr = cfg.dcmh.lr(epoch, cfg.epochs);
        opt_i.set_lr(lr * ratio_i);
        opt_t.set_lr(lr * ratio_t);
        let b_all = dcmh::binary_codes(&f, &g);
        // Text net first, then image net (the MATLAB order).
        for (side, step) in [(1usize, 0usize), (0, 1)] {
            let batches = epoch_batches(rng, p.n, cfg.batch_size, false);
            for (k, idx) in batches.into_iter().enumerate() {
                let idx = Tensor::from_slice(&idx).to_device(device);
                let s_b = dcmh::label_similarity(&labels.index_select(0, &idx), labels);
                let b_b = b_all.index_select(0, &idx);
                let (net, opt, mine, other, input) = if side == 1 {
                    (&text_net, &mut opt_t, &mut g, &f, &p.text_in)
                } else {
                    (&image_net, &mut opt_i, &mut f, &g, &p.image_in)
                };
                let out = net.forward_t(&input.index_select(0, &idx), cfg.dropout);
                let rest = tch::no_grad(|| {
                    mine.sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
                        - mine.index_select(0, &idx).sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
                });
                let l = dcmh::batch_loss(&out, other, &s_b, &b_b, &rest, &cfg.dcmh);
                match cfg.dcmh.clip_norm {
                    Some(max) => opt.backward_step_clip_norm(&l.total, max),
                    None => opt.backward_step(&l.total),
                }
                tch::no_grad(|| {
                    let _ = mine.index_copy_(0, &idx, &out.detach());
                });
                last = l.total.double_value(&[]);
                check_loss(last, epoch)?;
                ticker.step(epoch, cfg.epochs, step * nb + k, 2 * nb, last)?;
            }
        }
    }
    Ok((image_net.values(), text_net.values(), None, last, cfg.epochs))
}

/// CCA-ITQ (T1's baseline) on the pipeline outputs, stored as a net without hidden layers:
/// `h = W x + b` with `W = (projection * rotation)^T` and `b = -mean * projection * rotation`, so
/// the model file, the encoders and the fast path are the same as for the deep methods.
fn train_cca_itq(p: &Prepared, cfg: &TrainConfig, ticker: &mut Ticker<'_>) -> Result<Trained, TrainError> {
    if p.image_spec.is_cnn() || !p.image_spec.hidden.is_empty() || !p.text_spec.hidden.is_empty() {
        return Err(TrainError::Config("cca-itq is linear: no CNN and no hidden layers".into()));
    }
    let to_matrix = |t: &Tensor| -> Matrix {
        let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let (rows, cols) = (t.size()[0] as usize, t.size()[1] as usize);
        Matrix { rows, cols, data: Vec::<f32>::try_from(t.view(-1)).unwrap_or_default() }
    };
    let (x, y) = (to_matrix(&p.image_in), to_matrix(&p.text_in));
    ticker.steps_total = 1;
    let model = crate::baseline::cca_itq::CcaItq::fit(&x, &y, cfg.bits, cfg.seed)
        .map_err(|e| TrainError::Internal(format!("cca-itq: {e}")))?;
    ticker.step(0, 1, 0, 1, f64::NAN)?;
    let linear = |proj: &Matrix, mean: &[f32]| -> Vec<Vec<f32>> {
        let (d, c) = (proj.rows, model.rotation.cols);
        // pr = proj (d x k) * rotation (k x c), in f64.
        let mut pr = vec![0f64; d * c];
        for i in 0..d {
            for k in 0..proj.cols {
                let a = proj.row(i)[k] as f64;
                for j in 0..c {
                    pr[i * c + j] += a * model.rotation.row(k)[j] as f64;
                }
            }
        }
        let weight: Vec<f32> = (0..c * d).map(|o| pr[(o % d) * c + o / d] as f32).collect();
        let bias: Vec<f32> = (0..c)
            .map(|j| {
                -(0..d).map(|i| mean.get(i).copied().unwrap_or(0.0) as f64 * pr[i * c + j]).sum::<f64>()
                    as f32
            })
            .collect();
        vec![weight, bias]
    };
    let image = linear(&model.image_projection, &model.image_mean);
    let text = linear(&model.text_projection, &model.text_mean);
    // No loss to report (and NaN would not survive the JSON metadata).
    Ok((image, text, None, 0.0, 1))
}
