//! A minimal RFC-4180 reader for the data cards' CSV files (quoted fields, `""` escapes, LF or CRLF)
//! and the Postgres array literals (`{1,2,3}`) they carry. The files are a few MB, so they are read
//! whole. `X.csv` is read when it exists, else the gzip-compressed `X.csv.gz` (as the repository's
//! `data/` ships them).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::read::GzDecoder;

use super::DataError;

/// The text of `path`, or of `path` + `.gz` decompressed when `path` does not exist; errors name
/// `path` + `.gz` when neither exists.
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut gz = path.as_os_str().to_owned();
            gz.push(".gz");
            let gz = PathBuf::from(gz);
            let file = std::fs::File::open(&gz).map_err(|e| DataError::io(&gz, e))?;
            let mut text = String::new();
            GzDecoder::new(file).read_to_string(&mut text).map_err(|e| DataError::io(&gz, e))?;
            Ok(text)
        }
        other => other.map_err(|e| DataError::io(path, e)),
    }
}

/// One parsed CSV file (header checked and dropped): the records, each with its 1-based line number.
pub(crate) struct CsvFile {
    pub records: Vec<Record>,
}

impl CsvFile {
    /// Reads `path` (or `path.gz`, see [`read_text`]) and checks that the header is exactly
    /// `expected_header`.
    pub fn read(path: &Path, expected_header: &[&str]) -> Result<CsvFile, DataError> {
        let text = read_text(path)?;
        let mut rows = parse(&text).map_err(|(line, msg)| DataError::parse(path, line, msg))?.into_iter();
        let (_, header) = rows.next().ok_or_else(|| DataError::parse(path, 1, "empty file".into()))?;
        if header != expected_header {
            return Err(DataError::parse(
                path,
                1,
                format!("header {header:?}, expected {expected_header:?}"),
            ));
        }
        let records: Vec<_> = rows.collect();
        for (line, rec) in &records {
            if rec.len() != header.len() {
                return Err(DataError::parse(
                    path,
                    *line,
                    format!("{} fields, expected {}", rec.len(), header.len()),
                ));
            }
        }
        Ok(CsvFile { records })
    }
}

/// A record with the line it starts on.
type Record = (usize, Vec<String>);

/// Splits CSV text into records. Errors carry the line where the problem is.
fn parse(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut in_quotes = false;
    let mut any = false; // whether the current record has content (skips blank trailing lines)
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                any = true;
            }
            '"' => return Err((line, "quote inside an unquoted field".into())),
            ',' => {
                fields.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if any || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    out.push((record_line, std::mem::take(&mut fields)));
                }
                any = false;
                line += 1;
                record_line = line;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if in_quotes {
        return Err((line, "unterminated quoted field".into()));
    }
    if any || !field.is_empty() {
        fields.push(field);
        out.push((record_line, fields));
    }
    Ok(out)
}

/// Parses a Postgres array literal of scalars, `{1,2,3}` (also `{}`).
pub(crate) fn pg_array<T: FromStr>(s: &str) -> Result<Vec<T>, String> {
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("not an array literal: {:.40}", s))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|v| v.trim().parse::<T>().map_err(|_| format!("bad array element {v:?}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_escapes() {
        let rows = parse("a,b,c\n1,\"{1,2}\",\"say \"\"hi\"\"\"\r\n\n2,,x\n").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], (2, vec!["1".to_string(), "{1,2}".into(), "say \"hi\"".into()]));
        assert_eq!(rows[2], (4, vec!["2".to_string(), "".into(), "x".into()]));
        assert!(parse("a,\"b\n").is_err());
    }

    #[test]
    fn arrays() {
        assert_eq!(pg_array::<u32>("{1,2,3}").unwrap(), vec![1, 2, 3]);
        assert_eq!(pg_array::<f32>("{}").unwrap(), Vec::<f32>::new());
        assert_eq!(pg_array::<f32>("{0.5,1e-3}").unwrap(), vec![0.5, 1e-3]);
        assert!(pg_array::<u32>("1,2").is_err());
        assert!(pg_array::<u32>("{1,x}").is_err());
    }
}
