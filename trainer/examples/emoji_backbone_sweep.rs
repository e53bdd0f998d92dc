//! Tunes a method on the emoji protocol with EfficientNet-Lite0 image features: the features of
//! every image the protocol uses are extracted once (cached in `.cache/emoji/`, keyed by the
//! weights' sha256), then each configuration trains from them and is evaluated (MAP@all, 64 bits,
//! data card protocol). Training from the cached features is what a backbone pipeline does after
//! its single extraction pass (same standardisation), so the numbers carry over.
//!
//!   cargo run --release -p jdsh-trainer --example emoji_backbone_sweep -- \
//!       '{"method": "dcmh"}' '{"method": "dcmh", "dropout": 0.5}' ...
//!
//! Each argument is a JSON object of `TrainConfig` fields over the method's defaults (64 bits,
//! the CPU, one thread).
use std::io::{Read, Write};
use std::path::Path;

use jdsh_trainer::backbone::{weights, FeatureExtractor, FEATURE_DIM};
use jdsh_trainer::data::{self, emoji::LabelLevel, ImageInput, Matrix, PairedData};
use jdsh_trainer::eval::evaluate_codes;
use jdsh_trainer::{DeviceChoice, Method, NoProgress, TrainConfig};
use tch::Device;

fn features(x: &FeatureExtractor, input: &ImageInput) -> Matrix {
    match input {
        ImageInput::Encoded(b) => x.features(b).expect("features"),
        ImageInput::Features(m) => m.clone(),
    }
}

fn write_matrix(w: &mut impl Write, m: &Matrix) {
    w.write_all(&(m.rows as u64).to_le_bytes()).unwrap();
    for v in &m.data {
        w.write_all(&v.to_le_bytes()).unwrap();
    }
}

fn read_matrix(r: &mut impl Read) -> Matrix {
    let mut n = [0u8; 8];
    r.read_exact(&mut n).unwrap();
    let rows = u64::from_le_bytes(n) as usize;
    let mut bytes = vec![0u8; rows * FEATURE_DIM * 4];
    r.read_exact(&mut bytes).unwrap();
    let data = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Matrix::new(rows, FEATURE_DIM, data)
}

fn main() {
    tch::set_num_threads(1);
    let set = data::emoji_set().expect("emoji set: run scripts/fetch-emoji.sh");
    let mut proto = set.protocol(LabelLevel::Subcategory).expect("protocol");
    let cache = data::emoji_dir().join(format!("efficientnet-lite0-{}.f32", &weights::SHA256[..16]));
    let mats = if Path::new(&cache).exists() {
        let mut f = std::io::BufReader::new(std::fs::File::open(&cache).unwrap());
        [read_matrix(&mut f), read_matrix(&mut f), read_matrix(&mut f)]
    } else {
        let t0 = std::time::Instant::now();
        let x = FeatureExtractor::shared(Device::Cpu).expect("weights: run scripts/fetch-backbone.sh");
        let x = x.lock().unwrap();
        let m = [
            features(&x, &proto.train.image),
            features(&x, &proto.image_to_text.query),
            features(&x, &proto.text_to_image.retrieval),
        ];
        eprintln!(
            "extracted {} images in {:.0} s",
            m.iter().map(|m| m.rows).sum::<usize>(),
            t0.elapsed().as_secs_f64()
        );
        let mut f = std::io::BufWriter::new(std::fs::File::create(&cache).unwrap());
        m.iter().for_each(|m| write_matrix(&mut f, m));
        m
    };
    let [train, query, retrieval] = mats;
    proto.train = PairedData { image: ImageInput::Features(train), ..proto.train };
    proto.image_to_text.query = ImageInput::Features(query);
    proto.text_to_image.retrieval = ImageInput::Features(retrieval);

    for arg in std::env::args().skip(1) {
        let over: serde_json::Value = serde_json::from_str(&arg).expect("a JSON object");
        let method: Method =
            serde_json::from_value(over.get("method").cloned().unwrap_or("dcmh".into())).expect("method");
        let mut cfg = serde_json::to_value(TrainConfig::defaults(method, 64)).unwrap();
        merge(&mut cfg, &over);
        let mut cfg: TrainConfig = serde_json::from_value(cfg).expect("a TrainConfig");
        cfg.device = DeviceChoice::Cpu;
        let t0 = std::time::Instant::now();
        let model = jdsh_trainer::train(&proto.train, &cfg, &mut NoProgress).expect("training");
        let secs = t0.elapsed().as_secs_f64();
        let d = DeviceChoice::Cpu;
        let (i2t, t2i) = (&proto.image_to_text, &proto.text_to_image);
        let qi = model.encode_image(&i2t.query, d).unwrap();
        let rt = model.encode_text(&i2t.retrieval, d).unwrap();
        let qt = model.encode_text(&t2i.query, d).unwrap();
        let ri = model.encode_image(&t2i.retrieval, d).unwrap();
        let a = evaluate_codes(&qi, &rt, &i2t.query_labels, &i2t.retrieval_labels, &[], &[]).unwrap();
        let b = evaluate_codes(&qt, &ri, &t2i.query_labels, &t2i.retrieval_labels, &[], &[]).unwrap();
        println!("{:.3} {:.3} {:5.0}s {arg}", a.map_all, b.map_all, secs);
    }
}

/// `over`'s fields into `base`, objects merged recursively.
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}
