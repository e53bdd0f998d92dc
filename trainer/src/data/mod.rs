//! The data contract between the loaders, the learning methods, the evaluation and the extension.
//!
//! Everything that crosses a module boundary is one of these plain types: a row-major `f32`
//! [`Matrix`], image and text inputs that are either feature vectors or raw content (encoded
//! image bytes, text), optional multi-label annotations, and a [`Benchmark`] split
//! (train / query / retrieval). Methods turn them into tensors themselves.

/// A dense row-major `f32` matrix: row `i` is `data[i * cols .. (i + 1) * cols]`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    /// A matrix from row-major data; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * cols, "Matrix::new: {rows} x {cols} needs {} values", rows * cols);
        Matrix { rows, cols, data }
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix { rows, cols, data: vec![0.0; rows * cols] }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix { rows: idx.len(), cols: self.cols, data }
    }
}

/// Image side of a pair: a feature vector per item, or encoded image bytes (PNG/JPEG).
#[derive(Debug, Clone, PartialEq)]
pub enum ImageInput {
    Features(Matrix),
    Encoded(Vec<Vec<u8>>),
}

/// Text side of a pair: raw text per item (tokenised by the model's text pipeline), or a
/// feature vector per item (e.g. LDA topics, a tag bag-of-words).
#[derive(Debug, Clone, PartialEq)]
pub enum TextInput {
    Raw(Vec<String>),
    Features(Matrix),
}

impl ImageInput {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            ImageInput::Features(m) => m.rows,
            ImageInput::Encoded(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> ImageInput {
        match self {
            ImageInput::Features(m) => ImageInput::Features(m.select(idx)),
            ImageInput::Encoded(v) => ImageInput::Encoded(idx.iter().map(|&k| v[k].clone()).collect()),
        }
    }
}

impl TextInput {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            TextInput::Raw(v) => v.len(),
            TextInput::Features(m) => m.rows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> TextInput {
        match self {
            TextInput::Features(m) => TextInput::Features(m.select(idx)),
            TextInput::Raw(v) => TextInput::Raw(idx.iter().map(|&k| v[k].clone()).collect()),
        }
    }
}

/// Multi-label annotations: item `i` carries the class indices `sets[i]` (each `< classes`).
/// Two items are relevant to each other when they share at least one class.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Labels {
    pub classes: usize,
    pub sets: Vec<Vec<u32>>,
}

impl Labels {
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// True when items `i` (of `self`) and `j` (of `other`) share a class.
    pub fn relevant(&self, i: usize, other: &Labels, j: usize) -> bool {
        self.sets[i].iter().any(|c| other.sets[j].contains(c))
    }

    /// Multi-hot rows, `len() x classes`.
    pub fn multi_hot(&self) -> Matrix {
        let mut m = Matrix::zeros(self.sets.len(), self.classes);
        for (i, set) in self.sets.iter().enumerate() {
            for &c in set {
                m.row_mut(i)[c as usize] = 1.0;
            }
        }
        m
    }

    pub fn select(&self, idx: &[usize]) -> Labels {
        Labels { classes: self.classes, sets: idx.iter().map(|&i| self.sets[i].clone()).collect() }
    }
}

/// Paired items: `image[i]` and `text[i]` describe the same thing; `labels`, when present, has the
/// same length.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedData {
    pub image: ImageInput,
    pub text: TextInput,
    pub labels: Option<Labels>,
}

impl PairedData {
    /// The pairs at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> PairedData {
        PairedData {
            image: self.image.select(idx),
            text: self.text.select(idx),
            labels: self.labels.as_ref().map(|l| l.select(idx)),
        }
    }
}

/// A retrieval protocol: train on `train`, query with `query`, rank `retrieval`.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    pub name: String,
    pub train: PairedData,
    pub query: PairedData,
    pub retrieval: PairedData,
}

// ---------------------------------------------------------------------------------------------
// Loaders for the project's data sets, and where they look for their files.

mod csv;
pub mod emoji;
pub mod mirflickr;
pub mod synthetic;
pub mod wikipedia;

use std::path::{Path, PathBuf};

/// Errors of the loaders: which file, which line, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {msg}")]
    Parse { path: PathBuf, line: usize, msg: String },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn parse(path: &Path, line: usize, msg: String) -> Self {
        DataError::Parse { path: path.to_path_buf(), line, msg }
    }

    pub(crate) fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        DataError::Invalid { path: path.to_path_buf(), msg: msg.into() }
    }
}

/// The repository root, as compiled in (the trainer crate is `<repo>/trainer`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Root of the data sets: `$JDSH_DATA`, else the repository's `data/` folder, where Wikipedia and
/// MIRFlickr ship (`wikipedia/{train,test}.csv.gz`, `mirflickr25k/items.csv.gz`; the loaders read
/// `X.csv` when it exists, else `X.csv.gz`).
pub fn data_root() -> PathBuf {
    match std::env::var_os("JDSH_DATA") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join("data"),
    }
}

/// Where `scripts/fetch-emoji.sh` unpacks the emoji packages: `$JDSH_EMOJI_DIR`, else
/// `<repo>/.cache/emoji`.
pub fn emoji_dir() -> PathBuf {
    match std::env::var_os("JDSH_EMOJI_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".cache").join("emoji"),
    }
}

/// How to get a named data set that is missing, for error messages.
pub fn how_to_get(name: &str) -> String {
    match name {
        "emoji" => format!(
            "the emoji packages come from the npm registry: run `bash scripts/fetch-emoji.sh` (about \
             240 MB into {}; $JDSH_EMOJI_DIR chooses another folder)",
            emoji_dir().display()
        ),
        _ => format!(
            "the {name} data ship in the repository's data/ folder ({}): restore them with \
             `git checkout -- data/` in the repository, or set $JDSH_DATA to a folder with the same \
             layout (they are read from {} now)",
            repo_root().join("data").display(),
            data_root().display()
        ),
    }
}

/// Data sets [`load_dataset`] knows by name.
pub const DATASETS: &str = "wikipedia, mirflickr, emoji";

/// Loads a benchmark by name: Wikipedia and MIRFlickr from [`data_root`], emoji from
/// [`emoji_dir`]. `seed` draws MIRFlickr's split (0: the recorded [`mirflickr::DCMH_SEED`]).
pub fn load_dataset(name: &str, seed: u64) -> Result<Benchmark, String> {
    let root = data_root();
    match name {
        "wikipedia" => wikipedia::load(&root.join("wikipedia")).map_err(|e| e.to_string()),
        "mirflickr" => mirflickr_two_views(&root, seed),
        "emoji" => emoji_set()?.benchmark(emoji::LabelLevel::Subcategory).map_err(|e| e.to_string()),
        _ => Err(format!("unknown dataset \"{name}\": use one of {DATASETS}")),
    }
}

/// The emoji packages from [`emoji_dir`].
pub fn emoji_set() -> Result<emoji::EmojiSet, String> {
    emoji::load(&emoji_dir())
        .map_err(|e| format!("{e} (run scripts/fetch-emoji.sh to download the emoji packages)"))
}

/// MIRFlickr has no image features here (data card, section 2), so the benchmark pairs two
/// disjoint views of each item's tags: the "image" view holds the tags in even-numbered columns,
/// the "text" view those in odd-numbered columns. Labels, split (DCMH protocol) and scale are the
/// real ones; the retrieval numbers are tag-view-to-tag-view, NOT image-text.
fn mirflickr_two_views(root: &Path, seed: u64) -> Result<Benchmark, String> {
    let mir = mirflickr::load(&root.join("mirflickr25k")).map_err(|e| e.to_string())?;
    let split = mir.dcmh_split(if seed == 0 { mirflickr::DCMH_SEED } else { seed });
    let mut b = mir.benchmark("mirflickr-tag-views", &split, |idx| {
        ImageInput::Features(even_odd(&mir.tag_matrix(idx), 0))
    });
    for part in [&mut b.train, &mut b.query, &mut b.retrieval] {
        if let TextInput::Features(m) = &part.text {
            let odd = even_odd(m, 1);
            part.text = TextInput::Features(odd);
        }
    }
    Ok(b)
}

/// The columns `parity, parity + 2, ...` of `m`.
fn even_odd(m: &Matrix, parity: usize) -> Matrix {
    let cols: Vec<usize> = (parity..m.cols).step_by(2).collect();
    let mut out = Matrix::zeros(m.rows, cols.len());
    for i in 0..m.rows {
        for (k, &j) in cols.iter().enumerate() {
            out.row_mut(i)[k] = m.row(i)[j];
        }
    }
    out
}
