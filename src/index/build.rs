//! `ambuild` / `ambuildempty`: read the table once, then write the whole index in block order
//! (meta, directory, each table's buckets) and WAL-log it in bulk.

use jdsh_core::mih::layout::DEFAULT_PROBE_BUDGET;
use jdsh_core::mih::{tune, Mih, Params, Tid};
use pgrx::{pg_sys, PgSqlErrorCode};

use super::pages::PgStore;
use super::{options, report, to_tid};
use crate::bitcode::BitcodeRef;
use crate::fmgr::{raise, raise_with_hint};

/// Build phases shown in `pg_stat_progress_create_index.phase`.
pub const PHASE_SCAN: i64 = 2;
pub const PHASE_WRITE: i64 = 3;

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &std::ffi::CStr = match phase {
        1 => c"initializing",
        PHASE_SCAN => c"loading codes from table",
        PHASE_WRITE => c"writing hash tables",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut std::ffi::c_char
}

/// Codes collected from the table, back to back, with their heap tids.
struct Collected {
    /// Fixed by the column's `bitcode(n)` or by the first code.
    nbits: Option<u32>,
    codes: Vec<u8>,
    tids: Vec<Tid>,
}

/// The code length an index column declares (`bitcode(n)`), if any.
fn declared_bits(index: pg_sys::Relation) -> Option<u32> {
    // SAFETY: `index` is the open index of an AM callback, so `rd_att` is its valid tuple
    // descriptor (one attribute: amcanmulticol = false), owned by the relcache (not released
    // here). PgTupleDesc::get reads attributes the way each server version lays them out.
    let desc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked((*index).rd_att) };
    let typmod = desc.get(0)?.atttypmod;
    (typmod > 0).then_some(typmod as u32)
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn collect(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: table_index_build_scan calls this with the `state` that ambuild passed (a live
    // `Collected`, not otherwise borrowed during the scan), one value and null flag for the one
    // column, and the row's tid; a non-null value of the column is a bitcode.
    unsafe {
        if *isnull {
            return; // NULL codes are not indexed (they have no distance)
        }
        let st = &mut *(state as *mut Collected);
        let c = BitcodeRef::from_datum(*values);
        let nbits = *st.nbits.get_or_insert(c.nbits);
        if c.nbits != nbits {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
                format!("cannot index a {}-bit code together with {nbits}-bit codes", c.nbits),
                "A mih index holds codes of one length: declare the column as bitcode(n).",
            );
        }
        st.codes.extend_from_slice(c.bytes);
        st.tids.push(to_tid(&*tid));
        if st.tids.len().is_multiple_of(65536) {
            pg_sys::pgstat_progress_update_param(
                pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE as i32,
                st.tids.len() as i64,
            );
        }
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    let mut st = Collected { nbits: declared_bits(index), codes: Vec::new(), tids: Vec::new() };
    // SAFETY: `heap`, `index` and `info` are what PostgreSQL passes to ambuild; `st` outlives the
    // build scan that hands it to `collect`; the result is palloc'd at its size and filled.
    unsafe {
        pg_sys::pgstat_progress_update_param(pg_sys::PROGRESS_CREATEIDX_SUBPHASE as i32, PHASE_SCAN);
        let scanned = pg_sys::table_index_build_scan(
            heap,
            index,
            info,
            true,
            true,
            Some(collect),
            &mut st as *mut Collected as *mut std::ffi::c_void,
            std::ptr::null_mut(),
        );
        let Some(nbits) = st.nbits else {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "cannot build a mih index without knowing the code length",
                "Declare the column as bitcode(n), or create the index once the table holds codes.",
            )
        };
        let (m, fillfactor) = options::of(index);
        let n = st.tids.len() as u64;
        // Without WITH (substrings = m), the number of tables is chosen from the codes themselves
        // (core/src/mih/tune.rs: their k-NN radii and the probes + entries each m would cost), and
        // with it or without, how much a search may probe before reading a table instead; below
        // 16k rows, m from the rule b / log2(n) and the default budget.
        let tuning = tune::choose_substrings(nbits, &st.codes, fillfactor, m);
        if let Some(t) = &tuning {
            pgrx::debug1!(
                "mih: {} substrings, probe budget {}% (top-100: {}%) for {} rows (rule: {}; median {}-NN distance {}; estimated us per search: {:?})",
                t.m,
                t.probe_budget,
                t.probe_budget_top100,
                n,
                t.rule_m,
                tune::TUNE_K,
                t.median_radius,
                t.costs.iter().map(|(m, c)| (*m, c.round())).collect::<Vec<_>>()
            );
        }
        let m = m.or(tuning.as_ref().map(|t| t.m));
        let budget = tuning.as_ref().map_or(DEFAULT_PROBE_BUDGET, |t| t.probe_budget);
        let budget_top100 = tuning.map(|t| t.probe_budget_top100);
        let params = Params::choose(nbits, n, m, fillfactor).unwrap_or_else(|e| report(e));
        pg_sys::pgstat_progress_update_param(pg_sys::PROGRESS_CREATEIDX_SUBPHASE as i32, PHASE_WRITE);
        pg_sys::pgstat_progress_update_param(
            pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL as i32,
            (n * params.m() as u64) as i64,
        );
        let store = PgStore::new(index);
        Mih::build(store, params, budget, budget_top100, &st.codes, &st.tids, |done| {
            pg_sys::pgstat_progress_update_param(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE as i32, done as i64);
        })
        .unwrap_or_else(|e| report(e));
        drop(st);
        if store.needs_wal() {
            let nblocks = pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM);
            pg_sys::log_newpage_range(index, pg_sys::ForkNumber::MAIN_FORKNUM, 0, nblocks, true);
        }
        let result =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>()) as *mut pg_sys::IndexBuildResult;
        (*result).heap_tuples = scanned;
        (*result).index_tuples = n as f64;
        result
    }
}

/// The empty index of an unlogged table, written to its init fork.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    let Some(nbits) = declared_bits(index) else {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "a mih index on an unlogged table needs a column declared as bitcode(n)",
        )
    };
    let (m, fillfactor) = options::of(index);
    let params = Params::choose(nbits, 0, m, fillfactor).unwrap_or_else(|e| report(e));
    Mih::build(PgStore::init_fork(index), params, DEFAULT_PROBE_BUDGET, None, &[], &[], |_| {})
        .unwrap_or_else(|e| report(e));
}
