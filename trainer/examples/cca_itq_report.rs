//! Prints CCA-ITQ and real-valued CCA MAP@all on Wikipedia (and on emoji when its cache exists).
//! `cargo run --release -p jdsh-trainer --example cca_itq_report [-- --emoji] [-- --reg R --power P]`

use jdsh_trainer::data::{data_root, wikipedia, ImageInput, Labels, Matrix, TextInput};
use jdsh_trainer::eval::{map_at, map_at_embeddings};
use jdsh_trainer::methods::cca_itq::{Cca, CcaConfig, CcaItq};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let cfg = CcaConfig { reg: arg("--reg", 1e-3), power: arg("--power", 1.0), ..Default::default() };
    let seed = 1;
    println!("config {cfg:?}, seed {seed}");

    let b = wikipedia::load(&data_root().join("wikipedia"))?;
    let f = |p: &jdsh_trainer::data::PairedData| match (&p.image, &p.text) {
        (ImageInput::Features(i), TextInput::Features(t)) => (i.clone(), t.clone()),
        _ => unreachable!(),
    };
    let ((ti, tt), (qi, qt)) = (f(&b.train), f(&b.query));
    let (ql, rl) = (b.query.labels.clone().unwrap(), b.retrieval.labels.clone().unwrap());
    println!("Wikipedia: queries 693 test, retrieval 2,173 train, same category, MAP@all");
    report(&ti, &tt, (&qi, &qt, &ql), (&ti, &tt, &rl), &[16, 32, 64, 128], seed, &cfg, 10)?;
    if args.iter().any(|a| a == "--emoji") {
        emoji_report(seed, &cfg)?;
    }
    Ok(())
}

/// Emoji, data card protocol: fit on google + twitter images of the training emoji (3,058 pairs);
/// I->T facebook images of the test emoji (371) vs texts of the training emoji (1,529); T->I texts
/// of the test emoji (382) vs facebook images of the training emoji (1,489); relevant = same
/// subcategory. Images: hand-crafted features, standardised on the training images; texts: binary
/// bag of words over words in >= 2 training emoji.
fn emoji_report(seed: u64, cfg: &CcaConfig) -> Result<(), Box<dyn std::error::Error>> {
    use jdsh_trainer::data::emoji::{self, LabelLevel};
    use jdsh_trainer::image::{ImagePipeline, ImagePipelineConfig};
    use jdsh_trainer::text::{TextPipeline, TextPipelineConfig};
    let set = emoji::load(&jdsh_trainer::data::emoji_dir())?;
    let p = set.protocol(LabelLevel::Subcategory)?;
    let img = ImagePipeline::fit(&p.train.image, &ImagePipelineConfig::default())?;
    let train_texts = set.texts(&set.train_indices());
    let txt = TextPipeline::fit(&train_texts, &TextPipelineConfig::default())?;
    let (fi, ft) = (img.transform(&p.train.image)?, txt.transform(&p.train.text)?);
    let (qi, rt) = (img.transform(&p.image_to_text.query)?, txt.transform(&p.image_to_text.retrieval)?);
    let (qt, ri) = (txt.transform(&p.text_to_image.query)?, img.transform(&p.text_to_image.retrieval)?);
    println!(
        "Emoji (subcategory, unseen vendor facebook): image {}-d, text {}-d, {} training pairs, MAP@all",
        fi.cols, ft.cols, fi.rows
    );
    for &b in &[32usize, 64, 128] {
        let m = CcaItq::fit_with(&fi, &ft, b, seed, cfg)?;
        let (l1, l2) = (&p.image_to_text.query_labels, &p.image_to_text.retrieval_labels);
        let i2t = map_at(&m.encode_image(&qi)?, &m.encode_text(&rt)?, l1, l2, None)?;
        let (l3, l4) = (&p.text_to_image.query_labels, &p.text_to_image.retrieval_labels);
        let t2i = map_at(&m.encode_text(&qt)?, &m.encode_image(&ri)?, l3, l4, None)?;
        println!("CCA-ITQ {b:>4} bits: I->T {i2t:.4}  T->I {t2i:.4}");
    }
    for dims in [32usize, 64, 128] {
        let cca = Cca::fit(&fi, &ft, dims, cfg)?;
        let (l1, l2) = (&p.image_to_text.query_labels, &p.image_to_text.retrieval_labels);
        let i2t = map_at_embeddings(&cca.embed_image(&qi)?, &cca.embed_text(&rt)?, l1, l2, None)?;
        let (l3, l4) = (&p.text_to_image.query_labels, &p.text_to_image.retrieval_labels);
        let t2i = map_at_embeddings(&cca.embed_text(&qt)?, &cca.embed_image(&ri)?, l3, l4, None)?;
        println!("real-valued CCA {dims:>4} dims (cosine): I->T {i2t:.4}  T->I {t2i:.4}");
    }
    Ok(())
}

/// Fits on (image, text), evaluates image->text (query images vs retrieval texts) and text->image.
#[allow(clippy::too_many_arguments)]
pub fn report(
    fit_i: &Matrix,
    fit_t: &Matrix,
    query: (&Matrix, &Matrix, &Labels),
    retrieval: (&Matrix, &Matrix, &Labels),
    bits: &[usize],
    seed: u64,
    cfg: &CcaConfig,
    real_dims: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let (qi, qt, ql) = query;
    let (ri, rt, rl) = retrieval;
    for &b in bits {
        let t0 = std::time::Instant::now();
        let m = CcaItq::fit_with(fit_i, fit_t, b, seed, cfg)?;
        let i2t = map_at(&m.encode_image(qi)?, &m.encode_text(rt)?, ql, rl, None)?;
        let t2i = map_at(&m.encode_text(qt)?, &m.encode_image(ri)?, ql, rl, None)?;
        println!("CCA-ITQ {b:>4} bits: I->T {i2t:.4}  T->I {t2i:.4}   ({:.1}s)", t0.elapsed().as_secs_f64());
    }
    let cca = Cca::fit(fit_i, fit_t, real_dims, cfg)?;
    let i2t = map_at_embeddings(&cca.embed_image(qi)?, &cca.embed_text(rt)?, ql, rl, None)?;
    let t2i = map_at_embeddings(&cca.embed_text(qt)?, &cca.embed_image(ri)?, ql, rl, None)?;
    println!("real-valued CCA ({} dims, cosine): I->T {i2t:.4}  T->I {t2i:.4}", cca.dims());
    Ok(())
}
