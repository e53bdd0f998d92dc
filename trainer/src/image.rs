//! The image pipeline: feature vectors of any dimension (standardised), or encoded PNG/JPEG bytes
//! through an extractor chosen by [`ImagePipelineConfig::backbone`]: by default the
//! ImageNet-pretrained EfficientNet-Lite0 ([`crate::backbone`], 1280-d pooled features), or the
//! deterministic hand-crafted extractor (colour histograms in RGB and HSV, a small RGB thumbnail,
//! gradient-orientation histograms on a grid). A fitted [`ImagePipeline`] is saved with the model
//! so query images are encoded exactly as the training images were; a backbone pipeline records
//! the weights' sha256, and encoding with other installed weights is refused
//! ([`ImageError::BackboneMismatch`]).
//!
//! [`decode_rgb`] gives the fixed-size pixel tensor (CHW, values in [0, 1]) that a small CNN trains on.
//! Every decoded image is converted to RGB the same way: palette and grey expanded, 16-bit reduced
//! to 8, transparency composited on white (emoji PNGs are mostly transparent).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::data::{ImageInput, Matrix};
use crate::text::column_stats;

/// Largest accepted width or height; larger inputs are refused rather than allocated.
pub const MAX_SIDE: u32 = 8192;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("image {index}: not a PNG or JPEG file (unknown signature)")]
    UnknownFormat { index: usize },
    #[error("image {index}: cannot decode {format}: {msg}")]
    Decode { index: usize, format: &'static str, msg: String },
    #[error("image {index}: size {width}x{height} is empty or exceeds {MAX_SIDE} pixels a side")]
    BadSize { index: usize, width: u32, height: u32 },
    #[error("the image pipeline was fitted on {expected} but was given {got}")]
    WrongInput { expected: &'static str, got: &'static str },
    #[error("feature vectors have {got} columns, the pipeline expects {expected}")]
    WrongDim { expected: usize, got: usize },
    #[error("feature value at row {row}, column {col} is not finite")]
    NotFinite { row: usize, col: usize },
    #[error("cannot fit on zero images")]
    NoData,
    #[error("output size must be at least 1 pixel")]
    ZeroSize,
    /// The backbone could not be loaded or run (the message says why, and for missing or wrong
    /// weights that scripts/fetch-backbone.sh installs them).
    #[error("image backbone: {0}")]
    Backbone(Box<crate::backbone::BackboneError>),
    /// The pipeline was fitted with backbone weights other than the ones this build pins (and
    /// checks the installed file against). Reaches callers of `Model::encode_image` as
    /// `EncodeError::Image(ImageError::BackboneMismatch { .. })`.
    #[error(
        "the model was trained with {name} weights of sha256 {recorded}, but the installed weights \
         (pinned by this build) have sha256 {installed}: run scripts/fetch-backbone.sh to install \
         them, or retrain the model"
    )]
    BackboneMismatch { name: String, recorded: String, installed: String },
    #[error("unknown image backbone {name} (this build knows {known})")]
    UnknownBackbone { name: String, known: &'static str },
}

impl From<crate::backbone::BackboneError> for ImageError {
    fn from(e: crate::backbone::BackboneError) -> Self {
        match e {
            crate::backbone::BackboneError::Image(e) => e,
            e => ImageError::Backbone(Box::new(e)),
        }
    }
}

impl ImageError {
    /// The same error for item `index` of a batch (decoding errors carry the item's position).
    pub(crate) fn at(self, index: usize) -> Self {
        match self {
            ImageError::UnknownFormat { .. } => ImageError::UnknownFormat { index },
            ImageError::Decode { format, msg, .. } => ImageError::Decode { index, format, msg },
            ImageError::BadSize { width, height, .. } => ImageError::BadSize { index, width, height },
            e => e,
        }
    }
}

/// A decoded image: `width x height` RGB pixels, row-major, interleaved (HWC), values in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

/// Decodes PNG or JPEG bytes (recognised by their signature) to RGB on white.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    // The decoders are meant to return errors on corrupt input; catching a panic as well keeps
    // one bad upload from taking down a whole training run or a database backend.
    let result = std::panic::catch_unwind(|| {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            decode_png(bytes)
        } else if bytes.starts_with(&[0xFF, 0xD8]) {
            decode_jpeg(bytes)
        } else {
            Err(ImageError::UnknownFormat { index: 0 })
        }
    });
    result.unwrap_or_else(|_| {
        Err(ImageError::Decode { index: 0, format: "image", msg: "decoder panicked".into() })
    })
}

fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::BadSize { index: 0, width, height });
    }
    Ok(())
}

fn decode_png(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    let err = |e: png::DecodingError| ImageError::Decode { index: 0, format: "PNG", msg: e.to_string() };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(err)?;
    let (w, h) = reader.info().size();
    check_size(w, h)?;
    let size = reader.output_buffer_size().ok_or(ImageError::BadSize { index: 0, width: w, height: h })?;
    let mut buf = vec![0u8; size];
    let out = reader.next_frame(&mut buf).map_err(err)?;
    let channels = match out.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(ImageError::Decode {
                index: 0,
                format: "PNG",
                msg: "palette was not expanded".into(),
            })
        }
    };
    if out.bit_depth != png::BitDepth::Eight {
        return Err(ImageError::Decode {
            index: 0,
            format: "PNG",
            msg: format!("bit depth {:?}", out.bit_depth),
        });
    }
    let (w, h) = (out.width as usize, out.height as usize);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let line = &buf[y * out.line_size..y * out.line_size + w * channels];
        for px in line.chunks_exact(channels) {
            let (rgb, a) = match channels {
                1 => ([px[0]; 3], 255),
                2 => ([px[0]; 3], px[1]),
                3 => ([px[0], px[1], px[2]], 255),
                _ => ([px[0], px[1], px[2]], px[3]),
            };
            let a = a as f32 / 255.0;
            data.extend(rgb.iter().map(|&c| c as f32 / 255.0 * a + (1.0 - a)));
        }
    }
    Ok(RgbImage { width: w, height: h, data })
}

fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    let err = |e: jpeg_decoder::Error| ImageError::Decode { index: 0, format: "JPEG", msg: e.to_string() };
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    decoder.read_info().map_err(err)?;
    let info = decoder.info().ok_or_else(|| ImageError::Decode {
        index: 0,
        format: "JPEG",
        msg: "no header".into(),
    })?;
    check_size(info.width as u32, info.height as u32)?;
    decoder.set_max_decoding_buffer_size(MAX_SIDE as usize * MAX_SIDE as usize * 4);
    let px = decoder.decode().map_err(err)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let mut data = Vec::with_capacity(w * h * 3);
    let short = || ImageError::Decode {
        index: 0,
        format: "JPEG",
        msg: "pixel data shorter than the header says".into(),
    };
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            let px = px.get(..w * h).ok_or_else(short)?;
            data.extend(px.iter().flat_map(|&g| [g as f32 / 255.0; 3]));
        }
        jpeg_decoder::PixelFormat::L16 => {
            let px = px.get(..w * h * 2).ok_or_else(short)?;
            data.extend(
                px.chunks_exact(2).flat_map(|c| [u16::from_be_bytes([c[0], c[1]]) as f32 / 65535.0; 3]),
            );
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            let px = px.get(..w * h * 3).ok_or_else(short)?;
            data.extend(px.iter().map(|&c| c as f32 / 255.0));
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            // jpeg-decoder returns inverted (Adobe) CMYK; RGB = (1 - C)(1 - K) in that convention
            // becomes c * k / 255^2 on the stored bytes.
            let px = px.get(..w * h * 4).ok_or_else(short)?;
            for c in px.chunks_exact(4) {
                let k = c[3] as f32 / 255.0;
                data.extend(c[..3].iter().map(|&v| v as f32 / 255.0 * k));
            }
        }
    }
    Ok(RgbImage { width: w, height: h, data })
}

/// Area-weighted resampling of an RGB image to `size x size` (box filter: each output pixel is the
/// mean of the input area it covers, fractional overlaps weighted). Deterministic, no ringing.
pub fn resize(img: &RgbImage, size: usize) -> RgbImage {
    let wx = box_weights(img.width, size);
    let wy = box_weights(img.height, size);
    // Rows first: height x size x 3.
    let mut tmp = vec![0f32; img.height * size * 3];
    for y in 0..img.height {
        for (ox, ws) in wx.iter().enumerate() {
            for &(ix, w) in ws {
                for c in 0..3 {
                    tmp[(y * size + ox) * 3 + c] += w * img.data[(y * img.width + ix) * 3 + c];
                }
            }
        }
    }
    let mut data = vec![0f32; size * size * 3];
    for (oy, ws) in wy.iter().enumerate() {
        for &(iy, w) in ws {
            for k in 0..size * 3 {
                data[oy * size * 3 + k] += w * tmp[iy * size * 3 + k];
            }
        }
    }
    RgbImage { width: size, height: size, data }
}

/// For each output index, the input indices and weights (summing to 1) of the area it covers.
fn box_weights(input: usize, output: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let mut ws = Vec::new();
            let mut i = lo.floor() as usize;
            while (i as f64) < hi && i < input {
                let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                if overlap > 0.0 {
                    ws.push((i, (overlap / scale) as f32));
                }
                i += 1;
            }
            ws
        })
        .collect()
}

/// Decodes and resizes to `size x size`, returning CHW floats in [0, 1] (3 * size * size values):
/// the pixel tensor layout for a CNN.
pub fn decode_rgb(bytes: &[u8], size: usize) -> Result<Vec<f32>, ImageError> {
    if size == 0 {
        return Err(ImageError::ZeroSize);
    }
    let img = resize(&decode(bytes)?, size);
    let plane = size * size;
    let mut chw = vec![0f32; 3 * plane];
    for (p, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + p] = px[c];
        }
    }
    Ok(chw)
}

/// `f` over each of a batch of encoded images; an error names the item's position, counted from
/// `first`. Several images run in parallel (rayon); one runs on the calling thread, because
/// handing it to the pool only adds a wake-up of a pool thread, which costs milliseconds when
/// the cores are busy, on every row of a backend's `UPDATE ... SET f = jdsh.image_features(png)`.
pub(crate) fn per_image<B, T, F>(images: &[B], first: usize, f: F) -> Result<Vec<T>, ImageError>
where
    B: AsRef<[u8]> + Sync,
    T: Send,
    F: Fn(&[u8]) -> Result<T, ImageError> + Sync,
{
    let one = |(i, b): (usize, &B)| f(b.as_ref()).map_err(|e| e.at(first + i));
    if images.len() <= 1 {
        images.iter().enumerate().map(one).collect()
    } else {
        images.par_iter().enumerate().map(one).collect()
    }
}

/// [`decode_rgb`] over a batch, in parallel: a `len x (3 * size * size)` matrix.
pub fn decode_rgb_batch(images: &[Vec<u8>], size: usize) -> Result<Matrix, ImageError> {
    let rows = per_image(images, 0, |b| decode_rgb(b, size))?;
    Ok(Matrix::new(rows.len(), 3 * size * size, rows.concat()))
}

/// Settings of the hand-crafted extractor. Every part is computed on the image resized to
/// `size x size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractorConfig {
    pub size: usize,
    /// Bins per channel of the joint RGB histogram (bins^3 values).
    pub rgb_bins: usize,
    /// Hue, saturation and value bins of the joint HSV histogram.
    pub hsv_bins: (usize, usize, usize),
    /// Side of the RGB thumbnail (thumb^2 * 3 values).
    pub thumb: usize,
    /// Cells per side of the gradient-orientation grid, and orientation bins (unsigned, 0..180 degrees).
    pub grid: usize,
    pub orientations: usize,
}

impl Default for ExtractorConfig {
    fn default() -> Self {
        ExtractorConfig { size: 32, rgb_bins: 4, hsv_bins: (8, 3, 3), thumb: 8, grid: 4, orientations: 9 }
    }
}

impl ExtractorConfig {
    /// Length of the feature vector.
    pub fn dim(&self) -> usize {
        let (h, s, v) = self.hsv_bins;
        self.rgb_bins.pow(3)
            + h * s * v
            + self.thumb * self.thumb * 3
            + self.grid * self.grid * self.orientations
    }

    /// Features of one decoded image. Histograms are square-rooted (Hellinger map) so that a few
    /// dominant colours (the white background) do not swamp the rest under Euclidean geometry.
    pub fn extract(&self, img: &RgbImage) -> Vec<f32> {
        let size = self.size.max(2);
        let small = resize(img, size);
        let npx = (size * size) as f32;
        let mut out = Vec::with_capacity(self.dim());

        let b = self.rgb_bins.max(1);
        let mut rgb = vec![0f32; b * b * b];
        let (hb, sb, vb) = (self.hsv_bins.0.max(1), self.hsv_bins.1.max(1), self.hsv_bins.2.max(1));
        let mut hsv = vec![0f32; hb * sb * vb];
        let bin = |v: f32, n: usize| ((v * n as f32) as usize).min(n - 1);
        for px in small.data.chunks_exact(3) {
            rgb[(bin(px[0], b) * b + bin(px[1], b)) * b + bin(px[2], b)] += 1.0;
            let (h, s, v) = rgb_to_hsv(px[0], px[1], px[2]);
            hsv[(bin(h, hb) * sb + bin(s, sb)) * vb + bin(v, vb)] += 1.0;
        }
        out.extend(rgb.iter().map(|c| (c / npx).sqrt()));
        out.extend(hsv.iter().map(|c| (c / npx).sqrt()));

        out.extend(resize(&small, self.thumb.max(1)).data);

        out.extend(self.orientation_histograms(&small));
        out
    }

    /// HOG-like: central-difference gradients of the grey image, magnitude-weighted unsigned
    /// orientation histograms (linear interpolation between the two nearest bins) per grid cell,
    /// each cell L2-normalised.
    fn orientation_histograms(&self, img: &RgbImage) -> Vec<f32> {
        let (w, h) = (img.width, img.height);
        let grey: Vec<f32> =
            img.data.chunks_exact(3).map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).collect();
        let g = |x: usize, y: usize| grey[y * w + x];
        let (cells, nb) = (self.grid.max(1), self.orientations.max(1));
        let mut hist = vec![0f32; cells * cells * nb];
        for y in 0..h {
            for x in 0..w {
                let dx = g((x + 1).min(w - 1), y) - g(x.saturating_sub(1), y);
                let dy = g(x, (y + 1).min(h - 1)) - g(x, y.saturating_sub(1));
                let mag = (dx * dx + dy * dy).sqrt();
                if mag == 0.0 {
                    continue;
                }
                let angle = dy.atan2(dx).rem_euclid(std::f32::consts::PI); // unsigned, [0, pi)
                let pos = angle / std::f32::consts::PI * nb as f32 - 0.5;
                let lo = pos.floor();
                let frac = pos - lo;
                let b0 = (lo as isize).rem_euclid(nb as isize) as usize;
                let b1 = (b0 + 1) % nb;
                let cell = (y * cells / h) * cells + x * cells / w;
                hist[cell * nb + b0] += mag * (1.0 - frac);
                hist[cell * nb + b1] += mag * frac;
            }
        }
        for c in hist.chunks_mut(nb) {
            let norm = c.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-3;
            c.iter_mut().for_each(|v| *v /= norm);
        }
        hist
    }
}

/// RGB in [0,1] to HSV in [0,1] each (hue as a fraction of the circle).
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let h = if d <= 0.0 {
        0.0
    } else if max == r {
        ((g - b) / d).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / d + 2.0) / 6.0
    } else {
        ((r - g) / d + 4.0) / 6.0
    };
    let s = if max > 0.0 { d / max } else { 0.0 };
    (h.clamp(0.0, 1.0), s, max)
}

/// Which extractor turns encoded images into features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ImageExtractor {
    /// ImageNet-pretrained EfficientNet-Lite0, 1280-d pooled features (weights:
    /// scripts/fetch-backbone.sh): the default. Images are found by what they show, not by colour.
    #[default]
    #[serde(rename = "efficientnet-lite0")]
    #[cfg_attr(feature = "cli", value(name = "efficientnet-lite0"))]
    EfficientNetLite0,
    /// Colour histograms, thumbnail and gradient orientations: no network, no weights.
    #[serde(rename = "handcrafted")]
    Handcrafted,
}

impl ImageExtractor {
    /// What a stored configuration without the field means: it was written before the choice
    /// existed, when the hand-crafted extractor was the only one.
    pub fn before_the_choice() -> Self {
        ImageExtractor::Handcrafted
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageExtractor::EfficientNetLite0 => BackboneSpec::EFFICIENTNET_LITE0,
            ImageExtractor::Handcrafted => "handcrafted",
        }
    }
}

impl std::fmt::Display for ImageExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The pretrained backbone a pipeline was fitted with, as recorded in the model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackboneSpec {
    /// [`BackboneSpec::EFFICIENTNET_LITE0`] (the only one so far).
    pub name: String,
    /// Feature dimension (1280).
    pub dim: usize,
    /// sha256 of the weights file the features were computed with.
    pub weights_sha256: String,
    /// Side of the square network input (224).
    pub input_size: usize,
}

impl BackboneSpec {
    pub const EFFICIENTNET_LITE0: &'static str = "efficientnet-lite0";

    /// EfficientNet-Lite0 with the weights this build pins.
    pub fn efficientnet_lite0() -> Self {
        BackboneSpec {
            name: Self::EFFICIENTNET_LITE0.into(),
            dim: crate::backbone::FEATURE_DIM,
            weights_sha256: crate::backbone::weights::SHA256.into(),
            input_size: crate::backbone::INPUT_SIZE as usize,
        }
    }

    /// Whether this build can compute these features: a known backbone of the right shape, and
    /// the recorded weights are the ones this build pins (and checks on load).
    pub fn check(&self) -> Result<(), ImageError> {
        let ours = Self::efficientnet_lite0();
        if self.name != ours.name || self.dim != ours.dim || self.input_size != ours.input_size {
            return Err(ImageError::UnknownBackbone {
                name: format!("{} ({}-d, {} px input)", self.name, self.dim, self.input_size),
                known: "efficientnet-lite0 (1280-d, 224 px input)",
            });
        }
        if self.weights_sha256 != ours.weights_sha256 {
            return Err(ImageError::BackboneMismatch {
                name: self.name.clone(),
                recorded: self.weights_sha256.clone(),
                installed: ours.weights_sha256,
            });
        }
        Ok(())
    }

    /// Raw backbone features of encoded images on `device` (the process's shared extractor).
    fn features(&self, images: &[Vec<u8>], device: Device) -> Result<Matrix, ImageError> {
        self.check()?;
        if images.is_empty() {
            return Ok(Matrix::new(0, self.dim, vec![]));
        }
        let x = crate::backbone::FeatureExtractor::shared(device)?;
        let x = x.lock().unwrap_or_else(|e| e.into_inner());
        Ok(x.features(images)?)
    }
}

/// Features of encoded images by `extractor`, before any standardisation: what a pipeline with
/// that extractor computes from them (the hand-crafted ones in parallel, a backbone's in batches
/// on `device`). `jdsh.image_features` stores them in a column, to train and encode from once.
pub fn extract_features(
    images: Vec<Vec<u8>>,
    extractor: ImageExtractor,
    device: Device,
) -> Result<Matrix, ImageError> {
    let encoder = ImageEncoder::for_encoded(extractor, &ExtractorConfig::default());
    let pipeline = ImagePipeline { encoder, mean: None, scale: None };
    pipeline.raw_features_on(&ImageInput::Encoded(images), device)
}

/// What the pipeline reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImageEncoder {
    /// Feature vectors of a fixed dimension.
    Features { dim: usize },
    /// Encoded PNG/JPEG bytes through the hand-crafted extractor.
    Handcrafted(ExtractorConfig),
    /// Encoded PNG/JPEG bytes through a pretrained backbone.
    Backbone(BackboneSpec),
}

impl ImageEncoder {
    /// The encoder for encoded images through `extractor` (`handcrafted` with the settings `cfg`).
    fn for_encoded(extractor: ImageExtractor, cfg: &ExtractorConfig) -> Self {
        match extractor {
            ImageExtractor::Handcrafted => ImageEncoder::Handcrafted(cfg.clone()),
            ImageExtractor::EfficientNetLite0 => ImageEncoder::Backbone(BackboneSpec::efficientnet_lite0()),
        }
    }
}

/// Settings of [`ImagePipeline::fit`]; `backbone` and `extractor` are used only for encoded images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePipelineConfig {
    /// Settings of the hand-crafted extractor (when `backbone` is `handcrafted`).
    pub extractor: ExtractorConfig,
    /// The extractor for encoded images: `efficientnet-lite0` (default) or `handcrafted`. A
    /// configuration stored before this field existed (older model files) reads as `handcrafted`,
    /// which is what those models used.
    #[serde(default = "ImageExtractor::before_the_choice")]
    pub backbone: ImageExtractor,
    /// Subtract the training mean and divide by the training standard deviation per column.
    pub standardize: bool,
}

impl Default for ImagePipelineConfig {
    fn default() -> Self {
        ImagePipelineConfig {
            extractor: ExtractorConfig::default(),
            backbone: ImageExtractor::default(),
            standardize: true,
        }
    }
}

/// A fitted image pipeline. Serialise it with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePipeline {
    pub encoder: ImageEncoder,
    pub mean: Option<Vec<f32>>,
    pub scale: Option<Vec<f32>>,
}

impl ImagePipeline {
    /// Fits on `input`, running a backbone on the CPU. See [`ImagePipeline::fit_transform`].
    pub fn fit(input: &ImageInput, cfg: &ImagePipelineConfig) -> Result<ImagePipeline, ImageError> {
        Ok(Self::fit_transform(input, cfg, Device::Cpu)?.0)
    }

    /// Fits on `input` and returns the pipeline with the standardised and the raw features of
    /// `input`, extracting each image's features once (a backbone runs on `device`).
    pub fn fit_transform(
        input: &ImageInput,
        cfg: &ImagePipelineConfig,
        device: Device,
    ) -> Result<(ImagePipeline, Matrix, Matrix), ImageError> {
        let encoder = match input {
            ImageInput::Features(m) => ImageEncoder::Features { dim: m.cols },
            ImageInput::Encoded(_) => ImageEncoder::for_encoded(cfg.backbone, &cfg.extractor),
        };
        let mut p = ImagePipeline { encoder, mean: None, scale: None };
        let raw = p.raw_features_on(input, device)?;
        if raw.rows == 0 {
            return Err(ImageError::NoData);
        }
        if cfg.standardize {
            let (mean, std) = column_stats(&raw);
            p.mean = Some(mean);
            p.scale = Some(std.into_iter().map(|s| if s > 1e-8 { s } else { 1.0 }).collect());
        }
        let m = p.standardize(raw.clone());
        Ok((p, m, raw))
    }

    pub fn output_dim(&self) -> usize {
        match &self.encoder {
            ImageEncoder::Features { dim } => *dim,
            ImageEncoder::Handcrafted(c) => c.dim(),
            ImageEncoder::Backbone(b) => b.dim,
        }
    }

    /// The backbone this pipeline runs, if any.
    pub fn backbone(&self) -> Option<&BackboneSpec> {
        match &self.encoder {
            ImageEncoder::Backbone(b) => Some(b),
            _ => None,
        }
    }

    /// Features, standardised as fitted (a backbone runs on the CPU).
    pub fn transform(&self, input: &ImageInput) -> Result<Matrix, ImageError> {
        self.transform_on(input, Device::Cpu)
    }

    /// Features, standardised as fitted, a backbone running on `device`.
    pub fn transform_on(&self, input: &ImageInput, device: Device) -> Result<Matrix, ImageError> {
        Ok(self.standardize(self.raw_features_on(input, device)?))
    }

    /// Applies the fitted standardisation to raw features.
    fn standardize(&self, mut m: Matrix) -> Matrix {
        if let (Some(mean), Some(scale)) = (&self.mean, &self.scale) {
            for i in 0..m.rows {
                for ((v, mu), s) in m.row_mut(i).iter_mut().zip(mean).zip(scale) {
                    *v = (*v - mu) / s;
                }
            }
        }
        m
    }

    /// Features before standardisation (a backbone runs on the CPU).
    pub fn raw_features(&self, input: &ImageInput) -> Result<Matrix, ImageError> {
        self.raw_features_on(input, Device::Cpu)
    }

    /// Features before standardisation: the hand-crafted ones extracted in parallel, a backbone's
    /// in batches on `device`.
    pub fn raw_features_on(&self, input: &ImageInput, device: Device) -> Result<Matrix, ImageError> {
        match (&self.encoder, input) {
            (ImageEncoder::Features { dim }, ImageInput::Features(m)) => {
                if m.cols != *dim {
                    return Err(ImageError::WrongDim { expected: *dim, got: m.cols });
                }
                if let Some(k) = m.data.iter().position(|v| !v.is_finite()) {
                    return Err(ImageError::NotFinite { row: k / m.cols.max(1), col: k % m.cols.max(1) });
                }
                Ok(m.clone())
            }
            (ImageEncoder::Handcrafted(cfg), ImageInput::Encoded(images)) => {
                let rows = per_image(images, 0, |b| decode(b).map(|img| cfg.extract(&img)))?;
                Ok(Matrix::new(rows.len(), cfg.dim(), rows.concat()))
            }
            (ImageEncoder::Backbone(spec), ImageInput::Encoded(images)) => {
                let m = spec.features(images, device)?;
                if let Some(k) = m.data.iter().position(|v| !v.is_finite()) {
                    return Err(ImageError::NotFinite { row: k / m.cols.max(1), col: k % m.cols.max(1) });
                }
                Ok(m)
            }
            (ImageEncoder::Features { .. }, ImageInput::Encoded(_)) => {
                Err(ImageError::WrongInput { expected: "feature vectors", got: "encoded images" })
            }
            (ImageEncoder::Handcrafted(_) | ImageEncoder::Backbone(_), ImageInput::Features(_)) => {
                Err(ImageError::WrongInput { expected: "encoded images", got: "feature vectors" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x2 palette PNG with transparency: index 0 transparent, 1 opaque red, 2 half-transparent blue.
    fn palette_png() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 4, 2);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_palette(vec![0, 0, 0, 255, 0, 0, 0, 0, 255]);
            enc.set_trns(vec![0, 255, 128]);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[0, 1, 1, 2, 2, 2, 0, 0]).unwrap();
        }
        out
    }

    #[test]
    fn palette_with_transparency_composites_on_white() {
        let img = decode(&palette_png()).unwrap();
        assert_eq!((img.width, img.height), (4, 2));
        assert_eq!(&img.data[..3], &[1.0, 1.0, 1.0]); // transparent -> white
        assert_eq!(&img.data[3..6], &[1.0, 0.0, 0.0]); // opaque red
        let a = 128.0 / 255.0;
        let blue = &img.data[9..12]; // blue at alpha 128/255 over white
        assert!((blue[0] - (1.0 - a)).abs() < 1e-6 && (blue[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let png = palette_png();
        assert_eq!(decode(b"GIF89a...."), Err(ImageError::UnknownFormat { index: 0 }));
        assert!(matches!(decode(&png[..png.len() / 2]), Err(ImageError::Decode { format: "PNG", .. })));
        let mut flipped = png.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 0xFF; // inside the image data: checksum / inflate error
        assert!(decode(&flipped).is_err());
        assert!(matches!(
            decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 3]),
            Err(ImageError::Decode { format: "JPEG", .. })
        ));
        // In a batch, the error names the item.
        let batch = ImageInput::Encoded(vec![png.clone(), b"nope".to_vec()]);
        let pipe = ImagePipeline {
            encoder: ImageEncoder::Handcrafted(ExtractorConfig::default()),
            mean: None,
            scale: None,
        };
        assert_eq!(pipe.transform(&batch), Err(ImageError::UnknownFormat { index: 1 }));
    }

    #[test]
    fn decode_rgb_is_chw_in_unit_range() {
        let chw = decode_rgb(&palette_png(), 2).unwrap();
        assert_eq!(chw.len(), 3 * 2 * 2);
        // Output pixel (0,0) averages input (0,0) white and (1,0) red: R = 1, G = B = 0.5.
        assert_eq!((chw[0], chw[4], chw[8]), (1.0, 0.5, 0.5));
        assert!(chw.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(decode_rgb(&palette_png(), 0), Err(ImageError::ZeroSize));
    }

    #[test]
    fn box_weights_cover_the_input_once() {
        for (i, o) in [(64, 32), (7, 3), (3, 7), (5, 5)] {
            let w = box_weights(i, o);
            let mut cover = vec![0f32; i];
            for ws in &w {
                assert!((ws.iter().map(|x| x.1).sum::<f32>() - 1.0).abs() < 1e-5);
                ws.iter().for_each(|&(k, x)| cover[k] += x);
            }
            let total: f32 = cover.iter().sum();
            assert!((total - o as f32).abs() < 1e-4, "{i}->{o}");
        }
    }

    #[test]
    fn pipeline_standardises_and_round_trips_through_serde() {
        let imgs = ImageInput::Encoded(vec![palette_png(), palette_png()]);
        let cfg = ImagePipelineConfig { backbone: ImageExtractor::Handcrafted, ..Default::default() };
        let p = ImagePipeline::fit(&imgs, &cfg).unwrap();
        assert_eq!(p.output_dim(), 64 + 72 + 192 + 144);
        let m = p.transform(&imgs).unwrap();
        assert!(m.data.iter().all(|v| v.abs() < 1e-4), "identical images standardise to zero");
        let back: ImagePipeline = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.transform(&imgs).unwrap(), m);
        let feats = ImageInput::Features(Matrix::new(2, 3, vec![1.0, 2.0, 3.0, 3.0, 2.0, 1.0]));
        let f = ImagePipeline::fit(&feats, &ImagePipelineConfig::default()).unwrap();
        assert_eq!(f.transform(&feats).unwrap().data, [-1.0, 0.0, 1.0, 1.0, 0.0, -1.0]);
        assert!(matches!(f.transform(&imgs), Err(ImageError::WrongInput { .. })));
    }
}
