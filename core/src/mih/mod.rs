//! Multi-Index Hashing (Norouzi, Punjani & Fleet, CVPR 2012 / TPAMI 2014) for exact Hamming
//! k-NN and radius search, over a small page-store trait so that it runs (and is tested) in
//! memory as well as on PostgreSQL pages.

pub mod index;
pub mod layout;
pub mod probe;
pub mod search;
pub mod store;

pub use index::{CheckReport, Mih, VacuumStats};
pub use layout::{BlockNo, Meta, MihError, Params, Tid};
pub use search::{Search, SearchStats};
pub use store::{MemStore, PageGuard, PageStore};

#[cfg(test)]
mod tests;
