//! Multi-Index Hashing (Norouzi, Punjani & Fleet, CVPR 2012 / TPAMI 2014) for exact Hamming
//! k-NN and radius search, over a small page-store trait so that it runs (and is tested) in
//! memory as well as on PostgreSQL pages.
//!
//! One file per phase, each the twin of the extension's `src/index/<phase>.rs`: `build`,
//! `insert`, `search` (the twin of `scan`; it runs the `probe` primitives), `vacuum`, `check`
//! and `cost` (the probe count that the planner prices, and the prices by which a search chooses
//! between probing and reading a whole table), and `tune` (the number of substrings and the probe
//! budget chosen from the data at build). `rows` is the row list (every row's code packed for a
//! search that reads them all) through each phase; `retune` chooses and writes the tables again
//! for an index that has grown (VACUUM runs it). They share `index` (the open index and
//! its directory), `layout` (page formats and parameters) and `store` (the page-store trait and
//! the in-memory store of the tests).

mod build;
mod check;
pub mod cost;
pub mod index;
mod insert;
pub mod layout;
pub mod probe;
pub mod retune;
mod rows;
pub mod search;
pub mod store;
pub mod tune;
mod vacuum;

pub use check::CheckReport;
pub use index::Mih;
pub use layout::{BlockNo, Meta, MihError, Params, Tid};
pub use retune::Retuned;
pub use search::{RowsAsked, Search, SearchStats};
pub use store::{MemStore, PageGuard, PageStore};
pub use vacuum::VacuumStats;

#[cfg(test)]
mod tests;
