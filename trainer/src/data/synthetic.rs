//! Small synthetic paired data sets with class structure, generated from a seed: for the tests
//! (training contract, model file, gradients) and for the encoding benchmark.

use jdsh_core::rng::SeededRng;

use super::{ImageInput, Labels, Matrix, PairedData, TextInput};

/// `n` pairs in `classes` classes: non-negative image (8-d) and text (5-d) features around a
/// per-class centre, so both modalities carry the class.
pub fn features(n: usize, classes: usize, seed: u64) -> PairedData {
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

/// [`features`] with raw texts instead of text features: class words plus noise words.
pub fn features_and_texts(n: usize, classes: usize, seed: u64) -> PairedData {
    let mut d = features(n, classes, seed);
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

/// A bag-of-words data set for throughput measurements: `n` texts of 8 words drawn from a
/// `vocab`-word vocabulary (Zipf-like), paired with 128-d non-negative image features, 10 classes.
pub fn bag_of_words(n: usize, vocab: usize, seed: u64) -> PairedData {
    let mut rng = SeededRng::new(seed);
    let mut texts = Vec::with_capacity(n);
    let mut img = Vec::with_capacity(n * 128);
    let mut sets = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 10;
        let words: Vec<String> = (0..8)
            .map(|k| {
                // Half the words carry the class, the rest are skewed towards frequent words.
                let w = if k % 2 == 0 {
                    class * (vocab / 10) + rng.below((vocab / 10) as u64) as usize
                } else {
                    let u = rng.next_f64();
                    ((u * u) * vocab as f64) as usize
                };
                format!("w{w}")
            })
            .collect();
        texts.push(words.join(" "));
        img.extend((0..128).map(|d| (rng.next_f64() as f32) * if d % 10 == class { 2.0 } else { 1.0 }));
        sets.push(vec![class as u32]);
    }
    PairedData {
        image: ImageInput::Features(Matrix::new(n, 128, img)),
        text: TextInput::Raw(texts),
        labels: Some(Labels { classes: 10, sets }),
    }
}
