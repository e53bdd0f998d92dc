//! The boundary to libtorch shared by training and the model's encoders: libtorch failures arrive
//! as panics (through tch) and are caught here, so that a database backend gets an error, never an
//! unwinding panic; and libtorch's process-wide random generator is taken in turns.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tch::{Device, Tensor};

use crate::data::Matrix;

/// Runs `f`, turning a panic (a libtorch failure) into its message.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&p))
}

/// The text of a caught panic.
pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// libtorch's random generator is global to the process: weight initialisation and dropout draw
/// from it after `manual_seed`. Trainings in one process (tests run on parallel threads) take
/// turns, so that a seed gives the same model whatever else runs.
pub(crate) static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A `rows x cols` f32 tensor of `m` on `device`.
pub(crate) fn to_tensor(m: &Matrix, device: Device) -> Tensor {
    Tensor::from_slice(&m.data).reshape([m.rows as i64, m.cols as i64]).to_device(device)
}
