//! The text pipeline: raw text -> tokens -> vocabulary -> weighted bag-of-words, or plain feature
//! vectors -> standardised features. A fitted [`TextPipeline`] is saved inside the model file, so a
//! raw-text query is encoded exactly as the training texts were: everything it needs (vocabulary,
//! IDF, centring and scaling statistics) is in the value, and `transform` is deterministic.
//!
//! Two output forms: a dense [`Matrix`] and a CSR [`SparseRows`] for embedding-bag first layers.
//! The sparse form never centres (centring would make every entry non-zero); a first linear layer
//! `W (x - mu)` equals `W x - W mu`, so a model can fold [`TextPipeline::center`] into its bias.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::data::{Matrix, TextInput};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TextError {
    #[error("the text pipeline was fitted on {expected} but was given {got}")]
    WrongInput { expected: &'static str, got: &'static str },
    #[error("feature vectors have {got} columns, the pipeline expects {expected}")]
    WrongDim { expected: usize, got: usize },
    #[error("no word occurs in at least {min_doc_count} documents: the vocabulary is empty")]
    EmptyVocabulary { min_doc_count: usize },
    #[error("cannot fit on zero texts")]
    NoData,
    #[error("feature value at row {row}, column {col} is not finite")]
    NotFinite { row: usize, col: usize },
}

/// How a word's count in a document becomes a feature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Weighting {
    /// 1 if the word occurs (the tag vectors of MIRFlickr / NUS-WIDE are of this kind).
    #[default]
    Binary,
    /// The raw count.
    TermFrequency,
    /// count * idf, idf = ln((1 + N) / (1 + df)) + 1 (smoothed, never zero).
    TfIdf,
}

/// Settings of [`TextPipeline::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPipelineConfig {
    /// Keep words that occur in at least this many training texts.
    pub min_doc_count: usize,
    /// Keep at most this many words (the most frequent by document count, ties by word).
    pub max_vocab: Option<usize>,
    pub weighting: Weighting,
    /// Scale each bag-of-words row to unit L2 norm (after weighting).
    pub l2_normalize: bool,
    /// Subtract the training mean of every output column (DCMH's normZeroMean) in the dense form.
    pub center: bool,
    /// Feature-vector mode: divide centred columns by their training standard deviation.
    pub standardize: bool,
}

impl Default for TextPipelineConfig {
    fn default() -> Self {
        TextPipelineConfig {
            min_doc_count: 2,
            max_vocab: None,
            weighting: Weighting::Binary,
            l2_normalize: false,
            center: false,
            standardize: false,
        }
    }
}

/// A CSR matrix: row `i` has the entries `indices[indptr[i]..indptr[i+1]]` (columns, ascending)
/// with the values `values[indptr[i]..indptr[i+1]]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SparseRows {
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseRows {
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Binary rows from sets of column indices (sorted and deduplicated here).
    pub fn from_index_sets<'a>(cols: usize, sets: impl IntoIterator<Item = &'a [u32]>) -> SparseRows {
        let mut s = SparseRows { cols, indptr: vec![0], indices: Vec::new(), values: Vec::new() };
        for set in sets {
            let mut v = set.to_vec();
            v.sort_unstable();
            v.dedup();
            s.values.extend(std::iter::repeat_n(1.0, v.len()));
            s.indices.extend(v);
            s.indptr.push(s.indices.len());
        }
        s
    }

    /// The non-zero entries of a dense matrix.
    pub fn from_dense(m: &Matrix) -> SparseRows {
        let mut s = SparseRows { cols: m.cols, indptr: vec![0], indices: Vec::new(), values: Vec::new() };
        for i in 0..m.rows {
            for (j, &v) in m.row(i).iter().enumerate() {
                if v != 0.0 {
                    s.indices.push(j as u32);
                    s.values.push(v);
                }
            }
            s.indptr.push(s.indices.len());
        }
        s
    }

    pub fn to_dense(&self) -> Matrix {
        let mut m = Matrix::zeros(self.rows(), self.cols);
        for i in 0..self.rows() {
            let row = m.row_mut(i);
            for k in self.indptr[i]..self.indptr[i + 1] {
                row[self.indices[k] as usize] = self.values[k];
            }
        }
        m
    }
}

/// Lower-cases and splits on every character that is not alphanumeric (Unicode's definition), so
/// "Café-au-lait 2x" -> ["café", "au", "lait", "2x"].
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            cur.extend(ch.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Bag-of-words state: the vocabulary (column order) and, for TF-IDF, the IDF per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "BagOfWordsFields")]
pub struct BagOfWords {
    pub vocabulary: Vec<String>,
    pub weighting: Weighting,
    pub idf: Option<Vec<f32>>,
    pub l2_normalize: bool,
    /// word -> column; not stored, rebuilt from `vocabulary` whenever a value is deserialised.
    #[serde(skip)]
    index: HashMap<String, u32>,
}

/// The stored fields of [`BagOfWords`]; deserialising goes through it so the index is always built.
#[derive(Deserialize)]
struct BagOfWordsFields {
    vocabulary: Vec<String>,
    weighting: Weighting,
    idf: Option<Vec<f32>>,
    l2_normalize: bool,
}

impl From<BagOfWordsFields> for BagOfWords {
    fn from(f: BagOfWordsFields) -> Self {
        let mut b = BagOfWords {
            vocabulary: f.vocabulary,
            weighting: f.weighting,
            idf: f.idf,
            l2_normalize: f.l2_normalize,
            index: HashMap::new(),
        };
        b.rebuild_index();
        b
    }
}

/// What the pipeline reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TextEncoder {
    BagOfWords(BagOfWords),
    /// Plain feature vectors of a fixed dimension (e.g. LDA topics, tag vectors).
    Features {
        dim: usize,
    },
}

/// A fitted text pipeline. Serialise it with the model; call [`TextPipeline::transform`] at query time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPipeline {
    pub encoder: TextEncoder,
    /// Per-column training mean, subtracted in the dense form (when fitted with `center`).
    pub center: Option<Vec<f32>>,
    /// Per-column divisor (training standard deviation, 1 where it is ~0), when fitted with `standardize`.
    pub scale: Option<Vec<f32>>,
}

impl TextPipeline {
    /// Fits on raw texts (bag of words) or on feature vectors, whichever `input` holds.
    pub fn fit(input: &TextInput, cfg: &TextPipelineConfig) -> Result<TextPipeline, TextError> {
        match input {
            TextInput::Raw(texts) => Self::fit_texts(texts, cfg),
            TextInput::Features(m) => Self::fit_features(m, cfg),
        }
    }

    /// Bag-of-words fit: vocabulary of the words in >= `min_doc_count` texts, the `max_vocab` most
    /// frequent kept; columns ordered by document count descending, then by word (deterministic).
    pub fn fit_texts<S: AsRef<str>>(
        texts: &[S],
        cfg: &TextPipelineConfig,
    ) -> Result<TextPipeline, TextError> {
        if texts.is_empty() {
            return Err(TextError::NoData);
        }
        let mut df: BTreeMap<String, usize> = BTreeMap::new();
        for t in texts {
            let mut toks = tokenize(t.as_ref());
            toks.sort_unstable();
            toks.dedup();
            for w in toks {
                *df.entry(w).or_insert(0) += 1;
            }
        }
        let mut words: Vec<(String, usize)> =
            df.into_iter().filter(|(_, c)| *c >= cfg.min_doc_count).collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(max) = cfg.max_vocab {
            words.truncate(max);
        }
        if words.is_empty() {
            return Err(TextError::EmptyVocabulary { min_doc_count: cfg.min_doc_count });
        }
        let n = texts.len() as f32;
        let idf = (cfg.weighting == Weighting::TfIdf)
            .then(|| words.iter().map(|(_, c)| ((1.0 + n) / (1.0 + *c as f32)).ln() + 1.0).collect());
        let mut bow = BagOfWords {
            vocabulary: words.into_iter().map(|(w, _)| w).collect(),
            weighting: cfg.weighting,
            idf,
            l2_normalize: cfg.l2_normalize,
            index: HashMap::new(),
        };
        bow.rebuild_index();
        let mut p = TextPipeline { encoder: TextEncoder::BagOfWords(bow), center: None, scale: None };
        if cfg.center || cfg.standardize {
            let dense = p.sparse_texts(texts).to_dense();
            p.fit_stats(&dense, cfg.center || cfg.standardize, cfg.standardize);
        }
        Ok(p)
    }

    /// Feature-vector fit: records the dimension and, as configured, mean and standard deviation.
    pub fn fit_features(m: &Matrix, cfg: &TextPipelineConfig) -> Result<TextPipeline, TextError> {
        if m.rows == 0 {
            return Err(TextError::NoData);
        }
        check_finite(m)?;
        let mut p =
            TextPipeline { encoder: TextEncoder::Features { dim: m.cols }, center: None, scale: None };
        p.fit_stats(m, cfg.center || cfg.standardize, cfg.standardize);
        Ok(p)
    }

    fn fit_stats(&mut self, m: &Matrix, center: bool, standardize: bool) {
        let (mean, std) = column_stats(m);
        if center {
            self.center = Some(mean);
        }
        if standardize {
            self.scale = Some(std.into_iter().map(|s| if s > 1e-8 { s } else { 1.0 }).collect());
        }
    }

    /// Width of the output rows.
    pub fn output_dim(&self) -> usize {
        match &self.encoder {
            TextEncoder::BagOfWords(b) => b.vocabulary.len(),
            TextEncoder::Features { dim } => *dim,
        }
    }

    /// The vocabulary (column order), if this is a bag-of-words pipeline.
    pub fn vocabulary(&self) -> Option<&[String]> {
        match &self.encoder {
            TextEncoder::BagOfWords(b) => Some(&b.vocabulary),
            TextEncoder::Features { .. } => None,
        }
    }

    /// Dense output: bag of words (or features), then centring and scaling as fitted.
    pub fn transform(&self, input: &TextInput) -> Result<Matrix, TextError> {
        let mut m = match (&self.encoder, input) {
            (TextEncoder::BagOfWords(_), TextInput::Raw(texts)) => self.sparse_texts(texts).to_dense(),
            (TextEncoder::Features { dim }, TextInput::Features(m)) => {
                if m.cols != *dim {
                    return Err(TextError::WrongDim { expected: *dim, got: m.cols });
                }
                check_finite(m)?;
                m.clone()
            }
            (enc, input) => return Err(mismatch(enc, input)),
        };
        self.apply_stats(&mut m);
        Ok(m)
    }

    /// Dense output for raw texts (bag-of-words pipelines).
    pub fn transform_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Matrix, TextError> {
        match &self.encoder {
            TextEncoder::BagOfWords(_) => {
                let mut m = self.sparse_texts(texts).to_dense();
                self.apply_stats(&mut m);
                Ok(m)
            }
            TextEncoder::Features { .. } => {
                Err(TextError::WrongInput { expected: "feature vectors", got: "raw text" })
            }
        }
    }

    /// Sparse output, never centred (see the module comment); scaled when fitted with `standardize`
    /// only in feature mode, where the sparse form is just the non-zeros of the dense form.
    pub fn transform_sparse(&self, input: &TextInput) -> Result<SparseRows, TextError> {
        match (&self.encoder, input) {
            (TextEncoder::BagOfWords(_), TextInput::Raw(texts)) => Ok(self.sparse_texts(texts)),
            (TextEncoder::Features { .. }, TextInput::Features(_)) => {
                let plain = TextPipeline { center: None, ..self.clone() };
                Ok(SparseRows::from_dense(&plain.transform(input)?))
            }
            (enc, input) => Err(mismatch(enc, input)),
        }
    }

    /// Weighted bag-of-words rows, uncentred. Unknown words are dropped.
    fn sparse_texts<S: AsRef<str>>(&self, texts: &[S]) -> SparseRows {
        let TextEncoder::BagOfWords(bow) = &self.encoder else {
            unreachable!("sparse_texts is only called on bag-of-words pipelines")
        };
        let mut s = SparseRows {
            cols: bow.vocabulary.len(),
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        };
        for t in texts {
            let mut counts: BTreeMap<u32, f32> = BTreeMap::new();
            for tok in tokenize(t.as_ref()) {
                if let Some(&j) = bow.index.get(&tok) {
                    *counts.entry(j).or_insert(0.0) += 1.0;
                }
            }
            let start = s.values.len();
            for (j, c) in counts {
                let v = match bow.weighting {
                    Weighting::Binary => 1.0,
                    Weighting::TermFrequency => c,
                    Weighting::TfIdf => c * bow.idf.as_ref().map_or(1.0, |idf| idf[j as usize]),
                };
                s.indices.push(j);
                s.values.push(v);
            }
            if bow.l2_normalize {
                let norm = s.values[start..].iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    s.values[start..].iter_mut().for_each(|v| *v /= norm);
                }
            }
            s.indptr.push(s.indices.len());
        }
        s
    }

    fn apply_stats(&self, m: &mut Matrix) {
        if self.center.is_none() && self.scale.is_none() {
            return;
        }
        for i in 0..m.rows {
            for (j, v) in m.row_mut(i).iter_mut().enumerate() {
                if let Some(c) = &self.center {
                    *v -= c[j];
                }
                if let Some(s) = &self.scale {
                    *v /= s[j];
                }
            }
        }
    }
}

impl BagOfWords {
    fn rebuild_index(&mut self) {
        self.index = self.vocabulary.iter().enumerate().map(|(j, w)| (w.clone(), j as u32)).collect();
    }
}

fn mismatch(enc: &TextEncoder, input: &TextInput) -> TextError {
    let expected = match enc {
        TextEncoder::BagOfWords(_) => "raw text",
        TextEncoder::Features { .. } => "feature vectors",
    };
    let got = match input {
        TextInput::Raw(_) => "raw text",
        TextInput::Features(_) => "feature vectors",
    };
    TextError::WrongInput { expected, got }
}

fn check_finite(m: &Matrix) -> Result<(), TextError> {
    match m.data.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(TextError::NotFinite { row: k / m.cols.max(1), col: k % m.cols.max(1) }),
        None => Ok(()),
    }
}

/// Per-column mean and (population) standard deviation, accumulated in f64.
pub(crate) fn column_stats(m: &Matrix) -> (Vec<f32>, Vec<f32>) {
    let n = m.rows.max(1) as f64;
    let mut sum = vec![0f64; m.cols];
    let mut sq = vec![0f64; m.cols];
    for i in 0..m.rows {
        for (j, &v) in m.row(i).iter().enumerate() {
            sum[j] += v as f64;
            sq[j] += (v as f64) * (v as f64);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq.iter().zip(&mean).map(|(q, mu)| ((q / n - mu * mu).max(0.0)).sqrt() as f32).collect();
    (mean.into_iter().map(|v| v as f32).collect(), std)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Vec<String> {
        ["The cat sat.", "A cat! A dog?", "Dog, dog; CAT", "Café au lait"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn tokenizer_is_unicode_aware() {
        assert_eq!(tokenize("Café-au-lait 2x"), ["café", "au", "lait", "2x"]);
        assert_eq!(tokenize("  ÉCOLE__Ünïcode!!"), ["école", "ünïcode"]);
        assert_eq!(tokenize("日本 語"), ["日本", "語"]);
        assert!(tokenize(" ,.;-").is_empty());
    }

    #[test]
    fn vocabulary_min_count_and_order() {
        // Document counts: cat 3, dog 2, everything else 1.
        let p = TextPipeline::fit_texts(&texts(), &TextPipelineConfig::default()).unwrap();
        assert_eq!(p.vocabulary().unwrap(), ["cat", "dog"]);
        let cfg = TextPipelineConfig { min_doc_count: 1, max_vocab: Some(4), ..Default::default() };
        // Ties at count 1 are broken alphabetically: a, au, café, ...
        let p = TextPipeline::fit_texts(&texts(), &cfg).unwrap();
        assert_eq!(p.vocabulary().unwrap(), ["cat", "dog", "a", "au"]);
        let cfg = TextPipelineConfig { min_doc_count: 5, ..Default::default() };
        assert_eq!(
            TextPipeline::fit_texts(&texts(), &cfg),
            Err(TextError::EmptyVocabulary { min_doc_count: 5 })
        );
    }

    #[test]
    fn weightings() {
        let q = ["dog DOG bird cat"];
        let fit = |weighting, l2_normalize| {
            let cfg = TextPipelineConfig { weighting, l2_normalize, ..Default::default() };
            TextPipeline::fit_texts(&texts(), &cfg).unwrap().transform_texts(&q).unwrap().data
        };
        assert_eq!(fit(Weighting::Binary, false), [1.0, 1.0]);
        assert_eq!(fit(Weighting::TermFrequency, false), [1.0, 2.0]);
        // idf = ln((1 + 4) / (1 + df)) + 1: cat ln(5/4) + 1, dog ln(5/3) + 1.
        let tfidf = fit(Weighting::TfIdf, false);
        assert!((tfidf[0] - ((1.25f32).ln() + 1.0)).abs() < 1e-6);
        assert!((tfidf[1] - 2.0 * ((5.0f32 / 3.0).ln() + 1.0)).abs() < 1e-6);
        let n = fit(Weighting::TermFrequency, true);
        assert!((n[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6 && (n[1] - 2.0 / 5f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn centring_and_sparse_form() {
        let cfg = TextPipelineConfig { center: true, ..Default::default() };
        let p = TextPipeline::fit_texts(&texts(), &cfg).unwrap();
        // Binary columns: cat in 3 of 4 texts, dog in 2 of 4.
        assert_eq!(p.center.as_deref(), Some(&[0.75f32, 0.5][..]));
        let input = TextInput::Raw(vec!["cat".into(), "".into(), "dog cat zebra".into()]);
        assert_eq!(p.transform(&input).unwrap().data, [0.25, -0.5, -0.75, -0.5, 0.25, 0.5]);
        let s = p.transform_sparse(&input).unwrap();
        assert_eq!(s.indptr, [0, 1, 1, 3]);
        assert_eq!(s.indices, [0, 0, 1]);
        assert_eq!(s.values, [1.0, 1.0, 1.0]);
        assert_eq!(s.to_dense().data, [1.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn serde_round_trip_keeps_the_lookup() {
        let cfg = TextPipelineConfig { weighting: Weighting::TfIdf, ..Default::default() };
        let p = TextPipeline::fit_texts(&texts(), &cfg).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: TextPipeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let q = ["cat and dog"];
        assert_eq!(back.transform_texts(&q).unwrap(), p.transform_texts(&q).unwrap());
        assert!(back.transform_texts(&q).unwrap().data.iter().all(|&v| v > 0.0));
    }

    #[test]
    fn feature_mode_standardises() {
        let m = Matrix::new(3, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]);
        let cfg = TextPipelineConfig { standardize: true, ..Default::default() };
        let p = TextPipeline::fit(&TextInput::Features(m.clone()), &cfg).unwrap();
        let out = p.transform(&TextInput::Features(m)).unwrap();
        let s = (2.0f32 / 3.0).sqrt(); // population std of 1, 2, 3
        let want = [-1.0 / s, 0.0, 0.0, 0.0, 1.0 / s, 0.0];
        assert!(out.data.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-5));
        assert_eq!(
            p.transform(&TextInput::Features(Matrix::zeros(1, 3))),
            Err(TextError::WrongDim { expected: 2, got: 3 })
        );
        assert!(matches!(p.transform(&TextInput::Raw(vec![])), Err(TextError::WrongInput { .. })));
    }
}
