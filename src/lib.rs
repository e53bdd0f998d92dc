//! jdsh: cross-modal similarity search with learned binary hash codes, in PostgreSQL.
//!
//! This crate is the glue between PostgreSQL and the PostgreSQL-free crates: `jdsh-core` (codes,
//! Hamming kernel, Multi-Index Hashing) and `jdsh-trainer` (JDSH/DCMH learning, model files). The SQL surface
//! of each module is hand-written in `sql/` so that names, volatility and operator classes are
//! visible in one place.

use pgrx::prelude::*;

#[macro_use]
mod fmgr;
mod bitcode;
mod gucs;
mod index;
mod models;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx carries PostgreSQL ERRORs through Rust frames as panics and, when RUST_BACKTRACE is
    // set in the server's environment, would print a Rust backtrace as the DETAIL of ordinary
    // errors ("column does not exist", "canceling statement"). RUST_LIB_BACKTRACE takes
    // precedence for captured backtraces and is read once, so set it before anything captures.
    // The backend is still single-threaded here, which makes changing the environment sound.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    gucs::init();
    index::options::init();
    models::registry::init();
    models::use_installed_backbone();
}

// The bitcode type, its operators, operator classes and casts. `bootstrap` puts it first in the
// extension script: everything else in jdsh builds on the type.
extension_sql_file!("../sql/bitcode.sql", name = "bitcode", bootstrap);
// The bitball type for radius queries and the mih access method with its operator class.
extension_sql_file!("../sql/mih.sql", name = "mih", requires = ["bitcode"]);
// The model registry, training, encoders and evaluation.
extension_sql_file!("../sql/models.sql", name = "models", requires = ["bitcode"]);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("tests.rs");
}

/// Used by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
