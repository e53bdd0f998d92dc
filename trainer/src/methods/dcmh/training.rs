//! DCMH's training loop: the stored outputs F (image) and G (text) of every training item, each
//! epoch `B = sign(F + G)`, then the text net and the image net in turn over random batches, each
//! step refreshing its batch's rows of F or G.

use jdsh_core::rng::SeededRng;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use super::{batch_loss, binary_codes, label_similarity};
use crate::config::{Method, TrainConfig};
use crate::error::TrainError;
use crate::methods::{check_loss, epoch_batches, Trained};
use crate::nets::{HashNet, Init};
use crate::prepare::Prepared;
use crate::progress::Ticker;

pub(crate) fn train(
    p: &Prepared,
    cfg: &TrainConfig,
    device: Device,
    rng: &mut SeededRng,
    ticker: &mut Ticker<'_>,
) -> Result<Trained, TrainError> {
    let labels = p.labels.as_ref().ok_or(TrainError::LabelsRequired { method: Method::Dcmh })?;
    let init = Init::Default;
    let (vs_i, vs_t) = (nn::VarStore::new(device), nn::VarStore::new(device));
    let image_net = HashNet::new(&vs_i.root(), &p.image_spec, init);
    let text_net = HashNet::new(&vs_t.root(), &p.text_spec, init);
    let internal = |e: tch::TchError| TrainError::Internal(e.to_string());
    let (mut opt_i, mut opt_t) = if cfg.dcmh.adam {
        let adam = nn::Adam { wd: cfg.weight_decay, ..Default::default() };
        (
            adam.build(&vs_i, cfg.lr_image).map_err(internal)?,
            adam.build(&vs_t, cfg.lr_text).map_err(internal)?,
        )
    } else {
        let sgd = nn::Sgd { momentum: cfg.momentum, dampening: 0.0, wd: cfg.weight_decay, nesterov: false };
        (sgd.build(&vs_i, cfg.lr_image).map_err(internal)?, sgd.build(&vs_t, cfg.lr_text).map_err(internal)?)
    };
    let n = p.n as i64;
    let c = cfg.bits as i64;
    let opts = (Kind::Float, device);
    // The stored outputs of every training item (the paper's F and G), random at the start.
    let mut f = Tensor::randn([n, c], opts);
    let mut g = Tensor::randn([n, c], opts);
    let nb = p.n.div_ceil(cfg.batch_size.min(p.n));
    ticker.steps_total = 2 * nb * cfg.epochs;
    let mut last = f64::NAN;
    // Scale the paper's schedule to the configured first learning rates.
    let (ratio_i, ratio_t) = (cfg.lr_image / cfg.dcmh.lr_first, cfg.lr_text / cfg.dcmh.lr_first);
    for epoch in 0..cfg.epochs {
        let lr = cfg.dcmh.lr(epoch, cfg.epochs);
        opt_i.set_lr(lr * ratio_i);
        opt_t.set_lr(lr * ratio_t);
        let b_all = binary_codes(&f, &g);
        // Text net first, then image net (the MATLAB order).
        for (side, step) in [(1usize, 0usize), (0, 1)] {
            let batches = epoch_batches(rng, p.n, cfg.batch_size, false);
            for (k, idx) in batches.into_iter().enumerate() {
                let idx = Tensor::from_slice(&idx).to_device(device);
                let s_b = label_similarity(&labels.index_select(0, &idx), labels);
                let b_b = b_all.index_select(0, &idx);
                let (net, opt, mine, other, input) = if side == 1 {
                    (&text_net, &mut opt_t, &mut g, &f, &p.text_in)
                } else {
                    (&image_net, &mut opt_i, &mut f, &g, &p.image_in)
                };
                let out = net.forward_t(&input.index_select(0, &idx), cfg.dropout);
                let rest = tch::no_grad(|| {
                    mine.sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
                        - mine.index_select(0, &idx).sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
                });
                let l = batch_loss(&out, other, &s_b, &b_b, &rest, &cfg.dcmh);
                match cfg.dcmh.clip_norm {
                    Some(max) => opt.backward_step_clip_norm(&l.total, max),
                    None => opt.backward_step(&l.total),
                }
                tch::no_grad(|| {
                    let _ = mine.index_copy_(0, &idx, &out.detach());
                });
                last = l.total.double_value(&[]);
                check_loss(last, epoch)?;
                ticker.step(epoch, cfg.epochs, step * nb + k, 2 * nb, last)?;
            }
        }
    }
    Ok(Trained {
        image: image_net.values(),
        text: text_net.values(),
        dsdw: None,
        final_loss: last,
        epochs: cfg.epochs,
    })
}
