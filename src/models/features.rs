//! `jdsh.image_features`: the features an image extractor computes from PNG/JPEG bytes, as
//! `real[]`, so that a table can keep them in a column and train and encode from it (the
//! 1280-d EfficientNet-Lite0 features take ~15 ms per image on a CPU core; a stored column
//! takes nothing). One image per call runs on the CPU under `jdsh.device = auto`; the array form
//! runs one batch and follows `jdsh.device` (a GPU when there is one), as the encoders do.

use jdsh_trainer::data::Matrix;
use jdsh_trainer::image::{extract_features, ImageExtractor};
use jdsh_trainer::DeviceChoice;
use pgrx::prelude::*;
use pgrx::{pg_sys, Array, PgSqlErrorCode as E};

use super::errors;
use crate::fmgr::{arg, raise_with_hint};
use crate::gucs;

/// The extractors by the names users write (those of `image_pipeline.backbone` in `jdsh.train`).
const EXTRACTORS: [ImageExtractor; 2] = [ImageExtractor::EfficientNetLite0, ImageExtractor::Handcrafted];

fn extractor(name: &str) -> ImageExtractor {
    let name = name.trim().to_ascii_lowercase();
    EXTRACTORS.into_iter().find(|x| x.name() == name).unwrap_or_else(|| {
        raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown image extractor \"{name}\""),
            "Use 'efficientnet-lite0' (ImageNet features, the default) or 'handcrafted'.",
        )
    })
}

fn features(images: Vec<Vec<u8>>, x: ImageExtractor, device: DeviceChoice) -> Matrix {
    let device = device.resolve().unwrap_or_else(|e| errors::device(e));
    extract_features(images, x, device).unwrap_or_else(|e| errors::image("image_features", e))
}

/// `jdsh.image_features(image bytea, extractor text DEFAULT 'efficientnet-lite0') -> real[]`.
#[pg_extern(sql = false)]
fn image_features(image: &[u8], extractor_name: &str) -> Vec<f32> {
    let x = extractor(extractor_name);
    features(vec![image.to_vec()], x, gucs::row_device()).data
}

pg_v1! {
    /// `jdsh.image_features(images bytea[], extractor text DEFAULT ...) -> real[]`: one row of a
    /// two-dimensional array per image, in order; a NULL image gives a row of NULLs.
    fn image_features_batch(fcinfo) {
        // SAFETY: declared STRICT with (bytea[], text) arguments.
        let (images, name) = unsafe {
            (
                Array::<&[u8]>::from_datum(arg(fcinfo, 0), false).expect("non-null array"),
                <&str>::from_datum(arg(fcinfo, 1), false).unwrap_or_default(),
            )
        };
        let x = extractor(name);
        let nulls: Vec<bool> = images.iter().map(|b| b.is_none()).collect();
        let bytes: Vec<Vec<u8>> = images.iter().flatten().map(|b| b.to_vec()).collect();
        let m = if bytes.is_empty() { Matrix::zeros(0, 0) } else { features(bytes, x, gucs::batch_device()) };
        // SAFETY: one matrix row per `false` in `nulls`.
        unsafe { rows_array(&m, &nulls) }
    }
}

/// A two-dimensional `real[]`: row i is the next row of `m`, or NULLs where `nulls[i]`; an empty
/// array when there are no rows or no non-NULL one.
///
/// # Safety
/// `m` has exactly one row per `false` in `nulls`.
unsafe fn rows_array(m: &Matrix, nulls: &[bool]) -> pg_sys::Datum {
    let cols = m.cols;
    let mut datums: Vec<pg_sys::Datum> = Vec::with_capacity(nulls.len() * cols);
    let mut isnull: Vec<bool> = Vec::with_capacity(nulls.len() * cols);
    let mut next = 0;
    for &null in nulls {
        if null {
            datums.extend(std::iter::repeat_n(pg_sys::Datum::from(0), cols));
            isnull.extend(std::iter::repeat_n(true, cols));
        } else {
            datums.extend(m.row(next).iter().map(|v| pg_sys::Datum::from(v.to_bits())));
            isnull.extend(std::iter::repeat_n(false, cols));
            next += 1;
        }
    }
    let (ndims, mut dims) = if cols == 0 { (0, [0, 0]) } else { (2, [nulls.len() as i32, cols as i32]) };
    let mut lbs = [1i32, 1];
    // SAFETY: `datums` and `isnull` hold dims[0] * dims[1] entries; float4 is 4 bytes, by value,
    // int-aligned.
    unsafe {
        pg_sys::Datum::from(pg_sys::construct_md_array(
            datums.as_mut_ptr(),
            isnull.as_mut_ptr(),
            ndims,
            dims.as_mut_ptr(),
            lbs.as_mut_ptr(),
            pg_sys::FLOAT4OID,
            4,
            true,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        ))
    }
}
