//! JDSH's training loop: DSDW thresholds first (estimated from the data or the paper's constants),
//! then SGD over drop-last batches; each batch's target is the joint similarity of its raw
//! features, and the nets' outputs enter the loss through `tanh(alpha h)`.

use jdsh_core::rng::SeededRng;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use super::{jdsh_alpha, joint_similarity, loss, scaled_tanh, target, unimodal_similarity, Dsdw, DsdwChoice};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::methods::{check_loss, epoch_batches, Trained};
use crate::nets::{HashNet, Init};
use crate::prepare::Prepared;
use crate::progress::Ticker;

/// Batches whose joint-matrix entries estimate DSDW's thresholds.
const DSDW_SAMPLE_BATCHES: usize = 64;

pub(crate) fn train(
    p: &Prepared,
    cfg: &TrainConfig,
    device: Device,
    rng: &mut SeededRng,
    ticker: &mut Ticker<'_>,
) -> Result<Trained, TrainError> {
    let dsdw = match cfg.jdsh.dsdw {
        DsdwChoice::Estimated => Dsdw::estimate(&dsdw_sample(p, cfg, rng)),
        DsdwChoice::PaperMirflickr => Some(Dsdw::paper_mirflickr()),
        DsdwChoice::PaperNusWide => Some(Dsdw::paper_nus_wide()),
        DsdwChoice::Off => None,
    };
    let mut vs = nn::VarStore::new(device);
    let (image_net, text_net) = {
        let root = vs.root();
        let ip = root.sub("image").set_group(0);
        let tp = root.sub("text").set_group(1);
        (HashNet::new(&ip, &p.image_spec, Init::Default), HashNet::new(&tp, &p.text_spec, Init::Default))
    };
    let mut opt = nn::Sgd { momentum: cfg.momentum, dampening: 0.0, wd: cfg.weight_decay, nesterov: false }
        .build(&vs, cfg.lr_image)
        .map_err(|e| TrainError::Internal(e.to_string()))?;
    opt.set_lr_group(0, cfg.lr_image);
    opt.set_lr_group(1, cfg.lr_text);
    let batches_per_epoch = epoch_batches(&mut rng.clone(), p.n, cfg.batch_size, true).len();
    ticker.steps_total = batches_per_epoch * cfg.epochs;
    let mut last = f64::NAN;
    for epoch in 0..cfg.epochs {
        let alpha = jdsh_alpha(epoch);
        let batches = epoch_batches(rng, p.n, cfg.batch_size, true);
        let nb = batches.len();
        for (b, idx) in batches.into_iter().enumerate() {
            let idx = Tensor::from_slice(&idx).to_device(device);
            let s = tch::no_grad(|| target(&batch_joint(p, &idx, cfg), dsdw.as_ref(), cfg.jdsh.mu));
            let ci = scaled_tanh(&image_net.forward(&p.image_in.index_select(0, &idx)), alpha);
            let ct = scaled_tanh(&text_net.forward(&p.text_in.index_select(0, &idx)), alpha);
            let l = loss(&ci, &ct, &s, &cfg.jdsh);
            opt.backward_step(&l.total);
            last = l.total.double_value(&[]);
            check_loss(last, epoch)?;
            ticker.step(epoch, cfg.epochs, b, nb, last)?;
        }
    }
    vs.freeze();
    Ok(Trained {
        image: image_net.values(),
        text: text_net.values(),
        dsdw,
        final_loss: last,
        epochs: cfg.epochs,
    })
}

/// The joint matrix `S_` (before DSDW) of the batch `idx`, from the raw features, without gradients.
fn batch_joint(p: &Prepared, idx: &Tensor, cfg: &TrainConfig) -> Tensor {
    tch::no_grad(|| {
        let s_i = unimodal_similarity(&p.image_raw.index_select(0, idx), p.image_map);
        let s_t = unimodal_similarity(&p.text_raw.index_select(0, idx), p.text_map);
        joint_similarity(&s_i, &s_t, cfg.jdsh.joint)
    })
}

/// Off-diagonal entries of the joint matrix over up to 64 training batches, for DSDW's thresholds.
fn dsdw_sample(p: &Prepared, cfg: &TrainConfig, rng: &mut SeededRng) -> Vec<f32> {
    let mut values = Vec::new();
    for idx in epoch_batches(rng, p.n, cfg.batch_size, true).into_iter().take(DSDW_SAMPLE_BATCHES) {
        let idx = Tensor::from_slice(&idx).to_device(p.image_raw.device());
        let joint = batch_joint(p, &idx, cfg);
        let b = joint.size()[0];
        let off = joint.masked_select(&Tensor::eye(b, (Kind::Bool, joint.device())).logical_not());
        values.extend(Vec::<f32>::try_from(off.to_device(Device::Cpu)).unwrap_or_default());
    }
    values
}
