//! The encoders: `jdsh.encode_text`/`jdsh.encode_image` (one item per call, for `UPDATE ... SET
//! code = ...` and query arguments), `jdsh.encode_texts`/`jdsh.encode_images` (arrays, one forward
//! pass per call) and `jdsh.encode_table` (a whole column, in batches).
//!
//! The per-item functions are V1 functions reading `fcinfo` directly: they run once per row, and
//! a cached model plus the CPU fast path keep them at tens of microseconds. Under
//! `jdsh.device = auto` they always run on the CPU (one item is faster there than a GPU round
//! trip); the batch forms follow `jdsh.device`.

use std::sync::{Arc, Mutex};

use jdsh_core::code::Code;
use jdsh_trainer::data::{ImageInput, Matrix, TextInput};
use jdsh_trainer::{DeviceChoice, Model};
use pgrx::prelude::*;
use pgrx::{pg_sys, Array, PgSqlErrorCode as E};

use super::{errors, registry, source};
use crate::bitcode::make_code;
use crate::fmgr::{arg, arg_i32, float_array, raise, raise_with_hint};
use crate::gucs;

/// Model name and optional version (third argument) of an encoder call.
///
/// # Safety
/// `fcinfo` is the call's own (a V1 function of ours); the functions are STRICT and declared with
/// a text first argument and an int4 third one when there are three, so argument 0 is a non-NULL
/// text datum and argument 2, when present, a non-NULL int4.
unsafe fn model_arg(fcinfo: pg_sys::FunctionCallInfo) -> (String, Arc<Model>) {
    unsafe {
        let name = <&str>::from_datum(arg(fcinfo, 0), false).unwrap_or_default().to_string();
        let version = ((*fcinfo).nargs > 2).then(|| arg_i32(fcinfo, 2));
        let model = registry::load(&name, version);
        (name, model)
    }
}

/// Which per-item encoder produced a memoized code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    TextFeatures,
    ImageBytes,
    ImageFeatures,
}

/// The last item encoded one at a time: `ORDER BY code <~> jdsh.encode_text('m', 'red fruit')
/// LIMIT 10` calls the encoder once for the index scan and once more for each returned row (the
/// ORDER BY value is projected), and a sequential scan with a constant query calls it once per
/// row: same model, same input, same code. Holding the `Arc` keeps the model alive, so a
/// pointer match can never be a new model at a reused address.
struct Memo {
    model: Arc<Model>,
    kind: Kind,
    device: DeviceChoice,
    input: Vec<u8>,
    code: Code,
}

static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

/// The code of one item: from the memo when the same model, encoder, device and input bytes
/// produced the last one, else from `encode`.
fn one(
    name: &str,
    model: &Arc<Model>,
    kind: Kind,
    input: &[u8],
    encode: impl FnOnce(&Model, DeviceChoice) -> Result<Vec<Code>, jdsh_trainer::EncodeError>,
) -> pg_sys::Datum {
    let device = gucs::row_device();
    let mut memo = MEMO.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = memo.as_ref() {
        if Arc::ptr_eq(&m.model, model) && m.kind == kind && m.device == device && m.input == input {
            return make_code(&m.code);
        }
    }
    let code = match encode(model, device) {
        Ok(mut c) if c.len() == 1 => c.pop().expect("one code"),
        Ok(c) => raise(E::ERRCODE_INTERNAL_ERROR, format!("encoder returned {} codes for one item", c.len())),
        Err(e) => errors::encode(name, e),
    };
    let datum = make_code(&code);
    *memo = Some(Memo { model: model.clone(), kind, device, input: input.to_vec(), code });
    datum
}

fn one_row(v: &[f32]) -> Matrix {
    if v.is_empty() {
        raise(E::ERRCODE_DATA_EXCEPTION, "cannot encode an empty feature vector");
    }
    Matrix::new(1, v.len(), v.to_vec())
}

/// The bytes of a float slice, as the memo's key.
fn float_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: any f32 is 4 initialised bytes; u8 has no alignment requirement.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

pg_v1! {
    /// `jdsh.encode_text(model, text [, version])`.
    fn encode_text_raw(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let text = unsafe { <&str>::from_datum(arg(fcinfo, 1), false) }.unwrap_or_default();
        one(&name, &model, Kind::Text, text.as_bytes(), |m, d| {
            m.encode_text(&TextInput::Raw(vec![text.to_string()]), d)
        })
    }
}

pg_v1! {
    /// `jdsh.encode_text(model, real[] [, version])`: a text feature vector.
    fn encode_text_features(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let v: &[f32] = unsafe { float_array(arg(fcinfo, 1), "encode") };
        one(&name, &model, Kind::TextFeatures, float_bytes(v), |m, d| {
            m.encode_text(&TextInput::Features(one_row(v)), d)
        })
    }
}

pg_v1! {
    /// `jdsh.encode_image(model, bytea [, version])`: PNG or JPEG bytes.
    fn encode_image_bytes(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let bytes = unsafe { <&[u8]>::from_datum(arg(fcinfo, 1), false) }.unwrap_or_default();
        one(&name, &model, Kind::ImageBytes, bytes, |m, d| {
            m.encode_image(&ImageInput::Encoded(vec![bytes.to_vec()]), d)
        })
    }
}

pg_v1! {
    /// `jdsh.encode_image(model, real[] [, version])`: an image feature vector.
    fn encode_image_features(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let v: &[f32] = unsafe { float_array(arg(fcinfo, 1), "encode") };
        one(&name, &model, Kind::ImageFeatures, float_bytes(v), |m, d| {
            m.encode_image(&ImageInput::Features(one_row(v)), d)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Batch forms: arrays in, bitcode[] out (NULL in, NULL out).

/// Builds the `bitcode[]` result; positions in `nulls` get NULL, the others take `codes` in order.
///
/// # Safety
/// `fcinfo` is the current call's, of a function declared to return `bitcode[]` (its element
/// type is then looked up from the return type); `codes` has one code per `false` in `nulls`.
unsafe fn code_array(fcinfo: pg_sys::FunctionCallInfo, nulls: &[bool], codes: &[Code]) -> pg_sys::Datum {
    unsafe {
        let elem = pg_sys::get_element_type(pg_sys::get_fn_expr_rettype((*fcinfo).flinfo));
        let mut next = codes.iter();
        let mut datums: Vec<pg_sys::Datum> = Vec::with_capacity(nulls.len());
        for &null in nulls {
            datums.push(if null {
                pg_sys::Datum::from(0)
            } else {
                make_code(next.next().expect("one code per item"))
            });
        }
        let mut isnull: Vec<bool> = nulls.to_vec();
        let mut dims = [nulls.len() as i32];
        let mut lbs = [1i32];
        let ndims = if nulls.is_empty() { 0 } else { 1 };
        let a = pg_sys::construct_md_array(
            datums.as_mut_ptr(),
            isnull.as_mut_ptr(),
            ndims,
            dims.as_mut_ptr(),
            lbs.as_mut_ptr(),
            elem,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        );
        pg_sys::Datum::from(a)
    }
}

/// The `bitcode[]` result of a batch call: `encode` runs once over the `items` non-NULL inputs
/// (not at all when there are none) on `jdsh.device`; NULL inputs (`nulls`) give NULL codes.
///
/// # Safety
/// As [`code_array`]: `fcinfo` is the current call's, returning `bitcode[]`.
unsafe fn batch_result(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &str,
    model: &Model,
    nulls: &[bool],
    items: usize,
    encode: impl FnOnce(&Model, DeviceChoice) -> Result<Vec<Code>, jdsh_trainer::EncodeError>,
) -> pg_sys::Datum {
    let codes = if items == 0 {
        Vec::new()
    } else {
        encode(model, gucs::batch_device()).unwrap_or_else(|e| errors::encode(name, e))
    };
    unsafe { code_array(fcinfo, nulls, &codes) }
}

/// Rows of a two-dimensional `real[]` (one item per row); NULLs are not allowed inside.
///
/// # Safety
/// `datum` is a non-NULL `real[]` (float4 elements: the SQL signature says so), possibly toasted;
/// after detoasting it points at a valid array header, and `RawArray::data` is read only after
/// the NULL bitmap was found empty, so `rows * cols` float4 values follow.
unsafe fn float_rows(datum: pg_sys::Datum) -> Matrix {
    unsafe {
        let v = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
        let mut raw = pgrx::array::RawArray::from_ptr(std::ptr::NonNull::new_unchecked(v.cast()));
        let dims = raw.dims().to_vec();
        if raw.any_nulls() {
            raise(E::ERRCODE_NULL_VALUE_NOT_ALLOWED, "cannot encode an array containing NULL");
        }
        match dims.as_slice() {
            [] => Matrix::zeros(0, 0),
            [rows, cols] => {
                let data = raw.data::<f32>();
                Matrix::new(*rows as usize, *cols as usize, (*data.as_ptr()).to_vec())
            }
            _ => raise_with_hint(
                E::ERRCODE_ARRAY_ELEMENT_ERROR,
                format!("cannot encode a {}-dimensional array of features", dims.len()),
                "Pass one item per row of a two-dimensional real[], e.g. ARRAY[[...], [...]].",
            ),
        }
    }
}

/// The non-NULL elements of an array argument and the NULL mask.
///
/// # Safety
/// `datum` is a non-NULL array datum whose element type is `T`'s SQL type.
unsafe fn elements<T>(datum: pg_sys::Datum) -> (Vec<T>, Vec<bool>)
where
    for<'arr> T: pgrx::datum::UnboxDatum<As<'arr> = T> + 'arr,
{
    let a = unsafe { Array::<T>::from_datum(datum, false) }.expect("non-null array");
    let mut items = Vec::with_capacity(a.len());
    let mut nulls = Vec::with_capacity(a.len());
    for x in a.iter() {
        nulls.push(x.is_none());
        items.extend(x);
    }
    (items, nulls)
}

pg_v1! {
    /// `jdsh.encode_texts(model, text[] [, version])`.
    fn encode_texts_raw(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let (texts, nulls) = unsafe { elements::<String>(arg(fcinfo, 1)) };
        let n = texts.len();
        unsafe { batch_result(fcinfo, &name, &model, &nulls, n, |m, d| m.encode_text(&TextInput::Raw(texts), d)) }
    }
}

pg_v1! {
    /// `jdsh.encode_texts(model, real[][] [, version])`: one text feature vector per row.
    fn encode_texts_features(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let m = unsafe { float_rows(arg(fcinfo, 1)) };
        let nulls = vec![false; m.rows];
        let n = m.rows;
        unsafe { batch_result(fcinfo, &name, &model, &nulls, n, |md, d| md.encode_text(&TextInput::Features(m), d)) }
    }
}

pg_v1! {
    /// `jdsh.encode_images(model, bytea[] [, version])`.
    fn encode_images_bytes(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let a = unsafe { Array::<&[u8]>::from_datum(arg(fcinfo, 1), false) }.expect("non-null array");
        let nulls: Vec<bool> = a.iter().map(|x| x.is_none()).collect();
        let images: Vec<Vec<u8>> = a.iter().flatten().map(|b| b.to_vec()).collect();
        let n = images.len();
        unsafe { batch_result(fcinfo, &name, &model, &nulls, n, |m, d| m.encode_image(&ImageInput::Encoded(images), d)) }
    }
}

pg_v1! {
    /// `jdsh.encode_images(model, real[][] [, version])`: one image feature vector per row.
    fn encode_images_features(fcinfo) {
        let (name, model) = unsafe { model_arg(fcinfo) };
        let m = unsafe { float_rows(arg(fcinfo, 1)) };
        let nulls = vec![false; m.rows];
        let n = m.rows;
        unsafe { batch_result(fcinfo, &name, &model, &nulls, n, |md, d| md.encode_image(&ImageInput::Features(m), d)) }
    }
}

// ---------------------------------------------------------------------------------------------
// A whole column.

/// What tells a row of `tbl` apart beside its ctid, as (column, its type), for jdsh.encode_table's
/// update: a ctid names a row only within one relation. `tableoid` in a plain, partitioned or
/// inheritance table; on a Citus distributed table the distribution column, since each shard is a
/// relation of its own on some worker (whose tableoid is that worker's) and the column decides the
/// shard. A Citus table without one (a reference table: a copy on every node, whose ctids need not
/// agree) is refused.
fn row_key(tbl: pg_sys::Oid, table: &str) -> (String, String) {
    let plain = ("tableoid".to_string(), "oid".to_string());
    if !super::citus_installed() {
        return plain;
    }
    let dist = Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                   FROM pg_dist_partition p \
                   LEFT JOIN pg_attribute a ON a.attrelid = p.logicalrelid \
                        AND a.attname = column_to_column_name(p.logicalrelid, p.partkey) \
                  WHERE p.logicalrelid = $1",
                None,
                &[tbl.into()],
            )
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
        if rows.is_empty() {
            None
        } else {
            Some(
                rows.first()
                    .get_two::<String, String>()
                    .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string())),
            )
        }
    });
    match dist {
        None => plain,
        Some((Some(column), Some(ty))) => (source::quote_ident(&column), ty),
        Some(_) => raise_with_hint(
            E::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("jdsh.encode_table cannot update {table}: a Citus table without a distribution column (a reference table)"),
            "Encode in the statement that writes the codes, e.g. INSERT INTO ... SELECT ..., jdsh.encode_text(model, column) FROM ...",
        ),
    }
}

/// `jdsh.encode_table(model, tbl, input_column, code_column, modality, batch_size, version)`:
/// sets `code_column` of every row of `tbl` whose input is not NULL, `batch_size` rows per
/// forward pass; returns the number of rows updated. `modality` ('image' or 'text') is needed only
/// for `real[]` inputs; `bytea` is an image and `text` a text.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false)]
fn encode_table(
    model: &str,
    tbl: pg_sys::Oid,
    input_column: &str,
    code_column: &str,
    modality: Option<&str>,
    batch_size: i32,
    version: Option<i32>,
) -> i64 {
    if batch_size < 1 {
        raise(E::ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must be at least 1");
    }
    let m = registry::load(model, version);
    // The input column's type decides how it is read (source.rs, as for jdsh.train) and, unless
    // `modality` says otherwise, which encoder runs; the code column must be the extension's
    // bitcode. Types are compared by OID, so domains over other types and spellings don't fool it.
    let (input_oid, code_type, table) = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT (SELECT atttypid FROM pg_attribute \
                          WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped), \
                        (SELECT CASE WHEN t.typname = 'bitcode' AND d.refobjid IS NOT NULL \
                                     THEN '' ELSE format_type(a.atttypid, NULL) END \
                           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                           LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid \
                                AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' \
                                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'jdsh') \
                          WHERE a.attrelid = $1 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped), \
                        $1::regclass::text",
                None,
                &[tbl.into(), input_column.into(), code_column.into()],
            )
            .and_then(|t| t.first().get_three::<pg_sys::Oid, String, String>())
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
        row
    });
    let table = table.unwrap_or_default();
    let Some(input_oid) = input_oid else {
        raise(
            E::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{input_column}\" of relation {table} does not exist"),
        )
    };
    match code_type.as_deref() {
        None => raise(
            E::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{code_column}\" of relation {table} does not exist"),
        ),
        Some("") => {}
        Some(t) => raise(
            E::ERRCODE_DATATYPE_MISMATCH,
            format!("column \"{code_column}\" has type {t}; codes go in a bitcode column"),
        ),
    }
    let kind = source::input_kind(input_column, input_oid);
    let image = match (&kind, modality.map(|s| s.trim().to_ascii_lowercase())) {
        (_, Some(m)) if m == "image" => true,
        (_, Some(m)) if m == "text" => false,
        (_, Some(m)) => {
            raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("unknown modality \"{m}\": use image or text"))
        }
        (source::Kind::Bytes, None) => true,
        (source::Kind::Texts, None) => false,
        (_, None) => raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("cannot tell whether column \"{input_column}\" (feature vectors) holds images or texts"),
            "Pass modality => 'image' or modality => 'text'.",
        ),
    };
    let q = source::quote_ident;
    let (key, key_type) = row_key(tbl, &table);
    let select = format!(
        "SELECT ctid::text, {key}::text, {} FROM {table} WHERE {} IS NOT NULL",
        q(input_column),
        q(input_column)
    );
    let update = format!(
        "UPDATE {table} AS t SET {code} = v.code \
           FROM unnest($1::text[]::tid[], $2::text[], $3::text[]::bitcode[]) AS v(tid, key, code) \
          WHERE t.ctid = v.tid AND t.{key} = v.key::{key_type} AND t.ctid = ANY ($1::text[]::tid[])",
        code = q(code_column)
    );
    let device = gucs::batch_device();
    let mut updated = 0i64;
    Spi::connect_mut(|client| {
        // The cursor's snapshot predates the updates, so each row is read (and updated) once.
        let mut cursor = client
            .try_open_cursor(select.as_str(), &[])
            .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
        loop {
            let (tids, keys, codes) = {
                let mut rows = cursor
                    .fetch(batch_size as i64)
                    .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
                if rows.is_empty() {
                    break;
                }
                let mut tids: Vec<String> = Vec::with_capacity(rows.len());
                let mut keys: Vec<String> = Vec::with_capacity(rows.len());
                let mut input = source::Builder::new(&kind);
                while rows.next().is_some() {
                    tids.push(rows.get::<String>(1).ok().flatten().unwrap_or_default());
                    keys.push(rows.get::<String>(2).ok().flatten().unwrap_or_default());
                    let row = updated as usize + tids.len() - 1;
                    input.push(input_column, input_oid, rows.get_datum_by_ordinal(3).ok().flatten(), row);
                }
                let input = input.finish(tids.len());
                let codes = if image {
                    m.encode_image(&input.into_image(input_column), device)
                } else {
                    m.encode_text(&input.into_text(input_column), device)
                }
                .unwrap_or_else(|e| errors::encode(model, e));
                let codes: Vec<String> =
                    codes.iter().map(|c| jdsh_core::code::format_bits(c.nbits(), c.bytes())).collect();
                (tids, keys, codes)
            };
            let n = tids.len();
            client
                .update(update.as_str(), None, &[tids.into(), keys.into(), codes.into()])
                .unwrap_or_else(|e| raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()));
            updated += n as i64;
            pgrx::check_for_interrupts!();
        }
    });
    updated
}
