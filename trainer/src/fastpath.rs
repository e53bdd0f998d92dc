//! A pure-Rust forward pass of the MLP hash nets, for encoding one item at a time inside a database
//! backend: a libtorch call costs microseconds of dispatch per operator, more than the arithmetic
//! of a small MLP. The first layer is stored input-major (one row of `hidden` weights per input
//! column), so a sparse bag-of-words costs (#words x hidden) and a dense input skips its zeros.
//! Per-row results do not depend on what else is in the batch, so a row's code is the same whether
//! it is encoded alone or with others.

use crate::nets::NetSpec;

#[derive(Debug, Clone)]
struct Dense {
    inputs: usize,
    outputs: usize,
    /// Row-major `outputs x inputs`.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// An MLP ready for CPU inference.
#[derive(Debug, Clone)]
pub struct FastMlp {
    inputs: usize,
    first_width: usize,
    /// `inputs x first_width`: row `i` is column `i` of the first layer's weight.
    first_t: Vec<f32>,
    first_bias: Vec<f32>,
    rest: Vec<Dense>,
}

/// Column statistics to fold into the first layer: the net was trained on `(x - center) / scale`.
pub struct Fold<'a> {
    pub center: Option<&'a [f32]>,
    pub scale: Option<&'a [f32]>,
}

impl FastMlp {
    /// From a net's parameter values (`param_shapes` order, lengths checked by the caller); `None`
    /// for a CNN. `fold`, when given, bakes input centring and scaling into the first layer so the
    /// forward can take raw (e.g. sparse, uncentred) inputs.
    pub fn new(spec: &NetSpec, values: &[Vec<f32>], fold: Option<Fold<'_>>) -> Option<FastMlp> {
        if spec.is_cnn() || values.len() < 2 || !values.len().is_multiple_of(2) {
            return None;
        }
        let (w0, b0) = (&values[0], &values[1]);
        let width = b0.len();
        if width == 0 || w0.len() % width != 0 {
            return None;
        }
        let inputs = w0.len() / width;
        let mut first_t = vec![0f32; w0.len()];
        let mut first_bias = b0.clone();
        let mut bias_shift = vec![0f64; width];
        for i in 0..inputs {
            let s = fold.as_ref().and_then(|f| f.scale).and_then(|s| s.get(i)).copied().unwrap_or(1.0);
            let c = fold.as_ref().and_then(|f| f.center).and_then(|c| c.get(i)).copied().unwrap_or(0.0);
            for o in 0..width {
                let w = w0[o * inputs + i] / s;
                first_t[i * width + o] = w;
                bias_shift[o] += w as f64 * c as f64;
            }
        }
        for (b, shift) in first_bias.iter_mut().zip(&bias_shift) {
            *b = (*b as f64 - shift) as f32;
        }
        let mut rest = Vec::new();
        let mut prev = width;
        for pair in values[2..].chunks_exact(2) {
            let outputs = pair[1].len();
            if outputs == 0 || pair[0].len() != outputs * prev {
                return None;
            }
            rest.push(Dense { inputs: prev, outputs, weight: pair[0].clone(), bias: pair[1].clone() });
            prev = outputs;
        }
        Some(FastMlp { inputs, first_width: width, first_t, first_bias, rest })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Output width (the code length).
    pub fn outputs(&self) -> usize {
        self.rest.last().map_or(self.first_width, |d| d.outputs)
    }

    /// Forward of one dense row (length `inputs`).
    pub fn forward_dense(&self, x: &[f32]) -> Vec<f32> {
        let mut h = self.first_bias.clone();
        for (i, &v) in x.iter().enumerate().take(self.inputs) {
            if v != 0.0 {
                axpy(&mut h, v, &self.first_t[i * self.first_width..(i + 1) * self.first_width]);
            }
        }
        self.finish(h)
    }

    /// Forward of one sparse row (`indices` < `inputs`, with their values); out-of-range indices
    /// are ignored.
    pub fn forward_sparse(&self, indices: &[u32], values: &[f32]) -> Vec<f32> {
        let mut h = self.first_bias.clone();
        for (&i, &v) in indices.iter().zip(values) {
            let i = i as usize;
            if i < self.inputs && v != 0.0 {
                axpy(&mut h, v, &self.first_t[i * self.first_width..(i + 1) * self.first_width]);
            }
        }
        self.finish(h)
    }

    fn finish(&self, mut h: Vec<f32>) -> Vec<f32> {
        for layer in &self.rest {
            h.iter_mut().for_each(|v| *v = v.max(0.0));
            let mut out = layer.bias.clone();
            for (o, acc) in out.iter_mut().enumerate() {
                *acc += dot(&layer.weight[o * layer.inputs..(o + 1) * layer.inputs], &h);
            }
            h = out;
        }
        h
    }
}

#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Dot product with 8 independent accumulators, so the compiler can keep them in one vector
/// register (a single running sum would serialise every add).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for k in 0..chunks {
        let (pa, pb) = (&a[k * 8..k * 8 + 8], &b[k * 8..k * 8 + 8]);
        for j in 0..8 {
            acc[j] += pa[j] * pb[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for k in chunks * 8..a.len().min(b.len()) {
        s += a[k] * b[k];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::NetInput;

    #[test]
    fn matches_a_hand_computed_mlp() {
        let spec =
            NetSpec { input: NetInput::Vector { dim: 2 }, conv_channels: vec![], hidden: vec![2], bits: 1 };
        // fc0: [[1, 2], [-1, 1]] + [0, -1]; fc1: [[1, 3]] + [0.5].
        let values = vec![vec![1.0, 2.0, -1.0, 1.0], vec![0.0, -1.0], vec![1.0, 3.0], vec![0.5]];
        let m = FastMlp::new(&spec, &values, None).unwrap();
        // x = (1, 1): h = relu(3, -1) = (3, 0) -> 3.5.
        assert_eq!(m.forward_dense(&[1.0, 1.0]), vec![3.5]);
        assert_eq!(m.forward_sparse(&[0, 1], &[1.0, 1.0]), vec![3.5]);
        // Folding: trained on (x - 1) / 2, fed raw x = (3, 3) -> same as (1, 1).
        let fold = Fold { center: Some(&[1.0, 1.0]), scale: Some(&[2.0, 2.0]) };
        let f = FastMlp::new(&spec, &values, Some(fold)).unwrap();
        assert_eq!(f.forward_dense(&[3.0, 3.0]), vec![3.5]);
        assert_eq!(f.outputs(), 1);
    }
}
