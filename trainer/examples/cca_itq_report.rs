//! Prints CCA-ITQ and real-valued CCA MAP@all on Wikipedia (and on emoji when its cache exists).
//! `cargo run --release -p jdsh-trainer --example cca_itq_report [-- --emoji] [-- --reg R --power P]`

use jdsh_trainer::baseline::{Cca, CcaConfig, CcaItq};
use jdsh_trainer::data::{data_root, wikipedia, ImageInput, Labels, Matrix, TextInput};
use jdsh_trainer::eval::{map_at, map_at_embeddings};

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
