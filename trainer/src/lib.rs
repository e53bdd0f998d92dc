//! jdsh-trainer: learning binary hash codes for cross-modal retrieval (JDSH, DCMH) with libtorch,
//! free of PostgreSQL. The extension passes it rows; the CLI passes it files.
//!
//! This first version holds what the other modules share: where computation runs.

pub mod backbone;
pub mod baseline;
pub mod cli;
pub mod data;
pub mod dcmh;
pub mod device;
pub mod eval;
pub mod fastpath;
pub mod image;
pub mod jdsh;
pub mod model;
pub mod nets;
pub mod text;
pub mod train;

pub use device::{DeviceChoice, DeviceError};
pub use model::{EncodeError, Model, ModelError, ModelMeta};
pub use train::{train, Method, Progress, ProgressEvent, TrainConfig, TrainError};
