//! `jdsh.mih_check(index)`: verifies an index's structure (every page, chain, order and bucket,
//! all tables holding the same entries) and that every row of its table is in it with the same
//! code, like amcheck. Raises `index_corrupted` (XX002) on the first inconsistency.

use jdsh_core::code::Code;
use jdsh_core::mih::Tid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgRelation, PgSqlErrorCode};

use super::report;
use crate::fmgr::raise;

fn parse_tid(text: &str) -> Option<Tid> {
    let (b, o) = text.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
    Some(Tid::new(b.parse().ok()?, o.parse().ok()?))
}

#[pg_extern(sql = false)]
fn mih_check(
    index: PgRelation,
) -> TableIterator<
    'static,
    (
        name!(rows, i64),
        name!(heap_rows, i64),
        name!(dead_entries, i64),
        name!(bucket_pages, i64),
        name!(free_pages, i64),
        name!(longest_chain, i64),
        name!(partial_entries, i64),
    ),
> {
    let oid = index.oid();
    // The heap query is built here, quoting included; NULL for an expression index (no column
    // to compare with). Starting from pg_class, any relation gives one row: a table, a view or
    // another access method's index is then "not a mih index" (42809), not an SPI error.
    let (am, heap, heap_sql) = Spi::get_three_with_args::<String, pg_sys::Oid, String>(
        "SELECT a.amname::text, i.indrelid, \
                CASE WHEN i.indkey[0] <> 0 THEN \
                  format('SELECT ctid::text, %1$I::text FROM ONLY %2$s WHERE %1$I IS NOT NULL', \
                         att.attname, i.indrelid::regclass) END \
           FROM pg_class c LEFT JOIN pg_am a ON a.oid = c.relam AND c.relkind = 'i' \
           LEFT JOIN pg_index i ON i.indexrelid = c.oid \
           LEFT JOIN pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = i.indkey[0] \
          WHERE c.oid = $1",
        &[oid.into()],
    )
    .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()));
    if am.as_deref() != Some("mih") {
        raise(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, format!("\"{}\" is not a mih index", index.name()));
    }
    let heap = heap.unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "index without table"));
    // No writes while index and table are compared (a row committed between reading the one
    // and the other would look missing).
    // SAFETY: a plain lock request on a relation OID read from pg_index; held to the end of the
    // transaction.
    unsafe { pg_sys::LockRelationOid(heap, pg_sys::ShareLock as pg_sys::LOCKMODE) };
    let mih = super::open(index.as_ptr());
    let found = mih.check().unwrap_or_else(|e| report(e));
    let mut heap_rows = 0i64;
    if let Some(sql) = heap_sql {
        Spi::connect(|client| {
            let rows = client
                .select(&sql, None, &[])
                .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()));
            for row in rows {
                let tid: Option<String> = row.get(1).ok().flatten();
                let code: Option<String> = row.get(2).ok().flatten();
                let (Some(tid), Some(code)) = (tid.as_deref().and_then(parse_tid), code) else { continue };
                let code = Code::parse(&code)
                    .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, e.to_string()));
                let key = (tid, code.bytes().to_vec());
                if found.entries.binary_search(&key).is_err() {
                    raise(
                        PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED,
                        format!(
                            "row ({},{}) of the table has no matching entry in index \"{}\"",
                            tid.block,
                            tid.offset,
                            index.name()
                        ),
                    );
                }
                heap_rows += 1;
                if heap_rows % 65536 == 0 {
                    pgrx::check_for_interrupts!();
                }
            }
        });
    }
    let dead = found.rows as i64 - heap_rows;
    TableIterator::once((
        found.rows as i64,
        heap_rows,
        dead,
        found.bucket_pages as i64,
        found.free_pages as i64,
        found.longest_chain as i64,
        found.partial_entries as i64,
    ))
}
