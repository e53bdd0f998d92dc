//! Reading training and evaluation data through SPI. A source is a table or view name, or a query
//! (text starting with SELECT, WITH, VALUES or TABLE); columns are named by the caller and
//! converted by their SQL type:
//!
//! | SQL type | becomes |
//! |---|---|
//! | `real[]`, `double precision[]` | a feature vector (all rows the same length) |
//! | `bytea` | encoded image bytes (PNG/JPEG) |
//! | `text`, `varchar` | raw text |
//! | `integer`/`bigint`/`smallint`/`text` (labels) | one class per row |
//! | `integer[]`/`bigint[]`/`text[]` (labels) | a set of classes per row |
//!
//! Reading runs as the calling user, so privileges on the source apply as in any query.

use std::collections::HashMap;

use jdsh_trainer::data::{ImageInput, Labels, Matrix, TextInput};
use pgrx::prelude::*;
use pgrx::spi::SpiTupleTable;
use pgrx::{pg_sys, PgSqlErrorCode as E};

use crate::fmgr::{float_array, raise, raise_with_hint};

/// Rows fetched from the cursor at a time.
const FETCH: i64 = 1000;

/// One input column as read.
#[derive(Clone)]
pub enum Input {
    Features(Matrix),
    Bytes(Vec<Vec<u8>>),
    Texts(Vec<String>),
}

impl Input {
    fn kind(&self) -> &'static str {
        match self {
            Input::Features(_) => "feature vectors (real[])",
            Input::Bytes(_) => "image bytes (bytea)",
            Input::Texts(_) => "text",
        }
    }

    /// The column as the image side: feature vectors or encoded images.
    pub fn into_image(self, column: &str) -> ImageInput {
        match self {
            Input::Features(m) => ImageInput::Features(m),
            Input::Bytes(b) => ImageInput::Encoded(b),
            Input::Texts(_) => raise(
                E::ERRCODE_DATATYPE_MISMATCH,
                format!("image column \"{column}\" is text; images are real[] feature vectors or bytea (PNG/JPEG)"),
            ),
        }
    }

    /// The column as the text side: raw text or feature vectors.
    pub fn into_text(self, column: &str) -> TextInput {
        match self {
            Input::Features(m) => TextInput::Features(m),
            Input::Texts(t) => TextInput::Raw(t),
            Input::Bytes(_) => raise(
                E::ERRCODE_DATATYPE_MISMATCH,
                format!("text column \"{column}\" is bytea; texts are text or real[] feature vectors"),
            ),
        }
    }
}

/// Class names (as text) to dense indices, shared by every relation read for one evaluation so
/// that equal labels in the query and retrieval sets get the same index.
#[derive(Default)]
pub struct LabelMap(HashMap<String, u32>);

impl LabelMap {
    fn index(&mut self, label: String) -> u32 {
        let n = self.0.len() as u32;
        *self.0.entry(label).or_insert(n)
    }

    pub fn labels(&self, sets: Vec<Vec<u32>>) -> Labels {
        Labels { classes: self.0.len().max(1), sets }
    }
}

/// What was read: one [`Input`] per requested column, and the label sets when asked for.
pub struct Table {
    pub inputs: Vec<Input>,
    pub labels: Option<Vec<Vec<u32>>>,
    pub rows: usize,
}

/// `s` as a quoted SQL identifier (column names are taken literally, as PostgreSQL's own
/// functions taking column names do).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn is_query(source: &str) -> bool {
    let lower = source.trim_start().to_ascii_lowercase();
    ["select", "with", "values", "table"].iter().any(|k| {
        lower.strip_prefix(k).is_some_and(|rest| rest.starts_with(|c: char| c.is_whitespace() || c == '('))
    })
}

/// The FROM item for `source`: a query in parentheses, or the relation's name as `regclass`
/// prints it (schema-qualified when not on the search path).
pub fn from_item(source: &str) -> String {
    if is_query(source) {
        return format!("({source}) AS jdsh_source");
    }
    let rel = Spi::get_one_with_args::<String>("SELECT to_regclass($1)::text", &[source.into()])
        .unwrap_or_else(|e| raise(E::ERRCODE_INVALID_NAME, format!("invalid source \"{source}\": {e}")));
    match rel {
        Some(name) => name,
        None => raise_with_hint(
            E::ERRCODE_UNDEFINED_TABLE,
            format!("relation \"{source}\" does not exist"),
            "Pass a table or view name, or a query starting with SELECT, WITH, VALUES or TABLE.",
        ),
    }
}

/// What a column holds, decided by its type OID.
pub(super) enum Kind {
    Features,
    Bytes,
    Texts,
    Labels,
}

/// The kind of an input column of type `oid`; any other type is a clear error.
pub(super) fn input_kind(column: &str, oid: pg_sys::Oid) -> Kind {
    match oid {
        pg_sys::FLOAT4ARRAYOID | pg_sys::FLOAT8ARRAYOID => Kind::Features,
        pg_sys::BYTEAOID => Kind::Bytes,
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Kind::Texts,
        _ => raise(
            E::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"{column}\" has type {}; inputs are real[] or double precision[] (features), bytea (images) or text",
                type_name(oid)
            ),
        ),
    }
}

fn label_kind(column: &str, oid: pg_sys::Oid) -> Kind {
    match oid {
        pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID | pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::INT2ARRAYOID
        | pg_sys::INT4ARRAYOID | pg_sys::INT8ARRAYOID | pg_sys::TEXTARRAYOID => Kind::Labels,
        _ => raise(
            E::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "labels column \"{column}\" has type {}; labels are integer or text (one class) or integer[]/text[] (a set of classes)",
                type_name(oid)
            ),
        ),
    }
}

fn type_name(oid: pg_sys::Oid) -> String {
    unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be(oid)) }.to_string_lossy().into_owned()
}

fn null_error(column: &str, row: usize) -> ! {
    raise_with_hint(
        E::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        format!("column \"{column}\" is NULL in row {}", row + 1),
        "Filter such rows out with a query source, e.g. 'SELECT * FROM t WHERE col IS NOT NULL'.",
    )
}

/// Collects one input column, row by row, into an [`Input`]; the one reader of SQL inputs
/// (training, evaluation and `encode_table` all go through it).
pub(super) enum Builder {
    Features { values: Vec<f32>, cols: Option<usize> },
    Bytes(Vec<Vec<u8>>),
    Texts(Vec<String>),
}

impl Builder {
    pub(super) fn new(kind: &Kind) -> Builder {
        match kind {
            Kind::Features => Builder::Features { values: Vec::new(), cols: None },
            Kind::Bytes => Builder::Bytes(Vec::new()),
            _ => Builder::Texts(Vec::new()),
        }
    }

    /// Adds the value of row `row` (0-based, for messages) of `column`, of type `oid`.
    pub(super) fn push(&mut self, column: &str, oid: pg_sys::Oid, datum: Option<pg_sys::Datum>, row: usize) {
        let Some(datum) = datum else { null_error(column, row) };
        match self {
            Builder::Features { values, cols } => {
                let before = values.len();
                if oid == pg_sys::FLOAT4ARRAYOID {
                    values.extend_from_slice(unsafe { float_array::<f32>(datum, "read features from") });
                } else {
                    values.extend(
                        unsafe { float_array::<f64>(datum, "read features from") }.iter().map(|&x| x as f32),
                    );
                }
                let n = values.len() - before;
                match cols {
                    None if n == 0 => raise(
                        E::ERRCODE_DATA_EXCEPTION,
                        format!("column \"{column}\" holds an empty array in row {}", row + 1),
                    ),
                    None => *cols = Some(n),
                    Some(c) if *c != n => raise(
                        E::ERRCODE_DATA_EXCEPTION,
                        format!(
                            "column \"{column}\" has {n} dimensions in row {}, but {c} in the first row",
                            row + 1
                        ),
                    ),
                    _ => {}
                }
            }
            Builder::Bytes(v) => {
                v.push(unsafe { <&[u8]>::from_datum(datum, false) }.unwrap_or_default().to_vec())
            }
            Builder::Texts(v) => v.push(unsafe { String::from_datum(datum, false) }.unwrap_or_default()),
        }
    }

    pub(super) fn finish(self, rows: usize) -> Input {
        match self {
            Builder::Features { values, cols } => {
                Input::Features(Matrix::new(rows, cols.unwrap_or(0), values))
            }
            Builder::Bytes(v) => Input::Bytes(v),
            Builder::Texts(v) => Input::Texts(v),
        }
    }
}

/// The label(s) of the current row of `t`, as class indices.
fn read_labels(
    column: &str,
    oid: pg_sys::Oid,
    t: &SpiTupleTable,
    ordinal: usize,
    row: usize,
    map: &mut LabelMap,
) -> Vec<u32> {
    fn strings<T>(t: &SpiTupleTable, ordinal: usize) -> Option<Vec<Option<String>>>
    where
        T: ToString + IntoDatum,
        for<'arr> T: pgrx::datum::UnboxDatum<As<'arr> = T> + 'arr,
    {
        let v = t.get::<Vec<Option<T>>>(ordinal).ok().flatten()?;
        Some(v.into_iter().map(|x| x.map(|x| x.to_string())).collect())
    }
    // Classes are compared by their text form, so integer and text labels work alike.
    let items: Option<Vec<Option<String>>> = match oid {
        pg_sys::INT2OID => t.get::<i16>(ordinal).ok().flatten().map(|v| vec![Some(v.to_string())]),
        pg_sys::INT4OID => t.get::<i32>(ordinal).ok().flatten().map(|v| vec![Some(v.to_string())]),
        pg_sys::INT8OID => t.get::<i64>(ordinal).ok().flatten().map(|v| vec![Some(v.to_string())]),
        pg_sys::TEXTOID | pg_sys::VARCHAROID => {
            t.get::<String>(ordinal).ok().flatten().map(|v| vec![Some(v)])
        }
        pg_sys::INT2ARRAYOID => strings::<i16>(t, ordinal),
        pg_sys::INT4ARRAYOID => strings::<i32>(t, ordinal),
        pg_sys::INT8ARRAYOID => strings::<i64>(t, ordinal),
        _ => t.get::<Vec<Option<String>>>(ordinal).ok().flatten(),
    };
    let Some(items) = items else { null_error(column, row) };
    // NULL elements are no class; an empty set is an item relevant to nothing.
    items.into_iter().flatten().map(|l| map.index(l)).collect()
}

/// Reads `columns` (and `labels`, when given) of every row of `source`, in the order the source
/// returns them. Raises a clear ERROR for an unknown column (PostgreSQL's own), a wrong type, a
/// NULL, or rows of different dimensions.
pub fn read(source: &str, columns: &[&str], labels: Option<&str>, map: &mut LabelMap) -> Table {
    let mut select: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    if let Some(l) = labels {
        select.push(quote_ident(l));
    }
    let sql = format!("SELECT {} FROM {}", select.join(", "), from_item(source));
    Spi::connect(|client| {
        let mut cursor = client
            .try_open_cursor(sql.as_str(), &[])
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, format!("cannot read \"{source}\": {e}")));
        let mut kinds: Option<Vec<(Kind, pg_sys::Oid)>> = None;
        let mut builders: Vec<Builder> = Vec::new();
        let mut label_sets: Vec<Vec<u32>> = Vec::new();
        let mut rows = 0usize;
        loop {
            let batch = cursor.fetch(FETCH).unwrap_or_else(|e| {
                raise(E::ERRCODE_INTERNAL_ERROR, format!("cannot read \"{source}\": {e}"))
            });
            if kinds.is_none() {
                let k: Vec<(Kind, pg_sys::Oid)> = (0..select.len())
                    .map(|i| {
                        let oid = batch
                            .column_type_oid(i + 1)
                            .map(|o| o.value())
                            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
                        let kind = if i < columns.len() {
                            input_kind(columns[i], oid)
                        } else {
                            label_kind(labels.unwrap_or_default(), oid)
                        };
                        (kind, oid)
                    })
                    .collect();
                builders = k[..columns.len()].iter().map(|(kind, _)| Builder::new(kind)).collect();
                kinds = Some(k);
            }
            let kinds = kinds.as_ref().expect("set above");
            let n = batch.len();
            let mut batch = batch;
            // Iterating positions the table on each row; values are read from the table itself.
            while batch.next().is_some() {
                for (i, b) in builders.iter_mut().enumerate() {
                    b.push(columns[i], kinds[i].1, batch.get_datum_by_ordinal(i + 1).ok().flatten(), rows);
                }
                if let Some(l) = labels {
                    label_sets.push(read_labels(
                        l,
                        kinds[columns.len()].1,
                        &batch,
                        columns.len() + 1,
                        rows,
                        map,
                    ));
                }
                rows += 1;
            }
            if n < FETCH as usize {
                break;
            }
            pgrx::check_for_interrupts!();
        }
        Table {
            inputs: builders.into_iter().map(|b| b.finish(rows)).collect(),
            labels: labels.map(|_| label_sets),
            rows,
        }
    })
}

impl Table {
    /// Describes what was read, for NOTICEs.
    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = self.inputs.iter().map(Input::kind).collect();
        format!("{} rows of {}", self.rows, kinds.join(" and "))
    }
}
