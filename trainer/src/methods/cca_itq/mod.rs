//! CCA followed by ITQ (Gong & Lazebnik, "Iterative quantization", CVPR 2011 / TPAMI 2013), the
//! classic cross-modal hashing baseline with no training loop.
//!
//! 1. Centre both modalities on their training means.
//! 2. Regularised CCA: C_xx = X'X/n + r_x I, C_yy likewise (r = `reg` times the mean variance, so
//!    the setting does not depend on the feature scale), T = C_xx^-1/2 C_xy C_yy^-1/2 = U S V',
//!    W_x = C_xx^-1/2 U, W_y = C_yy^-1/2 V; canonical correlations S.
//! 3. Keep m = min(bits, rank) directions, each scaled by its correlation to the power `power`
//!    (Gong et al. weight CCA directions by their eigenvalues so weak ones count less).
//! 4. If bits > m (Wikipedia's text side is 10-d, so at most 10 canonical pairs exist), lift the
//!    m-d shared space to `bits` dimensions with a fixed Gaussian matrix (random hyperplanes, as in
//!    LSH) so longer codes still approximate the angle in the CCA space.
//! 5. ITQ: one orthogonal rotation R for both modalities, learned on the stacked projections
//!    [X W_x; Y W_y] by 50 alternations of B = sign(V R) and the orthogonal Procrustes step
//!    (svd(B'V) = U S W', R = W U').
//!
//! Codes: bit k is set where the k-th coordinate of (x - mean) W R is > 0.
//!
//! Linear algebra runs in f64 through libtorch (tch) on the CPU.

use jdsh_core::code::Code;
use jdsh_core::rng::SeededRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::Matrix;

pub(crate) mod training;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CcaError {
    #[error("image and text have {image} and {text} rows; CCA needs paired rows")]
    RowMismatch { image: usize, text: usize },
    #[error("CCA needs at least 2 pairs, got {0}")]
    TooFewRows(usize),
    #[error("code length must be in 1..={max}, got {bits}")]
    Bits { bits: usize, max: u32 },
    #[error("{side} features have {got} columns, the model expects {expected}")]
    WrongDim { side: &'static str, expected: usize, got: usize },
    #[error("{side} features contain a value that is not finite")]
    NotFinite { side: &'static str },
    #[error("linear algebra failed: {0}")]
    Linalg(String),
}

/// Settings of the CCA step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CcaConfig {
    /// Ridge added to each covariance, relative to its mean variance (trace / dim).
    pub reg: f64,
    /// Scale of direction k: correlation_k ^ power (0 = unscaled).
    pub power: f64,
    /// ITQ iterations.
    pub itq_iterations: usize,
}

impl Default for CcaConfig {
    fn default() -> Self {
        CcaConfig { reg: 1e-3, power: 1.0, itq_iterations: 50 }
    }
}

/// A fitted (real-valued) CCA: `embed(x) = (x - mean) * projection`, `dims` columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cca {
    pub image_mean: Vec<f32>,
    pub text_mean: Vec<f32>,
    /// `image_dim x dims`, row-major, already scaled by correlation^power.
    pub image_projection: Matrix,
    /// `text_dim x dims`.
    pub text_projection: Matrix,
    /// Canonical correlations of the kept directions, descending.
    pub correlations: Vec<f32>,
}

/// CCA + ITQ hashing: `code(x) = sign((x - mean) * projection * rotation)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CcaItq {
    pub bits: usize,
    pub seed: u64,
    pub config: CcaConfig,
    pub image_mean: Vec<f32>,
    pub text_mean: Vec<f32>,
    /// `image_dim x bits`: CCA directions (scaled, and lifted when bits > rank).
    pub image_projection: Matrix,
    /// `text_dim x bits`.
    pub text_projection: Matrix,
    /// `bits x bits`, orthogonal.
    pub rotation: Matrix,
    /// Canonical correlations of the CCA directions used.
    pub correlations: Vec<f32>,
}

fn to_tensor(m: &Matrix) -> Tensor {
    Tensor::from_slice(&m.data).to_kind(Kind::Double).reshape([m.rows as i64, m.cols as i64])
}

fn to_matrix(t: &Tensor) -> Result<Matrix, CcaError> {
    let size = t.size();
    let (rows, cols) = match size.as_slice() {
        [r, c] => (*r as usize, *c as usize),
        [r] => (*r as usize, 1),
        _ => return Err(CcaError::Linalg(format!("unexpected tensor shape {size:?}"))),
    };
    let data: Vec<f32> = Vec::<f32>::try_from(&t.to_kind(Kind::Float).contiguous().view([-1]))
        .map_err(|e| CcaError::Linalg(e.to_string()))?;
    Ok(Matrix::new(rows, cols, data))
}

fn linalg(e: tch::TchError) -> CcaError {
    CcaError::Linalg(e.to_string())
}

fn check(side: &'static str, m: &Matrix) -> Result<(), CcaError> {
    if m.data.iter().any(|v| !v.is_finite()) {
        return Err(CcaError::NotFinite { side });
    }
    Ok(())
}

/// C^-1/2 of a symmetric positive definite matrix through its eigendecomposition.
fn inv_sqrt(c: &Tensor) -> Result<Tensor, CcaError> {
    let (vals, vecs) = c.f_linalg_eigh("L").map_err(linalg)?;
    let scale = vals.clamp_min(1e-12).rsqrt();
    Ok(vecs.matmul(&scale.diag_embed(0, -2, -1)).matmul(&vecs.transpose(0, 1)))
}

/// Column means (f64) of a tensor, and the centred tensor.
fn centre(x: &Tensor) -> (Tensor, Tensor) {
    let mean = x.mean_dim(0, true, Kind::Double);
    (x - &mean, mean)
}

fn covariance(x: &Tensor, reg: f64) -> Tensor {
    let n = x.size()[0] as f64;
    let d = x.size()[1];
    let c = x.transpose(0, 1).matmul(x) / n;
    let ridge = reg * (c.trace().double_value(&[]) / d as f64).max(1e-12);
    c + Tensor::eye(d, (Kind::Double, Device::Cpu)) * ridge
}

impl Cca {
    /// Fits CCA on paired rows and keeps the `dims` strongest directions (at most the rank,
    /// min(image_dim, text_dim)).
    pub fn fit(image: &Matrix, text: &Matrix, dims: usize, cfg: &CcaConfig) -> Result<Cca, CcaError> {
        if image.rows != text.rows {
            return Err(CcaError::RowMismatch { image: image.rows, text: text.rows });
        }
        if image.rows < 2 {
            return Err(CcaError::TooFewRows(image.rows));
        }
        check("image", image)?;
        check("text", text)?;
        let _guard = tch::no_grad_guard();
        let (x, mx) = centre(&to_tensor(image));
        let (y, my) = centre(&to_tensor(text));
        let n = image.rows as f64;
        let cxx_is = inv_sqrt(&covariance(&x, cfg.reg))?;
        let cyy_is = inv_sqrt(&covariance(&y, cfg.reg))?;
        let cxy = x.transpose(0, 1).matmul(&y) / n;
        let t = cxx_is.matmul(&cxy).matmul(&cyy_is);
        // torch.svd (not linalg_svd: its `driver` argument is refused on CPU through this binding).
        let (u, s, v) = t.f_svd(true, true).map_err(linalg)?;
        let k = dims.min(s.size()[0] as usize).max(1) as i64;
        let s = s.narrow(0, 0, k);
        let weight = s.clamp_min(0.0).pow_tensor_scalar(cfg.power).unsqueeze(0);
        let wx = cxx_is.matmul(&u.narrow(1, 0, k)) * &weight;
        let wy = cyy_is.matmul(&v.narrow(1, 0, k)) * &weight;
        Ok(Cca {
            image_mean: to_matrix(&mx)?.data,
            text_mean: to_matrix(&my)?.data,
            image_projection: to_matrix(&wx)?,
            text_projection: to_matrix(&wy)?,
            correlations: to_matrix(&s)?.data,
        })
    }

    pub fn dims(&self) -> usize {
        self.image_projection.cols
    }

    pub fn embed_image(&self, image: &Matrix) -> Result<Matrix, CcaError> {
        project("image", image, &self.image_mean, &self.image_projection)
    }

    pub fn embed_text(&self, text: &Matrix) -> Result<Matrix, CcaError> {
        project("text", text, &self.text_mean, &self.text_projection)
    }
}

/// (x - mean) * projection, in f32 (a few multiply-adds per entry; no tensor round trip needed).
fn project(side: &'static str, x: &Matrix, mean: &[f32], proj: &Matrix) -> Result<Matrix, CcaError> {
    if x.cols != proj.rows {
        return Err(CcaError::WrongDim { side, expected: proj.rows, got: x.cols });
    }
    check(side, x)?;
    let mut out = Matrix::zeros(x.rows, proj.cols);
    let mut centred = vec![0f32; x.cols];
    for i in 0..x.rows {
        for ((c, v), m) in centred.iter_mut().zip(x.row(i)).zip(mean) {
            *c = v - m;
        }
        let row = out.row_mut(i);
        for (k, c) in centred.iter().enumerate() {
            if *c != 0.0 {
                for (o, p) in row.iter_mut().zip(proj.row(k)) {
                    *o += c * p;
                }
            }
        }
    }
    Ok(out)
}

fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    let mut out = Matrix::zeros(a.rows, b.cols);
    for i in 0..a.rows {
        let row = out.row_mut(i);
        for (k, x) in a.row(i).iter().enumerate() {
            for (o, y) in row.iter_mut().zip(b.row(k)) {
                *o += x * y;
            }
        }
    }
    out
}

/// A `rows x cols` matrix of standard normal draws from `rng`.
fn gaussian(rows: usize, cols: usize, rng: &mut SeededRng) -> Tensor {
    let data: Vec<f64> = (0..rows * cols).map(|_| rng.normal()).collect();
    Tensor::from_slice(&data).reshape([rows as i64, cols as i64])
}

impl CcaItq {
    /// Fits CCA + ITQ with the default settings ([`CcaConfig::default`]).
    pub fn fit(image: &Matrix, text: &Matrix, bits: usize, seed: u64) -> Result<CcaItq, CcaError> {
        Self::fit_with(image, text, bits, seed, &CcaConfig::default())
    }

    pub fn fit_with(
        image: &Matrix,
        text: &Matrix,
        bits: usize,
        seed: u64,
        cfg: &CcaConfig,
    ) -> Result<CcaItq, CcaError> {
        if bits == 0 || bits > jdsh_core::MAX_BITS as usize {
            return Err(CcaError::Bits { bits, max: jdsh_core::MAX_BITS });
        }
        let cca = Cca::fit(image, text, bits, cfg)?;
        let _guard = tch::no_grad_guard();
        let mut rng = SeededRng::new(seed);
        let m = cca.dims();
        let (mut wx, mut wy) = (to_tensor(&cca.image_projection), to_tensor(&cca.text_projection));
        if bits > m {
            // Scale 1/sqrt(m) keeps the lifted coordinates on the scale of the CCA ones.
            let lift = gaussian(m, bits, &mut rng) / (m as f64).sqrt();
            wx = wx.matmul(&lift);
            wy = wy.matmul(&lift);
        }
        let (x, _) = centre(&to_tensor(image));
        let (y, _) = centre(&to_tensor(text));
        let v = Tensor::cat(&[x.matmul(&wx), y.matmul(&wy)], 0);
        let (mut r, _) = Tensor::f_linalg_qr(&gaussian(bits, bits, &mut rng), "reduced").map_err(linalg)?;
        for _ in 0..cfg.itq_iterations {
            let b = v.matmul(&r).sign();
            let (ub, _, ua) = b.transpose(0, 1).matmul(&v).f_svd(true, true).map_err(linalg)?;
            r = ua.matmul(&ub.transpose(0, 1));
        }
        Ok(CcaItq {
            bits,
            seed,
            config: *cfg,
            image_mean: cca.image_mean,
            text_mean: cca.text_mean,
            image_projection: to_matrix(&wx)?,
            text_projection: to_matrix(&wy)?,
            rotation: to_matrix(&r)?,
            correlations: cca.correlations,
        })
    }

    /// Real-valued outputs before the sign (rows x bits) for image features.
    pub fn image_outputs(&self, image: &Matrix) -> Result<Matrix, CcaError> {
        Ok(matmul(&project("image", image, &self.image_mean, &self.image_projection)?, &self.rotation))
    }

    pub fn text_outputs(&self, text: &Matrix) -> Result<Matrix, CcaError> {
        Ok(matmul(&project("text", text, &self.text_mean, &self.text_projection)?, &self.rotation))
    }

    pub fn encode_image(&self, image: &Matrix) -> Result<Vec<Code>, CcaError> {
        Ok(signs(&self.image_outputs(image)?))
    }

    pub fn encode_text(&self, text: &Matrix) -> Result<Vec<Code>, CcaError> {
        Ok(signs(&self.text_outputs(text)?))
    }

    /// The model as two nets without hidden layers, `h = W x + b` with
    /// `W = (projection * rotation)^T` and `b = -mean * projection * rotation` (products in f64),
    /// so that the model file, the encoders and the fast path serve CCA-ITQ like the deep methods:
    /// `(image, text)`, each `[weight (bits x dim, row-major), bias (bits)]`.
    pub fn linear_layers(&self) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (
            linear(&self.image_projection, &self.image_mean, &self.rotation),
            linear(&self.text_projection, &self.text_mean, &self.rotation),
        )
    }
}

/// `[W, b]` of [`CcaItq::linear_layers`] for one side.
fn linear(proj: &Matrix, mean: &[f32], rotation: &Matrix) -> Vec<Vec<f32>> {
    let (d, c) = (proj.rows, rotation.cols);
    // pr = proj (d x k) * rotation (k x c), in f64.
    let mut pr = vec![0f64; d * c];
    for i in 0..d {
        for k in 0..proj.cols {
            let a = proj.row(i)[k] as f64;
            for j in 0..c {
                pr[i * c + j] += a * rotation.row(k)[j] as f64;
            }
        }
    }
    let weight: Vec<f32> = (0..c * d).map(|o| pr[(o % d) * c + o / d] as f32).collect();
    let bias: Vec<f32> = (0..c)
        .map(|j| {
            -(0..d).map(|i| mean.get(i).copied().unwrap_or(0.0) as f64 * pr[i * c + j]).sum::<f64>() as f32
        })
        .collect();
    vec![weight, bias]
}

/// One code per row: bit k set where column k is > 0. Outputs are finite (inputs are checked) and
/// 1 <= bits <= MAX_BITS, so `from_signs` cannot fail here; a zero code is the defensive fallback.
fn signs(m: &Matrix) -> Vec<Code> {
    (0..m.rows)
        .map(|i| {
            Code::from_signs(m.row(i).iter().map(|&v| v as f64))
                .unwrap_or_else(|_| Code::zeros(m.cols as u32))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two views of a shared 2-d latent signal plus independent noise dimensions: CCA must find
    /// correlations near 1 for the first two directions and near 0 after.
    fn synthetic(n: usize, seed: u64) -> (Matrix, Matrix) {
        let mut rng = SeededRng::new(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b) = (rng.normal(), rng.normal());
            let e: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            x.extend([a + 0.01 * e[0], b - a, e[1], 5.0 + e[2]].map(|v| v as f32));
            y.extend([2.0 * b + 0.01 * e[3], a + b, e[4], e[5]].map(|v| v as f32));
        }
        (Matrix::new(n, 4, x), Matrix::new(n, 4, y))
    }

    #[test]
    fn cca_recovers_shared_directions() {
        let (x, y) = synthetic(2000, 1);
        let cca = Cca::fit(&x, &y, 4, &CcaConfig { reg: 1e-6, ..Default::default() }).unwrap();
        let c = &cca.correlations;
        assert!(c[0] > 0.99 && c[1] > 0.99, "{c:?}");
        assert!(c[2] < 0.1 && c[3] < 0.1, "{c:?}");
        // The canonical variates of the two views agree on the shared directions.
        let (ex, ey) = (cca.embed_image(&x).unwrap(), cca.embed_text(&y).unwrap());
        let mut diff = 0.0;
        let mut norm = 0.0;
        for i in 0..x.rows {
            for k in 0..2 {
                diff += (ex.row(i)[k] - ey.row(i)[k]).powi(2);
                norm += ex.row(i)[k].powi(2);
            }
        }
        assert!(diff / norm < 0.02, "relative disagreement {}", diff / norm);
    }

    #[test]
    fn itq_rotation_is_orthogonal_and_codes_match_across_views() {
        let (x, y) = synthetic(1000, 2);
        for bits in [2usize, 8] {
            let m = CcaItq::fit(&x, &y, bits, 3).unwrap();
            let r = &m.rotation;
            for i in 0..bits {
                for j in 0..bits {
                    let d: f32 = (0..bits).map(|k| r.row(i)[k] * r.row(j)[k]).sum();
                    assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-4);
                }
            }
            let (cx, cy) = (m.encode_image(&x).unwrap(), m.encode_text(&y).unwrap());
            assert_eq!(cx.len(), 1000);
            assert!(cx.iter().all(|c| c.nbits() == bits as u32));
            let mean_dist =
                cx.iter().zip(&cy).map(|(a, b)| jdsh_core::code::hamming(a.bytes(), b.bytes())).sum::<u32>()
                    as f64
                    / 1000.0;
            assert!(mean_dist < 0.15 * bits as f64, "{bits} bits: paired codes differ in {mean_dist} bits");
            // Deterministic in the seed.
            assert_eq!(CcaItq::fit(&x, &y, bits, 3).unwrap(), m);
        }
        assert!(matches!(
            CcaItq::fit(&x, &y, 8, 3).unwrap().encode_image(&Matrix::zeros(1, 5)),
            Err(CcaError::WrongDim { .. })
        ));
        assert_eq!(CcaItq::fit(&x, &y, 0, 3), Err(CcaError::Bits { bits: 0, max: jdsh_core::MAX_BITS }));
    }
}
