//! The `train` entry point's contract: bad input is a clear error (never a panic), `Break` from
//! the progress callback cancels, progress comes once per mini-batch, and a seed makes CPU
//! training deterministic.

mod common;

use std::ops::ControlFlow;

use jdsh_trainer::data::{ImageInput, Labels, Matrix, PairedData, TextInput};
use jdsh_trainer::{train, DeviceChoice, Method, NoProgress, Phase, ProgressEvent, TrainConfig, TrainError};

fn cfg(method: Method) -> TrainConfig {
    let mut c = TrainConfig::defaults(method, 8);
    c.epochs = 2;
    c.image_hidden = vec![16];
    c.text_hidden = vec![16];
    c.device = DeviceChoice::Cpu;
    c.threads = Some(1);
    c
}

#[test]
fn bad_inputs_are_errors() {
    let good = common::synthetic(40, 4, 1);
    let empty = PairedData {
        image: ImageInput::Features(Matrix::zeros(0, 8)),
        text: TextInput::Features(Matrix::zeros(0, 5)),
        labels: None,
    };
    assert!(matches!(train(&empty, &cfg(Method::Jdsh), &mut NoProgress), Err(TrainError::Empty)));

    let mut short = good.clone();
    short.text = TextInput::Features(Matrix::zeros(39, 5));
    assert!(matches!(
        train(&short, &cfg(Method::Jdsh), &mut NoProgress),
        Err(TrainError::LengthMismatch { .. })
    ));

    let mut nan = good.clone();
    if let ImageInput::Features(m) = &mut nan.image {
        m.row_mut(3)[2] = f32::NAN;
    }
    let e = train(&nan, &cfg(Method::Jdsh), &mut NoProgress).unwrap_err();
    assert!(matches!(e, TrainError::NonFinite { modality: "image", row: 3, col: 2 }), "{e}");

    let mut inf = good.clone();
    if let TextInput::Features(m) = &mut inf.text {
        m.row_mut(0)[0] = f32::INFINITY;
    }
    assert!(matches!(train(&inf, &cfg(Method::Jdsh), &mut NoProgress), Err(TrainError::NonFinite { .. })));

    let tiny = common::synthetic(3, 2, 1);
    assert!(matches!(train(&tiny, &cfg(Method::Jdsh), &mut NoProgress), Err(TrainError::TooFewRows { .. })));

    let mut unlabelled = good.clone();
    unlabelled.labels = None;
    assert!(matches!(
        train(&unlabelled, &cfg(Method::Dcmh), &mut NoProgress),
        Err(TrainError::LabelsRequired { method: Method::Dcmh })
    ));
    let mut bad_label = good.clone();
    bad_label.labels = Some(Labels { classes: 2, sets: vec![vec![5]; 40] });
    assert!(matches!(
        train(&bad_label, &cfg(Method::Dcmh), &mut NoProgress),
        Err(TrainError::BadLabel { .. })
    ));
    let mut few_labels = good.clone();
    few_labels.labels = Some(Labels { classes: 4, sets: vec![vec![0]; 10] });
    assert!(matches!(
        train(&few_labels, &cfg(Method::Dcmh), &mut NoProgress),
        Err(TrainError::LabelCount { .. })
    ));

    let mut zero_bits = cfg(Method::Jdsh);
    zero_bits.bits = 0;
    assert!(matches!(train(&good, &zero_bits, &mut NoProgress), Err(TrainError::Config(_))));
    let mut bad_lr = cfg(Method::Jdsh);
    bad_lr.lr_text = f64::NAN;
    assert!(matches!(train(&good, &bad_lr, &mut NoProgress), Err(TrainError::Config(_))));
    let mut cnn_on_features = cfg(Method::Jdsh);
    cnn_on_features.image_net = jdsh_trainer::ImageNetKind::Cnn { size: 16, channels: vec![4] };
    assert!(matches!(train(&good, &cnn_on_features, &mut NoProgress), Err(TrainError::Config(_))));
    // Texts with no word in two documents: an empty vocabulary.
    let mut lonely = good.clone();
    lonely.text = TextInput::Raw((0..40).map(|i| format!("unique{i}")).collect());
    assert!(matches!(train(&lonely, &cfg(Method::Jdsh), &mut NoProgress), Err(TrainError::Text(_))));
}

#[test]
fn break_cancels_promptly() {
    let data = common::synthetic(64, 4, 2);
    for method in [Method::Jdsh, Method::Dcmh] {
        let mut seen = 0usize;
        let mut stop_after_three = |e: &ProgressEvent| {
            if e.phase == Phase::Training {
                seen += 1;
            }
            if seen >= 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let mut c = cfg(method);
        c.epochs = 1000;
        let t0 = std::time::Instant::now();
        let r = train(&data, &c, &mut stop_after_three);
        assert!(matches!(r, Err(TrainError::Cancelled)), "{method}");
        assert_eq!(seen, 3);
        assert!(t0.elapsed().as_secs() < 10);
    }
    // Cancelling before training starts.
    let r = train(&data, &cfg(Method::Jdsh), &mut |_: &ProgressEvent| ControlFlow::Break(()));
    assert!(matches!(r, Err(TrainError::Cancelled)));
}

#[test]
fn progress_once_per_batch_with_estimates() {
    let data = common::synthetic(64, 4, 3);
    let mut events = Vec::new();
    let mut record = |e: &ProgressEvent| {
        events.push(e.clone());
        ControlFlow::Continue(())
    };
    let c = cfg(Method::Jdsh);
    train(&data, &c, &mut record).unwrap();
    let steps: Vec<&ProgressEvent> = events.iter().filter(|e| e.phase == Phase::Training).collect();
    // 64 pairs / batch 32 = 2 batches per epoch, 2 epochs.
    assert_eq!(steps.len(), 4);
    assert!(steps
        .iter()
        .all(|e| e.batches == 2 && e.epochs == 2 && e.loss.is_finite() && e.remaining.is_some()));
    assert_eq!(steps.last().unwrap().remaining, Some(std::time::Duration::ZERO));
}

#[test]
fn seeded_cpu_training_is_deterministic() {
    let data = common::synthetic(64, 4, 4);
    for method in [Method::Jdsh, Method::Dcmh] {
        let a = train(&data, &cfg(method), &mut NoProgress).unwrap();
        let b = train(&data, &cfg(method), &mut NoProgress).unwrap();
        let cpu = DeviceChoice::Cpu;
        assert_eq!(a.encode_image(&data.image, cpu).unwrap(), b.encode_image(&data.image, cpu).unwrap());
        assert_eq!(a.encode_text(&data.text, cpu).unwrap(), b.encode_text(&data.text, cpu).unwrap());
        let mut other = cfg(method);
        other.seed = 99;
        let c = train(&data, &other, &mut NoProgress).unwrap();
        assert_ne!(a.encode_text(&data.text, cpu).unwrap(), c.encode_text(&data.text, cpu).unwrap());
    }
}

#[test]
fn holdout_map_is_recorded() {
    let data = common::synthetic(120, 4, 5);
    let mut c = cfg(Method::Dcmh);
    c.holdout = 0.25;
    c.epochs = 20;
    let m = train(&data, &c, &mut NoProgress).unwrap();
    let h = m.meta().metrics.holdout.clone().expect("holdout MAP");
    assert_eq!((h.queries, h.retrieval), (30, 90));
    assert!(h.image_to_text > 0.0 && h.text_to_image > 0.0);
    assert_eq!(m.meta().metrics.train_pairs, 90);
}

/// CCA-ITQ's `epochs` are its ITQ iterations: the model holds `CcaItq::fit_with` with that many
/// iterations on the pipeline outputs (as `linear_layers`), the metadata records them, and the
/// default is the ITQ default (50), so the default model is the one CCA-ITQ always gave.
#[test]
fn cca_itq_epochs_are_itq_iterations() {
    use jdsh_trainer::image::ImagePipeline;
    use jdsh_trainer::methods::cca_itq::{CcaConfig, CcaItq};
    use jdsh_trainer::text::TextPipeline;
    use safetensors::SafeTensors;

    let data = common::synthetic(60, 4, 3);
    let mut base = TrainConfig::defaults(Method::CcaItq, 8);
    assert_eq!(base.epochs, CcaConfig::default().itq_iterations);
    base.device = DeviceChoice::Cpu;
    base.threads = Some(1);
    let x = ImagePipeline::fit(&data.image, &base.image_pipeline).unwrap().transform(&data.image).unwrap();
    let y = TextPipeline::fit(&data.text, &base.text_pipeline).unwrap().transform(&data.text).unwrap();
    let mut weights = Vec::new();
    for epochs in [1, 3, base.epochs] {
        let c = TrainConfig { epochs, ..base.clone() };
        let model = train(&data, &c, &mut NoProgress).unwrap();
        assert_eq!(model.meta().metrics.epochs, epochs);
        let itq = CcaConfig { itq_iterations: epochs, ..CcaConfig::default() };
        let (image, text) = CcaItq::fit_with(&x, &y, 8, c.seed, &itq).unwrap().linear_layers();
        let bytes = model.to_bytes().unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        for (name, expected) in [
            ("image.fc0.weight", &image[0]),
            ("image.fc0.bias", &image[1]),
            ("text.fc0.weight", &text[0]),
            ("text.fc0.bias", &text[1]),
        ] {
            let stored: Vec<f32> = file
                .tensor(name)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(&stored, expected, "{name} after {epochs} ITQ iterations");
        }
        weights.push(image[0].clone());
    }
    assert_ne!(weights[0], weights[2], "1 and 50 ITQ iterations gave the same rotation");
}
