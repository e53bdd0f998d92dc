//! Models in the database: the `jdsh.models` registry with its per-backend cache, training from
//! a table or query (`jdsh.train`), the encoders (`jdsh.encode_*`), image features
//! (`jdsh.image_features`), evaluation (`jdsh.evaluate`) and the report page (`jdsh.report`).
//! The learning itself is the `jdsh-trainer` crate; this module only moves data between SPI and
//! it and turns its errors into SQLSTATEs. SQL declarations, privileges and
//! row-level security: `sql/models.sql`.

mod encode;
mod errors;
mod evaluate;
mod features;
pub mod registry;
mod report;
mod source;
mod train;

/// True when Citus is installed in this database: it is looked up by name, never linked (its
/// catalog and functions are used only where this says they exist).
fn citus_installed() -> bool {
    pgrx::Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Tells the trainer that the image backbone's weights are in this server's
/// `<sharedir>/extension/jdsh/` (where set-up installs them beside the extension's scripts),
/// found from the server's own executable, so that no `pg_config` needs to be on its `PATH`.
pub fn use_installed_backbone() {
    let mut buf = [0 as std::ffi::c_char; pgrx::pg_sys::MAXPGPATH as usize];
    // SAFETY: my_exec_path is the server's NUL-terminated executable path, set before any
    // library loads; get_share_path writes at most MAXPGPATH bytes, NUL-terminated, into buf.
    let share = unsafe {
        pgrx::pg_sys::get_share_path(std::ptr::addr_of!(pgrx::pg_sys::my_exec_path).cast(), buf.as_mut_ptr());
        std::ffi::CStr::from_ptr(buf.as_ptr())
    };
    if let Ok(share) = share.to_str() {
        if !share.is_empty() {
            jdsh_trainer::backbone::weights::set_installed_dir(
                std::path::Path::new(share).join("extension").join("jdsh"),
            );
        }
    }
}
