//! CCA-ITQ "training": the closed-form CCA and `epochs` ITQ iterations on the pipeline outputs
//! (no mini-batches), stored as nets without hidden layers ([`CcaItq::linear_layers`]).

use tch::{Device, Kind, Tensor};

use super::{CcaConfig, CcaItq};
use crate::config::TrainConfig;
use crate::data::Matrix;
use crate::error::TrainError;
use crate::methods::Trained;
use crate::prepare::Prepared;
use crate::progress::Ticker;

pub(crate) fn train(p: &Prepared, cfg: &TrainConfig, ticker: &mut Ticker<'_>) -> Result<Trained, TrainError> {
    if p.image_spec.is_cnn() || !p.image_spec.hidden.is_empty() || !p.text_spec.hidden.is_empty() {
        return Err(TrainError::Config("cca-itq is linear: no CNN and no hidden layers".into()));
    }
    let to_matrix = |t: &Tensor| -> Matrix {
        let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let (rows, cols) = (t.size()[0] as usize, t.size()[1] as usize);
        Matrix { rows, cols, data: Vec::<f32>::try_from(t.view(-1)).unwrap_or_default() }
    };
    let (x, y) = (to_matrix(&p.image_in), to_matrix(&p.text_in));
    // One step: the fit is a single call.
    ticker.steps_total = 1;
    let itq = CcaConfig { itq_iterations: cfg.epochs, ..CcaConfig::default() };
    let model = CcaItq::fit_with(&x, &y, cfg.bits, cfg.seed, &itq)
        .map_err(|e| TrainError::Internal(format!("cca-itq: {e}")))?;
    ticker.step(cfg.epochs - 1, cfg.epochs, 0, 1, f64::NAN)?;
    let (image, text) = model.linear_layers();
    // No loss to report (and NaN would not survive the JSON metadata).
    Ok(Trained { image, text, dsdw: None, final_loss: 0.0, epochs: cfg.epochs })
}
