//! `jdsh-train`: train a cross-modal hashing model, evaluate it, or encode inputs with it.
//!
//!   jdsh-train train --dataset wikipedia --method jdsh --bits 64 --out model.safetensors
//!   jdsh-train eval  --model model.safetensors --dataset wikipedia --plot pr.svg
//!   jdsh-train encode --model model.safetensors --texts queries.txt
//!   jdsh-train export --dataset emoji | psql

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jdsh_core::code::{format_bits, format_hex};
use jdsh_trainer::cli::{self, files, plot, BarProgress};
use jdsh_trainer::data::{self, ImageInput, PairedData, TextInput};
use jdsh_trainer::eval::{self, EvalReport};
use jdsh_trainer::methods::jdsh::{DsdwChoice, JointWeights};
use jdsh_trainer::{train, DeviceChoice, ImageExtractor, Method, Model, NoProgress, TrainConfig};

#[derive(Parser)]
#[command(
    name = "jdsh-train",
    version,
    about = "Cross-modal hashing (JDSH, DCMH, CCA-ITQ): train, evaluate, encode"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a model on a named data set or on files, and save it.
    Train(Box<TrainArgs>),
    /// MAP@all, MAP@k, P@k and the PR curve of a model on a data set's test protocol.
    Eval(EvalArgs),
    /// Encode images or texts with a model: one code per line, hexadecimal (x...).
    Encode(EncodeArgs),
    /// Encoding throughput, batched and one item per call, of a model on synthetic bag-of-words
    /// data (a model is trained on it first when --model is not given).
    BenchEncode(BenchArgs),
    /// Write a named data set (emoji, wikipedia) to stdout as an SQL script for psql:
    /// CREATE TABLE, then COPY ... FROM stdin rows.
    Export(ExportArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// emoji or wikipedia.
    #[arg(long)]
    dataset: String,
    /// Table name (default: the data set's name); schema.table is allowed.
    #[arg(long)]
    table: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value_t = 20000)]
    items: usize,
    #[arg(long, default_value_t = 2000)]
    vocab: usize,
    #[arg(long, default_value_t = 64)]
    bits: usize,
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

#[derive(Args)]
struct DataArgs {
    /// A named data set: wikipedia, mirflickr (from $JDSH_DATA, else the repository's data/) or
    /// emoji (from .cache/emoji: run scripts/fetch-emoji.sh first).
    #[arg(long, conflicts_with_all = ["image_features", "texts", "text_features"])]
    dataset: Option<String>,
    /// Image feature vectors, one comma-separated line per item.
    #[arg(long)]
    image_features: Option<PathBuf>,
    /// Texts, one per line.
    #[arg(long, conflicts_with = "text_features")]
    texts: Option<PathBuf>,
    /// Text feature vectors, one comma-separated line per item.
    #[arg(long)]
    text_features: Option<PathBuf>,
    /// Label sets, one line per item (0-based class numbers, comma-separated); DCMH needs them.
    #[arg(long)]
    labels: Option<PathBuf>,
}

/// A switch given as `on` or `off`.
#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        matches!(self, OnOff::On)
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value = "jdsh")]
    method: Method,
    #[arg(long, default_value_t = 64)]
    bits: usize,
    /// Epochs (CCA-ITQ: ITQ rotation iterations; default: the method's).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Hidden layer width of both nets (default: the method's).
    #[arg(long)]
    hidden: Option<usize>,
    /// Learning rate of both nets (DCMH: of the first epoch; default: the method's).
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    momentum: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// JDSH joint-matrix weights a,b,l (default 0.5,0.1,0.4).
    #[arg(long, value_delimiter = ',')]
    joint: Option<Vec<f64>>,
    /// DCMH: Adam (on) or the paper's plain SGD (off); default: the method's (on).
    #[arg(long, value_enum)]
    adam: Option<OnOff>,
    /// DCMH: weight similar pairs by #dissimilar/#similar: on or off (the paper's objective,
    /// default).
    #[arg(long, value_enum)]
    balance_pairs: Option<OnOff>,
    /// DCMH: bit-balance term divided by n (on, default) or the paper's sum over the training set (off).
    #[arg(long, value_enum)]
    balance_mean: Option<OnOff>,
    /// DCMH: weight of the quantisation term.
    #[arg(long)]
    gamma: Option<f64>,
    /// DCMH: the last epoch's learning rate is the first's divided by this (log-spaced in between;
    /// the paper's schedule is 10^1.5 = 31.6; 1 = constant).
    #[arg(long)]
    lr_decay: Option<f64>,
    /// DCMH: weight of the bit-balance term.
    #[arg(long)]
    eta: Option<f64>,
    /// Dropout probability after each hidden layer during training (default: the method's).
    #[arg(long)]
    dropout: Option<f64>,
    /// DCMH: gradient-norm clip per step (0 = none).
    #[arg(long)]
    clip: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long)]
    threads: Option<usize>,
    /// JDSH's DSDW thresholds.
    #[arg(long, value_enum, default_value_t = DsdwChoice::Estimated)]
    dsdw: DsdwChoice,
    /// Fraction of the pairs held out to report a MAP at the end (needs labels).
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// Feature extractor for encoded images (PNG/JPEG bytes; ignored for feature vectors).
    #[arg(long, value_enum, default_value_t = ImageExtractor::default())]
    image_extractor: ImageExtractor,
    #[arg(long, default_value = "model.safetensors")]
    out: PathBuf,
    /// After training, evaluate on the data set's test protocol (named data sets only).
    #[arg(long)]
    eval: bool,
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// k of MAP@k and P@k.
    #[arg(long, value_delimiter = ',', default_value = "50,100,500")]
    k: Vec<usize>,
    /// Write the precision-recall curves (Hamming radius) to this SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EncodeArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, conflicts_with_all = ["text_features", "image_features", "images"])]
    texts: Option<PathBuf>,
    #[arg(long, conflicts_with_all = ["image_features", "images"])]
    text_features: Option<PathBuf>,
    #[arg(long, conflicts_with = "images")]
    image_features: Option<PathBuf>,
    /// PNG/JPEG files to encode.
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Train(a) => run_train(*a),
        Cmd::Eval(a) => run_eval(a),
        Cmd::Encode(a) => run_encode(a),
        Cmd::BenchEncode(a) => run_bench(a),
        Cmd::Export(a) => run_export(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jdsh-train: {e}");
            ExitCode::FAILURE
        }
    }
}

fn paired_from_files(d: &DataArgs) -> Result<PairedData, String> {
    let image = match &d.image_features {
        Some(p) => ImageInput::Features(files::read_features(p)?),
        None => return Err("give --dataset, or --image-features with --texts or --text-features".into()),
    };
    let text = match (&d.texts, &d.text_features) {
        (Some(p), _) => TextInput::Raw(files::read_texts(p)?),
        (None, Some(p)) => TextInput::Features(files::read_features(p)?),
        (None, None) => return Err("give --texts or --text-features".into()),
    };
    let labels = d.labels.as_deref().map(files::read_labels).transpose()?;
    Ok(PairedData { image, text, labels })
}

fn run_train(a: TrainArgs) -> Result<(), String> {
    let mut cfg = TrainConfig::defaults(a.method, a.bits);
    if let Some(e) = a.epochs {
        cfg.epochs = e;
    }
    if let Some(b) = a.batch_size {
        cfg.batch_size = b;
    }
    if let Some(h) = a.hidden {
        if cfg.method != Method::CcaItq {
            cfg.image_hidden = vec![h];
            cfg.text_hidden = vec![h];
        }
    }
    if let Some(lr) = a.lr {
        cfg.lr_image = lr;
        cfg.lr_text = lr;
    }
    if let Some(m) = a.momentum {
        cfg.momentum = m;
    }
    if let Some(w) = a.weight_decay {
        cfg.weight_decay = w;
    }
    if let Some(j) = &a.joint {
        let [a, b, l] = j.as_slice() else { return Err("--joint takes three numbers a,b,l".into()) };
        cfg.jdsh.joint = JointWeights { a: *a, b: *b, l: *l };
    }
    cfg.dcmh.adam = a.adam.map_or(cfg.dcmh.adam, OnOff::is_on);
    cfg.dcmh.balance_pairs = a.balance_pairs.map_or(cfg.dcmh.balance_pairs, OnOff::is_on);
    cfg.dcmh.balance_mean = a.balance_mean.map_or(cfg.dcmh.balance_mean, OnOff::is_on);
    if let Some(g) = a.gamma {
        cfg.dcmh.gamma = g;
    }
    if let Some(r) = a.lr_decay {
        if !(r >= 1.0 && r.is_finite()) {
            return Err("--lr-decay must be >= 1".into());
        }
        cfg.dcmh.lr_last = cfg.dcmh.lr_first / r;
    }
    if let Some(e) = a.eta {
        cfg.dcmh.eta = e;
    }
    if let Some(d) = a.dropout {
        cfg.dropout = d;
    }
    if let Some(c) = a.clip {
        cfg.dcmh.clip_norm = (c > 0.0).then_some(c);
    }
    cfg.seed = a.seed;
    cfg.device = a.device;
    cfg.threads = a.threads;
    cfg.holdout = a.holdout;
    cfg.jdsh.dsdw = a.dsdw;
    cfg.image_pipeline.backbone = a.image_extractor;
    let bench = a.data.dataset.as_deref().map(|name| data::load_dataset(name, 0)).transpose()?;
    let data = match &bench {
        Some(b) => b.train.clone(),
        None => paired_from_files(&a.data)?,
    };
    let mut progress = BarProgress::new(a.quiet);
    let model = train(&data, &cfg, &mut progress).map_err(|e| e.to_string())?;
    progress.finish();
    model.save(&a.out).map_err(|e| e.to_string())?;
    let m = &model.meta().metrics;
    println!(
        "trained {} ({} bits) on {} pairs: {} epochs in {:.1} s ({:.0} pairs/s), final loss {:.4}; saved {}",
        cfg.method,
        cfg.bits,
        m.train_pairs,
        m.epochs,
        m.seconds,
        m.pairs_per_second,
        m.final_loss,
        a.out.display()
    );
    if let Some(h) = &m.holdout {
        println!(
            "held-out MAP@all ({} queries): I->T {:.4}  T->I {:.4}",
            h.queries, h.image_to_text, h.text_to_image
        );
    }
    if let (true, Some(name)) = (a.eval, &a.data.dataset) {
        let r = eval::evaluate_named(&model, name, 0, &[50, 100], &[50, 100], cfg.device)?;
        print_report(&r);
    }
    Ok(())
}

fn print_report(r: &EvalReport) {
    println!(
        "{} {} bits ({} queries, {} retrieval items; Hamming ranking, ties by index):",
        r.dataset, r.bits, r.image_to_text.queries, r.image_to_text.retrieval
    );
    for (dir, rep) in [("I->T", &r.image_to_text), ("T->I", &r.text_to_image)] {
        let maps: Vec<String> = rep.map_at.iter().map(|(k, v)| format!("MAP@{k} {v:.4}")).collect();
        let precs: Vec<String> = rep.precision_at.iter().map(|(k, v)| format!("P@{k} {v:.4}")).collect();
        println!("  {dir}: MAP@all {:.4}  {}  {}", rep.map_all, maps.join("  "), precs.join("  "));
    }
}

fn run_eval(a: EvalArgs) -> Result<(), String> {
    let model = Model::load(&a.model).map_err(|e| e.to_string())?;
    let r = eval::evaluate_named(&model, &a.dataset, a.seed, &a.k, &a.k, a.device)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?);
    } else {
        print_report(&r);
    }
    if let Some(path) = &a.plot {
        let empty = Vec::new();
        let i2t = r.image_to_text.pr_curve.as_ref().unwrap_or(&empty);
        let t2i = r.text_to_image.pr_curve.as_ref().unwrap_or(&empty);
        let title = format!("{} {} {} bits", r.dataset, model.meta().method, r.bits);
        plot::pr_svg(path, &title, &[("image->text", i2t), ("text->image", t2i)])?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_encode(a: EncodeArgs) -> Result<(), String> {
    let model = Model::load(&a.model).map_err(|e| e.to_string())?;
    let codes = if let Some(p) = &a.texts {
        model.encode_text(&TextInput::Raw(files::read_texts(p)?), a.device)
    } else if let Some(p) = &a.text_features {
        model.encode_text(&TextInput::Features(files::read_features(p)?), a.device)
    } else if let Some(p) = &a.image_features {
        model.encode_image(&ImageInput::Features(files::read_features(p)?), a.device)
    } else if !a.images.is_empty() {
        let bytes = a
            .images
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
            .collect::<Result<Vec<_>, _>>()?;
        model.encode_image(&ImageInput::Encoded(bytes), a.device)
    } else {
        return Err("give --texts, --text-features, --image-features or --images".into());
    }
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    for c in codes {
        out.push_str(&format_hex(c.nbits(), c.bytes()).unwrap_or_else(|| format_bits(c.nbits(), c.bytes())));
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

fn run_bench(a: BenchArgs) -> Result<(), String> {
    let data = data::synthetic::bag_of_words(a.items, a.vocab, 7);
    let model = match &a.model {
        Some(p) => Model::load(p).map_err(|e| e.to_string())?,
        None => {
            let mut cfg = TrainConfig::defaults(Method::Jdsh, a.bits);
            cfg.epochs = 1;
            cfg.image_hidden = vec![a.hidden];
            cfg.text_hidden = vec![a.hidden];
            cfg.device = DeviceChoice::Cpu;
            let sub: Vec<usize> = (0..a.items.min(4000)).collect();
            train(&data.select(&sub), &cfg, &mut NoProgress).map_err(|e| e.to_string())?
        }
    };
    let t = cli::encode_throughput(&model, &data, a.device)?;
    println!(
        "{} items, {} bits, hidden {:?}, vocabulary {}: text batched {:.0}/s, one per call {:.0}/s; \
         image (128-d features) batched {:.0}/s, one per call {:.0}/s; text one per call through libtorch {:.0}/s",
        t.items,
        model.bits(),
        model.meta().text_net.hidden,
        model.meta().text_pipeline.output_dim(),
        t.text_batched,
        t.text_single,
        t.image_batched,
        t.image_single,
        t.text_single_torch
    );
    Ok(())
}

fn run_export(a: ExportArgs) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let rows =
        cli::export::export_named(&a.dataset, a.table.as_deref(), &mut w).map_err(|e| e.to_string())?;
    eprintln!("jdsh-train export: {rows} rows of {}", a.dataset);
    Ok(())
}
