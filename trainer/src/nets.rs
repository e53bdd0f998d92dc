//! The hash networks: an MLP over feature vectors (or a bag-of-words, whose first layer is then an
//! embedding bag), and a small CNN over decoded pixels. Both end in a linear hash layer whose output
//! `h` is binarised as `h > 0` (JDSH trains through `methods::jdsh::scaled_tanh`).
//!
//! A net is a list of layers held as plain tensors, so the same forward serves training (tensors
//! from a `VarStore`, with gradients) and inference (tensors rebuilt from a model file).

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

/// The shape of a hash network; stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub input: NetInput,
    /// Output channels of the 3x3 stride-2 convolutions (empty for an MLP).
    #[serde(default)]
    pub conv_channels: Vec<usize>,
    /// Widths of the hidden fully connected layers (ReLU after each).
    pub hidden: Vec<usize>,
    pub bits: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetInput {
    /// A vector of `dim` values (features, or a bag-of-words over `dim` words).
    Vector { dim: usize },
    /// Decoded pixels, `channels x height x width`, values in [0, 1].
    Pixels { channels: usize, height: usize, width: usize },
}

/// How the weights of a new net are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// PyTorch's default for Linear/Conv (uniform in +-1/sqrt(fan_in)), as JDSH's code uses.
    Default,
    /// N(0, std^2) weights and zero biases, as DCMH's MATLAB code (std 0.01).
    Normal { std: f64 },
}

impl NetSpec {
    pub fn is_cnn(&self) -> bool {
        !self.conv_channels.is_empty()
    }

    /// Input width of the first fully connected layer.
    fn fc_input(&self) -> usize {
        match (self.input, self.conv_channels.last()) {
            (_, Some(&c)) => c,
            (NetInput::Vector { dim }, None) => dim,
            (NetInput::Pixels { channels, height, width }, None) => channels * height * width,
        }
    }

    /// Names and shapes of every parameter, in forward order (weight then bias per layer). The
    /// model file stores exactly these, prefixed by the modality.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut in_ch = match self.input {
            NetInput::Pixels { channels, .. } => channels,
            NetInput::Vector { .. } => 0,
        };
        for (i, &c) in self.conv_channels.iter().enumerate() {
            out.push((format!("conv{i}.weight"), vec![c, in_ch, 3, 3]));
            out.push((format!("conv{i}.bias"), vec![c]));
            in_ch = c;
        }
        let mut width = self.fc_input();
        for (i, &h) in self.hidden.iter().chain(std::iter::once(&self.bits)).enumerate() {
            out.push((format!("fc{i}.weight"), vec![h, width]));
            out.push((format!("fc{i}.bias"), vec![h]));
            width = h;
        }
        out
    }

    /// Multiply-adds per item of the fully connected part (for throughput estimates).
    pub fn fc_macs(&self) -> usize {
        let mut width = self.fc_input();
        let mut macs = 0;
        for &h in self.hidden.iter().chain(std::iter::once(&self.bits)) {
            macs += width * h;
            width = h;
        }
        macs
    }
}

/// A network as an ordered list of parameter tensors matching [`NetSpec::param_shapes`].
#[derive(Debug)]
pub struct HashNet {
    pub spec: NetSpec,
    params: Vec<Tensor>,
}

impl HashNet {
    /// A new trainable net whose parameters live in `path`'s var store.
    pub fn new(path: &nn::Path, spec: &NetSpec, init: Init) -> HashNet {
        let mut params = Vec::new();
        for (name, shape) in spec.param_shapes() {
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let is_bias = shape.len() == 1;
            let init = match init {
                // PyTorch's kaiming_uniform(a = sqrt 5) reduces to this bound for weights too.
                Init::Default => nn::Init::Uniform { lo: -bound, up: bound },
                Init::Normal { .. } if is_bias => nn::Init::Const(0.0),
                Init::Normal { std } => nn::Init::Randn { mean: 0.0, stdev: std },
            };
            // Var-store names cannot contain '.'; the file names (`param_shapes`) keep it.
            params.push(path.var(&name.replace('.', "_"), &dims, init));
        }
        HashNet { spec: spec.clone(), params }
    }

    /// A frozen net from stored values (one `Vec<f32>` per parameter, in `param_shapes` order; the
    /// caller has checked the lengths).
    pub fn from_values(spec: &NetSpec, values: &[Vec<f32>], device: Device) -> HashNet {
        let params = spec
            .param_shapes()
            .iter()
            .zip(values)
            .map(|((_, shape), v)| {
                let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                Tensor::from_slice(v).reshape(&dims).to_device(device)
            })
            .collect();
        HashNet { spec: spec.clone(), params }
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Copies every parameter to host memory, in `param_shapes` order.
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.params
            .iter()
            .map(|p| {
                let flat = p.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view(-1);
                Vec::<f32>::try_from(&flat).unwrap_or_default()
            })
            .collect()
    }

    /// The real-valued hash output `h` (n x bits), before any tanh. `x` is (n x dim) for an MLP,
    /// (n x C x H x W) for a CNN.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_t(x, 0.0)
    }

    /// [`HashNet::forward`] in training mode: dropout with probability `dropout` after each hidden
    /// fully connected layer's ReLU (0 = none, exactly `forward`).
    pub fn forward_t(&self, x: &Tensor, dropout: f64) -> Tensor {
        let n_conv = self.spec.conv_channels.len();
        let mut h = x.shallow_clone();
        for i in 0..n_conv {
            let (w, b) = (&self.params[2 * i], &self.params[2 * i + 1]);
            h = h.conv2d(w, Some(b), [2, 2], [1, 1], [1, 1], 1).relu();
        }
        if n_conv > 0 {
            h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        } else if h.dim() > 2 {
            h = h.flatten(1, -1);
        }
        let fc = &self.params[2 * n_conv..];
        let n_fc = fc.len() / 2;
        for i in 0..n_fc {
            h = h.linear(&fc[2 * i], Some(&fc[2 * i + 1]));
            if i + 1 < n_fc {
                h = h.relu();
                if dropout > 0.0 {
                    h = h.dropout(dropout, true);
                }
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_shapes_and_forward() {
        let vs = nn::VarStore::new(Device::Cpu);
        let spec =
            NetSpec { input: NetInput::Vector { dim: 5 }, conv_channels: vec![], hidden: vec![7], bits: 3 };
        let net = HashNet::new(&vs.root(), &spec, Init::Default);
        let shapes = spec.param_shapes();
        assert_eq!(shapes.len(), 4);
        assert_eq!(shapes[0].1, vec![7, 5]);
        assert_eq!(shapes[2].1, vec![3, 7]);
        let h = net.forward(&Tensor::ones([4, 5], (Kind::Float, Device::Cpu)));
        assert_eq!(h.size(), vec![4, 3]);
        let copy = HashNet::from_values(&spec, &net.values(), Device::Cpu);
        let x = Tensor::randn([2, 5], (Kind::Float, Device::Cpu));
        assert!(net.forward(&x).allclose(&copy.forward(&x), 0.0, 0.0, false));
    }

    #[test]
    fn cnn_forward() {
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = NetSpec {
            input: NetInput::Pixels { channels: 3, height: 16, width: 16 },
            conv_channels: vec![4, 8],
            hidden: vec![6],
            bits: 8,
        };
        let net = HashNet::new(&vs.root(), &spec, Init::Normal { std: 0.01 });
        let h = net.forward(&Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu)));
        assert_eq!(h.size(), vec![2, 8]);
        assert_eq!(spec.param_shapes()[4].1, vec![6, 8]);
    }
}
