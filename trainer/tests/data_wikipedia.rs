//! The Wikipedia loader against the data card (section 1; the files: `data/wikipedia`, see
//! data/README.md). Fails, with a message saying how to get them, when the data are missing.

mod common;

use jdsh_trainer::data::{wikipedia, ImageInput, TextInput};

#[test]
fn counts_shapes_and_classes_match_the_data_card() {
    let dir = common::wikipedia_dir();
    let b = common::wikipedia();
    assert_eq!(b.name, "wikipedia");
    let (ImageInput::Features(img), TextInput::Features(txt)) = (&b.train.image, &b.train.text) else {
        panic!("Wikipedia is feature vectors on both sides");
    };
    assert_eq!((img.rows, img.cols, txt.rows, txt.cols), (2_173, 128, 2_173, 10));
    let (ImageInput::Features(qi), TextInput::Features(qt)) = (&b.query.image, &b.query.text) else {
        panic!("Wikipedia is feature vectors on both sides");
    };
    assert_eq!((qi.rows, qi.cols, qt.rows, qt.cols), (693, 128, 693, 10));
    assert_eq!(b.retrieval, b.train, "standard protocol: the retrieval set is the training set");

    // Class counts (train / test) from the data card: art 138/34 ... warfare 347/104.
    let count = |l: &jdsh_trainer::data::Labels| {
        let mut c = [0usize; 10];
        l.sets.iter().for_each(|s| c[s[0] as usize] += 1);
        c
    };
    assert_eq!(count(b.train.labels.as_ref().unwrap()), [138, 272, 244, 248, 202, 178, 186, 144, 214, 347]);
    assert_eq!(count(b.query.labels.as_ref().unwrap()), [34, 88, 96, 85, 65, 58, 51, 41, 71, 104]);

    // LDA rows sum to 1; SIFT histograms are L1-normalised with values in 0..0.60.
    for i in 0..txt.rows {
        assert!((txt.row(i).iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    assert!(img.data.iter().all(|&v| (0.0..=0.61).contains(&v)));
    let split = wikipedia::load_split(&dir, "test").unwrap();
    assert_eq!((split.ids[0], split.ids[692]), (2_174, 2_866));
    assert_eq!(wikipedia::categories(&dir).unwrap()[9], "warfare");
}
