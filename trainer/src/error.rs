//! What [`train`](crate::train()) returns instead of a model: bad input, cancellation, divergence,
//! or a libtorch failure (caught, never a panic).

use crate::config::Method;
use crate::device::DeviceError;
use crate::image::ImageError;
use crate::model::ModelError;
use crate::text::TextError;

/// Why training gave no model.
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
