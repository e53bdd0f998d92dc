//! MIRFlickr-25K, the 20,015-pair "cleaned" set of DCMH / DJSRH / JDSH, as shipped in
//! `<data>/mirflickr25k/items.csv[.gz]`: 24 multi-labels and a 1,386-d binary tag bag-of-words per item.
//!
//! There are NO image features in this copy (data card, section 2). So this module gives the text
//! side, the labels and the protocol splits; a benchmark needs an image side from the caller
//! ([`MirFlickr::benchmark`]), and whoever builds one must say what it is.

use std::path::Path;

use jdsh_core::rng::SeededRng;

use super::csv::{pg_array, CsvFile};
use super::{Benchmark, DataError, ImageInput, Labels, Matrix, PairedData, TextInput};
use crate::text::SparseRows;

pub const ITEMS: usize = 20_015;
pub const CLASSES: usize = 24;
pub const TAG_DIM: usize = 1_386;

/// The seed this project records for the DCMH split (the papers do not fix theirs).
pub const DCMH_SEED: u64 = 2017;
pub const DCMH_QUERY: usize = 2_000;
pub const DCMH_TRAIN: usize = 10_000;

/// Items in file order (index i = id i + 1); labels and tags are 0-based column indices.
#[derive(Debug, Clone, PartialEq)]
pub struct MirFlickr {
    pub labels: Labels,
    pub tags: Vec<Vec<u32>>,
}

/// Indices into [`MirFlickr`] items for one protocol, with the seed that drew them.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub seed: u64,
    pub query: Vec<usize>,
    pub retrieval: Vec<usize>,
    pub train: Vec<usize>,
}

/// Reads `dir/items.csv` (or `items.csv.gz`).
pub fn load(dir: &Path) -> Result<MirFlickr, DataError> {
    let path = dir.join("items.csv");
    let csv = CsvFile::read(&path, &["id", "labels", "tags"])?;
    let mut labels = Labels { classes: CLASSES, sets: Vec::with_capacity(csv.records.len()) };
    let mut tags = Vec::with_capacity(csv.records.len());
    for (k, (line, rec)) in csv.records.iter().enumerate() {
        let bad = |msg: String| DataError::parse(&path, *line, msg);
        let id: usize = rec[0].parse().map_err(|_| bad(format!("bad id {:?}", rec[0])))?;
        if id != k + 1 {
            return Err(bad(format!("id {id} out of order (expected {})", k + 1)));
        }
        let l = one_based(pg_array::<u32>(&rec[1]).map_err(bad)?, CLASSES).map_err(bad)?;
        let t = one_based(pg_array::<u32>(&rec[2]).map_err(bad)?, TAG_DIM).map_err(bad)?;
        labels.sets.push(l);
        tags.push(t);
    }
    Ok(MirFlickr { labels, tags })
}

/// 1-based indices in 1..=max to 0-based, refusing out-of-range values.
fn one_based(v: Vec<u32>, max: usize) -> Result<Vec<u32>, String> {
    v.into_iter()
        .map(|x| {
            if x >= 1 && x as usize <= max {
                Ok(x - 1)
            } else {
                Err(format!("index {x} outside 1..={max}"))
            }
        })
        .collect()
}

impl MirFlickr {
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The binary tag matrix (YAll) of the items `idx`.
    pub fn tag_matrix(&self, idx: &[usize]) -> Matrix {
        let mut m = Matrix::zeros(idx.len(), TAG_DIM);
        for (r, &i) in idx.iter().enumerate() {
            for &t in &self.tags[i] {
                m.row_mut(r)[t as usize] = 1.0;
            }
        }
        m
    }

    /// The same rows in CSR form (for an embedding-bag first layer).
    pub fn tag_sparse(&self, idx: &[usize]) -> SparseRows {
        SparseRows::from_index_sets(TAG_DIM, idx.iter().map(|&i| self.tags[i].as_slice()))
    }

    /// DCMH protocol (Jiang & Li 2017): 2,000 random queries, the other 18,015 items are the
    /// retrieval set, 10,000 of them (random) are the training set. Deterministic in `seed`;
    /// [`DCMH_SEED`] is the project's recorded choice. Index lists are sorted ascending.
    pub fn dcmh_split(&self, seed: u64) -> Split {
        let mut rng = SeededRng::new(seed);
        let perm = rng.permutation(self.len());
        let q = DCMH_QUERY.min(self.len());
        let mut query = perm[..q].to_vec();
        let mut retrieval = perm[q..].to_vec();
        let mut train = retrieval.clone();
        rng.shuffle(&mut train);
        train.truncate(DCMH_TRAIN);
        query.sort_unstable();
        retrieval.sort_unstable();
        train.sort_unstable();
        Split { seed, query, retrieval, train }
    }

    /// DJSRH / JDSH protocol (methods.md 1.9): for label 0, of its unused positives in a random
    /// order, 160 go to the queries and the next 400 to training; for every other label 80 and 200.
    /// Training is topped up at random from the non-query items to 5,000 if short; the retrieval
    /// set is every non-query item (it contains the training set).
    pub fn jdsh_split(&self, seed: u64) -> Split {
        let mut rng = SeededRng::new(seed);
        let n = self.len();
        let mut used = vec![false; n];
        let (mut query, mut train) = (Vec::new(), Vec::new());
        for class in 0..CLASSES as u32 {
            let (nq, nt) = if class == 0 { (160, 400) } else { (80, 200) };
            let mut pos: Vec<usize> =
                (0..n).filter(|&i| !used[i] && self.labels.sets[i].contains(&class)).collect();
            rng.shuffle(&mut pos);
            for (k, &i) in pos.iter().take(nq + nt).enumerate() {
                used[i] = true;
                if k < nq {
                    query.push(i)
                } else {
                    train.push(i)
                }
            }
        }
        let target = 5_000usize;
        if train.len() < target {
            let mut rest: Vec<usize> = (0..n).filter(|&i| !used[i]).collect();
            rng.shuffle(&mut rest);
            train.extend(rest.into_iter().take(target - train.len()));
        }
        query.sort_unstable();
        train.sort_unstable();
        let in_query = {
            let mut m = vec![false; n];
            query.iter().for_each(|&i| m[i] = true);
            m
        };
        let retrieval = (0..n).filter(|&i| !in_query[i]).collect();
        Split { seed, query, retrieval, train }
    }

    /// A benchmark over `split` whose text side is the tag matrix and whose image side is
    /// `image_of(items)`: the caller's image features for those items (this copy has none, so a
    /// real or synthetic image side must come from elsewhere, and be reported as such).
    pub fn benchmark(
        &self,
        name: &str,
        split: &Split,
        image_of: impl Fn(&[usize]) -> ImageInput,
    ) -> Benchmark {
        let part = |idx: &[usize]| PairedData {
            image: image_of(idx),
            text: TextInput::Features(self.tag_matrix(idx)),
            labels: Some(self.labels.select(idx)),
        };
        Benchmark {
            name: name.to_string(),
            train: part(&split.train),
            query: part(&split.query),
            retrieval: part(&split.retrieval),
        }
    }
}
