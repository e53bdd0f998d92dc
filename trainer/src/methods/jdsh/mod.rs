//! JDSH (Liu et al., SIGIR 2020), as the authors' final code does it (docs/methods.md 1.3-1.6):
//! per mini-batch a joint-modal similarity matrix with a cross-modal second-order term, re-weighted
//! by DSDW, is the target of the inner products of the normalised relaxed codes of both nets.
//! Unsupervised: labels are never read here.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub(crate) mod training;

/// Weights of the joint-modal matrix `S_ = a S_I + b S_T + l sym(N(S_I) N(S_T)^T)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JointWeights {
    pub a: f64,
    pub b: f64,
    pub l: f64,
}

impl JointWeights {
    /// The authors' MIRFlickr configuration.
    pub const MIRFLICKR: JointWeights = JointWeights { a: 0.5, b: 0.1, l: 0.4 };
    /// The authors' NUS-WIDE configuration.
    pub const NUS_WIDE: JointWeights = JointWeights { a: 0.4, b: 0.3, l: 0.3 };
}

/// How cosine similarities become unimodal similarities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CosineMap {
    /// `2 cos - 1`: the authors' choice, which maps non-negative features (cos in [0, 1]) to [-1, 1].
    Rescaled,
    /// `cos` itself, for features with negative entries (cos already spans [-1, 1]).
    Plain,
}

impl CosineMap {
    /// `Rescaled` when every feature is >= 0 (so that the map covers [-1, 1]), else `Plain`.
    pub fn for_features(values: &[f32]) -> CosineMap {
        if values.iter().all(|&v| v >= 0.0) {
            CosineMap::Rescaled
        } else {
            CosineMap::Plain
        }
    }
}

/// DSDW: entries below `left` are pushed further down, entries above `right` amplified
/// (docs/methods.md 1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dsdw {
    pub left: f64,
    pub right: f64,
    pub min: f64,
    pub max: f64,
    pub l1: f64,
    pub l2: f64,
    /// Where the thresholds come from: "estimated", "paper-mirflickr", "paper-nus-wide".
    pub source: String,
}

/// Which DSDW thresholds training uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DsdwChoice {
    /// Fitted to the distribution of the joint matrix's entries on the training data (default).
    Estimated,
    /// The authors' MIRFlickr constants.
    PaperMirflickr,
    /// The authors' NUS-WIDE constants.
    PaperNusWide,
    /// No re-weighting.
    Off,
}

/// Multipliers of the left and right spreads in the thresholds (the authors' ALPHA and BETA).
const LEFT_SPREADS: f64 = 2.0;
const RIGHT_SPREADS: f64 = 4.0;

impl Dsdw {
    pub fn paper_mirflickr() -> Dsdw {
        let (loc, sl, sr) = (-0.49, 0.019, 0.088);
        Dsdw {
            left: loc - LEFT_SPREADS * sl,
            right: loc + RIGHT_SPREADS * sr,
            min: -0.52,
            max: 0.68,
            l1: 0.1,
            l2: 0.2,
            source: "paper-mirflickr".into(),
        }
    }

    pub fn paper_nus_wide() -> Dsdw {
        let (loc, sl, sr) = (-0.62, 0.0128, 0.086);
        Dsdw {
            left: loc - LEFT_SPREADS * sl,
            right: loc + RIGHT_SPREADS * sr,
            min: -0.64,
            max: 0.75,
            l1: 0.2,
            l2: 0.2,
            source: "paper-nus-wide".into(),
        }
    }

    /// Thresholds from observed off-diagonal entries of `S_`: location = the histogram mode (200 bins), the
    /// left/right spreads = root-mean-square distance to it of the values on each side (the scale
    /// of a half-normal on that side), MIN/MAX = the observed extremes. The re-weighting strengths
    /// stay the authors' MIRFlickr ones. `None` when there are no values.
    pub fn estimate(values: &[f32]) -> Option<Dsdw> {
        let finite: Vec<f64> = values.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
        if finite.is_empty() {
            return None;
        }
        let min = finite.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let loc = histogram_mode(&finite, min, max, 200);
        let spread = |side: &dyn Fn(f64) -> bool| {
            let (s, n) = finite
                .iter()
                .filter(|&&v| side(v))
                .fold((0.0, 0usize), |(s, n), v| (s + (v - loc).powi(2), n + 1));
            if n == 0 {
                0.0
            } else {
                (s / n as f64).sqrt()
            }
        };
        let (sl, sr) = (spread(&|v| v < loc), spread(&|v| v > loc));
        Some(Dsdw {
            left: loc - LEFT_SPREADS * sl,
            right: loc + RIGHT_SPREADS * sr,
            min,
            max,
            l1: 0.1,
            l2: 0.2,
            source: "estimated".into(),
        })
    }

    /// The re-weighted matrix (all entries, diagonal included, as the final code does).
    pub fn apply(&self, s: &Tensor) -> Tensor {
        let low = s.lt(self.left);
        let high = s.gt(self.right);
        let w_low = ((s - self.min).neg().exp() * self.l1 + 1.0) * s;
        let w_high = ((s - self.max).exp() * self.l2 + 1.0) * s;
        s.where_self(&low.logical_not(), &w_low).where_self(&high.logical_not(), &w_high)
    }
}

/// Centre of the most populated of `bins` equal bins over [min, max].
fn histogram_mode(values: &[f64], min: f64, max: f64, bins: usize) -> f64 {
    let width = (max - min) / bins as f64;
    if width <= 0.0 || !width.is_finite() {
        return min;
    }
    let mut counts = vec![0usize; bins];
    for &v in values {
        let k = (((v - min) / width) as usize).min(bins - 1);
        counts[k] += 1;
    }
    let best =
        counts.iter().enumerate().max_by_key(|&(k, c)| (*c, std::cmp::Reverse(k))).map_or(0, |(k, _)| k);
    // The median of the values in the modal bin rather than its centre: a spike of equal values
    // (e.g. many identical similarities) then sits exactly at the location and counts on neither side.
    let mut inside: Vec<f64> =
        values.iter().copied().filter(|&v| (((v - min) / width) as usize).min(bins - 1) == best).collect();
    inside.sort_by(f64::total_cmp);
    inside.get(inside.len() / 2).copied().unwrap_or(min + (best as f64 + 0.5) * width)
}

/// JDSH's hyper-parameters (defaults: the authors' final MIRFlickr configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JdshParams {
    pub joint: JointWeights,
    pub dsdw: DsdwChoice,
    /// Final scale of the target matrix (`mu`).
    pub mu: f64,
    /// Weight of the intra-modal terms.
    pub intra: f64,
    /// Weight of the pairing term `- mean_i <B_I[i], B_T[i]>`.
    pub pairing: f64,
}

impl Default for JdshParams {
    fn default() -> Self {
        JdshParams {
            joint: JointWeights::MIRFLICKR,
            dsdw: DsdwChoice::Estimated,
            mu: 1.4,
            intra: 0.1,
            pairing: 1.0,
        }
    }
}

/// Row-wise L2 normalisation with PyTorch's `F.normalize` epsilon.
pub fn normalize_rows(x: &Tensor) -> Tensor {
    let norm = x.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-12);
    x / norm
}

/// Unimodal similarity of a batch of raw features: `map(cos(x_i, x_j))`.
pub fn unimodal_similarity(x: &Tensor, map: CosineMap) -> Tensor {
    let xn = normalize_rows(&x.to_kind(Kind::Float));
    let cos = xn.matmul(&xn.tr());
    match map {
        CosineMap::Rescaled => cos * 2.0 - 1.0,
        CosineMap::Plain => cos,
    }
}

/// The joint-modal matrix `S_` before DSDW (docs/methods.md 1.3).
pub fn joint_similarity(s_i: &Tensor, s_t: &Tensor, w: JointWeights) -> Tensor {
    let high = normalize_rows(s_i).matmul(&normalize_rows(s_t).tr());
    s_i * w.a + s_t * w.b + (&high + high.tr()) * (w.l / 2.0)
}

/// The complete target: DSDW (when given) then the scale `mu`.
pub fn target(joint: &Tensor, dsdw: Option<&Dsdw>, mu: f64) -> Tensor {
    match dsdw {
        Some(d) => d.apply(joint) * mu,
        None => joint * mu,
    }
}

/// The loss terms of one batch, for logging and tests.
#[derive(Debug)]
pub struct JdshLoss {
    pub total: Tensor,
    pub intra_image: Tensor,
    pub cross: Tensor,
    pub intra_text: Tensor,
    pub pairing: Tensor,
}

/// `L = intra * mse(B_I B_I^T, S) + mse(B_I B_T^T, S) + mse(B_T B_I^T, S) - pairing * mean diag(B_I B_T^T)
///      + intra * mse(B_T B_T^T, S)` with `B = normalize(code)` (docs/methods.md 1.5).
pub fn loss(code_i: &Tensor, code_t: &Tensor, s: &Tensor, p: &JdshParams) -> JdshLoss {
    let bi = normalize_rows(code_i);
    let bt = normalize_rows(code_t);
    let bibt = bi.matmul(&bt.tr());
    let mse = |a: &Tensor| (a - s).square().mean(None::<Kind>);
    let intra_image = mse(&bi.matmul(&bi.tr()));
    let intra_text = mse(&bt.matmul(&bt.tr()));
    let cross = mse(&bibt) + mse(&bibt.tr());
    let pairing = bibt.diagonal(0, 0, 1).mean(None::<Kind>);
    let total = &intra_image * p.intra + &cross - &pairing * p.pairing + &intra_text * p.intra;
    JdshLoss { total, intra_image, cross, intra_text, pairing }
}

/// JDSH/DJSRH's continuation: `tanh(alpha * h)` with `alpha = sqrt(epoch + 1)`, so the relaxed codes
/// approach signs as training goes on.
pub fn scaled_tanh(h: &Tensor, alpha: f64) -> Tensor {
    (h * alpha).tanh()
}

/// The continuation schedule: `alpha = sqrt(epoch + 1)` (0-based epoch).
pub fn jdsh_alpha(epoch: usize) -> f64 {
    ((epoch + 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rows: usize, v: &[f32]) -> Tensor {
        Tensor::from_slice(v).reshape([rows as i64, (v.len() / rows) as i64])
    }

    fn close(a: &Tensor, b: &[f32], tol: f64) {
        let av = Vec::<f32>::try_from(a.flatten(0, -1)).unwrap();
        assert_eq!(av.len(), b.len());
        for (x, y) in av.iter().zip(b) {
            assert!((x - y).abs() as f64 <= tol, "{av:?} vs {b:?}");
        }
    }

    #[test]
    fn unimodal_by_hand() {
        // cos((1,0),(1,1)) = 1/sqrt 2.
        let x = t(2, &[1.0, 0.0, 2.0, 2.0]);
        let c = std::f32::consts::FRAC_1_SQRT_2;
        close(&unimodal_similarity(&x, CosineMap::Rescaled), &[1.0, 2.0 * c - 1.0, 2.0 * c - 1.0, 1.0], 1e-6);
        close(&unimodal_similarity(&x, CosineMap::Plain), &[1.0, c, c, 1.0], 1e-6);
    }

    #[test]
    fn joint_by_hand() {
        let s_i = t(2, &[1.0, 0.0, 0.0, 1.0]);
        let s_t = t(2, &[1.0, 1.0, 1.0, 1.0]);
        // N(S_I) = I, N(S_T) = all 1/sqrt 2 -> high = all 1/sqrt 2, symmetric.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let w = JointWeights { a: 0.5, b: 0.1, l: 0.4 };
        let expect = [0.5 + 0.1 + 0.4 * h, 0.1 + 0.4 * h, 0.1 + 0.4 * h, 0.5 + 0.1 + 0.4 * h];
        close(&joint_similarity(&s_i, &s_t, w), &expect, 1e-6);
        // The cross term is symmetrised: a non-symmetric high product becomes its mean with the transpose.
        let s_t2 = t(2, &[1.0, 0.0, 1.0, 0.0]);
        let w0 = JointWeights { a: 0.0, b: 0.0, l: 1.0 };
        // N(S_I) N(S_T2)^T = [[1,1],[0,0]] -> sym = [[1,.5],[.5,0]].
        close(&joint_similarity(&s_i, &s_t2, w0), &[1.0, 0.5, 0.5, 0.0], 1e-6);
    }

    #[test]
    fn dsdw_by_hand() {
        let d = Dsdw { left: -0.5, right: 0.2, min: -0.6, max: 0.7, l1: 0.1, l2: 0.2, source: "test".into() };
        let s = Tensor::from_slice(&[-0.55f32, 0.0, 0.5]);
        let low = (1.0 + 0.1 * (-(-0.55f64 + 0.6)).exp()) * -0.55;
        let high = (1.0 + 0.2 * (0.5f64 - 0.7).exp()) * 0.5;
        close(&d.apply(&s), &[low as f32, 0.0, high as f32], 1e-6);
        let p = Dsdw::paper_mirflickr();
        assert!((p.left + 0.528).abs() < 1e-12 && (p.right + 0.138).abs() < 1e-12);
        let n = Dsdw::paper_nus_wide();
        assert!((n.left + 0.6456).abs() < 1e-12 && (n.right + 0.276).abs() < 1e-12);
    }

    #[test]
    fn dsdw_estimate_on_a_known_shape() {
        // Mode at 0, left values at -1 (rms 1), right at +2 (rms 2).
        let mut v = vec![0.0f32; 100];
        v.extend(std::iter::repeat_n(-1.0, 10));
        v.extend(std::iter::repeat_n(2.0, 10));
        let d = Dsdw::estimate(&v).unwrap();
        assert_eq!((d.min, d.max), (-1.0, 2.0));
        assert!((d.left - (-2.0)).abs() < 0.05, "{d:?}");
        assert!((d.right - 8.0).abs() < 0.05, "{d:?}");
        assert!(Dsdw::estimate(&[]).is_none());
    }

    #[test]
    fn loss_by_hand() {
        // Codes already unit rows: B_I = [[1,0],[0,1]], B_T = [[1,0],[1,0]].
        let ci = t(2, &[1.0, 0.0, 0.0, 1.0]);
        let ct = t(2, &[1.0, 0.0, 1.0, 0.0]);
        let s = t(2, &[1.0, 0.0, 0.0, 1.0]);
        let p = JdshParams::default();
        let l = loss(&ci, &ct, &s, &p);
        // BI BI^T = I -> mse 0. BT BT^T = all ones -> mse (0+1+1+0)/4 = 0.5.
        // BI BT^T = [[1,1],[0,0]] -> mse vs I: (0+1+0+1)/4 = 0.5; transposed [[1,0],[1,0]] -> 0.5.
        // diag(BI BT^T) = [1, 0] -> mean 0.5.
        close(&l.intra_image, &[0.0], 1e-6);
        close(&l.intra_text, &[0.5], 1e-6);
        close(&l.cross, &[1.0], 1e-6);
        close(&l.pairing, &[0.5], 1e-6);
        close(&l.total, &[0.1 * 0.0 + 1.0 - 0.5 + 0.1 * 0.5], 1e-6);
        // Normalisation: scaling the codes changes nothing.
        let l2 = loss(&(&ci * 3.0), &(&ct * 0.5), &s, &p);
        close(&l2.total, &[0.55], 1e-6);
    }

    #[test]
    fn alpha_schedule() {
        assert_eq!(jdsh_alpha(0), 1.0);
        assert_eq!(jdsh_alpha(3), 2.0);
        let t = scaled_tanh(&Tensor::from_slice(&[0.5f32]), 2.0);
        assert!((t.double_value(&[0]) - 1f64.tanh()).abs() < 1e-6);
    }
}
