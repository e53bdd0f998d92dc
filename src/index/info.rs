//! `jdsh.mih_info(index)`: how an index is laid out — its number of substrings (hash tables),
//! their lengths, the buckets per table, the rows they were written for (at build, or at the
//! retune of a VACUUM once the index had twice as many: `jdsh_core::mih::retune`) — and what
//! chose the number of substrings: the `substrings` option, the rule (small tables), or the
//! measurement of the codes by the build or a retune (`jdsh_core::mih::tune`); and the probe
//! budgets chosen with it (for the first 10 rows of a search, and past them; NULL where none
//! was chosen: an older or a small index).

use jdsh_core::mih::tune;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgRelation, PgSqlErrorCode};

use super::options;
use crate::fmgr::raise;

// The row type is spelt out: pg_extern reads the column names from it, not from an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn mih_info(
    index: PgRelation,
) -> TableIterator<
    'static,
    (
        name!(substrings, i32),
        name!(substring_bits, Vec<i32>),
        name!(buckets_per_table, i64),
        name!(built_rows, i64),
        name!(chosen_by, String),
        name!(probe_budget, i32),
        name!(probe_budget_top100, Option<i32>),
    ),
> {
    let am = Spi::get_one_with_args::<String>(
        "SELECT a.amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = $1 AND c.relkind = 'i'",
        &[index.oid().into()],
    )
    .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()));
    if am.as_deref() != Some("mih") {
        raise(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, format!("\"{}\" is not a mih index", index.name()));
    }
    // SAFETY: the relation is an open mih index (checked above), locked by PgRelation's open.
    let rel: pg_sys::Relation = index.as_ptr();
    let mih = super::open(rel);
    let p = mih.params();
    let built = mih.meta.built_rows;
    // A build puts the directory at block 1, a retune where its new blocks start.
    let (by, at) = if mih.meta.tables.dir_start == 1 {
        ("the build", "build")
    } else {
        ("a retune at VACUUM", "retune")
    };
    let chosen_by = match options::of(rel).0 {
        Some(_) => "the substrings option".to_string(),
        None if (built as usize) < tune::MIN_ROWS => {
            format!("the rule: code bits / log2(rows) (fewer than {} rows at {at})", tune::MIN_ROWS)
        }
        None => format!("{by}, from the codes' {}-NN distances", tune::TUNE_K),
    };
    TableIterator::once((
        p.m() as i32,
        (0..p.m()).map(|t| p.sub_len(t) as i32).collect(),
        p.nbuckets as i64,
        built as i64,
        chosen_by,
        mih.meta.probe_budget as i32,
        mih.meta.probe_budget_top100.map(i32::from),
    ))
}
