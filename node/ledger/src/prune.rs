//! Pruning: dropping old blocks and old versions of the state so a
//! long-lived node's disk stops growing (`[pruning]` in config.toml).
//!
//! **Blocks.** Everything below the first kept height goes in one range
//! deletion per column family keyed by height (blocks, commits, and the
//! `meta` headers, validator sets and blooms), then those ranges are
//! compacted so the space is given back. The records keyed by hash (the
//! transaction index, the block-hash index) and the account index cannot be
//! found by height: compaction filters drop those whose height is below
//! the first kept one whenever RocksDB compacts their files. Pruning runs in
//! batches (a range deletion per block would pile up range tombstones,
//! which every read then pays for).
//!
//! **State.** State pages are content-addressed and shared between
//! versions, so a page may be deleted only when no kept version has it.
//! Each block that commits while state pruning is on records the pages its
//! tree update replaced (`s` ‖ height → their hashes): they are in the
//! previous version and not in this one. A page can come back, though (a
//! subtree whose contents return to what they were hashes the same), so
//! each page record starts with the height that last wrote it: a page in
//! the list of height v is deleted only if it was written before v. Values
//! stored apart from their leaves are kept (they may be shared between
//! keys); a page replaced while state pruning was off is in no list, so it
//! stays.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use palisade_runtime::page::Page;
use palisade_types::{Hash, Height};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{
    corrupt, height_key, prefixed, Ledger, LedgerError, CF_BLOCKS, CF_COMMITS, CF_META, CF_STATE,
    META_BLOOM, META_EARLIEST, META_HEADER, META_REFUSED, META_ROOT, META_VALS, STATE_PAGE,
};

/// Where a block's list of replaced pages is kept in `state`.
pub(super) const STATE_STALE: u8 = b's';
/// The first height whose state this ledger keeps (absent: 0, all).
pub(super) const META_STATE_FROM: &[u8] = b"state_from";
/// Bytes before a page's encoding in its record: the height that wrote it.
pub(super) const PAGE_BORN_BYTES: usize = 8;
/// State lists handled per pass, so one pass is bounded in time.
const STATE_LISTS_PER_PASS: usize = 2_000;

/// How much a node keeps (0: everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub keep_blocks: u64,
    pub keep_state_versions: u64,
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// The first kept block after the pass, if it moved.
    pub blocks_from: Option<Height>,
    /// The first kept state version after the pass, if it moved.
    pub state_from: Option<Height>,
    pub pages_deleted: u64,
}

/// A page's record: the height that wrote it, then its encoding.
pub(super) fn page_record(born: Height, page: &Page) -> Vec<u8> {
    let mut r = Vec::with_capacity(PAGE_BORN_BYTES + page.slots().len() * 40);
    r.extend_from_slice(&height_key(born));
    page.encode_into(&mut r);
    r
}

/// The height that wrote a page record and the page's encoding.
pub(super) fn split_page_record(record: &[u8]) -> Result<(Height, &[u8]), LedgerError> {
    if record.len() <= PAGE_BORN_BYTES {
        return Err(corrupt("state page record", "too short"));
    }
    let (born, page) = record.split_at(PAGE_BORN_BYTES);
    let born = <[u8; 8]>::try_from(born).map_err(|_| corrupt("state page record", "height"))?;
    Ok((Height(u64::from_be_bytes(born)), page))
}

pub(super) fn stale_key(h: Height) -> Vec<u8> {
    prefixed(STATE_STALE, &height_key(h))
}

fn meta_range(prefix: &[u8], from: Height, to: Height) -> (Vec<u8>, Vec<u8>) {
    (
        [prefix, &height_key(from)].concat(),
        [prefix, &height_key(to)].concat(),
    )
}

fn read_height(v: Option<Vec<u8>>, what: &str, default: u64) -> Result<Height, LedgerError> {
    match v {
        None => Ok(Height(default)),
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(|b| Height(u64::from_be_bytes(b)))
            .map_err(|_| corrupt(what, "not 8 bytes")),
    }
}

impl Ledger {
    /// Whether blocks from now on record the pages they replace (on while
    /// the node prunes state).
    pub fn record_replaced_pages(&self, on: bool) {
        self.record_stale.store(on, Ordering::Release);
    }

    /// The first height whose state this ledger still has (0: genesis on).
    pub fn state_from(&self) -> Result<Height, LedgerError> {
        read_height(self.meta(META_STATE_FROM)?, "state_from", 0)
    }

    /// Keeps the state of `height` readable until the returned guard is
    /// dropped (a snapshot being written reads it for seconds); `None` when
    /// it is already pruned.
    pub fn pin_state(&self, height: Height) -> Result<Option<StatePin<'_>>, LedgerError> {
        // Under the pins' lock, which a pruning pass holds from its last
        // check to its write: either it sees this pin, or this sees its
        // new bound.
        let mut pins = self.lock_pins();
        if self.state_from()? > height {
            return Ok(None);
        }
        *pins.entry(height.get()).or_default() += 1;
        Ok(Some(StatePin {
            ledger: self,
            height,
        }))
    }

    fn lock_pins(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        match self.pins.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// One pruning pass: drops what `keep` no longer covers, in bounded
    /// batches. Runs beside commits (it never touches the latest heights).
    pub fn prune(&self, keep: Retention) -> Result<Pruned, LedgerError> {
        let latest = self.latest_height()?.get();
        let mut out = Pruned::default();
        if keep.keep_blocks > 0 {
            let first_kept = latest.saturating_sub(keep.keep_blocks) + 1;
            let earliest = self.earliest_block()?.get();
            // A batch of at least a quarter of what is kept (at most 1,000
            // heights): few range deletions, and what is pruned lags what
            // is kept by a bounded amount.
            let batch = (keep.keep_blocks / 4).clamp(1, 1_000);
            if first_kept >= earliest + batch {
                self.prune_blocks(Height(earliest), Height(first_kept))?;
                out.blocks_from = Some(Height(first_kept));
            }
        }
        if keep.keep_state_versions > 0 {
            // Versions 0 (genesis) to latest: the last N of them.
            let first_kept = (latest + 1).saturating_sub(keep.keep_state_versions);
            let (from, pages) = self.prune_state(Height(first_kept))?;
            out.pages_deleted = pages;
            out.state_from = from;
        }
        Ok(out)
    }

    fn prune_blocks(&self, from: Height, to: Height) -> Result<(), LedgerError> {
        let meta = self.cf(CF_META)?;
        // The deletions and the new bound in one write: a crash keeps both
        // or neither.
        let mut b = WriteBatch::default();
        for name in [CF_BLOCKS, CF_COMMITS] {
            b.delete_range_cf(self.cf(name)?, height_key(from), height_key(to));
        }
        let ranges: Vec<(Vec<u8>, Vec<u8>)> = [META_HEADER, META_VALS, META_BLOOM, META_REFUSED]
            .iter()
            .map(|p| meta_range(p, from, to))
            .collect();
        for (a, z) in &ranges {
            b.delete_range_cf(meta, a, z);
        }
        b.put_cf(meta, META_EARLIEST, height_key(to));
        self.db.write(b)?;
        // Readers and the compaction filters treat everything below it as
        // gone from here on.
        self.earliest.store(to.get(), Ordering::Release);
        // Give the space back now rather than whenever RocksDB gets there.
        for name in [CF_BLOCKS, CF_COMMITS] {
            self.db
                .compact_range_cf(self.cf(name)?, Some(height_key(from)), Some(height_key(to)));
        }
        for (a, z) in &ranges {
            self.db.compact_range_cf(meta, Some(a), Some(z));
        }
        Ok(())
    }

    /// Deletes the pages only versions before `first_kept` had; returns
    /// the new first kept version (if it moved) and the pages deleted.
    fn prune_state(&self, first_kept: Height) -> Result<(Option<Height>, u64), LedgerError> {
        let from = self.state_from()?;
        if first_kept <= from {
            return Ok((None, 0));
        }
        let state = self.cf(CF_STATE)?;
        // The lists of heights up to first_kept: their pages were last in
        // versions before it.
        let lists: Vec<(Height, Vec<Hash>)> = self
            .db
            .iterator_cf(
                state,
                IteratorMode::From(&stale_key(Height(0)), Direction::Forward),
            )
            .take_while(|r| {
                r.as_ref()
                    .map(|(k, _)| k.first() == Some(&STATE_STALE))
                    .unwrap_or(true)
            })
            .take(STATE_LISTS_PER_PASS)
            .map(|r| -> Result<(Height, Vec<Hash>), LedgerError> {
                let (k, v) = r?;
                let h = read_height(k.get(1..).map(<[u8]>::to_vec), "stale list key", 0)?;
                if v.len() % 32 != 0 {
                    return Err(corrupt("stale list", "not whole hashes"));
                }
                Ok((h, v.chunks(32).filter_map(Hash::from_slice).collect()))
            })
            .take_while(|r| r.as_ref().map_or(true, |(h, _)| *h <= first_kept))
            .collect::<Result<_, _>>()?;
        let more = lists.len() == STATE_LISTS_PER_PASS;
        // The versions whose pages may now go: up to the last list handled
        // when more remain, else everything before first_kept.
        let new_from = match lists.last() {
            Some((v, _)) if more => *v,
            _ => first_kept,
        };
        // Candidates first, outside every lock: pages last written before
        // the list that replaced them (written again at or after it: a
        // kept version has them).
        let mut candidates = Vec::new();
        for (v, hashes) in &lists {
            for h in hashes {
                if self.born(&h.0)?.is_some_and(|born| born < *v) {
                    candidates.push((*h, *v));
                }
            }
        }
        // Then, with commits and new pins held off, again: a block may
        // have written one of them since (its contents came back), and a
        // version someone pinned since must stay whole. The records read
        // here were just read, so RocksDB has them in memory.
        let pins = self.lock_pins();
        if pins.keys().next().is_some_and(|p| *p < new_from.get()) {
            return Ok((None, 0));
        }
        let _writing = self.lock_writes();
        let mut b = WriteBatch::default();
        let mut deleted = 0u64;
        for (h, v) in &candidates {
            if self.born(&h.0)?.is_some_and(|born| born < *v) {
                b.delete_cf(state, prefixed(STATE_PAGE, &h.0));
                deleted += 1;
            }
        }
        for (v, _) in &lists {
            b.delete_cf(state, stale_key(*v));
        }
        let meta = self.cf(CF_META)?;
        let (a, z) = meta_range(META_ROOT, from, new_from);
        b.delete_range_cf(meta, &a, &z);
        b.put_cf(meta, META_STATE_FROM, height_key(new_from));
        self.db.write(b)?;
        drop(pins);
        Ok((Some(new_from), deleted))
    }

    /// The height that last wrote the page under `hash`, if stored.
    fn born(&self, hash: &[u8; 32]) -> Result<Option<Height>, LedgerError> {
        let state = self.cf(CF_STATE)?;
        match self.db.get_pinned_cf(state, prefixed(STATE_PAGE, hash))? {
            None => Ok(None),
            Some(record) => Ok(Some(split_page_record(&record)?.0)),
        }
    }
}

/// Keeps a state version from being pruned while it lives.
#[derive(Debug)]
pub struct StatePin<'a> {
    ledger: &'a Ledger,
    height: Height,
}

impl Drop for StatePin<'_> {
    fn drop(&mut self) {
        let mut pins = self.ledger.lock_pins();
        if let Some(n) = pins.get_mut(&self.height.get()) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.height.get());
            }
        }
    }
}
