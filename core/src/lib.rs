//! The PostgreSQL-free heart of jdsh: binary codes, the popcount kernel and the Multi-Index
//! Hashing algorithm over a page trait, written so that they can be tested in memory, without a
//! server.

pub mod code;
pub mod mih;
pub mod rng;
pub mod synthetic;

pub use code::{Code, CodeError, MAX_BITS};
