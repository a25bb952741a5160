//! The validator-set changes this ledger knows of, kept whatever is
//! pruned (a few hundred bytes to a few hundred kilobytes each, once per
//! change): `set_change/` ‖ height → the block's header, its certificate
//! and the set that decides the next height ([`SetChange`]). Peers joining
//! by state sync walk them from genesis to trust a snapshot decided by
//! validators that have changed since.

use palisade_types::{decode, encode, BlockHeader, Height, SetChange};
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::{corrupt, height_key, Ledger, LedgerError, CF_META, META_HEADER};

const PREFIX: &[u8] = b"set_change/";
/// Present once the blocks a ledger had before changes were recorded
/// have been looked through for them.
const META_SCANNED: &[u8] = b"set_changes_scanned";

/// The first key after every key that starts with `prefix` (which ends in
/// `/`): the iterators' upper bound.
fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

fn key(h: Height) -> Vec<u8> {
    [PREFIX, &height_key(h)].concat()
}

/// Adds the record of `change` to `batch` if its block changes the set.
pub(super) fn put_if_change(
    ledger: &Ledger,
    batch: &mut WriteBatch,
    change: &SetChange,
) -> Result<(), LedgerError> {
    if change.header.next_validators_hash != change.header.validators_hash {
        batch.put_cf(ledger.cf(CF_META)?, key(change.height()), encode(change));
    }
    Ok(())
}

impl Ledger {
    /// The changes after height `after`, oldest first: at most `max`, and
    /// no more once `max_bytes` of them are read.
    pub fn set_changes_after(
        &self,
        after: Height,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<SetChange>, LedgerError> {
        let Ok(from) = after.next() else {
            return Ok(Vec::new());
        };
        let start = key(from);
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(after_prefix(PREFIX));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let cf = self.cf(CF_META)?;
        for item in
            self.db
                .iterator_cf_opt(cf, opts, IteratorMode::From(&start, Direction::Forward))
        {
            if out.len() >= max || bytes >= max_bytes {
                break;
            }
            let (k, v) = item?;
            if !k.starts_with(PREFIX) {
                break;
            }
            bytes += v.len();
            out.push(decode::<SetChange>(&v).map_err(|e| corrupt("validator set change", e))?);
        }
        Ok(out)
    }

    /// A ledger written before changes were recorded: records the changes
    /// among the blocks it still has, once.
    pub(super) fn backfill_set_changes(&self) -> Result<(), LedgerError> {
        if self.meta(META_SCANNED)?.is_some() {
            return Ok(());
        }
        let meta = self.cf(CF_META)?;
        let mut b = WriteBatch::default();
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(after_prefix(META_HEADER));
        let mut found = 0usize;
        for item in self.db.iterator_cf_opt(
            meta,
            opts,
            IteratorMode::From(META_HEADER, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(META_HEADER) {
                break;
            }
            let header = decode::<BlockHeader>(&v).map_err(|e| corrupt("block header", e))?;
            if header.next_validators_hash == header.validators_hash {
                continue;
            }
            let h = header.height;
            let next = h.next().map_err(|e| corrupt("height", e))?;
            if let (Some(commit), Some(next_validators)) = (self.commit(h)?, self.validators(next)?)
            {
                let change = SetChange {
                    header,
                    commit,
                    next_validators,
                };
                put_if_change(self, &mut b, &change)?;
                found += 1;
            }
        }
        b.put_cf(meta, META_SCANNED, []);
        self.db.write(b)?;
        if found > 0 {
            tracing::info!(
                changes = found,
                "validator-set changes recorded from the blocks kept"
            );
        }
        Ok(())
    }

    /// Keeps changes a state sync verified on its way to its snapshot, so
    /// that this node can pass them on. Only into a ledger with no blocks.
    pub fn put_set_changes(&self, changes: &[SetChange]) -> Result<(), LedgerError> {
        if !self.is_blank()? {
            return Err(LedgerError::NotBlank(self.dir().to_path_buf()));
        }
        let mut b = WriteBatch::default();
        for c in changes {
            put_if_change(self, &mut b, c)?;
        }
        self.db.write(b)?;
        Ok(())
    }
}
