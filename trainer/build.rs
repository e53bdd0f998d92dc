//! Binaries and tests of this crate load libtorch from the place torch-sys linked it from (the
//! project's `.venv`, see scripts/setup.sh): record that directory as an rpath so that they run
//! without LD_LIBRARY_PATH.
fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
