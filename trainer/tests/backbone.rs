//! The EfficientNet-Lite0 port against reference values of the original network, the image
//! front end (decode, upsample, normalise), and CPU/CUDA agreement.
//!
//! Needs the weights (`scripts/fetch-backbone.sh`, found through `$JDSH_BACKBONE_DIR` or
//! `pg_config --sharedir`): without them the tests that use them fail, saying so.

use std::io::Write;

use jdsh_trainer::backbone::{
    self, weights, BackboneError, EfficientNetLite0, FeatureExtractor, SharedExtractor, FEATURE_DIM,
};
use jdsh_trainer::image::{self, ImageError};
use tch::{Device, Kind, Tensor};

/// The process's CPU extractor; a missing or wrong weights file fails the test with the hint.
fn cpu() -> SharedExtractor {
    FeatureExtractor::shared(Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

/// Reference input: raw[c, h, w] = (7c + 3h + 5w) mod 256, 224 x 224, normalised, `1 x 3 x 224 x 224`.
fn reference_input() -> Tensor {
    let mut raw = Vec::with_capacity(3 * 224 * 224);
    for c in 0..3 {
        for h in 0..224 {
            for w in 0..224 {
                raw.push(((7 * c + 3 * h + 5 * w) % 256) as f32);
            }
        }
    }
    backbone::normalize(&Tensor::from_slice(&raw).view([1, 3, 224, 224]))
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1])).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Writes past the test harness's output capture, so that a skip shows in a plain `cargo test`.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

#[test]
fn reference_values_of_the_original_network() {
    let ex = cpu();
    let ex = ex.lock().unwrap();
    let net = ex.net();
    let f = net.features(&reference_input());
    assert_eq!(f.size(), [1, FEATURE_DIM as i64]);
    let v = to_vec(&f);
    let sum: f32 = v.iter().sum();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nonzero = v.iter().filter(|&&x| x != 0.0).count();
    say(&format!("backbone reference: feature sum {sum:.4}, L2 norm {norm:.4}, {nonzero} of 1280 non-zero"));
    assert!((sum - 162.5446).abs() < 1e-2, "feature sum {sum}, expected 162.5446");
    assert!((norm - 16.5823).abs() < 1e-3, "feature norm {norm}, expected 16.5823");
    assert_eq!(nonzero, 355, "non-zero features");

    let logits = to_vec(&net.logits(&reference_input()));
    assert_eq!(logits.len(), 1000);
    let mut order: Vec<usize> = (0..1000).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top3: Vec<(usize, f32)> = order[..3].iter().map(|&i| (i, logits[i])).collect();
    say(&format!("backbone reference: top-3 logits {top3:?}"));
    for ((i, v), (j, w)) in top3.iter().zip([(807, 6.4598f32), (753, 6.2509), (905, 5.3741)]) {
        assert_eq!(*i, j, "top-3 classes {top3:?}, expected 807, 753, 905");
        assert!((v - w).abs() < 1e-3, "logit {i} is {v}, expected {w}");
    }
    // classify(features) is logits.
    assert!(max_abs_diff(&to_vec(&net.classify(&f)), &logits) < 1e-5);
}

#[test]
fn the_network_has_the_lite0_shapes() {
    let net = EfficientNetLite0::new(Device::Cpu);
    assert_eq!(net.num_blocks(), 16);
    let shapes = net.var_shapes();
    // 296 tensors in the .pth, less the 49 BatchNorm num_batches_tracked counters.
    assert_eq!(shapes.len(), 247);
    let get = |k: &str| shapes.iter().find(|(n, _)| n == k).map(|(_, s)| s.clone());
    assert_eq!(get("_conv_stem.weight"), Some(vec![32, 3, 3, 3]));
    assert_eq!(get("_blocks.0._expand_conv.weight"), None);
    assert_eq!(get("_blocks.0._depthwise_conv.weight"), Some(vec![32, 1, 3, 3]));
    assert_eq!(get("_blocks.3._depthwise_conv.weight"), Some(vec![144, 1, 5, 5]));
    assert_eq!(get("_blocks.15._project_conv.weight"), Some(vec![320, 1152, 1, 1]));
    assert_eq!(get("_bn1.running_var"), Some(vec![1280]));
    assert_eq!(get("_fc.weight"), Some(vec![1000, 1280]));
    // Any input size works ("SAME" padding), odd ones included; 225 -> 8 x 8 before pooling.
    let f = net.features(&Tensor::zeros([2, 3, 225, 190], (Kind::Float, Device::Cpu)));
    assert_eq!(f.size(), [2, 1280]);
}

#[test]
fn a_missing_weights_file_is_an_error_with_the_fetch_hint() {
    let err =
        backbone::load(std::path::Path::new("/nonexistent/dir/x.safetensors"), Device::Cpu).unwrap_err();
    assert!(matches!(err, BackboneError::Missing { .. }));
    assert!(err.to_string().contains(weights::FETCH_HINT), "{err}");
}

/// A 64 x 64 RGBA PNG, emoji-like: a coloured disc with a gradient on a transparent background,
/// a half-transparent ring.
fn emoji_png(seed: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity(64 * 64 * 4);
    for y in 0..64u32 {
        for x in 0..64u32 {
            let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
            let r = (dx * dx + dy * dy).sqrt();
            let a = if r < 24.0 {
                255
            } else if r < 28.0 {
                128
            } else {
                0
            };
            px.extend([
                ((x * 4 + seed * 40) % 256) as u8,
                ((y * 3 + seed * 90) % 256) as u8,
                ((x * y / 16 + 60) % 256) as u8,
                a,
            ]);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 64, 64);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&px).unwrap();
    }
    out
}

#[test]
fn png_bytes_to_features() {
    let ex = cpu();
    let ex = ex.lock().unwrap();
    let (a, b) = (emoji_png(0), emoji_png(1));
    let m = ex.features(&[a.clone(), b.clone()]).unwrap();
    assert_eq!((m.rows, m.cols), (2, FEATURE_DIM));
    assert!(m.data.iter().all(|v| v.is_finite() && *v >= 0.0 && *v <= 6.0), "ReLU6 then mean");
    assert!(m.row(0).iter().filter(|&&v| v > 0.0).count() > 100);
    assert!(max_abs_diff(m.row(0), m.row(1)) > 1e-2, "different images, different features");
    // Deterministic, and a batch gives each image what it gets alone.
    assert_eq!(ex.features(&[a.clone(), b.clone()]).unwrap(), m);
    let alone = ex.features(std::slice::from_ref(&b)).unwrap();
    assert!(max_abs_diff(&alone.data, m.row(1)) < 1e-5);

    // The 64 px image upsampled by hand (decode, 0..255, bilinear to 224, normalise) gives the
    // same feature.
    let img = image::decode(&a).unwrap();
    assert_eq!((img.width, img.height), (64, 64));
    assert_eq!(&img.data[..3], &[1.0, 1.0, 1.0], "the transparent corner is white");
    let x = Tensor::from_slice(&img.data).view([1, 64, 64, 3]).permute([0, 3, 1, 2]) * 255.0;
    let x = backbone::normalize(&x.upsample_bilinear2d([224, 224], false, None, None));
    let by_hand = to_vec(&ex.net().features(&x));
    let diff = max_abs_diff(&by_hand, m.row(0));
    assert!(diff < 1e-5, "extractor vs upsampled tensor: max abs diff {diff}");

    // Other batch sizes: the same features, and errors name the item.
    let mut other = FeatureExtractor::load(&weights::default_path().unwrap(), Device::Cpu).unwrap();
    assert_eq!(other.batch_size(), FeatureExtractor::CPU_BATCH);
    other.set_batch_size(2);
    let three = other.features(&[b.clone(), a.clone(), b.clone()]).unwrap();
    assert!(max_abs_diff(three.row(1), m.row(0)) < 1e-5 && max_abs_diff(three.row(2), m.row(1)) < 1e-5);
    let err = other.features(&[a.clone(), b, b"nope".to_vec()]).unwrap_err();
    assert_eq!(err, BackboneError::Image(ImageError::UnknownFormat { index: 2 }));
    assert_eq!(ex.features(&Vec::<Vec<u8>>::new()).unwrap().rows, 0);
}

#[test]
fn large_images_are_shrunk_with_antialiasing() {
    // 448 x 300 -> 224 x 224 goes through the antialiased path: a 2x2 checkerboard averages to grey.
    let img = image::RgbImage {
        width: 448,
        height: 300,
        data: (0..448 * 300).flat_map(|p| [(((p % 448) + (p / 448)) % 2) as f32; 3]).collect(),
    };
    let x = backbone::input_tensor(&img);
    assert_eq!(x.size(), [1, 3, 224, 224]);
    let v = to_vec(&x);
    let grey = (127.5 - 127.0) / 128.0;
    let off = v.iter().map(|p| (p - grey).abs()).fold(0.0, f32::max);
    assert!(off < 0.3, "antialiased downsampling keeps the checkerboard near grey (max off {off})");
}

#[test]
fn cuda_gives_the_cpu_features() {
    if !tch::Cuda::is_available() {
        say("SKIPPED cuda_gives_the_cpu_features: libtorch sees no CUDA device");
        return;
    }
    let gpu = FeatureExtractor::shared(Device::Cuda(0)).unwrap_or_else(|e| panic!("{e}"));
    let gpu = gpu.lock().unwrap();
    let cpu = cpu();
    let cpu = cpu.lock().unwrap();
    let x = Tensor::cat(&[reference_input(), reference_input().flip([3])], 0);
    let (fg, fc) = (to_vec(&gpu.net().features(&x)), to_vec(&cpu.net().features(&x)));
    // cuDNN may use TF32 for convolutions: about 1e-3 relative.
    let diff = max_abs_diff(&fg, &fc);
    let scale = fc.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    say(&format!("backbone CUDA vs CPU: max abs diff {diff:.2e} (largest feature {scale:.3})"));
    assert!(diff < 2e-2 * scale.max(1.0), "CUDA vs CPU max abs diff {diff}");
    let pngs = [emoji_png(2), emoji_png(3)];
    let (mg, mc) = (gpu.features(&pngs).unwrap(), cpu.features(&pngs).unwrap());
    assert!(max_abs_diff(&mg.data, &mc.data) < 2e-2 * scale.max(1.0));
}
