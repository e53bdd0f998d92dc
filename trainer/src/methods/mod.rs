//! The learning methods, one folder each: the algorithm (losses, similarities, closed-form steps)
//! in `mod.rs`, and its training loop over the prepared tensors in `training.rs`.
//!
//! - [`jdsh`]: JDSH (unsupervised, SIGIR 2020).
//! - [`dcmh`]: DCMH (supervised, CVPR 2017).
//! - [`cca_itq`]: CCA followed by ITQ, the linear baseline without a training loop.

use jdsh_core::rng::SeededRng;

use crate::error::TrainError;
use crate::methods::jdsh::Dsdw;

pub mod cca_itq;
pub mod dcmh;
pub mod jdsh;

/// What a method's training gives back: the weights of both nets (in
/// [`NetSpec::param_shapes`](crate::nets::NetSpec::param_shapes) order) and what the model
/// file records about the run.
pub(crate) struct Trained {
    pub image: Vec<Vec<f32>>,
    pub text: Vec<Vec<f32>>,
    /// DSDW thresholds used (JDSH).
    pub dsdw: Option<Dsdw>,
    pub final_loss: f64,
    /// Epochs run (CCA-ITQ: ITQ iterations).
    pub epochs: usize,
}

/// `Diverged` when a step's loss is not finite.
pub(crate) fn check_loss(loss: f64, epoch: usize) -> Result<(), TrainError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(TrainError::Diverged(loss, epoch))
    }
}

/// Batches of one epoch: a fresh permutation cut into `batch`-sized pieces. `drop_last` as JDSH's
/// loader does (a 1-item batch has no pairs to compare); DCMH keeps the remainder.
pub(crate) fn epoch_batches(rng: &mut SeededRng, n: usize, batch: usize, drop_last: bool) -> Vec<Vec<i64>> {
    let perm = rng.permutation(n);
    let batch = batch.min(n);
    perm.chunks(batch)
        .filter(|c| !drop_last || c.len() == batch)
        .map(|c| c.iter().map(|&i| i as i64).collect())
        .collect()
}
