//! Training and encoding from encoded image bytes: the hand-crafted feature pipeline with an MLP,
//! and the small CNN on decoded pixels (DCMH-style end-to-end). Both survive the model file and
//! encode the same codes after loading.

mod common;

use jdsh_trainer::data::{ImageInput, Matrix};
use jdsh_trainer::{
    train, DeviceChoice, EncodeError, ImageExtractor, ImageNetKind, Method, Model, NoProgress, TrainConfig,
};

/// An 8x8 RGB PNG filled with `rgb`, with a lighter square in one corner.
fn png(rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 8, 8);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header");
        let mut px = Vec::with_capacity(8 * 8 * 3);
        for y in 0..8 {
            for x in 0..8 {
                let light = if x < 3 && y < 3 { 60 } else { 0 };
                px.extend(rgb.iter().map(|&c| c.saturating_add(light)));
            }
        }
        w.write_image_data(&px).expect("png data");
    }
    out
}

fn data() -> jdsh_trainer::data::PairedData {
    let mut d = common::synthetic(48, 4, 9);
    let colours = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30]];
    d.image = ImageInput::Encoded((0..48).map(|i| png(colours[i % 4])).collect());
    d
}

fn config(method: Method, cnn: bool) -> TrainConfig {
    let mut c = TrainConfig::defaults(method, 16);
    c.epochs = 2;
    c.image_hidden = vec![16];
    c.text_hidden = vec![16];
    c.device = DeviceChoice::Cpu;
    c.threads = Some(1);
    // The pretrained backbone (the default) is tested in image_backbone_pipeline.rs.
    c.image_pipeline.backbone = ImageExtractor::Handcrafted;
    if cnn {
        c.image_net = ImageNetKind::Cnn { size: 16, channels: vec![4, 8] };
    }
    c
}

#[test]
fn handcrafted_and_cnn_models_round_trip() {
    let d = data();
    let cpu = DeviceChoice::Cpu;
    for (method, cnn) in [(Method::Jdsh, false), (Method::Jdsh, true), (Method::Dcmh, true)] {
        let model = train(&d, &config(method, cnn), &mut NoProgress).unwrap();
        let codes = model.encode_image(&d.image, cpu).unwrap();
        assert_eq!(codes.len(), 48);
        let back = Model::from_bytes(&model.to_bytes().unwrap()).unwrap();
        assert_eq!(back.encode_image(&d.image, cpu).unwrap(), codes, "{method} cnn={cnn}");
        assert_eq!(back.encode_image_torch(&d.image, cpu).unwrap(), codes, "{method} cnn={cnn}");
        // Feature vectors are not what these models read; garbage bytes are a decode error.
        let feats = ImageInput::Features(Matrix::zeros(1, 8));
        assert!(model.encode_image(&feats, cpu).is_err());
        let garbage = ImageInput::Encoded(vec![b"not an image".to_vec()]);
        assert!(matches!(model.encode_image(&garbage, cpu), Err(EncodeError::Image(_))));
    }
}
