//! Which files were published, in order: `meta` keys `files/ ‖ height (8,
//! BE) ‖ index (4, BE)` → the file's root (32 bytes), one per successful
//! `FilePublish`, written in its block's commit batch (`file_list` reads
//! them; the records themselves are in the state).

use palisade_types::{Action, Block, Hash, Height};
use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::{corrupt, Ledger, LedgerError, TxPosition, CF_META};
use palisade_runtime::Receipt;

const PREFIX: &[u8] = b"files/";

pub(super) fn key((h, index): TxPosition) -> Vec<u8> {
    [PREFIX, &h.get().to_be_bytes(), &index.to_be_bytes()].concat()
}

/// The roots `block` published (its successful `FilePublish`s), keyed.
pub(super) fn published(block: &Block, receipts: &[Receipt]) -> Vec<(Vec<u8>, Hash)> {
    let h = block.header.height;
    block
        .txs
        .iter()
        .zip(receipts)
        .enumerate()
        .filter_map(|(i, (t, r))| match &t.tx.action {
            Action::FilePublish { root, .. } if r.code == 0 => {
                Some((key((h, u32::try_from(i).ok()?)), *root))
            }
            _ => None,
        })
        .collect()
}

impl Ledger {
    /// Up to `limit` published files, newest first, strictly older than
    /// `before` when given: each one's position and root.
    pub fn published_files(
        &self,
        before: Option<TxPosition>,
        limit: usize,
    ) -> Result<Vec<(TxPosition, Hash)>, LedgerError> {
        let upper = key(before.unwrap_or((Height(u64::MAX), u32::MAX)));
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(PREFIX.to_vec());
        opts.set_iterate_upper_bound(upper.clone());
        let cf = self.cf(CF_META)?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in
            self.db
                .iterator_cf_opt(cf, opts, IteratorMode::From(&upper, Direction::Reverse))
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(LedgerError::from)?;
            let bad = || corrupt("file index", "key is not files/ ‖ height ‖ index");
            let rest = k.get(PREFIX.len()..).ok_or_else(bad)?;
            let h = <[u8; 8]>::try_from(rest.get(..8).ok_or_else(bad)?).map_err(|_| bad())?;
            let i = <[u8; 4]>::try_from(rest.get(8..12).ok_or_else(bad)?).map_err(|_| bad())?;
            let root = <[u8; 32]>::try_from(&*v).map_err(|_| bad())?;
            out.push((
                (Height(u64::from_be_bytes(h)), u32::from_be_bytes(i)),
                Hash(root),
            ));
        }
        Ok(out)
    }
}
