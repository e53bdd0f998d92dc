//! The Wikipedia cross-modal data set (Rasiwasia et al. 2010) as shipped in `<data>/wikipedia`:
//! 128-d SIFT bag-of-visual-words image features, 10-d LDA text features, one of 10 categories.
//!
//! Standard protocol (data card, section 1): the 693 test pairs are the queries, the 2,173 training
//! pairs are both the training data and the retrieval set; relevant = same category.

use std::path::Path;

use super::csv::{pg_array, CsvFile};
use super::{Benchmark, DataError, ImageInput, Labels, Matrix, PairedData, TextInput};

pub const IMAGE_DIM: usize = 128;
pub const TEXT_DIM: usize = 10;
pub const CLASSES: usize = 10;
pub const TRAIN_ROWS: usize = 2_173;
pub const TEST_ROWS: usize = 693;

const HEADER: [&str; 6] = ["id", "doc_id", "image_md5", "category", "image", "text"];

/// One split file: features, labels (category - 1) and the row ids of the CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct WikipediaSplit {
    pub ids: Vec<u32>,
    pub image: Matrix,
    pub text: Matrix,
    pub labels: Labels,
}

impl WikipediaSplit {
    pub fn paired(&self) -> PairedData {
        PairedData {
            image: ImageInput::Features(self.image.clone()),
            text: TextInput::Features(self.text.clone()),
            labels: Some(self.labels.clone()),
        }
    }
}

/// Reads `dir/train.csv` or `dir/test.csv` (`name` = "train" / "test"; or the `.csv.gz`).
pub fn load_split(dir: &Path, name: &str) -> Result<WikipediaSplit, DataError> {
    let path = dir.join(format!("{name}.csv"));
    let csv = CsvFile::read(&path, &HEADER)?;
    let n = csv.records.len();
    let mut split = WikipediaSplit {
        ids: Vec::with_capacity(n),
        image: Matrix { rows: n, cols: IMAGE_DIM, data: Vec::with_capacity(n * IMAGE_DIM) },
        text: Matrix { rows: n, cols: TEXT_DIM, data: Vec::with_capacity(n * TEXT_DIM) },
        labels: Labels { classes: CLASSES, sets: Vec::with_capacity(n) },
    };
    for (line, rec) in &csv.records {
        let bad = |msg: String| DataError::parse(&path, *line, msg);
        let id: u32 = rec[0].parse().map_err(|_| bad(format!("bad id {:?}", rec[0])))?;
        let category: u32 = rec[3].parse().map_err(|_| bad(format!("bad category {:?}", rec[3])))?;
        if !(1..=CLASSES as u32).contains(&category) {
            return Err(bad(format!("category {category} outside 1..={CLASSES}")));
        }
        let image: Vec<f32> = pg_array(&rec[4]).map_err(bad)?;
        let text: Vec<f32> = pg_array(&rec[5]).map_err(|m| DataError::parse(&path, *line, m))?;
        if image.len() != IMAGE_DIM || text.len() != TEXT_DIM {
            return Err(DataError::parse(
                &path,
                *line,
                format!("image/text lengths {}/{}, expected {IMAGE_DIM}/{TEXT_DIM}", image.len(), text.len()),
            ));
        }
        split.ids.push(id);
        split.image.data.extend_from_slice(&image);
        split.text.data.extend_from_slice(&text);
        split.labels.sets.push(vec![category - 1]);
    }
    Ok(split)
}

/// The standard benchmark: train = retrieval = `train.csv`, query = `test.csv`.
pub fn load(dir: &Path) -> Result<Benchmark, DataError> {
    let train = load_split(dir, "train")?;
    let test = load_split(dir, "test")?;
    let train = train.paired();
    Ok(Benchmark { name: "wikipedia".into(), retrieval: train.clone(), train, query: test.paired() })
}

/// Category names, line k of `categories.list` = class k - 1.
pub fn categories(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join("categories.list");
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}
