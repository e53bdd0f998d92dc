//! `jdsh-train export`: a named data set as one SQL script for `psql` (`CREATE TABLE`, then
//! `COPY ... FROM stdin` rows in COPY text format, then `\.`), so the extension's demo and tests
//! load exactly the data the trainer uses:
//!
//!   jdsh-train export --dataset emoji | psql -v ON_ERROR_STOP=1
//!
//! - `emoji` (default table `emoji`): one row per (emoji, vendor) with an image, vendors google,
//!   twitter, facebook: `id` (emoji index in `sort_order`, as in [`EmojiSet::items`]), `vendor`,
//!   `name`, `category`, `subcategory`, `subcategory_id` (the label [`LabelLevel::Subcategory`]
//!   gives), `split` ('train' / 'test' by [`Emoji::is_test`]), `keywords` (exactly
//!   [`Emoji::text`], the text the trainer reads), `png` (the 64 px PNG).
//! - `wikipedia` (default table `wikipedia`): `id` (the CSV's id: 1..2173 train, 2174..2866 test),
//!   `split`, `image real[]` (128-d SIFT BoVW), `text real[]` (10-d LDA), `label` (0-based class).
//!   Floats are written with Rust's shortest round-trip `Display`, so `real` reads back the same
//!   f32.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::data::emoji::{self, Emoji, EmojiSet, LabelLevel, Vendor};
use crate::data::wikipedia::{self, WikipediaSplit};
use crate::data::{self, DataError};

/// Data sets `export` knows.
pub const EXPORT_DATASETS: &str = "emoji, wikipedia";

/// The vendors exported for emoji, in row order within one emoji.
pub const EMOJI_VENDORS: [Vendor; 3] = [Vendor::Google, Vendor::Twitter, Vendor::Facebook];

/// An error of the export: bad arguments, unreadable data, or a failed write (e.g. a closed pipe).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("writing the script: {0}")]
    Io(#[from] io::Error),
}

/// Appends `s` to `out` escaped for a COPY text-format field: backslash, newline, carriage return
/// and tab become `\\`, `\n`, `\r`, `\t` (every other character stands for itself).
pub fn copy_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// `s` escaped for a COPY text-format field (see [`copy_escape_into`]).
pub fn copy_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    copy_escape_into(&mut out, s);
    out
}

/// A `bytea` value as a COPY text field: hex format `\x...` with its backslash escaped (`\\x...`).
pub fn copy_bytea(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(3 + 2 * bytes.len());
    out.push_str("\\\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A `real[]` value as a COPY text field (`{v1,v2,...}`), each value in shortest round-trip form.
pub fn copy_real_array(values: &[f32]) -> String {
    let mut out = String::with_capacity(2 + 12 * values.len());
    out.push('{');
    for (k, v) in values.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out.push('}');
    out
}

/// Checks a table name: an SQL identifier (letters, digits, `_`, not starting with a digit),
/// optionally schema-qualified (`schema.table`); it is written unquoted, so it folds to lower case.
pub fn check_table_name(name: &str) -> Result<(), ExportError> {
    let ident = |p: &str| {
        let mut cs = p.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() <= 2 && parts.iter().all(|p| ident(p)) {
        Ok(())
    } else {
        Err(ExportError::Usage(format!(
            "bad table name {name:?}: use an SQL identifier (letters, digits, _), optionally schema.table"
        )))
    }
}

/// Writes the script for the named data set (`emoji` or `wikipedia`) from the default locations
/// ([`data::emoji_dir`], [`data::data_root`]) to `w`; `table` defaults to the data set's name.
/// Returns the number of rows written.
pub fn export_named(name: &str, table: Option<&str>, w: &mut dyn Write) -> Result<usize, ExportError> {
    let table = table.unwrap_or(name);
    check_table_name(table)?;
    match name {
        "emoji" => {
            let set = emoji::load(&data::emoji_dir()).map_err(|e| {
                ExportError::Usage(format!("{e} (run scripts/fetch-emoji.sh to download the emoji packages)"))
            })?;
            write_emoji(&set, table, w)
        }
        "wikipedia" => {
            let dir = data::data_root().join("wikipedia");
            let train = wikipedia::load_split(&dir, "train")?;
            let test = wikipedia::load_split(&dir, "test")?;
            write_wikipedia(&train, &test, table, w)
        }
        other => Err(ExportError::Usage(format!("cannot export \"{other}\": use one of {EXPORT_DATASETS}"))),
    }
}

fn split_name(test: bool) -> &'static str {
    if test {
        "test"
    } else {
        "train"
    }
}

/// One emoji row (without the trailing newline) in COPY text format.
pub fn emoji_row(set: &EmojiSet, id: usize, vendor: Vendor, png: &[u8]) -> String {
    let e: &Emoji = &set.items[id];
    let mut row = String::with_capacity(256 + 2 * png.len());
    let _ = write!(row, "{id}\t{}\t", vendor.name());
    copy_escape_into(&mut row, &e.name);
    row.push('\t');
    copy_escape_into(&mut row, &set.categories[e.category as usize]);
    row.push('\t');
    copy_escape_into(&mut row, &set.subcategories[e.subcategory as usize]);
    let label = set.labels(&[id], LabelLevel::Subcategory).sets[0][0];
    let _ = write!(row, "\t{label}\t{}\t", split_name(e.is_test()));
    copy_escape_into(&mut row, &e.text());
    row.push('\t');
    row.push_str(&copy_bytea(png));
    row
}

/// The emoji table: one row per (emoji, vendor) with an image, emoji in `sort_order`, vendors in
/// [`EMOJI_VENDORS`] order. Returns the number of rows.
pub fn write_emoji(set: &EmojiSet, table: &str, w: &mut dyn Write) -> Result<usize, ExportError> {
    check_table_name(table)?;
    writeln!(
        w,
        "-- jdsh-train export: emoji (emoji-datasource-{{google,twitter,facebook}}@{}, emojilib@{})\n\
         CREATE TABLE {table} (\n    id int NOT NULL,\n    vendor text NOT NULL,\n    name text NOT NULL,\n    \
         category text NOT NULL,\n    subcategory text NOT NULL,\n    subcategory_id int NOT NULL,\n    \
         split text NOT NULL,\n    keywords text NOT NULL,\n    png bytea NOT NULL,\n    \
         PRIMARY KEY (id, vendor)\n);\n\
         COPY {table} (id, vendor, name, category, subcategory, subcategory_id, split, keywords, png) FROM stdin;",
        emoji::PACKAGE_VERSION,
        emoji::EMOJILIB_VERSION
    )?;
    let mut rows = 0;
    for id in 0..set.items.len() {
        for vendor in EMOJI_VENDORS {
            if !set.items[id].has_image(vendor) {
                continue;
            }
            let png = set.image_bytes(id, vendor)?;
            writeln!(w, "{}", emoji_row(set, id, vendor, &png))?;
            rows += 1;
        }
    }
    writeln!(w, "\\.")?;
    w.flush()?;
    Ok(rows)
}

/// One Wikipedia row (without the trailing newline) in COPY text format.
pub fn wikipedia_row(split: &WikipediaSplit, i: usize, test: bool) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        split.ids[i],
        split_name(test),
        copy_real_array(split.image.row(i)),
        copy_real_array(split.text.row(i)),
        split.labels.sets[i][0]
    )
}

/// The Wikipedia table: the training rows, then the test rows. Returns the number of rows.
pub fn write_wikipedia(
    train: &WikipediaSplit,
    test: &WikipediaSplit,
    table: &str,
    w: &mut dyn Write,
) -> Result<usize, ExportError> {
    check_table_name(table)?;
    writeln!(
        w,
        "-- jdsh-train export: wikipedia (Rasiwasia et al. 2010; 128-d SIFT BoVW images, 10-d LDA texts)\n\
         CREATE TABLE {table} (\n    id int PRIMARY KEY,\n    split text NOT NULL,\n    image real[] NOT NULL,\n    \
         text real[] NOT NULL,\n    label int NOT NULL\n);\n\
         COPY {table} (id, split, image, text, label) FROM stdin;"
    )?;
    let mut rows = 0;
    for (split, is_test) in [(train, false), (test, true)] {
        for i in 0..split.ids.len() {
            writeln!(w, "{}", wikipedia_row(split, i, is_test))?;
            rows += 1;
        }
    }
    writeln!(w, "\\.")?;
    w.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_backslash_tab_newline_cr() {
        assert_eq!(copy_escape("plain text"), "plain text");
        assert_eq!(copy_escape("a\\b"), "a\\\\b");
        assert_eq!(copy_escape("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(copy_escape("\\N"), "\\\\N", "a literal \\N must not read back as NULL");
        assert_eq!(copy_escape("\\."), "\\\\.", "a literal \\. must not end the data");
        assert_eq!(copy_escape("ünïcödé 😀"), "ünïcödé 😀");
        // No raw tab, newline or CR survives, so fields and rows stay delimited.
        let nasty = "x\t\n\r\\\t";
        assert!(!copy_escape(nasty).contains(['\t', '\n', '\r']));
    }

    #[test]
    fn bytea_is_hex_with_escaped_backslash() {
        assert_eq!(copy_bytea(&[]), "\\\\x");
        assert_eq!(copy_bytea(&[0x89, b'P', 0x0a, 0xff]), "\\\\x89500aff");
    }

    #[test]
    fn real_arrays_round_trip_to_f32() {
        let v = [0.1f32, 1.0 / 3.0, 0.0, 1e-7, 0.03732304, f32::MIN_POSITIVE, 123456.79];
        let s = copy_real_array(&v);
        assert!(s.starts_with('{') && s.ends_with('}'));
        let back: Vec<f32> = s[1..s.len() - 1].split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.map(f32::to_bits));
    }

    #[test]
    fn table_names_are_identifiers() {
        for ok in ["emoji", "my_emoji2", "demo.emoji", "_t"] {
            assert!(check_table_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2x", "a b", "x;drop table y", "a.b.c", "\"q\"", "a-b"] {
            assert!(check_table_name(bad).is_err(), "{bad}");
        }
    }
}
