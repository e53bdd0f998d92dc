//! Methods without a training loop, as references for the learned ones.

pub mod cca_itq;

pub use cca_itq::{Cca, CcaConfig, CcaError, CcaItq};
