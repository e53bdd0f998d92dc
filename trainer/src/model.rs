//! The trained model and its file: ONE safetensors file holding the weights of both hash nets as
//! f32 tensors (`image.fc0.weight`, `text.fc1.bias`, ...) and, in the header's `__metadata__`
//! under the key `"jdsh"`, a JSON [`ModelMeta`]: format version, method, bits, the nets' shapes,
//! the fitted text and image pipelines, hyper-parameters, data-derived thresholds and metrics.
//!
//! Loading validates everything before anything is used (header, version, method, shapes against
//! the metadata, finite weights, pipeline statistics against their dimensions), so a corrupt,
//! truncated or foreign file is an error, never a panic.

use std::collections::HashMap;
use std::path::Path;

use jdsh_core::{Code, MAX_BITS};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{Method, TrainConfig};
use crate::data::{ImageInput, Matrix, TextInput};
use crate::device::{DeviceChoice, DeviceError};
use crate::fastpath::{FastMlp, Fold};
use crate::image::{decode_rgb_batch, ImageEncoder, ImageError, ImagePipeline};
use crate::methods::jdsh::Dsdw;
use crate::nets::{HashNet, NetInput, NetSpec};
use crate::text::{TextEncoder, TextError, TextPipeline};
use crate::torch;

/// Identifies our files among other safetensors files.
pub const FORMAT_NAME: &str = "jdsh-model";
/// Bumped whenever the meaning of a stored field changes.
pub const FORMAT_VERSION: u32 = 1;
/// The `__metadata__` key holding [`ModelMeta`] as JSON.
pub const METADATA_KEY: &str = "jdsh";

/// Rows per libtorch call when encoding large batches (bounds the temporary tensors).
const TORCH_CHUNK: usize = 4096;

/// How images reach the image net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageFrontEnd {
    /// Feature vectors (given, or extracted from image bytes by a pretrained backbone or the
    /// hand-crafted extractor) through the fitted pipeline.
    Pipeline { pipeline: ImagePipeline },
    /// Encoded image bytes decoded to `size x size` RGB pixels for a CNN.
    Pixels { size: usize },
}

/// Metrics recorded at the end of training.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainMetrics {
    pub epochs: usize,
    pub train_pairs: usize,
    pub final_loss: f64,
    pub seconds: f64,
    pub pairs_per_second: f64,
    /// MAP@all of held-out pairs against the training pairs (when labels and a hold-out exist).
    pub holdout: Option<HoldoutMap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutMap {
    pub queries: usize,
    pub retrieval: usize,
    pub image_to_text: f64,
    pub text_to_image: f64,
}

/// Everything about a model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format: String,
    pub version: u32,
    pub method: Method,
    pub bits: usize,
    pub image_net: NetSpec,
    pub text_net: NetSpec,
    pub image_front: ImageFrontEnd,
    pub text_pipeline: TextPipeline,
    /// The configuration training ran with.
    pub config: TrainConfig,
    /// DSDW thresholds JDSH used (estimated from the data or the paper's constants).
    pub dsdw: Option<Dsdw>,
    pub metrics: TrainMetrics,
    pub trainer_version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not a safetensors file: {0}")]
    Format(String),
    #[error("not a jdsh model: the safetensors header has no \"{METADATA_KEY}\" metadata")]
    NotJdsh,
    #[error("model metadata is invalid: {0}")]
    Metadata(String),
    #[error("model format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    Version { found: u32 },
    #[error("tensor {0} is missing from the model file")]
    MissingTensor(String),
    #[error("tensor {0} in the model file is not part of the model")]
    UnexpectedTensor(String),
    #[error("tensor {name} has shape {found:?}, the metadata implies {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor {name} has dtype {found}, expected F32")]
    Dtype { name: String, found: String },
    #[error("tensor {0} holds NaN or infinite values")]
    NonFinite(String),
    #[error("model is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("this model's image net reads {expected}, but was given {got}")]
    WrongInput { expected: &'static str, got: &'static str },
    #[error("the network produced a non-finite output for item {0}")]
    NonFinite(usize),
    #[error("encoding failed inside libtorch: {0}")]
    Torch(String),
}

/// A trained model: metadata, weights, and CPU fast paths prepared at load time.
#[derive(Debug, Clone)]
pub struct Model {
    meta: ModelMeta,
    image_values: Vec<Vec<f32>>,
    text_values: Vec<Vec<f32>>,
    /// For dense inputs after the pipeline (features).
    image_fast: Option<FastMlp>,
    text_fast: Option<FastMlp>,
    /// For sparse uncentred bag-of-words rows: the pipeline's centring/scaling folded in.
    text_fast_sparse: Option<FastMlp>,
}

impl Model {
    /// Assembles and validates a model (training calls this, and so does loading).
    pub fn new(
        meta: ModelMeta,
        image_values: Vec<Vec<f32>>,
        text_values: Vec<Vec<f32>>,
    ) -> Result<Model, ModelError> {
        validate_meta(&meta)?;
        for (side, spec, values) in
            [("image", &meta.image_net, &image_values), ("text", &meta.text_net, &text_values)]
        {
            let shapes = spec.param_shapes();
            if shapes.len() != values.len() {
                return Err(ModelError::Inconsistent(format!(
                    "{side} net has {} tensors, expected {}",
                    values.len(),
                    shapes.len()
                )));
            }
            for ((name, shape), v) in shapes.iter().zip(values.iter()) {
                let n = checked_product(shape)
                    .ok_or_else(|| ModelError::Inconsistent(format!("{side}.{name} is too large")))?;
                if n != v.len() {
                    return Err(ModelError::Shape {
                        name: format!("{side}.{name}"),
                        expected: shape.clone(),
                        found: vec![v.len()],
                    });
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(ModelError::NonFinite(format!("{side}.{name}")));
                }
            }
        }
        let image_fast = match &meta.image_front {
            ImageFrontEnd::Pipeline { .. } => FastMlp::new(&meta.image_net, &image_values, None),
            ImageFrontEnd::Pixels { .. } => None,
        };
        let text_fast = FastMlp::new(&meta.text_net, &text_values, None);
        let text_fast_sparse = match &meta.text_pipeline.encoder {
            TextEncoder::BagOfWords(_) => {
                let p = &meta.text_pipeline;
                let fold = Fold { center: p.center.as_deref(), scale: p.scale.as_deref() };
                FastMlp::new(&meta.text_net, &text_values, Some(fold))
            }
            TextEncoder::Features { .. } => None,
        };
        Ok(Model { meta, image_values, text_values, image_fast, text_fast, text_fast_sparse })
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    pub(crate) fn set_holdout(&mut self, map: Option<HoldoutMap>) {
        self.meta.metrics.holdout = map;
    }

    pub fn bits(&self) -> usize {
        self.meta.bits
    }

    /// The model file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let json = serde_json::to_string(&self.meta).map_err(|e| ModelError::Metadata(e.to_string()))?;
        let mut raw: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (side, spec, values) in [
            ("image", &self.meta.image_net, &self.image_values),
            ("text", &self.meta.text_net, &self.text_values),
        ] {
            for ((name, shape), v) in spec.param_shapes().into_iter().zip(values.iter()) {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                raw.push((format!("{side}.{name}"), shape, bytes));
            }
        }
        let views = raw
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModelError::Format(e.to_string()))?;
        let meta = HashMap::from([(METADATA_KEY.to_string(), json)]);
        safetensors::serialize(views, Some(meta)).map_err(|e| ModelError::Format(e.to_string()))
    }

    /// Parses and validates a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| ModelError::Format(e.to_string()))?;
        let json = header.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).ok_or(ModelError::NotJdsh)?;
        // Read the version first, so a newer file says "version" rather than some field error.
        let probe: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ModelError::Metadata(e.to_string()))?;
        if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(ModelError::NotJdsh);
        }
        match probe.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => return Err(ModelError::Version { found: v.min(u32::MAX as u64) as u32 }),
            None => return Err(ModelError::Metadata("no format version".into())),
        }
        let meta: ModelMeta =
            serde_json::from_value(probe).map_err(|e| ModelError::Metadata(e.to_string()))?;
        validate_meta(&meta)?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format(e.to_string()))?;
        let mut expected: Vec<String> = Vec::new();
        let mut read_side = |side: &str, spec: &NetSpec| -> Result<Vec<Vec<f32>>, ModelError> {
            let mut out = Vec::new();
            for (name, shape) in spec.param_shapes() {
                let full = format!("{side}.{name}");
                let view = st.tensor(&full).map_err(|_| ModelError::MissingTensor(full.clone()))?;
                if view.dtype() != Dtype::F32 {
                    return Err(ModelError::Dtype { name: full, found: format!("{:?}", view.dtype()) });
                }
                if view.shape() != shape.as_slice() {
                    return Err(ModelError::Shape {
                        name: full,
                        expected: shape,
                        found: view.shape().to_vec(),
                    });
                }
                let values: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(ModelError::NonFinite(full));
                }
                expected.push(full);
                out.push(values);
            }
            Ok(out)
        };
        let image_values = read_side("image", &meta.image_net)?;
        let text_values = read_side("text", &meta.text_net)?;
        if let Some(extra) = st.names().into_iter().find(|n| !expected.iter().any(|e| e == n)) {
            return Err(ModelError::UnexpectedTensor(extra.to_string()));
        }
        Model::new(meta, image_values, text_values)
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes)
            .map_err(|e| ModelError::Io { path: path.display().to_string(), source: e })
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Io { path: path.display().to_string(), source: e })?;
        Model::from_bytes(&bytes)
    }

    /// Codes of a batch of texts (raw or features, as the model was trained). On the CPU this runs
    /// the pure-Rust forward; on a GPU, libtorch.
    pub fn encode_text(&self, input: &TextInput, device: DeviceChoice) -> Result<Vec<Code>, EncodeError> {
        let device = device.resolve()?;
        if device == Device::Cpu {
            if let (TextInput::Raw(_), Some(fast)) = (input, &self.text_fast_sparse) {
                let rows = self.meta.text_pipeline.transform_sparse(input)?;
                return (0..rows.rows())
                    .map(|i| {
                        let r = rows.indptr[i]..rows.indptr[i + 1];
                        to_code(i, &fast.forward_sparse(&rows.indices[r.clone()], &rows.values[r]))
                    })
                    .collect();
            }
            if let Some(fast) = &self.text_fast {
                let m = self.meta.text_pipeline.transform(input)?;
                return (0..m.rows).map(|i| to_code(i, &fast.forward_dense(m.row(i)))).collect();
            }
        }
        self.encode_text_torch(input, choice_of(device))
    }

    /// Codes of a batch of images (feature vectors or encoded PNG/JPEG bytes, as trained).
    pub fn encode_image(&self, input: &ImageInput, device: DeviceChoice) -> Result<Vec<Code>, EncodeError> {
        let device = device.resolve()?;
        match (&self.meta.image_front, &self.image_fast, device) {
            (ImageFrontEnd::Pipeline { pipeline }, Some(fast), Device::Cpu) => {
                let m = pipeline.transform(input)?;
                (0..m.rows).map(|i| to_code(i, &fast.forward_dense(m.row(i)))).collect()
            }
            _ => self.encode_image_torch(input, choice_of(device)),
        }
    }

    /// [`Model::encode_text`] through libtorch on any device (the reference the fast path matches).
    pub fn encode_text_torch(
        &self,
        input: &TextInput,
        device: DeviceChoice,
    ) -> Result<Vec<Code>, EncodeError> {
        let m = self.meta.text_pipeline.transform(input)?;
        self.torch_codes(&self.meta.text_net, &self.text_values, &m, None, device.resolve()?)
    }

    /// [`Model::encode_image`] through libtorch on any device.
    pub fn encode_image_torch(
        &self,
        input: &ImageInput,
        device: DeviceChoice,
    ) -> Result<Vec<Code>, EncodeError> {
        let device = device.resolve()?;
        match (&self.meta.image_front, input) {
            (ImageFrontEnd::Pipeline { pipeline }, _) => {
                let m = pipeline.transform_on(input, device)?;
                self.torch_codes(&self.meta.image_net, &self.image_values, &m, None, device)
            }
            (ImageFrontEnd::Pixels { size }, ImageInput::Encoded(images)) => {
                let m = decode_rgb_batch(images, *size)?;
                self.torch_codes(&self.meta.image_net, &self.image_values, &m, Some(*size), device)
            }
            (ImageFrontEnd::Pixels { .. }, ImageInput::Features(_)) => {
                Err(EncodeError::WrongInput { expected: "encoded images", got: "feature vectors" })
            }
        }
    }

    /// The real-valued outputs `h` (before the sign) of the text net, through libtorch on the CPU.
    pub fn text_outputs(&self, input: &TextInput) -> Result<Matrix, EncodeError> {
        let m = self.meta.text_pipeline.transform(input)?;
        self.torch_outputs(&self.meta.text_net, &self.text_values, &m, None, Device::Cpu)
    }

    fn torch_codes(
        &self,
        spec: &NetSpec,
        values: &[Vec<f32>],
        m: &Matrix,
        pixels: Option<usize>,
        device: Device,
    ) -> Result<Vec<Code>, EncodeError> {
        let h = self.torch_outputs(spec, values, m, pixels, device)?;
        (0..h.rows).map(|i| to_code(i, h.row(i))).collect()
    }

    fn torch_outputs(
        &self,
        spec: &NetSpec,
        values: &[Vec<f32>],
        m: &Matrix,
        pixels: Option<usize>,
        device: Device,
    ) -> Result<Matrix, EncodeError> {
        let expected = match spec.input {
            NetInput::Vector { dim } => dim,
            NetInput::Pixels { channels, height, width } => channels * height * width,
        };
        if m.cols != expected {
            return Err(EncodeError::Torch(format!(
                "input has {} columns, the net reads {expected}",
                m.cols
            )));
        }
        let run = || -> Matrix {
            tch::no_grad(|| {
                let net = HashNet::from_values(spec, values, device);
                let mut out = Vec::with_capacity(m.rows * spec.bits);
                for start in (0..m.rows).step_by(TORCH_CHUNK) {
                    let end = (start + TORCH_CHUNK).min(m.rows);
                    let chunk = &m.data[start * m.cols..end * m.cols];
                    let mut x = Tensor::from_slice(chunk).reshape([(end - start) as i64, m.cols as i64]);
                    if let Some(s) = pixels {
                        x = x.reshape([(end - start) as i64, 3, s as i64, s as i64]);
                    }
                    let h = net
                        .forward(&x.to_device(device))
                        .to_device(Device::Cpu)
                        .to_kind(Kind::Float)
                        .contiguous();
                    out.extend(Vec::<f32>::try_from(h.view(-1)).unwrap_or_default());
                }
                Matrix { rows: m.rows, cols: spec.bits, data: out }
            })
        };
        let h = torch::catch(run).map_err(EncodeError::Torch)?;
        if h.data.len() != h.rows * h.cols {
            return Err(EncodeError::Torch("libtorch returned a tensor of the wrong size".into()));
        }
        Ok(h)
    }
}

/// Bit `i` is set where output `i` is > 0 (non-finite outputs refused).
fn to_code(item: usize, h: &[f32]) -> Result<Code, EncodeError> {
    Code::from_f32_signs(h).map_err(|_| EncodeError::NonFinite(item))
}

/// The choice that resolves to `d` again.
fn choice_of(d: Device) -> DeviceChoice {
    match d {
        Device::Cuda(n) => DeviceChoice::Cuda(n),
        _ => DeviceChoice::Cpu,
    }
}

fn checked_product(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Largest layer width, input dimension or image side a model file may declare: far above any real
/// model, low enough that shape arithmetic cannot overflow.
const MAX_DIM: usize = 1 << 24;

/// A pipeline's per-column statistics: `dim` finite values each, and no zero scale (inputs are
/// divided by it: a zero would turn every code into the sign of an infinity).
fn check_stats(pipeline: &str, stats: [(&str, &Option<Vec<f32>>); 2], dim: usize) -> Result<(), ModelError> {
    for (what, v) in stats {
        if let Some(v) = v {
            if v.len() != dim || v.iter().any(|x| !x.is_finite()) || (what == "scale" && v.contains(&0.0)) {
                return Err(ModelError::Inconsistent(format!(
                    "{pipeline} pipeline {what} has {} values (or bad ones) for {dim} columns",
                    v.len()
                )));
            }
        }
    }
    Ok(())
}

fn validate_meta(meta: &ModelMeta) -> Result<(), ModelError> {
    let bad = |m: String| Err(ModelError::Inconsistent(m));
    if meta.format != FORMAT_NAME {
        return Err(ModelError::NotJdsh);
    }
    if meta.version != FORMAT_VERSION {
        return Err(ModelError::Version { found: meta.version });
    }
    if meta.bits == 0 || meta.bits > MAX_BITS as usize {
        return bad(format!("{} bits is outside 1..={MAX_BITS}", meta.bits));
    }
    for (side, spec) in [("image", &meta.image_net), ("text", &meta.text_net)] {
        if spec.bits != meta.bits {
            return bad(format!("{side} net outputs {} bits, the model has {}", spec.bits, meta.bits));
        }
        let dims = spec.hidden.iter().chain(&spec.conv_channels);
        let input_dims: Vec<usize> = match spec.input {
            NetInput::Vector { dim } => vec![dim],
            NetInput::Pixels { channels, height, width } => vec![channels, height, width],
        };
        if dims.chain(&input_dims).any(|&d| d == 0 || d > MAX_DIM) {
            return bad(format!("{side} net has a layer width or input size of 0 or above {MAX_DIM}"));
        }
        for (name, shape) in spec.param_shapes() {
            if checked_product(&shape).is_none_or(|n| n > isize::MAX as usize / 4) {
                return bad(format!("{side}.{name} is too large"));
            }
        }
    }
    // Text side: the pipeline's output feeds the net; its statistics must cover every column.
    let tp = &meta.text_pipeline;
    let tdim = tp.output_dim();
    if meta.text_net.input != (NetInput::Vector { dim: tdim }) {
        return bad(format!(
            "text pipeline gives {tdim} columns, the text net reads {:?}",
            meta.text_net.input
        ));
    }
    check_stats("text", [("centre", &tp.center), ("scale", &tp.scale)], tdim)?;
    if let TextEncoder::BagOfWords(b) = &tp.encoder {
        if b.idf.as_ref().is_some_and(|idf| idf.len() != b.vocabulary.len()) {
            return bad("text pipeline IDF does not match its vocabulary".into());
        }
    }
    match &meta.image_front {
        ImageFrontEnd::Pipeline { pipeline } => {
            if let ImageEncoder::Handcrafted(c) = &pipeline.encoder {
                let (h, s, v) = c.hsv_bins;
                if [c.size, c.rgb_bins, h, s, v, c.thumb, c.grid, c.orientations].iter().any(|&x| x > 1024)
                    || c.size == 0
                {
                    return bad("image extractor settings out of range".into());
                }
            }
            // A backbone's name and shape must be known; other weights (sha256) load, and
            // encoding says what to do about them.
            if let ImageEncoder::Backbone(b) = &pipeline.encoder {
                if let Err(e @ ImageError::UnknownBackbone { .. }) = b.check() {
                    return bad(e.to_string());
                }
            }
            let idim = pipeline.output_dim();
            if meta.image_net.input != (NetInput::Vector { dim: idim }) {
                return bad(format!(
                    "image pipeline gives {idim} columns, the image net reads {:?}",
                    meta.image_net.input
                ));
            }
            check_stats("image", [("mean", &pipeline.mean), ("scale", &pipeline.scale)], idim)?;
        }
        ImageFrontEnd::Pixels { size } => {
            let expect = NetInput::Pixels { channels: 3, height: *size, width: *size };
            if *size == 0 || *size > 1024 || meta.image_net.input != expect || !meta.image_net.is_cnn() {
                return bad(format!("pixel front end of size {size} does not match the image net"));
            }
        }
    }
    Ok(())
}
