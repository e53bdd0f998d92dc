//! Plain input files of the CLI: feature vectors as comma-separated lines (an optional Postgres
//! array's braces are stripped), texts one per line, labels as comma-separated class numbers.

use std::path::Path;

use crate::data::{Labels, Matrix};

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// One feature vector per non-empty line; every line must have the same length.
pub fn read_features(path: &Path) -> Result<Matrix, String> {
    let text = read(path)?;
    let mut data = Vec::new();
    let (mut rows, mut cols) = (0usize, None);
    for (k, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('{').trim_end_matches('}');
        if line.is_empty() {
            continue;
        }
        let row: Vec<f32> = line
            .split(',')
            .map(|v| {
                v.trim().parse::<f32>().map_err(|_| format!("{}:{}: bad number {v:?}", path.display(), k + 1))
            })
            .collect::<Result<_, _>>()?;
        if *cols.get_or_insert(row.len()) != row.len() {
            return Err(format!(
                "{}:{}: {} values, earlier lines have {}",
                path.display(),
                k + 1,
                row.len(),
                cols.unwrap_or(0)
            ));
        }
        data.extend(row);
        rows += 1;
    }
    Ok(Matrix { rows, cols: cols.unwrap_or(0), data })
}

/// One text per line (empty lines are texts too, with no words).
pub fn read_texts(path: &Path) -> Result<Vec<String>, String> {
    Ok(read(path)?.lines().map(String::from).collect())
}

/// One label set per line, 0-based class numbers separated by commas; classes = max + 1.
pub fn read_labels(path: &Path) -> Result<Labels, String> {
    let text = read(path)?;
    let mut sets = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('{').trim_end_matches('}');
        let set: Vec<u32> = line
            .split(',')
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                v.trim().parse::<u32>().map_err(|_| format!("{}:{}: bad label {v:?}", path.display(), k + 1))
            })
            .collect::<Result<_, _>>()?;
        sets.push(set);
    }
    let classes = sets.iter().flatten().max().map_or(0, |&m| m as usize + 1);
    Ok(Labels { classes, sets })
}
