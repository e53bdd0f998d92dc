//! An ImageNet-pretrained image backbone: EfficientNet-Lite0 (Google's weights, 4.7M parameters),
//! whose 1280-d pooled features are the image hash network's input for encoded images when a
//! pipeline chooses it ([`crate::image::ImageExtractor`]).
//!
//! - [`EfficientNetLite0`]: the network as a tch module, batched, on any [`Device`]:
//!   [`EfficientNetLite0::features`] (`N x 1280`) and [`EfficientNetLite0::logits`] (`N x 1000`).
//! - [`weights`]: where `efficientnet_lite0.safetensors` lives (`$JDSH_BACKBONE_DIR`, else the
//!   host's share directory, else `$(pg_config --sharedir)/extension/jdsh/`), installed by `scripts/fetch-backbone.sh`; its
//!   sha256 is checked on load.
//! - [`FeatureExtractor`]: encoded PNG/JPEG bytes in, 1280-d features out: decoded by
//!   [`crate::image::decode`] (RGB, transparency composited on white), resized to 224 x 224
//!   (the whole image, aspect ratio not kept; bilinear, antialiased when shrinking), normalised
//!   to `(v - 127) / 128` on 0..255 values, run in batches without gradients (1 image per pass
//!   on the CPU, 32 on a GPU: see [`FeatureExtractor::CPU_BATCH`]).
//!   [`FeatureExtractor::shared`] keeps one per device and process.

pub mod efficientnet_lite;
pub mod weights;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use crate::data::Matrix;
use crate::image::{self, ImageError, RgbImage};

pub use efficientnet_lite::{EfficientNetLite0, CLASSES, FEATURE_DIM, INPUT_SIZE};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackboneError {
    #[error("EfficientNet-Lite0 weights not found at {}: run scripts/fetch-backbone.sh", .path.display())]
    Missing { path: PathBuf },
    #[error(
        "EfficientNet-Lite0 weights at {} have sha256 {got}, expected {}: run scripts/fetch-backbone.sh",
        .path.display(),
        weights::SHA256
    )]
    Checksum { path: PathBuf, got: String },
    #[error("cannot read {}: {msg}", .path.display())]
    Io { path: PathBuf, msg: String },
    #[error(
        "no directory for the EfficientNet-Lite0 weights: set JDSH_BACKBONE_DIR or PG_CONFIG (or put \
         pg_config on PATH), then run scripts/fetch-backbone.sh"
    )]
    NoLocation,
    #[error("{} is not the EfficientNet-Lite0 weights file ({msg}): run scripts/fetch-backbone.sh", .path.display())]
    Format { path: PathBuf, msg: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("libtorch: {0}")]
    Torch(String),
}

impl From<tch::TchError> for BackboneError {
    fn from(e: tch::TchError) -> Self {
        BackboneError::Torch(e.to_string())
    }
}

/// EfficientNet-Lite0 on `device` with the weights of the file at `path` (checksum checked).
pub fn load(path: &Path, device: Device) -> Result<EfficientNetLite0, BackboneError> {
    let bytes = weights::read_verified(path)?;
    let mut net = EfficientNetLite0::new(device);
    weights::load_into(&net, &bytes, path)?;
    net.fuse();
    Ok(net)
}

/// [`load`] from [`weights::default_path`].
pub fn load_default(device: Device) -> Result<EfficientNetLite0, BackboneError> {
    load(&weights::default_path()?, device)
}

/// `(v - 127) / 128`: the network's input from pixel values in 0..255.
pub fn normalize(x: &Tensor) -> Tensor {
    (x - 127.0) / 128.0
}

/// Resizes a batch `N x C x H x W` to `224 x 224`: bilinear (half-pixel centres, as
/// `F.interpolate(..., mode="bilinear", align_corners=False)`), antialiased when either side
/// shrinks (`antialias=True`); unchanged when already 224 x 224.
pub fn resize_to_input(x: &Tensor) -> Tensor {
    let size = x.size();
    let (h, w) = (size[2], size[3]);
    let out = [INPUT_SIZE, INPUT_SIZE];
    if h == INPUT_SIZE && w == INPUT_SIZE {
        x.shallow_clone()
    } else if h <= INPUT_SIZE && w <= INPUT_SIZE {
        x.upsample_bilinear2d(out, false, None, None)
    } else {
        x.internal_upsample_bilinear2d_aa(out, false, None, None)
    }
}

/// The network's input for one decoded image: `1 x 3 x 224 x 224`, resized and normalised, on
/// the CPU.
pub fn input_tensor(img: &RgbImage) -> Tensor {
    let (h, w) = (img.height as i64, img.width as i64);
    let x = Tensor::from_slice(&img.data).view([1, h, w, 3]).permute([0, 3, 1, 2]) * 255.0;
    normalize(&resize_to_input(&x)).contiguous()
}

/// Encoded images (PNG/JPEG bytes) to 1280-d EfficientNet-Lite0 features.
#[derive(Debug)]
pub struct FeatureExtractor {
    net: EfficientNetLite0,
    batch_size: usize,
}

/// A [`FeatureExtractor`] shared by the threads of a process.
pub type SharedExtractor = Arc<Mutex<FeatureExtractor>>;

/// One extractor per weights file and device, loaded on first use.
static SHARED: Mutex<Vec<(PathBuf, Device, SharedExtractor)>> = Mutex::new(Vec::new());
/// [`weights::default_path`], resolved once per process (it may run `pg_config`).
static DEFAULT_PATH: once_cell::sync::OnceCell<PathBuf> = once_cell::sync::OnceCell::new();

/// Images decoded in parallel at a time.
const DECODE_CHUNK: usize = 32;

impl FeatureExtractor {
    /// Images per forward pass on the CPU unless [`Self::set_batch_size`] says otherwise. Larger
    /// CPU batches are slower per image (bench/README.md): their activations (~5 MB per image in
    /// the first stages) outgrow the caches, and glibc maps and unmaps every tensor above 32 MB
    /// afresh, paying page faults.
    pub const CPU_BATCH: usize = 1;
    /// Images per forward pass on a GPU.
    pub const GPU_BATCH: usize = 32;

    pub fn new(net: EfficientNetLite0) -> Self {
        let batch_size = if net.device() == Device::Cpu { Self::CPU_BATCH } else { Self::GPU_BATCH };
        FeatureExtractor { net, batch_size }
    }

    /// Loads the weights at `path` (checksum checked) onto `device`.
    pub fn load(path: &Path, device: Device) -> Result<Self, BackboneError> {
        Ok(Self::new(load(path, device)?))
    }

    /// The process's extractor for `device` with the weights in [`weights::default_dir`]
    /// (resolved on the first call), loaded on first use.
    pub fn shared(device: Device) -> Result<SharedExtractor, BackboneError> {
        let path = DEFAULT_PATH.get_or_try_init(weights::default_path)?;
        Self::shared_at(path, device)
    }

    /// The process's extractor for `device` with the weights at `path`, loaded on first use.
    pub fn shared_at(path: &Path, device: Device) -> Result<SharedExtractor, BackboneError> {
        // Held while loading, so that concurrent first calls load once.
        let mut cache = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, x)) = cache.iter().find(|(p, d, _)| p == path && *d == device) {
            return Ok(x.clone());
        }
        let x = Arc::new(Mutex::new(Self::load(path, device)?));
        cache.push((path.to_path_buf(), device, x.clone()));
        Ok(x)
    }

    pub fn net(&self) -> &EfficientNetLite0 {
        &self.net
    }

    pub fn device(&self) -> Device {
        self.net.device()
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn set_batch_size(&mut self, n: usize) {
        self.batch_size = n.max(1);
    }

    /// The network's input for encoded images: `N x 3 x 224 x 224` on the CPU (decoded in
    /// parallel). A decoding error names the item's position.
    pub fn pixels<B: AsRef<[u8]> + Sync>(images: &[B]) -> Result<Tensor, BackboneError> {
        Self::pixels_from(images, 0)
    }

    /// [`Self::pixels`] for items numbered from `first` in errors.
    fn pixels_from<B: AsRef<[u8]> + Sync>(images: &[B], first: usize) -> Result<Tensor, BackboneError> {
        let decoded: Vec<RgbImage> = image::per_image(images, first, image::decode)?;
        if decoded.is_empty() {
            return Ok(Tensor::zeros([0, 3, INPUT_SIZE, INPUT_SIZE], (Kind::Float, Device::Cpu)));
        }
        let inputs: Vec<Tensor> = decoded.iter().map(input_tensor).collect();
        Ok(Tensor::cat(&inputs, 0))
    }

    /// Features of encoded images, `images.len() x 1280`: decoded in parallel, in chunks, then
    /// forward passes of [`Self::batch_size`] images.
    pub fn features<B: AsRef<[u8]> + Sync>(&self, images: &[B]) -> Result<Matrix, BackboneError> {
        let mut data = Vec::with_capacity(images.len() * FEATURE_DIM);
        for (k, chunk) in images.chunks(DECODE_CHUNK.max(self.batch_size)).enumerate() {
            let x = Self::pixels_from(chunk, k * DECODE_CHUNK.max(self.batch_size))?;
            for part in x.split(self.batch_size as i64, 0) {
                let f = self.net.features(&part).to_device(Device::Cpu).contiguous();
                data.extend(Vec::<f32>::try_from(f.view([-1]))?);
            }
        }
        Ok(Matrix::new(images.len(), FEATURE_DIM, data))
    }
}
