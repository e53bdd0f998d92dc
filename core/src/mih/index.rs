//! Build, insert, probe, vacuum and check of a Multi-Index Hashing index over a [`PageStore`].

use super::layout::{
    dir_check, dir_get, dir_init, dir_set, is_free, BlockNo, Bucket, Meta, MihError, Params, Tid, BLOCK_SIZE,
    DIR_SLOTS_PER_PAGE, INVALID_BLOCK,
};
use super::store::{PageGuard, PageStore};

/// An open index: the store and what its meta page says.
pub struct Mih<S: PageStore> {
    pub store: S,
    pub meta: Meta,
}

/// What a VACUUM pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VacuumStats {
    /// Index entries removed (rows: each row has one entry per table; counted once).
    pub removed: u64,
    /// Rows still indexed.
    pub remaining: u64,
    /// Overflow pages unlinked and handed to the free space map.
    pub pages_freed: u64,
}

/// What [`Mih::check`] found (it fails with [`MihError::Corrupt`] on the first inconsistency).
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    pub rows: u64,
    pub bucket_pages: u64,
    pub free_pages: u64,
    pub longest_chain: u64,
    /// Every (tid, code) present in all tables, sorted: the caller compares them with the heap.
    pub entries: Vec<(Tid, Vec<u8>)>,
    /// Entries present in some tables only: an insert or vacuum cut short by a crash (each
    /// table's change is its own WAL record). Their rows never committed (or were already
    /// dead), so no scan returns them as visible; the next VACUUM removes them.
    pub partial_entries: u64,
}

impl<S: PageStore> Mih<S> {
    pub fn open(store: S) -> Result<Self, MihError> {
        if store.nblocks() == 0 {
            return Err(MihError::Corrupt("the index has no meta page".into()));
        }
        let g = store.read(0);
        let meta = Meta::read(g.page())?;
        drop(g);
        Ok(Mih { store, meta })
    }

    pub fn params(&self) -> &Params {
        &self.meta.params
    }

    /// Builds a new index in an empty store from `tids.len()` codes laid out back to back in
    /// `codes` (each `params.code_bytes()` long). Pages are written in block order: meta,
    /// directory, then each table's buckets with their entries sorted by substring value.
    pub fn build(
        store: S,
        params: Params,
        codes: &[u8],
        tids: &[Tid],
        mut progress: impl FnMut(u64),
    ) -> Result<Self, MihError> {
        let cb = params.code_bytes();
        let n = tids.len();
        debug_assert_eq!(codes.len(), n * cb);
        let code = |i: usize| &codes[i * cb..(i + 1) * cb];
        let (m, nb) = (params.m(), params.nbuckets as usize);
        let fill = params.build_fill();

        // Pass 1: how many entries each bucket gets, hence every head block.
        let mut counts = vec![0u32; params.dir_slots()];
        for i in 0..n {
            for t in 0..m {
                let b = params.bucket(t, params.substring(t, code(i)));
                counts[t as usize * nb + b as usize] += 1;
            }
        }
        let mut heads = vec![INVALID_BLOCK; counts.len()];
        let mut next = 1 + params.dir_pages();
        for (slot, &c) in counts.iter().enumerate() {
            if c > 0 {
                heads[slot] = next;
                next += (c as usize).div_ceil(fill) as BlockNo;
            }
        }

        let meta = Meta { params: params.clone(), built_rows: n as u64 };
        let mut image = vec![0u8; BLOCK_SIZE];
        meta.write(&mut image);
        expect_block(store.append_built(&image), 0)?;
        for d in 0..params.dir_pages() {
            image.fill(0);
            let first = d as usize * DIR_SLOTS_PER_PAGE;
            dir_init(&mut image, first as u32);
            for (s, &h) in heads.iter().skip(first).take(DIR_SLOTS_PER_PAGE).enumerate() {
                dir_set(&mut image, s, h);
            }
            expect_block(store.append_built(&image), 1 + d)?;
        }

        // Pass 2, table by table: sort by (bucket, value) and write the chains.
        let mut order: Vec<(u32, u64, u32)> = Vec::with_capacity(n);
        for t in 0..m {
            order.clear();
            order.extend((0..n).map(|i| {
                let v = params.substring(t, code(i));
                (params.bucket(t, v), v, i as u32)
            }));
            order.sort_unstable();
            let mut at = 0;
            while at < n {
                let b = order[at].0;
                let end = at + order[at..].iter().take_while(|e| e.0 == b).count();
                let chunks: Vec<&[(u32, u64, u32)]> = order[at..end].chunks(fill).collect();
                let head = heads[t as usize * nb + b as usize];
                for (c, chunk) in chunks.iter().enumerate() {
                    image.fill(0);
                    Bucket::init(&mut image, t, b);
                    for &(_, _, i) in chunk.iter() {
                        Bucket::push(&mut image, &params, code(i as usize), tids[i as usize]);
                    }
                    let blk = head + c as BlockNo;
                    if c + 1 < chunks.len() {
                        Bucket::set_next(&mut image, blk + 1);
                    }
                    expect_block(store.append_built(&image), blk)?;
                }
                at = end;
            }
            progress((t as u64 + 1) * n as u64);
        }
        Ok(Mih { store, meta })
    }

    /// Every directory slot: the head block of each (table, bucket), read once per scan. Heads
    /// only ever go from invalid to valid, and a row visible to a scan's snapshot was inserted
    /// (head created) before the snapshot, so a copy taken at scan start is enough.
    pub fn load_heads(&self) -> Result<Vec<BlockNo>, MihError> {
        let p = self.params();
        let mut heads = Vec::with_capacity(p.dir_slots());
        for d in 0..p.dir_pages() {
            let g = self.store.read(1 + d);
            dir_check(g.page())?;
            let take = (p.dir_slots() - heads.len()).min(DIR_SLOTS_PER_PAGE);
            heads.extend((0..take).map(|s| dir_get(g.page(), s)));
        }
        Ok(heads)
    }

    fn check_length(&self, code: &[u8]) -> Result<(), MihError> {
        let p = self.params();
        if code.len() != p.code_bytes() {
            return Err(MihError::LengthMismatch { expected: p.nbits, got: code.len() as u32 * 8 });
        }
        Ok(())
    }

    /// Adds one row: an entry in every table.
    pub fn insert(&self, code: &[u8], tid: Tid) -> Result<(), MihError> {
        self.check_length(code)?;
        let p = self.params();
        for t in 0..p.m() {
            let b = p.bucket(t, p.substring(t, code));
            let head = match self.head_or_create(t, b, code, tid)? {
                Some(head) => head,
                None => continue, // the new head page already holds the entry
            };
            self.insert_into_chain(head, t, b, code, tid)?;
        }
        Ok(())
    }

    /// The head of (t, b); creates it holding the entry when the bucket is still empty.
    fn head_or_create(&self, t: u32, b: u32, code: &[u8], tid: Tid) -> Result<Option<BlockNo>, MihError> {
        let p = self.params();
        let (dblk, slot) = p.dir_location(t, b);
        let head = {
            let g = self.store.read(dblk);
            dir_check(g.page())?;
            dir_get(g.page(), slot)
        };
        if head != INVALID_BLOCK {
            return Ok(Some(head));
        }
        let mut d = self.store.write(dblk);
        let head = dir_get(d.page(), slot);
        if head != INVALID_BLOCK {
            return Ok(Some(head)); // another backend created it meanwhile
        }
        self.add_page(&mut d, t, b, code, tid, |dir, blk| dir_set(dir, slot, blk))?;
        Ok(None)
    }

    fn insert_into_chain(
        &self,
        head: BlockNo,
        t: u32,
        b: u32,
        code: &[u8],
        tid: Tid,
    ) -> Result<(), MihError> {
        let p = self.params();
        // The head's exclusive lock is the bucket lock: held until the entry is in.
        let mut h = self.store.write(head);
        let mut tail: Option<S::Guard> = None;
        loop {
            let g = tail.as_mut().unwrap_or(&mut h);
            Bucket::check(g.page(), p, t, b)?;
            if Bucket::count(g.page()) < p.capacity() {
                self.store.modify(&mut [g], |pg| Bucket::insert(pg[0], p, t, code, tid));
                return Ok(());
            }
            let next = Bucket::next(g.page());
            if next == INVALID_BLOCK {
                return self.add_page(g, t, b, code, tid, Bucket::set_next);
            }
            tail = Some(self.store.write(next));
        }
    }

    /// A new bucket page of (t, b) holding the entry, made reachable by `link(before, block)` in
    /// the same WAL record: the chain's last page (`Bucket::set_next`) or the directory page.
    fn add_page(
        &self,
        before: &mut S::Guard,
        t: u32,
        b: u32,
        code: &[u8],
        tid: Tid,
        link: impl FnOnce(&mut [u8], BlockNo),
    ) -> Result<(), MihError> {
        let p = self.params();
        let mut fresh = self.store.allocate();
        let blk = fresh.block();
        self.store.modify(&mut [before, &mut fresh], |pages| {
            Bucket::init(pages[1], t, b);
            Bucket::insert(pages[1], p, t, code, tid);
            link(pages[0], blk);
        });
        Ok(())
    }

    /// Calls `visit(code, tid)` for every entry of table `t` whose substring equals `value`.
    pub fn probe(
        &self,
        heads: &[BlockNo],
        t: u32,
        value: u64,
        visit: &mut impl FnMut(&[u8], Tid),
    ) -> Result<(), MihError> {
        let p = self.params();
        let b = p.bucket(t, value);
        let head = heads[t as usize * p.nbuckets as usize + b as usize];
        self.read_chain(head, t, b, |page| probe_page(page, p, t, value, visit))
    }

    /// Calls `visit` for every entry of table `t` (the fallback when probing would cost more).
    pub fn scan_table(
        &self,
        heads: &[BlockNo],
        t: u32,
        visit: &mut impl FnMut(&[u8], Tid),
    ) -> Result<(), MihError> {
        let p = self.params();
        let nb = p.nbuckets as usize;
        for b in 0..nb {
            self.read_chain(heads[t as usize * nb + b], t, b as u32, |page| {
                for i in 0..Bucket::count(page) {
                    let (c, tid) = Bucket::entry(page, p, i);
                    visit(c, tid);
                }
            })?;
        }
        Ok(())
    }

    /// Calls `f` on every page of the chain of (t, b) starting at `head` (none when the bucket is
    /// empty), each checked. The head's shared lock, the bucket lock, is held throughout.
    fn read_chain(&self, head: BlockNo, t: u32, b: u32, mut f: impl FnMut(&[u8])) -> Result<(), MihError> {
        if head == INVALID_BLOCK {
            return Ok(());
        }
        let p = self.params();
        let h = self.store.read(head);
        Bucket::check(h.page(), p, t, b)?;
        f(h.page());
        let mut next = Bucket::next(h.page());
        while next != INVALID_BLOCK {
            let g = self.store.read(next);
            Bucket::check(g.page(), p, t, b)?;
            f(g.page());
            next = Bucket::next(g.page());
        }
        Ok(())
    }

    /// Removes the entries of dead rows; overflow pages left empty are unlinked and recycled.
    pub fn bulk_delete(&self, mut dead: impl FnMut(Tid) -> bool) -> Result<VacuumStats, MihError> {
        let p = self.params().clone();
        let heads = self.load_heads()?;
        let nb = p.nbuckets as usize;
        let mut stats = VacuumStats::default();
        for t in 0..p.m() {
            for b in 0..nb {
                let head = heads[t as usize * nb + b];
                if head == INVALID_BLOCK {
                    continue;
                }
                let (removed, kept, freed) = self.vacuum_chain(&p, head, t, b as u32, &mut dead)?;
                if t == 0 {
                    stats.removed += removed;
                    stats.remaining += kept;
                }
                stats.pages_freed += freed;
            }
        }
        Ok(stats)
    }

    fn vacuum_chain(
        &self,
        p: &Params,
        head: BlockNo,
        t: u32,
        b: u32,
        dead: &mut impl FnMut(Tid) -> bool,
    ) -> Result<(u64, u64, u64), MihError> {
        let (mut removed, mut kept, mut freed) = (0u64, 0u64, 0u64);
        let mut h = self.store.write(head);
        Bucket::check(h.page(), p, t, b)?;
        let gone = dead_entries(h.page(), p, dead);
        if !gone.is_empty() {
            self.store.modify(&mut [&mut h], |pg| Bucket::retain(pg[0], p, |tid| gone.contains(&tid)));
        }
        removed += gone.len() as u64;
        kept += Bucket::count(h.page()) as u64;
        // `prev` is the page whose next pointer leads to `cur`; the head stays locked throughout.
        let mut prev: Option<S::Guard> = None;
        let mut next = Bucket::next(h.page());
        while next != INVALID_BLOCK {
            let mut cur = self.store.write(next);
            Bucket::check(cur.page(), p, t, b)?;
            let gone = dead_entries(cur.page(), p, dead);
            removed += gone.len() as u64;
            next = Bucket::next(cur.page());
            if gone.len() == Bucket::count(cur.page()) {
                // Empty now: unlink it in the same WAL record that empties it.
                let before: &mut S::Guard = prev.as_mut().unwrap_or(&mut h);
                let blk = cur.block();
                self.store.modify(&mut [before, &mut cur], |pg| {
                    Bucket::set_next(pg[0], next);
                    Bucket::make_free(pg[1]);
                });
                drop(cur);
                self.store.recycle(blk);
                freed += 1;
                continue;
            }
            if !gone.is_empty() {
                self.store.modify(&mut [&mut cur], |pg| Bucket::retain(pg[0], p, |tid| gone.contains(&tid)));
            }
            kept += Bucket::count(cur.page()) as u64;
            prev = Some(cur);
        }
        Ok((removed, kept, freed))
    }

    /// Blocks that hold nothing (after a crash or a vacuum whose free-space-map update was lost):
    /// the caller hands them to the free space map again.
    pub fn free_blocks(&self) -> Vec<BlockNo> {
        let first = 1 + self.params().dir_pages();
        (first..self.store.nblocks()).filter(|&blk| is_free(self.store.read(blk).page())).collect()
    }

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
        for t in 0..p.m() {
            let mut entries: Vec<(Tid, Vec<u8>)> = Vec::new();
            for b in 0..nb {
                let mut next = heads[t as usize * nb + b];
                let mut chain = 0u64;
                while next != INVALID_BLOCK {
                    if next >= self.store.nblocks() || next <= p.dir_pages() {
                        return Err(MihError::Corrupt(format!(
                            "chain of table {t}, bucket {b} points to block {next}"
                        )));
                    }
                    let g = self.store.read(next);
                    Bucket::check(g.page(), &p, t, b as u32)?;
                    chain += 1;
                    report.bucket_pages += 1;
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
        report.entries = reference.unwrap_or_default();
        report.rows = report.entries.len() as u64;
        report.partial_entries = total_entries - report.rows * p.m() as u64;
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

fn expect_block(got: BlockNo, want: BlockNo) -> Result<(), MihError> {
    if got != want {
        return Err(MihError::Corrupt(format!("build wrote block {got} where block {want} was planned")));
    }
    Ok(())
}

#[inline]
fn probe_page(page: &[u8], p: &Params, t: u32, value: u64, visit: &mut impl FnMut(&[u8], Tid)) {
    let n = Bucket::count(page);
    let mut i = Bucket::lower_bound(page, p, t, value);
    while i < n {
        let (c, tid) = Bucket::entry(page, p, i);
        if p.substring(t, c) != value {
            break;
        }
        visit(c, tid);
        i += 1;
    }
}

fn dead_entries(page: &[u8], p: &Params, dead: &mut impl FnMut(Tid) -> bool) -> Vec<Tid> {
    (0..Bucket::count(page)).map(|i| Bucket::entry(page, p, i).1).filter(|&tid| dead(tid)).collect()
}
