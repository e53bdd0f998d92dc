//! EfficientNet-Lite0 (Google, ImageNet-1k), inference only.
//!
//! EfficientNet-B0 without squeeze-excitation, with ReLU6 instead of swish: a 3x3 stride-2 stem
//! to 32 channels, 16 inverted-residual (MBConv) blocks in 7 stages, a 1x1 head to 1280 channels,
//! global average pooling (the 1280-d feature) and a 1280 -> 1000 classifier. Every convolution is
//! bias-free and followed by BatchNorm (eps 1e-3, running statistics); convolutions use
//! TensorFlow's "SAME" padding (computed from the input size; an odd total puts the extra row and
//! column at the bottom and right).
//!
//! For speed, [`super::load`] folds every BatchNorm into the convolution before it
//! ([`EfficientNetLite0::fuse`]: one pass over the activations instead of two), and on the CPU the
//! forward pass runs in channels-last layout; the features differ from the unfused NCHW network
//! by about 1e-6 relative.
//!
//! The variables carry the names of the converted weights file (lukemelas' PyTorch port:
//! `_conv_stem`, `_bn0`, `_blocks.{i}.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2}`,
//! `_conv_head`, `_bn1`, `_fc`), so [`super::weights`] fills the [`nn::VarStore`] by name.

use tch::{nn, Device, Kind, Tensor};

/// Length of the pooled feature vector.
pub const FEATURE_DIM: usize = 1280;
/// ImageNet-1k classes of the classifier.
pub const CLASSES: usize = 1000;
/// Side of the input images the network was trained on.
pub const INPUT_SIZE: i64 = 224;
/// Channels of the stem.
const STEM: i64 = 32;
const BN_EPS: f64 = 1e-3;

/// One stage: `repeats` blocks; the first has `stride` and `input -> output` channels, the
/// others stride 1 and `output -> output`. `expansion` multiplies the input channels inside a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub repeats: usize,
    pub kernel: i64,
    pub stride: i64,
    pub input: i64,
    pub output: i64,
    pub expansion: i64,
}

const fn stage(repeats: usize, kernel: i64, stride: i64, input: i64, output: i64, expansion: i64) -> Stage {
    Stage { repeats, kernel, stride, input, output, expansion }
}

/// The seven stages of EfficientNet-Lite0 (those of B0).
pub const STAGES: [Stage; 7] = [
    stage(1, 3, 1, 32, 16, 1),
    stage(2, 3, 2, 16, 24, 6),
    stage(2, 5, 2, 24, 40, 6),
    stage(3, 3, 2, 40, 80, 6),
    stage(3, 5, 1, 80, 112, 6),
    stage(4, 5, 2, 112, 192, 6),
    stage(1, 3, 1, 192, 320, 6),
];

/// A bias-free convolution with TensorFlow "SAME" padding.
#[derive(Debug)]
struct SameConv {
    weight: Tensor,
    kernel: i64,
    stride: i64,
    groups: i64,
}

impl SameConv {
    fn new(p: nn::Path, input: i64, output: i64, kernel: i64, stride: i64, groups: i64) -> Self {
        let weight = p.zeros("weight", &[output, input / groups, kernel, kernel]);
        SameConv { weight, kernel, stride, groups }
    }

    /// Total padding of one spatial dimension of size `n`: enough for `ceil(n / stride)` outputs.
    fn pad(&self, n: i64) -> i64 {
        let out = (n + self.stride - 1) / self.stride;
        ((out - 1) * self.stride + self.kernel - n).max(0)
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, &self.weight, None)
    }

    fn forward_with(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let size = x.size();
        let (ph, pw) = (self.pad(size[2]), self.pad(size[3]));
        let s = [self.stride, self.stride];
        if ph % 2 == 0 && pw % 2 == 0 {
            // Symmetric: the convolution pads by itself, no padded copy of the input.
            x.conv2d(weight, bias, s, [ph / 2, pw / 2], [1, 1], self.groups)
        } else {
            x.zero_pad2d(pw / 2, pw - pw / 2, ph / 2, ph - ph / 2).conv2d(
                weight,
                bias,
                s,
                [0, 0],
                [1, 1],
                self.groups,
            )
        }
    }
}

/// BatchNorm with running statistics (eval mode).
#[derive(Debug)]
struct Bn {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl Bn {
    fn new(p: nn::Path, c: i64) -> Self {
        Bn {
            weight: p.zeros("weight", &[c]),
            bias: p.zeros("bias", &[c]),
            mean: p.zeros_no_train("running_mean", &[c]),
            var: p.zeros_no_train("running_var", &[c]),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.mean),
            Some(&self.var),
            false,
            0.0,
            BN_EPS,
            true,
        )
    }
}

/// Convolution, BatchNorm, and ReLU6 when `act`.
#[derive(Debug)]
struct ConvBn {
    conv: SameConv,
    bn: Bn,
    act: bool,
    /// The BatchNorm folded into the convolution: weight and bias.
    fused: Option<(Tensor, Tensor)>,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &nn::Path,
        conv: &str,
        bn: &str,
        input: i64,
        output: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
        act: bool,
    ) -> Self {
        ConvBn {
            conv: SameConv::new(p / conv, input, output, kernel, stride, groups),
            bn: Bn::new(p / bn, output),
            act,
            fused: None,
        }
    }

    fn fuse(&mut self) {
        let scale = &self.bn.weight / (&self.bn.var + BN_EPS).sqrt();
        let w = &self.conv.weight * scale.view([-1, 1, 1, 1]);
        let b = &self.bn.bias - &self.bn.mean * &scale;
        self.fused = Some((w, b));
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = match &self.fused {
            Some((w, b)) => self.conv.forward_with(x, w, Some(b)),
            None => self.bn.forward(&self.conv.forward(x)),
        };
        if self.act {
            let _ = y.relu6_();
        }
        y
    }
}

/// An inverted-residual block: 1x1 expansion (absent when the expansion is 1), depthwise k x k
/// (carrying the stride), 1x1 projection without activation, identity shortcut when the shape
/// is kept.
#[derive(Debug)]
struct Block {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl Block {
    fn new(p: nn::Path, kernel: i64, stride: i64, input: i64, output: i64, expansion: i64) -> Self {
        let mid = input * expansion;
        let expand =
            (expansion != 1).then(|| ConvBn::new(&p, "_expand_conv", "_bn0", input, mid, 1, 1, 1, true));
        Block {
            expand,
            depthwise: ConvBn::new(&p, "_depthwise_conv", "_bn1", mid, mid, kernel, stride, mid, true),
            project: ConvBn::new(&p, "_project_conv", "_bn2", mid, output, 1, 1, 1, false),
            residual: stride == 1 && input == output,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let h = match &self.expand {
            Some(e) => self.depthwise.forward(&e.forward(x)),
            None => self.depthwise.forward(x),
        };
        let mut y = self.project.forward(&h);
        if self.residual {
            let _ = y.g_add_(x);
        }
        y
    }
}

/// EfficientNet-Lite0 on one device. Build it with [`EfficientNetLite0::new`] (zero weights),
/// fill it with [`super::weights::load_into`] and [`EfficientNetLite0::fuse`] it, or do all three
/// with [`super::load`].
#[derive(Debug)]
pub struct EfficientNetLite0 {
    vs: nn::VarStore,
    stem: ConvBn,
    blocks: Vec<Block>,
    head: ConvBn,
    fc_weight: Tensor,
    fc_bias: Tensor,
}

impl EfficientNetLite0 {
    /// The network with every weight zero, on `device`, its variables named as in the weights file.
    pub fn new(device: Device) -> Self {
        let mut vs = nn::VarStore::new(device);
        let (stem, blocks, head, fc_weight, fc_bias) = {
            let root = vs.root();
            let stem = ConvBn::new(&root, "_conv_stem", "_bn0", 3, STEM, 3, 2, 1, true);
            let mut blocks = Vec::new();
            for st in STAGES {
                for r in 0..st.repeats {
                    let (stride, input) = if r == 0 { (st.stride, st.input) } else { (1, st.output) };
                    let p = &root / "_blocks" / blocks.len();
                    blocks.push(Block::new(p, st.kernel, stride, input, st.output, st.expansion));
                }
            }
            let last = STAGES[STAGES.len() - 1].output;
            let head = ConvBn::new(&root, "_conv_head", "_bn1", last, FEATURE_DIM as i64, 1, 1, 1, true);
            let fc = &root / "_fc";
            let fc_weight = fc.zeros("weight", &[CLASSES as i64, FEATURE_DIM as i64]);
            let fc_bias = fc.zeros("bias", &[CLASSES as i64]);
            (stem, blocks, head, fc_weight, fc_bias)
        };
        vs.freeze();
        EfficientNetLite0 { vs, stem, blocks, head, fc_weight, fc_bias }
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Folds every BatchNorm into the convolution before it: `w * s` and bias `beta - mean * s`
    /// with `s = gamma / sqrt(var + eps)`. Call it after the weights are loaded (later changes to
    /// the variables are not seen); [`super::load`] does.
    pub fn fuse(&mut self) {
        tch::no_grad(|| {
            self.stem.fuse();
            for b in &mut self.blocks {
                if let Some(e) = &mut b.expand {
                    e.fuse();
                }
                b.depthwise.fuse();
                b.project.fuse();
            }
            self.head.fuse();
        })
    }

    /// The variables, by name (what the weights file must hold).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Names and shapes of every variable, sorted by name.
    pub fn var_shapes(&self) -> Vec<(String, Vec<i64>)> {
        let mut v: Vec<_> = self.vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
        v.sort();
        v
    }

    /// Number of MBConv blocks (16).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Pooled features, `N x 1280`, of a batch `N x 3 x H x W` of normalised pixels
    /// (`(v - 127) / 128` on 0..255 values, RGB; H = W = 224 for ImageNet-like inputs). The input is
    /// moved to the network's device; the result stays there. Runs without gradients.
    pub fn features(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let mut x = x.to_device(self.device()).to_kind(Kind::Float);
            if self.device() == Device::Cpu {
                // Channels-last (NHWC strides, same shape): the convolutions keep that layout,
                // and oneDNN's depthwise kernels run ~20% faster in it.
                x = x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
            }
            let mut h = self.stem.forward(&x);
            for b in &self.blocks {
                h = b.forward(&h);
            }
            self.head.forward(&h).mean_dim([2i64, 3].as_slice(), false, Kind::Float)
        })
    }

    /// ImageNet-1k logits, `N x 1000`, of pooled features `N x 1280`.
    pub fn classify(&self, features: &Tensor) -> Tensor {
        tch::no_grad(|| features.to_device(self.device()).linear(&self.fc_weight, Some(&self.fc_bias)))
    }

    /// ImageNet-1k logits, `N x 1000`, of a batch of normalised pixels (see [`Self::features`]).
    pub fn logits(&self, x: &Tensor) -> Tensor {
        self.classify(&self.features(x))
    }
}
