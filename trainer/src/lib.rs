//! jdsh-trainer: learning binary hash codes for cross-modal retrieval (JDSH, DCMH) with libtorch,
//! free of PostgreSQL. The extension passes it rows; the CLI passes it files.
//!
//! This first version holds what the other modules share: where computation runs.

pub mod data;
pub mod device;
pub mod eval;
pub mod image;
pub mod text;

pub use device::{DeviceChoice, DeviceError};
