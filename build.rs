//! The extension links libtorch (through jdsh-trainer). A PostgreSQL backend loads jdsh.so with
//! the server's library path, which does not include the project's `.venv`: record the directory
//! torch-sys linked against as an rpath. The postgres user must be able to read it (setup.sh
//! makes the venv world-readable).
fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
