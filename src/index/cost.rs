//! `amcostestimate`: what probing costs, so that the planner picks the index for
//! `ORDER BY code <~> q LIMIT k` and radius quals on large tables and a sequential scan on small
//! ones or for radii so large that probing would touch most of the index.
//!
//! Model: a probe is one index page visit (charged `random_page_cost` up to the index's size)
//! plus a search in its fences and codes; verifying an entry costs `cpu_operator_cost`. A
//! radius-`r` search probes, in table `t`, every substring value within `r_t` of the query's
//! (`r = m r' + a`: `r_t = r'` for the first `a + 1` tables, `r' - 1` for the rest): that count
//! is `jdsh_core::mih::cost::probes`, unit-tested there. A k-NN scan is charged the radius of two
//! shells per table at start-up (what clustered data needs for small k), then the entries it
//! goes on to return.

use jdsh_core::mih::cost;
use pgrx::pg_sys;

use super::pages::PgStore;

/// The radius of the first radius qual when it is a constant (`jdsh.ball(q, 3)` folded by the
/// planner, or a `'...:3'::bitball` literal).
///
/// # Safety
/// `path` must be the planner's index path of a mih index.
unsafe fn constant_radius(path: *mut pg_sys::IndexPath) -> Option<u32> {
    // SAFETY: the planner's lists and nodes are valid for the call; the only index qual
    // operator of the operator class is `bitcode <@ bitball`, so a non-null constant second
    // argument is a bitball.
    unsafe {
        let clauses = pgrx::PgList::<pg_sys::IndexClause>::from_pg((*path).indexclauses);
        for ic in clauses.iter_ptr() {
            let quals = pgrx::PgList::<pg_sys::RestrictInfo>::from_pg((*ic).indexquals);
            for ri in quals.iter_ptr() {
                let clause = (*ri).clause as *mut pg_sys::Node;
                if (*clause).type_ != pg_sys::NodeTag::T_OpExpr {
                    continue;
                }
                let args = pgrx::PgList::<pg_sys::Node>::from_pg((*(clause as *mut pg_sys::OpExpr)).args);
                let Some(arg) = args.get_ptr(1) else { continue };
                if (*arg).type_ != pg_sys::NodeTag::T_Const {
                    continue;
                }
                let c = arg as *mut pg_sys::Const;
                if (*c).constisnull {
                    return Some(0);
                }
                return Some(crate::bitcode::BallRef::from_datum((*c).constvalue).radius);
            }
        }
        None
    }
}

#[pgrx::pg_guard]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn amcostestimate(
    root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    loop_count: f64,
    startup: *mut pg_sys::Cost,
    total: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    // SAFETY: the planner passes a valid path of a mih index and the output pointers to fill;
    // the index is opened (and closed) without a lock, as amcostestimate may (the planner
    // already holds one).
    unsafe {
        // Without ORDER BY <~> or a radius qual the index has nothing to offer (and it cannot
        // return column values): never a plain or index-only full scan.
        if (*path).indexorderbys.is_null() && (*path).indexclauses.is_null() {
            *startup = f64::INFINITY;
            *total = f64::INFINITY;
            *selectivity = 1.0;
            *correlation = 0.0;
            *pages = 0.0;
            return;
        }
        let mut costs = pg_sys::GenericCosts::default();
        pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
        let info = (*path).indexinfo;
        let index_pages = (*info).pages.max(1) as f64;
        let rows = (*info).tuples.max(1.0);

        let index = pg_sys::index_open((*info).indexoid, pg_sys::NoLock as pg_sys::LOCKMODE);
        let params = jdsh_core::mih::Mih::open(PgStore::new(index)).ok().map(|m| m.params().clone());
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        let Some(p) = params else {
            // Unreadable meta page: let the planner prefer anything else.
            *startup = f64::MAX / 4.0;
            *total = f64::MAX / 4.0;
            *selectivity = costs.indexSelectivity;
            *correlation = 0.0;
            *pages = index_pages;
            return;
        };
        let ordered = !(*path).indexorderbys.is_null();
        // The radius the probes are priced at. ORDER BY: two shells per table, whatever radius
        // qual comes with it. A radius qual alone: its radius when the planner knows it, else m
        // (shell 0 in every table and shell 1 in the first).
        let radius =
            if ordered { cost::two_shells_radius(&p) } else { constant_radius(path).unwrap_or(p.m()) };
        let n_probes = cost::probes(&p, radius);
        let page_cost = n_probes.min(index_pages) * pg_sys::random_page_cost;
        // Past a point a search reads a whole table of the index instead of probing.
        let read_all = index_pages / p.m() as f64 * pg_sys::seq_page_cost + rows * pg_sys::cpu_operator_cost;
        let probe_cost = (page_cost + n_probes * 10.0 * pg_sys::cpu_operator_cost).min(read_all);
        let matched = if ordered { rows } else { costs.indexSelectivity * rows };
        *startup = probe_cost;
        *total = probe_cost + matched * (pg_sys::cpu_index_tuple_cost + pg_sys::cpu_operator_cost);
        *selectivity = costs.indexSelectivity;
        *correlation = 0.0;
        *pages = n_probes.min(index_pages);
    }
}
