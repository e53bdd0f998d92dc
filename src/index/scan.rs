//! Index scans: `ORDER BY code <~> q` (k-NN, nearest first, exact distances, no recheck) and
//! `code <@ jdsh.ball(q, r)` (radius), by tuple and by bitmap.
//!
//! Safety: PostgreSQL calls these routines with the `IndexScanDesc` that `ambeginscan` returned,
//! from one backend, one routine at a time, and none after `amendscan`; its key arrays hold the
//! `nkeys`/`norderbys` given to `ambeginscan`, and their arguments have the types that
//! `bitcode_hamming_ops` declares (sql/mih.sql).

use jdsh_core::code::hamming;
use jdsh_core::mih::{Mih, RowsAsked, Search};
use pgrx::pg_sys;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};

use super::pages::PgStore;
use super::{check_length, open, report, to_item_pointer, STRATEGY_DISTANCE, STRATEGY_WITHIN};
use crate::bitcode::{BallRef, BitcodeRef};

/// What a scan is asked, read from its keys at the first fetch after a rescan.
struct Plan {
    query: Vec<u8>,
    radius: Option<u32>,
    /// ORDER BY with a NULL query: every row, distance NULL (what a sequential scan gives).
    null_order: bool,
    /// No row can match (a NULL ball, or two balls that cannot overlap).
    empty: bool,
    /// Some qual is not implied by the search (several balls, or a ball around another centre
    /// than the ORDER BY query): the executor rechecks quals on the heap tuple.
    recheck: bool,
}

struct ScanState {
    mih: Mih<PgStore>,
    search: Option<(Plan, Search)>,
    /// This scan's key in [`ROWS_ASKED`]: its index and the text of the statement that runs it.
    statement: Option<u64>,
    /// An index tuple whose code is NULL, for index-only scans that need no column. The index
    /// cannot return codes (`amcanreturn` is unset), so the planner offers an index-only scan only
    /// when the query reads no column of the index, as `SELECT count(*) FROM t` with sequential
    /// scans off (PostgreSQL 18 does so for a mih index); the executor still wants a tuple per row.
    no_columns: *mut pg_sys::IndexTupleData,
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    // SAFETY: `index` is the open index relation the executor passes; the order-by arrays are
    // allocated for the `norderbys` values that amgettuple reports.
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        // The executor reads the distances we report from these arrays; the AM owns them.
        if norderbys > 0 {
            let n = norderbys as usize;
            (*scan).xs_orderbyvals =
                pg_sys::palloc0(n * std::mem::size_of::<pg_sys::Datum>()) as *mut pg_sys::Datum;
            (*scan).xs_orderbynulls = pg_sys::palloc(n) as *mut bool;
            std::ptr::write_bytes((*scan).xs_orderbynulls, 1, n);
        }
        // In the scan's memory context (the executor's, current here): it lives as long as the scan.
        let (mut value, mut null) = (pg_sys::Datum::from(0usize), true);
        // (Raw pointers: the arrays are `*mut` before PostgreSQL 17 and `*const` from it.)
        let no_columns = pg_sys::index_form_tuple(
            (*index).rd_att,
            std::ptr::addr_of_mut!(value),
            std::ptr::addr_of_mut!(null),
        );
        let statement = statement_key(index);
        let state = Box::new(ScanState { mih: open(index), search: None, statement, no_columns });
        (*scan).opaque = Box::into_raw(state) as *mut std::ffi::c_void;
        scan
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    keys: pg_sys::ScanKey,
    nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    // SAFETY: `keyData`/`orderByData` were sized by RelationGetIndexScan for the same `nkeys`/
    // `norderbys` as this rescan passes (module doc).
    unsafe {
        if !keys.is_null() && nkeys > 0 {
            std::ptr::copy(keys, (*scan).keyData, nkeys as usize);
        }
        if !orderbys.is_null() && norderbys > 0 {
            std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
        }
        let st = state(scan);
        st.remember_rows();
        st.search = None;
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    // SAFETY: a non-null `opaque` is the Box that ambeginscan leaked, freed once: it is nulled.
    unsafe {
        let p = (*scan).opaque as *mut ScanState;
        if !p.is_null() {
            (*p).remember_rows();
            drop(Box::from_raw(p));
            (*scan).opaque = std::ptr::null_mut();
        }
    }
}

thread_local! {
    /// How many rows the last scan of each (index, statement) returned in this backend.
    static ROWS_ASKED: RefCell<RowsAsked> = const { RefCell::new(RowsAsked::new()) };
}

/// A key for the index and the statement being executed (the active portal's source text), if
/// there is one: a prepared statement run again, or the same query text, gets the same key.
fn statement_key(index: pg_sys::Relation) -> Option<u64> {
    // SAFETY: `index` is open (the caller's); ActivePortal is null or the portal being run, whose
    // source text is null or a NUL-terminated string that outlives this call.
    unsafe {
        let portal = pg_sys::ActivePortal;
        if portal.is_null() || (*portal).sourceText.is_null() {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (*index).rd_id.to_u32().hash(&mut h);
        std::ffi::CStr::from_ptr((*portal).sourceText).to_bytes().hash(&mut h);
        Some(h.finish())
    }
}

impl ScanState {
    /// Records how many rows this scan's search returned, for the next scan of its statement.
    fn remember_rows(&self) {
        if let (Some(key), Some((_, search))) = (self.statement, &self.search) {
            ROWS_ASKED.with_borrow_mut(|r| r.record(key, search.returned()));
        }
    }
}

/// The scan's state.
///
/// # Safety
/// `scan` must be a scan that `ambeginscan` opened and `amendscan` has not closed, and the
/// reference must be the only one to its state while it lives (one per AM routine call).
unsafe fn state<'a>(scan: pg_sys::IndexScanDesc) -> &'a mut ScanState {
    // SAFETY: `opaque` is the `Box<ScanState>` leaked by ambeginscan, still alive (above).
    unsafe { &mut *((*scan).opaque as *mut ScanState) }
}

/// The `n` scan keys at `ptr` (none when `ptr` is null).
///
/// # Safety
/// A non-null `ptr` must point to `n` initialised keys that outlive `'a` (the scan's arrays).
unsafe fn keys<'a>(ptr: pg_sys::ScanKey, n: i32) -> &'a [pg_sys::ScanKeyData] {
    if ptr.is_null() || n <= 0 {
        &[]
    } else {
        // SAFETY: the caller's promise above.
        unsafe { std::slice::from_raw_parts(ptr, n as usize) }
    }
}

fn is_null(k: &pg_sys::ScanKeyData) -> bool {
    k.sk_flags & pg_sys::SK_ISNULL as i32 != 0
}

/// Reads the scan keys into a plan.
///
/// # Safety
/// `scan` must be an open scan of this access method, keys set by `amrescan` (module doc).
unsafe fn plan(scan: pg_sys::IndexScanDesc, mih: &Mih<PgStore>) -> Plan {
    let p = mih.params();
    let zeros = vec![0u8; p.code_bytes()];
    let mut plan = Plan { query: zeros, radius: None, null_order: false, empty: false, recheck: false };
    let mut order_query: Option<Vec<u8>> = None;
    // SAFETY: the key arrays hold `numberOfKeys`/`numberOfOrderBys` keys (module doc). Their
    // arguments are typed by the operator class: ORDER BY keys (strategy 1, `<~>`) carry a
    // bitcode and quals with strategy 2 (`<@`) a bitball; both are read only when not NULL, and
    // their bytes are copied out before the keys can change (at the next rescan).
    unsafe {
        for k in keys((*scan).orderByData, (*scan).numberOfOrderBys) {
            debug_assert_eq!(k.sk_strategy, STRATEGY_DISTANCE);
            if is_null(k) {
                plan.null_order = true;
            } else {
                let q = BitcodeRef::from_datum(k.sk_argument);
                check_length(mih, q.nbits);
                order_query = Some(q.bytes.to_vec());
            }
        }
        let mut balls = 0;
        for k in keys((*scan).keyData, (*scan).numberOfKeys) {
            if k.sk_strategy != STRATEGY_WITHIN || is_null(k) {
                plan.empty = true; // `code <@ NULL` is never true
                continue;
            }
            let ball = BallRef::from_datum(k.sk_argument);
            check_length(mih, ball.center.nbits);
            balls += 1;
            let centre = ball.center.bytes.to_vec();
            match (&plan.radius, &order_query) {
                // The first ball drives the search unless ORDER BY asks about another centre.
                (None, Some(q)) if *q != centre => plan.recheck = true,
                (None, _) => {
                    plan.radius = Some(ball.radius);
                    plan.query = centre;
                }
                (Some(r), _) => {
                    // Disjoint balls: nothing can be in both.
                    if hamming(&plan.query, &centre) > r + ball.radius {
                        plan.empty = true;
                    }
                    plan.recheck = true;
                }
            }
        }
        if balls > 0 && plan.radius.is_none() {
            plan.recheck = true;
        }
        if let Some(q) = order_query {
            plan.query = q;
        }
    }
    plan
}

/// `pgstat_count_index_scan`: one scan in `pg_stat_user_indexes.idx_scan`.
///
/// # Safety
/// `rel` must be an open relation.
unsafe fn count_scan(rel: pg_sys::Relation) {
    // SAFETY: `rel` is open; `pgstat_info` is read only after the null check.
    unsafe {
        if (*rel).pgstat_info.is_null() && (*rel).pgstat_enabled {
            pg_sys::pgstat_assoc_relation(rel);
        }
        if !(*rel).pgstat_info.is_null() {
            // PostgreSQL 16 renamed t_counts.t_numscans to counts.numscans.
            #[cfg(feature = "pg15")]
            {
                (*(*rel).pgstat_info).t_counts.t_numscans += 1;
            }
            #[cfg(not(feature = "pg15"))]
            {
                (*(*rel).pgstat_info).counts.numscans += 1;
            }
        }
    }
}

/// The scan's state with its search started (at the first fetch after a rescan).
///
/// # Safety
/// As for [`state`]: an open scan, and one reference to its state at a time.
unsafe fn start<'a>(scan: pg_sys::IndexScanDesc) -> &'a mut ScanState {
    // SAFETY: the caller's promise; `indexRelation` of an open scan is open.
    unsafe {
        let st = state(scan);
        if st.search.is_none() {
            count_scan((*scan).indexRelation);
            let plan = plan(scan, &st.mih);
            // SET jdsh.mih_probe_budget overrides the build's choice for this scan.
            if let Ok(budget) = u16::try_from(crate::gucs::MIH_PROBE_BUDGET.get()) {
                st.mih.meta.probe_budget = budget;
                st.mih.meta.probe_budget_top100 = None;
            }
            let mut search = Search::new(&st.mih, &plan.query, plan.radius).unwrap_or_else(|e| report(e));
            // The index cannot see the query's LIMIT: as many rows as this statement's last scan
            // returned is the best guess (a prepared statement in a loop asks the same each time).
            if let Some(rows) = st.statement.and_then(|k| ROWS_ASKED.with_borrow(|r| r.last(k))) {
                search.expect(rows);
            }
            st.search = Some((plan, search));
        }
        st
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _dir: pg_sys::ScanDirection::Type,
) -> bool {
    // SAFETY: an open scan (module doc), whose state only this call references; the order-by
    // arrays written below were allocated by ambeginscan for `numberOfOrderBys` (> 0) values.
    unsafe {
        let st = start(scan);
        let Some((plan, search)) = st.search.as_mut() else { return false };
        if plan.empty {
            return false;
        }
        let Some((tid, dist)) = search.next(&st.mih).unwrap_or_else(|e| report(st.mih.explain(e))) else {
            return false;
        };
        to_item_pointer(tid, &mut (*scan).xs_heaptid);
        (*scan).xs_recheck = plan.recheck;
        if (*scan).xs_want_itup {
            (*scan).xs_itup = st.no_columns;
            (*scan).xs_itupdesc = (*(*scan).indexRelation).rd_att;
        }
        if (*scan).numberOfOrderBys > 0 {
            *(*scan).xs_orderbyvals = pg_sys::Datum::from(dist as i32);
            *(*scan).xs_orderbynulls = plan.null_order;
            (*scan).xs_recheckorderby = false;
        }
        true
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgetbitmap(scan: pg_sys::IndexScanDesc, tbm: *mut pg_sys::TIDBitmap) -> i64 {
    // SAFETY: an open scan (module doc), whose state only this call references; `tbm` is the
    // executor's bitmap, and `ip` outlives each tbm_add_tuples call (which copies it).
    unsafe {
        let st = start(scan);
        let Some((plan, search)) = st.search.as_mut() else { return 0 };
        if plan.empty {
            return 0;
        }
        let mut n = 0i64;
        let mut ip = pg_sys::ItemPointerData::default();
        while let Some((tid, _)) = search.next(&st.mih).unwrap_or_else(|e| report(st.mih.explain(e))) {
            to_item_pointer(tid, &mut ip);
            pg_sys::tbm_add_tuples(tbm, &mut ip, 1, plan.recheck);
            n += 1;
            if n % 4096 == 0 {
                pgrx::check_for_interrupts!();
            }
        }
        n
    }
}
