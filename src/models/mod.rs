//! Models in the database: the `jdsh.models` registry with its per-backend cache, training from
//! a table or query (`jdsh.train`), the encoders (`jdsh.encode_*`) and evaluation
//! (`jdsh.evaluate`). The learning itself is the `jdsh-trainer` crate; this module only moves
//! data between SPI and it and turns its errors into SQLSTATEs. SQL declarations, privileges and
//! row-level security: `sql/models.sql`.

mod encode;
mod errors;
mod evaluate;
pub mod registry;
mod source;
mod train;
