//! Shared helpers of the integration tests: small synthetic paired data with class structure.
#![allow(dead_code)]

use jdsh_trainer::data::rng::SeededRng;
use jdsh_trainer::data::{ImageInput, Labels, Matrix, PairedData, TextInput};

/// `n` pairs in `classes` classes: non-negative image (8-d) and text (5-d) features around a
/// per-class centre, so both modalities carry the class.
pub fn synthetic(n: usize, classes: usize, seed: u64) -> PairedData {
    let mut rng = SeededRng::new(seed);
    let centres_i: Vec<Vec<f32>> =
        (0..classes).map(|_| (0..8).map(|_| rng.next_f64() as f32).collect()).collect();
    let centres_t: Vec<Vec<f32>> =
        (0..classes).map(|_| (0..5).map(|_| rng.next_f64() as f32).collect()).collect();
    let (mut img, mut txt, mut sets) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let c = i % classes;
        img.extend(centres_i[c].iter().map(|v| (v + 0.1 * rng.next_f64() as f32).max(0.0)));
        txt.extend(centres_t[c].iter().map(|v| (v + 0.1 * rng.next_f64() as f32).max(0.0)));
        sets.push(vec![c as u32]);
    }
    PairedData {
        image: ImageInput::Features(Matrix::new(n, 8, img)),
        text: TextInput::Features(Matrix::new(n, 5, txt)),
        labels: Some(Labels { classes, sets }),
    }
}

/// The same, with raw texts: class words plus noise words.
pub fn synthetic_texts(n: usize, classes: usize, seed: u64) -> PairedData {
    let mut d = synthetic(n, classes, seed);
    let mut rng = SeededRng::new(seed ^ 0x5eed);
    let texts = (0..n)
        .map(|i| {
            let c = i % classes;
            format!("class{c} topic{c} word{} word{} common", rng.below(20), rng.below(20))
        })
        .collect();
    d.text = TextInput::Raw(texts);
    d
}
