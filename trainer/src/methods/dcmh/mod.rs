//! DCMH (Jiang & Li, CVPR 2017), as the authors' MATLAB code does it (docs/methods.md 3): the
//! real-valued outputs F (image net) and G (text net) of every training item are kept; each epoch
//! B = sign(F + G), then the text net and the image net are updated in turn over random batches
//! with the negative log-likelihood of the label similarities over the WHOLE training set, a
//! quantisation term and a bit-balance term.
//!
//! S_ij (share a label) is computed per batch from the multi-hot labels (b x n), never stored as
//! n x n, so the full MIRFlickr training set fits in memory.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub(crate) mod training;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DcmhParams {
    /// Weight of the quantisation term ||B - F||^2 (+ ||B - G||^2).
    pub gamma: f64,
    /// Weight of the bit-balance term ||F 1||^2 (+ ||G 1||^2).
    pub eta: f64,
    /// Learning rate of the first epoch and of the last (log-spaced in between), as
    /// `logspace(-1.5, -3, epochs)`.
    pub lr_first: f64,
    pub lr_last: f64,
    /// Divide the loss by (n * batch) as the MATLAB code does (the learning rates assume it).
    pub normalize_by_pairs: bool,
    /// Optimiser: plain SGD as the paper (with `TrainConfig::momentum`), or Adam (with the same
    /// log-spaced learning rates scaled by the configured first rate).
    #[serde(default)]
    pub adam: bool,
    /// Clip the gradient norm of each step (the unbounded outputs of an MLP over standardised
    /// features can otherwise run away at the paper's learning rates).
    #[serde(default)]
    pub clip_norm: Option<f64>,
    /// Weight the similar pairs of each batch by (#dissimilar / #similar), so that with many
    /// single-label classes (90 % dissimilar pairs on Wikipedia) the likelihood is not minimised by
    /// shrinking every output to 0 (theta = 0 for all pairs). Not in the paper (MIRFlickr's
    /// multi-labels give about half similar pairs, where the weight is ~1). Off by default, in
    /// `TrainConfig::defaults` too (the per-item bit balance and Adam replaced it, see
    /// trainer/README.md); off is the paper's objective.
    #[serde(default)]
    pub balance_pairs: bool,
    /// Divide the bit-balance term by n, i.e. `eta ||F^T 1||^2 / n` = `eta n ||mean F||^2`. The
    /// paper's sum over the whole training set is a stiff term here: its gradient is the same
    /// `2 eta F^T 1` for every row of every batch, but a step refreshes only the batch's rows of
    /// the stored F, so the next batches keep pushing the output bias the same way and it
    /// overshoots by up to n / batch (Wikipedia: ~70x) per epoch; with Adam (or SGD at the paper's
    /// first rates on standardised inputs) F then runs away (|F| ~ 27) and the other net shrinks to
    /// 0. Per item the term keeps its role (the mean output of every bit is pulled to 0) at a
    /// scale comparable to one item's likelihood. `TrainConfig::defaults` turns it on; off is the
    /// paper's term.
    #[serde(default)]
    pub balance_mean: bool,
}

impl Default for DcmhParams {
    fn default() -> Self {
        DcmhParams {
            gamma: 1.0,
            eta: 1.0,
            lr_first: 10f64.powf(-1.5),
            lr_last: 1e-3,
            normalize_by_pairs: true,
            adam: false,
            clip_norm: Some(10.0),
            balance_pairs: false,
            balance_mean: false,
        }
    }
}

impl DcmhParams {
    /// Learning rate of epoch `e` of `epochs`, log-spaced from `lr_first` to `lr_last`.
    pub fn lr(&self, e: usize, epochs: usize) -> f64 {
        if epochs <= 1 {
            return self.lr_first;
        }
        let t = e as f64 / (epochs - 1) as f64;
        (self.lr_first.ln() * (1.0 - t) + self.lr_last.ln() * t).exp()
    }
}

/// `S_b`: 1 where batch item i and training item j share a label. `labels_b` (b x k) and
/// `labels` (n x k) are multi-hot float tensors.
pub fn label_similarity(labels_b: &Tensor, labels: &Tensor) -> Tensor {
    labels_b.matmul(&labels.tr()).gt(0.0).to_kind(labels_b.kind())
}

/// The terms of the objective restricted to one batch of one modality.
#[derive(Debug)]
pub struct DcmhLoss {
    pub total: Tensor,
    pub likelihood: Tensor,
    pub quantization: Tensor,
    pub balance: Tensor,
}

/// Loss for the batch outputs `out_b` (b x c) of one net against the other modality's outputs
/// `other` (n x c, constant): with `Theta = 0.5 out_b other^T`,
/// `-sum(S_b Theta - log(1 + e^Theta)) + gamma ||B_b - out_b||^2 + eta ||out_b^T 1 + rest||^2`,
/// where `rest` (c) is the column sum of this modality's stored outputs outside the batch.
/// Its gradient w.r.t. `out_b` is the MATLAB code's
/// `0.5 (sigmoid(Theta) - S_b) other + 2 gamma (out_b - B_b) + 2 eta (F 1)` (per row).
pub fn batch_loss(
    out_b: &Tensor,
    other: &Tensor,
    s_b: &Tensor,
    b_b: &Tensor,
    rest: &Tensor,
    p: &DcmhParams,
) -> DcmhLoss {
    let theta = out_b.matmul(&other.tr()) * 0.5;
    // log(1 + e^x) = softplus(x), stable for large |x|.
    let pair_loss = -(s_b * &theta - theta.softplus());
    let likelihood = if p.balance_pairs {
        let pos = s_b.sum(None::<Kind>).clamp_min(1.0);
        let neg = (s_b.numel() as f64 - &pos).clamp_min(1.0);
        // w = neg/pos on similar pairs, 1 on dissimilar ones (a constant, no gradient).
        let w = (s_b * (neg / pos - 1.0) + 1.0).detach();
        (pair_loss * w).sum(None::<Kind>)
    } else {
        pair_loss.sum(None::<Kind>)
    };
    let quantization = (b_b - out_b).square().sum(None::<Kind>);
    let balance =
        (out_b.sum_dim_intlist([0i64].as_slice(), false, None::<Kind>) + rest).square().sum(None::<Kind>);
    let eta = if p.balance_mean { p.eta / other.size()[0].max(1) as f64 } else { p.eta };
    let mut total = &likelihood + &quantization * p.gamma + &balance * eta;
    if p.normalize_by_pairs {
        let pairs = (other.size()[0] * out_b.size()[0]).max(1) as f64;
        total /= pairs;
    }
    DcmhLoss { total, likelihood, quantization, balance }
}

/// `B = sign(F + G)` with ties (exactly 0) going to +1, so every entry is +-1.
pub fn binary_codes(f: &Tensor, g: &Tensor) -> Tensor {
    (f + g).ge(0.0).to_kind(f.kind()) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: usize, v: &[f32]) -> Tensor {
        Tensor::from_slice(v).reshape([rows as i64, (v.len() / rows) as i64])
    }

    #[test]
    fn loss_by_hand() {
        // One batch item, two training items, one bit.
        let f = t(1, &[2.0]);
        let g = t(2, &[1.0, -1.0]);
        let s = t(1, &[1.0, 0.0]);
        let b = t(1, &[1.0]);
        let rest = Tensor::from_slice(&[0.5f32]);
        let p = DcmhParams { normalize_by_pairs: false, ..Default::default() };
        let l = batch_loss(&f, &g, &s, &b, &rest, &p);
        // Theta = [1, -1]; -(1*1 - ln(1+e)) - (0 - ln(1+e^-1)).
        let like = -(1.0 - (1.0 + 1f64.exp()).ln()) + (1.0 + (-1f64).exp()).ln();
        assert!((l.likelihood.double_value(&[]) - like).abs() < 1e-5);
        assert!((l.quantization.double_value(&[]) - 1.0).abs() < 1e-6);
        assert!((l.balance.double_value(&[]) - 6.25).abs() < 1e-6);
        assert!((l.total.double_value(&[]) - (like + 1.0 + 6.25)).abs() < 1e-5);
        // balance_mean: the bit-balance term divided by n (= 2 training items here).
        let pm = DcmhParams { balance_mean: true, ..p.clone() };
        let lm = batch_loss(&f, &g, &s, &b, &rest, &pm);
        assert!((lm.total.double_value(&[]) - (like + 1.0 + 6.25 / 2.0)).abs() < 1e-5);
        let pn = DcmhParams::default();
        let ln = batch_loss(&f, &g, &s, &b, &rest, &pn);
        assert!((ln.total.double_value(&[]) - (like + 7.25) / 2.0).abs() < 1e-5);
    }

    #[test]
    fn gradient_is_the_papers() {
        let f = t(2, &[0.3, -0.2, 1.0, 0.5]).set_requires_grad(true);
        let g = t(3, &[0.1, 0.4, -0.7, 0.2, 0.9, -0.3]);
        let s = t(2, &[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        let b = binary_codes(&f.detach(), &Tensor::zeros([2, 2], (Kind::Float, tch::Device::Cpu)));
        let rest = Tensor::from_slice(&[0.2f32, -0.1]);
        let p = DcmhParams { normalize_by_pairs: false, ..Default::default() };
        let l = batch_loss(&f, &g, &s, &b, &rest, &p);
        l.total.backward();
        let grad = f.grad();
        let theta = f.detach().matmul(&g.tr()) * 0.5;
        let col = f.detach().sum_dim_intlist([0i64].as_slice(), true, Kind::Float) + rest.unsqueeze(0);
        let expect = (theta.sigmoid() - &s).matmul(&g) * 0.5 + (f.detach() - &b) * 2.0 + col * 2.0;
        assert!(grad.allclose(&expect, 1e-5, 1e-6, false), "{grad} vs {expect}");
    }

    #[test]
    fn similarity_and_codes() {
        let lb = t(2, &[1.0, 0.0, 0.0, 1.0]);
        let l = t(3, &[1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        let s = label_similarity(&lb, &l);
        assert_eq!(Vec::<f32>::try_from(s.flatten(0, -1)).unwrap(), vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
        let c = binary_codes(&t(1, &[0.5, -1.0, 0.0]), &t(1, &[-1.0, 0.5, 0.0]));
        assert_eq!(Vec::<f32>::try_from(c.flatten(0, -1)).unwrap(), vec![-1.0, -1.0, 1.0]);
        let p = DcmhParams::default();
        assert!((p.lr(0, 500) - 10f64.powf(-1.5)).abs() < 1e-12);
        assert!((p.lr(499, 500) - 1e-3).abs() < 1e-12);
    }
}
