//! The Rust side of bench/backbone.sh (EfficientNet-Lite0 port vs PyTorch eager).
//!
//! `backbone_bench speed --batch B --seconds S [--threads T]`: forward passes (features, no
//! gradients) on the synthetic batch raw[n, c, h, w] = (7c + 3h + 5w + 11n) mod 256, normalised;
//! after warm-up, times passes for S seconds and prints one JSON line with every pass's seconds.
//!
//! `backbone_bench dump --out DIR IMAGE...`: for each image file, writes the decoded pixels
//! (`N.rgb.f32`: height x width x 3 in [0, 1], little-endian float32), the FeatureExtractor's
//! 1280-d feature (`N.feat.f32`) and the features of the synthetic batch of 2 (`synthetic.feat.f32`),
//! plus `index.json`, for bench/backbone_bench.py to compare with PyTorch.
//!
//! `cargo run --release -p jdsh-trainer --example backbone_bench -- speed --batch 32 --seconds 5`

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use jdsh_trainer::backbone::{self, FeatureExtractor};
use jdsh_trainer::image;
use tch::{Device, Tensor};

/// The synthetic batch both sides of the benchmark use.
fn synthetic(batch: i64) -> Tensor {
    let n = Tensor::arange(batch, (tch::Kind::Float, Device::Cpu)).view([-1, 1, 1, 1]);
    let c = Tensor::arange(3, (tch::Kind::Float, Device::Cpu)).view([1, -1, 1, 1]);
    let h = Tensor::arange(224, (tch::Kind::Float, Device::Cpu)).view([1, 1, -1, 1]);
    let w = Tensor::arange(224, (tch::Kind::Float, Device::Cpu)).view([1, 1, 1, -1]);
    let raw = (c * 7.0 + h * 3.0 + w * 5.0 + n * 11.0).remainder(256.0);
    backbone::normalize(&raw).contiguous()
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(|s| s.as_str())
}

fn write_f32(path: &PathBuf, t: &Tensor) -> std::io::Result<()> {
    let v = Vec::<f32>::try_from(t.to_device(Device::Cpu).contiguous().view([-1])).expect("float tensor");
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: i32 = arg(&args, "--threads").unwrap_or("1").parse()?;
    tch::set_num_threads(threads);
    tch::set_num_interop_threads(1);
    let ex = FeatureExtractor::shared(Device::Cpu)?;
    let ex = ex.lock().map_err(|_| "poisoned")?;
    match args.first().map(|s| s.as_str()) {
        Some("speed") => {
            let batch: i64 = arg(&args, "--batch").unwrap_or("1").parse()?;
            let seconds: f64 = arg(&args, "--seconds").unwrap_or("5").parse()?;
            let x = synthetic(batch);
            let warmup = Instant::now();
            let mut n = 0;
            while n < 2 || warmup.elapsed().as_secs_f64() < 0.5 {
                let _ = ex.net().features(&x);
                n += 1;
            }
            let mut times = Vec::new();
            let start = Instant::now();
            while times.is_empty() || start.elapsed().as_secs_f64() < seconds {
                let t = Instant::now();
                let f = ex.net().features(&x);
                assert_eq!(f.size(), [batch, 1280]);
                times.push(t.elapsed().as_secs_f64());
            }
            let times: Vec<String> = times.iter().map(|t| format!("{t:.6}")).collect();
            println!(
                "{{\"impl\": \"rust\", \"batch\": {batch}, \"threads\": {threads}, \"times\": [{}]}}",
                times.join(", ")
            );
        }
        Some("dump") => {
            let (out, files) = match &args[1..] {
                [flag, dir, files @ ..] if flag == "--out" => (PathBuf::from(dir), files),
                _ => return Err("usage: backbone_bench dump --out DIR IMAGE...".into()),
            };
            std::fs::create_dir_all(&out)?;
            let mut index = Vec::new();
            for (i, f) in files.iter().enumerate() {
                let bytes = std::fs::read(f)?;
                let img = image::decode(&bytes)?;
                let rgb = Tensor::from_slice(&img.data);
                write_f32(&out.join(format!("{i}.rgb.f32")), &rgb)?;
                let feat = ex.features(&[bytes])?;
                write_f32(&out.join(format!("{i}.feat.f32")), &Tensor::from_slice(&feat.data))?;
                index.push(format!(
                    "{{\"file\": {:?}, \"width\": {}, \"height\": {}, \"rgb\": \"{i}.rgb.f32\", \"feat\": \"{i}.feat.f32\"}}",
                    f, img.width, img.height
                ));
            }
            write_f32(&out.join("synthetic.feat.f32"), &ex.net().features(&synthetic(2)))?;
            let mut idx = std::fs::File::create(out.join("index.json"))?;
            writeln!(idx, "[{}]", index.join(",\n "))?;
        }
        _ => return Err("usage: backbone_bench speed --batch B --seconds S | dump --out DIR IMAGE...".into()),
    }
    Ok(())
}
