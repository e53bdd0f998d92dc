//! The emoji loader against the data card (section 3). The packages come from the npm registry: run
//! `bash scripts/fetch-emoji.sh` first (about 240 MB into .cache/emoji, ~30 s); without them these
//! tests fail with that message, they never pass without data.

mod common;

use jdsh_trainer::data::emoji::{self, LabelLevel, Vendor};
use jdsh_trainer::data::{ImageInput, TextInput};
use jdsh_trainer::image::{decode, ImageExtractor, ImagePipeline, ImagePipelineConfig};
use jdsh_trainer::text::{TextPipeline, TextPipelineConfig};

#[test]
fn counts_match_the_data_card() {
    let set = emoji::load(&common::emoji()).unwrap();
    assert_eq!(set.items.len(), 1_911);
    assert_eq!((set.categories.len(), set.subcategories.len()), (10, 99));
    let flags = set.subcategories.iter().position(|s| s == "country-flag").unwrap() as u32;
    assert_eq!(set.items.iter().filter(|e| e.subcategory == flags).count(), 259);
    assert_eq!(set.items.iter().filter(|e| !e.keywords.is_empty()).count(), 1_906);
    let (train, test) = (set.train_indices(), set.test_indices());
    assert_eq!((train.len(), test.len()), (1_529, 382));
    let all: Vec<usize> = (0..set.items.len()).collect();
    assert_eq!(set.with_image(&all, Vendor::Google).len(), 1_911);
    assert_eq!(set.with_image(&all, Vendor::Twitter).len(), 1_911);
    assert_eq!(set.with_image(&all, Vendor::Facebook).len(), 1_860);

    // Text: words in >= 2 emoji. The data card's 1,976 is over ASCII tokens; the Unicode tokeniser
    // may keep a few accented words as one token, so allow a small difference.
    let TextInput::Raw(texts) = set.texts(&all) else { unreachable!() };
    let bow = TextPipeline::fit_texts(&texts, &TextPipelineConfig::default()).unwrap();
    let v = bow.output_dim();
    assert!((1_960..=1_990).contains(&v), "vocabulary of {v} words");
    let grin = set.items.iter().find(|e| e.short_names.iter().any(|s| s == "grinning")).unwrap();
    assert!(grin.text().contains("smile"), "{}", grin.text());
}

#[test]
fn protocol_sizes_and_images_decode() {
    let set = emoji::load(&common::emoji()).unwrap();
    let p = set.protocol(LabelLevel::Subcategory).unwrap();
    let ImageInput::Encoded(train_images) = &p.train.image else { panic!("encoded images expected") };
    assert_eq!(train_images.len(), 3_058);
    assert_eq!(p.train.labels.as_ref().unwrap().len(), 3_058);
    let ImageInput::Encoded(q) = &p.image_to_text.query else { panic!() };
    let TextInput::Raw(r) = &p.image_to_text.retrieval else { panic!() };
    assert_eq!((q.len(), r.len()), (371, 1_529));
    let TextInput::Raw(q) = &p.text_to_image.query else { panic!() };
    let ImageInput::Encoded(r) = &p.text_to_image.retrieval else { panic!() };
    assert_eq!((q.len(), r.len(), p.text_to_image.retrieval_labels.len()), (382, 1_489, 1_489));
    let b = set.benchmark(LabelLevel::Category).unwrap();
    assert_eq!(b.query.labels.as_ref().unwrap().len(), 371);
    assert_eq!(b.retrieval.labels.as_ref().unwrap().classes, 10);

    // Twemoji PNGs are palette images with transparency: decoded to RGB on white, so the corner
    // pixel (transparent in every vendor's 64 px art) is white.
    for vendor in [Vendor::Google, Vendor::Twitter, Vendor::Facebook] {
        let img = decode(&set.image_bytes(0, vendor).unwrap()).unwrap();
        assert_eq!((img.width, img.height), (64, 64), "{vendor:?}");
        assert!(img.data[..3].iter().all(|&c| c > 0.99), "{vendor:?} corner {:?}", &img.data[..3]);
        assert!(img.data.iter().any(|&c| c < 0.5), "{vendor:?} image is blank");
    }
    // The hand-crafted pipeline over every facebook retrieval image: no error, finite features.
    let cfg = ImagePipelineConfig { backbone: ImageExtractor::Handcrafted, ..Default::default() };
    let pipe = ImagePipeline::fit(&p.text_to_image.retrieval, &cfg).unwrap();
    let m = pipe.transform(&p.text_to_image.retrieval).unwrap();
    assert_eq!((m.rows, m.cols), (1_489, pipe.output_dim()));
    assert!(m.data.iter().all(|v| v.is_finite()));
}
