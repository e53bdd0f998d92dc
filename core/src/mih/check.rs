//! Check: the whole structure verified (meta and directory pages, every chain, the order and
//! bucket of every entry, the row list) and the entries present in every table reported, for the extension's
//! `jdsh.mih_check` to compare with the heap.

use super::index::Mih;
use super::layout::{Bucket, MihError, Tid, INVALID_BLOCK};
use super::store::{PageGuard, PageStore};

/// What [`Mih::check`] found (it fails with [`MihError::Corrupt`] on the first inconsistency).
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    pub rows: u64,
    pub bucket_pages: u64,
    pub free_pages: u64,
    pub longest_chain: u64,
    /// Row and tid pages of the row list.
    pub row_pages: u64,
    /// Every (tid, code) present in all tables, sorted: the caller compares them with the heap.
    pub entries: Vec<(Tid, Vec<u8>)>,
    /// Entries present in some tables (or the row list) only: an insert or vacuum cut short by a crash (each
    /// table's change is its own WAL record). Their rows never committed (or were already
    /// dead), so no scan returns them as visible; the next VACUUM removes them.
    pub partial_entries: u64,
}

impl<S: PageStore> Mih<S> {
    /// Verifies the whole structure: meta and directory pages, every chain (page kind, table and
    /// bucket of each page, order by substring, each entry in the bucket of its substring), and
    /// reports the entries present in every table (what the caller checks the heap against).
    pub fn check(&self) -> Result<CheckReport, MihError> {
        let p = self.params().clone();
        let heads = self.load_heads()?;
        let nb = p.nbuckets as usize;
        let mut report = CheckReport::default();
        let mut reference: Option<Vec<(Tid, Vec<u8>)>> = None;
        let mut total_entries = 0u64;
        let dir_start = self.meta.tables.dir_start;
        let directory = dir_start..dir_start + p.dir_pages();
        for t in 0..p.m() {
            let mut entries: Vec<(Tid, Vec<u8>)> = Vec::new();
            for b in 0..nb {
                let mut next = heads[t as usize * nb + b];
                let mut chain = 0u64;
                while next != INVALID_BLOCK {
                    if next >= self.store.nblocks() || next == 0 || directory.contains(&next) {
                        return Err(MihError::Corrupt(format!(
                            "chain of table {t}, bucket {b} points to block {next}"
                        )));
                    }
                    let g = self.store.read(next);
                    Bucket::check(g.page(), &p, t, b as u32)?;
                    chain += 1;
                    report.bucket_pages += 1;
                    if !Bucket::fences_match(g.page(), &p, t) {
                        return Err(MihError::Corrupt(format!(
                            "block {next}: fences do not match the entries"
                        )));
                    }
                    let mut last = 0u64;
                    for i in 0..Bucket::count(g.page()) {
                        let (c, tid) = Bucket::entry(g.page(), &p, i);
                        let v = p.substring(t, c);
                        if v < last {
                            return Err(MihError::Corrupt(format!("block {next}: entries out of order")));
                        }
                        if p.bucket(t, v) != b as u32 {
                            return Err(MihError::Corrupt(format!(
                                "block {next}: entry in the wrong bucket"
                            )));
                        }
                        if !crate::code::padding_is_clear(p.nbits, c) {
                            return Err(MihError::Corrupt(format!(
                                "block {next}: code with padding bits set"
                            )));
                        }
                        last = v;
                        entries.push((tid, c.to_vec()));
                    }
                    if chain > self.store.nblocks() as u64 {
                        return Err(MihError::Corrupt(format!("chain of table {t}, bucket {b} loops")));
                    }
                    next = Bucket::next(g.page());
                }
                report.longest_chain = report.longest_chain.max(chain);
            }
            entries.sort_unstable();
            total_entries += entries.len() as u64;
            reference = Some(match reference {
                None => entries,
                Some(r) => intersect(r, &entries),
            });
        }
        let mut lists = p.m() as u64;
        if let Some((mut rows, pages)) = self.row_entries()? {
            rows.sort_unstable();
            total_entries += rows.len() as u64;
            lists += 1;
            report.row_pages = pages;
            reference = reference.map(|r| intersect(r, &rows));
        }
        report.entries = reference.unwrap_or_default();
        report.rows = report.entries.len() as u64;
        report.partial_entries = total_entries - report.rows * lists;
        report.free_pages = self.free_blocks().len() as u64;
        Ok(report)
    }
}

/// Sorted intersection of two sorted lists.
fn intersect(a: Vec<(Tid, Vec<u8>)>, b: &[(Tid, Vec<u8>)]) -> Vec<(Tid, Vec<u8>)> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let mut j = 0;
    for e in a {
        while j < b.len() && b[j] < e {
            j += 1;
        }
        if j < b.len() && b[j] == e {
            out.push(e);
            j += 1;
        }
    }
    out
}
