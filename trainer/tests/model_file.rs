//! The model file: a round trip gives identical codes, the CPU fast path gives the libtorch path's
//! codes, and corrupt, truncated or foreign files are clear errors, never panics.

mod common;

use std::collections::HashMap;

use jdsh_trainer::{train, DeviceChoice, Method, Model, ModelError, NoProgress, TrainConfig};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

fn small_config(method: Method) -> TrainConfig {
    let mut cfg = TrainConfig::defaults(method, 16);
    cfg.epochs = 3;
    cfg.image_hidden = vec![32];
    cfg.text_hidden = vec![32];
    cfg.device = DeviceChoice::Cpu;
    cfg.threads = Some(1);
    cfg
}

fn trained() -> (Model, jdsh_trainer::data::PairedData) {
    let data = common::synthetic(96, 4, 1);
    (train(&data, &small_config(Method::Jdsh), &mut NoProgress).unwrap(), data)
}

#[test]
fn round_trip_gives_identical_codes() {
    let (model, data) = trained();
    let bytes = model.to_bytes().unwrap();
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back.meta(), model.meta());
    assert_eq!(back.to_bytes().unwrap(), bytes, "serialisation is deterministic");
    let cpu = DeviceChoice::Cpu;
    assert_eq!(back.encode_image(&data.image, cpu).unwrap(), model.encode_image(&data.image, cpu).unwrap());
    assert_eq!(back.encode_text(&data.text, cpu).unwrap(), model.encode_text(&data.text, cpu).unwrap());
    let path = std::env::temp_dir().join(format!("jdsh-roundtrip-{}.safetensors", std::process::id()));
    model.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded.encode_text(&data.text, cpu).unwrap(), model.encode_text(&data.text, cpu).unwrap());
}

#[test]
fn fast_path_matches_libtorch_and_single_matches_batch() {
    let (model, data) = trained();
    let cpu = DeviceChoice::Cpu;
    let fast_i = model.encode_image(&data.image, cpu).unwrap();
    let fast_t = model.encode_text(&data.text, cpu).unwrap();
    assert_eq!(fast_i, model.encode_image_torch(&data.image, cpu).unwrap());
    assert_eq!(fast_t, model.encode_text_torch(&data.text, cpu).unwrap());
    // One at a time gives the batch's codes.
    let jdsh_trainer::data::TextInput::Features(m) = &data.text else { unreachable!() };
    for i in [0, 17, 95] {
        let one = jdsh_trainer::data::TextInput::Features(m.select(&[i]));
        assert_eq!(model.encode_text(&one, cpu).unwrap()[0], fast_t[i]);
    }
    // Raw texts: the sparse embedding-bag path with folded centring matches the dense libtorch path.
    let raw = common::synthetic_texts(96, 4, 2);
    let m2 = train(&raw, &small_config(Method::Jdsh), &mut NoProgress).unwrap();
    let sparse = m2.encode_text(&raw.text, cpu).unwrap();
    assert_eq!(sparse, m2.encode_text_torch(&raw.text, cpu).unwrap());
    let one = jdsh_trainer::data::TextInput::Raw(vec!["class1 topic1 word3 unknownword".into()]);
    assert_eq!(m2.encode_text(&one, cpu).unwrap(), m2.encode_text_torch(&one, cpu).unwrap());
    assert_eq!(sparse[0].nbits(), 16);
}

/// Rebuilds the file with the metadata JSON and tensors passed through `edit`.
fn rewrite(
    bytes: &[u8],
    edit: impl Fn(&mut serde_json::Value, &mut Vec<(String, Vec<usize>, Vec<u8>)>),
) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(header.metadata().as_ref().unwrap().get("jdsh").unwrap()).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut meta, &mut tensors);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
        .collect();
    safetensors::serialize(views, Some(HashMap::from([("jdsh".to_string(), meta.to_string())]))).unwrap()
}

#[test]
fn corrupt_files_are_errors() {
    let (model, _) = trained();
    let bytes = model.to_bytes().unwrap();
    // Truncated anywhere.
    for cut in [0, 4, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(Model::from_bytes(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
    // A flipped byte in the header length or the JSON header.
    for pos in [0, 3, 7, 9, 20, 60] {
        let mut b = bytes.clone();
        b[pos] ^= 0x5a;
        assert!(Model::from_bytes(&b).is_err(), "flipped byte {pos}");
    }
    // Every single-byte flip of the header never panics (the data part may still parse).
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for pos in (0..8 + header_len).step_by(7) {
        let mut b = bytes.clone();
        b[pos] = b[pos].wrapping_add(1);
        let _ = Model::from_bytes(&b);
    }
    // Wrong version.
    let v2 = rewrite(&bytes, |m, _| m["version"] = 2.into());
    assert!(matches!(Model::from_bytes(&v2), Err(ModelError::Version { found: 2 })));
    // Unknown method.
    let bad_method = rewrite(&bytes, |m, _| m["method"] = "magic".into());
    assert!(matches!(Model::from_bytes(&bad_method), Err(ModelError::Metadata(_))));
    // A tensor of the wrong shape (metadata says 32 hidden units, the tensor has 31 rows).
    let bad_shape = rewrite(&bytes, |_, t| {
        let w = t.iter_mut().find(|(n, _, _)| n == "text.fc0.weight").unwrap();
        let row = w.1[1] * 4;
        w.1[0] -= 1;
        w.2.truncate(w.2.len() - row);
    });
    assert!(
        matches!(Model::from_bytes(&bad_shape), Err(ModelError::Shape { .. })),
        "{:?}",
        Model::from_bytes(&bad_shape).err()
    );
    // Metadata promising more bits than the tensors have.
    let bad_bits = rewrite(&bytes, |m, _| m["bits"] = 17.into());
    assert!(matches!(Model::from_bytes(&bad_bits), Err(ModelError::Inconsistent(_))));
    // A missing and an extra tensor.
    let missing = rewrite(&bytes, |_, t| t.retain(|(n, _, _)| n != "image.fc1.bias"));
    assert!(matches!(Model::from_bytes(&missing), Err(ModelError::MissingTensor(_))));
    let extra = rewrite(&bytes, |_, t| t.push(("other".into(), vec![1], vec![0, 0, 0, 0])));
    assert!(matches!(Model::from_bytes(&extra), Err(ModelError::UnexpectedTensor(_))));
    // NaN weights.
    let nan = rewrite(&bytes, |_, t| {
        let w = t.iter_mut().find(|(n, _, _)| n == "image.fc0.bias").unwrap();
        w.2[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(matches!(Model::from_bytes(&nan), Err(ModelError::NonFinite(_))));
    // Pipeline statistics of the wrong length.
    let bad_pipe = rewrite(&bytes, |m, _| m["text_pipeline"]["center"] = serde_json::json!([0.0]));
    assert!(matches!(Model::from_bytes(&bad_pipe), Err(ModelError::Inconsistent(_))));
    // A zero in the image pipeline's scale (inputs are divided by it).
    let zero_scale = rewrite(&bytes, |m, _| {
        let s = &mut m["image_front"]["pipeline"]["scale"];
        let n = s.as_array().map_or(0, |a| a.len());
        assert!(n > 0, "the fixture standardises its image features");
        let mut v = vec![1.0f32; n];
        v[n / 2] = 0.0;
        *s = serde_json::json!(v);
    });
    assert!(matches!(Model::from_bytes(&zero_scale), Err(ModelError::Inconsistent(_))));
    // A foreign safetensors file, and not a safetensors file at all.
    let foreign = safetensors::serialize(
        vec![("w".to_string(), TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap())],
        None,
    )
    .unwrap();
    assert!(matches!(Model::from_bytes(&foreign), Err(ModelError::NotJdsh)));
    assert!(matches!(Model::from_bytes(b"hello world, not a model"), Err(ModelError::Format(_))));
    assert!(matches!(
        Model::load(std::path::Path::new("/nonexistent/m.safetensors")),
        Err(ModelError::Io { .. })
    ));
}
