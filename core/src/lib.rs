//! The PostgreSQL-free heart of jdsh: binary codes and (later) the Multi-Index Hashing algorithm,
//! written so that they can be tested in memory, without a server.

pub mod code;
pub mod mih;

pub use code::{Code, CodeError, MAX_BITS};
