//! The extension links libtorch (through jdsh-trainer). A PostgreSQL backend loads jdsh.so with
//! the server's library path, which includes neither the project's `.venv` nor anything of the
//! checkout: record two rpaths, searched in this order:
//! 1. the directory torch-sys linked against (the venv's `torch/lib`), for a checkout the
//!    server's user can read (setup.sh makes the venv world-readable);
//! 2. `<pkglibdir>/jdsh/torch/lib`, where setup.sh installs the same libraries beside the
//!    extension, for a checkout the server's user cannot enter (a private home, a `mktemp -d`
//!    folder) and for a checkout that is gone. The loader skips a directory it cannot open.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PG_CONFIG");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".into());
    if let Ok(out) = Command::new(pg_config).arg("--pkglibdir").output() {
        let pkglibdir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !pkglibdir.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{pkglibdir}/jdsh/torch/lib");
        }
    }
}
