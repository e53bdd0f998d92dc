//! Everything the training loops read, built once from the training pairs: the fitted input
//! pipelines, the nets' shapes, and the tensors of the net inputs, of the raw features (JDSH's
//! similarities) and of the labels (DCMH).

use tch::{Device, Tensor};

use crate::config::{ImageNetKind, Method, TrainConfig};
use crate::data::{ImageInput, Matrix, PairedData, TextInput};
use crate::error::TrainError;
use crate::image::{decode_rgb_batch, ImagePipeline};
use crate::methods::jdsh::CosineMap;
use crate::model::ImageFrontEnd;
use crate::nets::{NetInput, NetSpec};
use crate::text::TextPipeline;
use crate::torch::to_tensor;

/// Tensors of the training pairs.
pub(crate) struct Prepared {
    pub n: usize,
    /// Net inputs (pipeline outputs, or pixels for a CNN).
    pub image_in: Tensor,
    pub text_in: Tensor,
    /// Raw features for JDSH's similarities (before standardisation).
    pub image_raw: Tensor,
    pub text_raw: Tensor,
    pub image_map: CosineMap,
    pub text_map: CosineMap,
    pub labels: Option<Tensor>,
    pub image_front: ImageFrontEnd,
    pub image_spec: NetSpec,
    pub text_pipeline: TextPipeline,
    pub text_spec: NetSpec,
}

/// Fits the pipelines on `d` and builds the tensors on `device`.
pub(crate) fn prepare(d: &PairedData, cfg: &TrainConfig, device: Device) -> Result<Prepared, TrainError> {
    let n = d.image.len();
    let text_pipeline = TextPipeline::fit(&d.text, &cfg.text_pipeline)?;
    let text_m = text_pipeline.transform(&d.text)?;
    check_matrix(&text_m, "text")?;
    let text_raw_m = match &d.text {
        TextInput::Features(m) => m.clone(),
        TextInput::Raw(_) => text_pipeline.transform_sparse(&d.text)?.to_dense(),
    };
    let (image_front, image_m, image_raw_m, image_input) = match &cfg.image_net {
        ImageNetKind::Mlp => {
            // Each image's features are extracted once here (the epochs reuse the tensors).
            let (pipeline, m, raw) = ImagePipeline::fit_transform(&d.image, &cfg.image_pipeline, device)?;
            let dim = m.cols;
            (ImageFrontEnd::Pipeline { pipeline }, m, raw, NetInput::Vector { dim })
        }
        ImageNetKind::Cnn { size, .. } => {
            let ImageInput::Encoded(images) = &d.image else {
                return Err(TrainError::Config("a CNN image net needs encoded images".into()));
            };
            let pixels = decode_rgb_batch(images, *size)?;
            // JDSH's image similarity needs a fixed feature: the image pipeline's extractor's.
            let raw = if cfg.method == Method::Jdsh {
                ImagePipeline::fit_transform(&d.image, &cfg.image_pipeline, device)?.2
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

/// A matrix of `rows x cols` values, all finite (the row and column of the first bad one).
pub(crate) fn check_matrix(m: &Matrix, modality: &'static str) -> Result<(), TrainError> {
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
