//! jdsh-trainer: learning binary hash codes for cross-modal retrieval (JDSH, DCMH, CCA-ITQ) with
//! libtorch, free of PostgreSQL. The extension passes it rows; the CLI passes it files.
//!
//! Floor plan:
//! - [`data`]: the plain data types, the loaders of the project's data sets, synthetic data.
//! - [`device`], [`text`], [`image`]: where computation runs, the input pipelines.
//! - [`backbone`]: EfficientNet-Lite0 (ImageNet-pretrained) as an image feature extractor.
//! - [`nets`], [`fastpath`]: the hash nets (libtorch) and their pure-Rust CPU forward.
//! - [`methods`]: one folder per method, the algorithm (`mod.rs`) and its training loop
//!   (`training.rs`, over the tensors `prepare` builds).
//! - [`config`]: [`TrainConfig`] and [`Method`] (it holds the methods' parameter types).
//! - [`model`]: the model file and the encoders; it depends on [`config`], never on training.
//! - [`error`], [`progress`]: what training returns and reports.
//! - [`train`](mod@train): the driver, validate -> prepare -> run the method -> assemble the model.
//! - [`eval`]: retrieval metrics, and a model on a benchmark.
//! - [`report`]: what models find and how well, rendered as one self-contained HTML page.
//! - `cli` (feature `cli`, on by default; the extension links the library without it): the pieces
//!   of the `jdsh-train` command.

pub mod backbone;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fastpath;
pub mod image;
pub mod methods;
pub mod model;
pub mod nets;
mod prepare;
pub mod progress;
pub mod report;
pub mod text;
mod torch;
pub mod train;

pub use config::{ImageNetKind, Method, TrainConfig};
pub use device::{DeviceChoice, DeviceError};
pub use error::TrainError;
pub use image::ImageExtractor;
pub use model::{EncodeError, Model, ModelError, ModelMeta};
pub use progress::{NoProgress, Phase, Progress, ProgressEvent};
pub use train::train;
