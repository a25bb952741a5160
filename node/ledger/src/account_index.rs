//! Which transactions touched an account: the `account_txs` column family,
//! key `evm address (20) ‖ height (8, BE) ‖ index (4, BE)`, value `kind
//! (1: 0 native, 1 Ethereum) ‖ tx hash (32)` (so a listing reads no
//! block), written in each block's commit batch.
//!
//! Every account is indexed under its 20-byte EVM address, a native
//! account under its EVM face (`keccak256(address)[12..]`), so the native
//! and Ethereum views of one account share one list. Keys sort by height
//! and index within an account, so the newest are read by iterating
//! backwards from a position, with no scan of other accounts.

use palisade_types::{EvmAddress, Hash, Height};
use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::{corrupt, Ledger, LedgerError, TxPosition, CF_ACCOUNT_TXS};

const KEY_BYTES: usize = 20 + 8 + 4;

pub(super) fn key(account: &EvmAddress, (h, index): TxPosition) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    k[..20].copy_from_slice(&account.0);
    k[20..28].copy_from_slice(&h.get().to_be_bytes());
    k[28..].copy_from_slice(&index.to_be_bytes());
    k
}

pub(super) fn value(tx: &Hash, eth: bool) -> [u8; 33] {
    let mut v = [0u8; 33];
    v[0] = u8::from(eth);
    v[1..].copy_from_slice(&tx.0);
    v
}

fn position(k: &[u8]) -> Result<TxPosition, LedgerError> {
    let bad = || corrupt("account index", "key is not address ‖ height ‖ index");
    let h = <[u8; 8]>::try_from(k.get(20..28).ok_or_else(bad)?).map_err(|_| bad())?;
    let i = <[u8; 4]>::try_from(k.get(28..KEY_BYTES).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok((Height(u64::from_be_bytes(h)), u32::from_be_bytes(i)))
}

/// A transaction in an account's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountTx {
    pub position: TxPosition,
    pub hash: Hash,
    /// An Ethereum transaction (else a native one).
    pub eth: bool,
}

/// One page of an account's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTxs {
    pub txs: Vec<AccountTx>,
    /// Where the next (older) page starts, when there is one.
    pub next: Option<TxPosition>,
}

impl Ledger {
    /// Up to `limit` positions of transactions that touched `account`,
    /// newest first, strictly older than `before` when given.
    pub fn account_txs(
        &self,
        account: &EvmAddress,
        before: Option<TxPosition>,
        limit: usize,
    ) -> Result<AccountTxs, LedgerError> {
        let upper = match before {
            Some(p) => key(account, p).to_vec(),
            // Past every key of this account.
            None => key(account, (Height(u64::MAX), u32::MAX)).to_vec(),
        };
        // Entries before the first indexed height are left over from before
        // the index was turned off: the list has a gap there, so it stops.
        let from = self.account_index_from()?.unwrap_or(Height(u64::MAX));
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(key(account, (from, 0)).to_vec());
        opts.set_iterate_upper_bound(upper.clone());
        let cf = self.cf(CF_ACCOUNT_TXS)?;
        let mode = IteratorMode::From(&upper, Direction::Reverse);
        let mut txs = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for item in self.db.iterator_cf_opt(cf, opts, mode) {
            let (k, v) = item?;
            // The upper bound is exclusive, but seeking to it may land on it.
            if k.as_ref() >= upper.as_slice() {
                continue;
            }
            if txs.len() == limit {
                next = txs.last().map(|t: &AccountTx| t.position);
                break;
            }
            let (eth, hash) = match v.split_first() {
                Some((&kind @ (0 | 1), hash)) => (
                    kind == 1,
                    <[u8; 32]>::try_from(hash)
                        .map_err(|_| corrupt("account index", "value is not kind ‖ hash"))?,
                ),
                _ => return Err(corrupt("account index", "value is not kind ‖ hash")),
            };
            txs.push(AccountTx {
                position: position(&k)?,
                hash: Hash(hash),
                eth,
            });
        }
        Ok(AccountTxs { txs, next })
    }

    /// The first height whose transactions are in the account index, from
    /// which it has every block; `None` while the node keeps no index.
    pub fn account_index_from(&self) -> Result<Option<Height>, LedgerError> {
        self.meta(super::META_ACCOUNTS_FROM)?
            .map(|v| {
                <[u8; 8]>::try_from(v.as_slice())
                    .map(|b| Height(u64::from_be_bytes(b)))
                    .map_err(|_| corrupt("accounts_from", "not 8 bytes"))
            })
            .transpose()
    }

    /// Keeps the account index (from the next block on, if it was not
    /// kept) or stops keeping it (`ledger.account_index`). Turned off and
    /// on again, it starts afresh at the next block: the blocks in between
    /// were never indexed.
    pub fn keep_account_index(&self, on: bool) -> Result<(), LedgerError> {
        let meta = self.cf(super::CF_META)?;
        match (on, self.account_index_from()?) {
            (true, None) => {
                let from = self
                    .stored_latest_height()?
                    .map_or(Ok(Height(1)), |h| h.next())
                    .map_err(|e| corrupt("height", e))?;
                self.db
                    .put_cf(meta, super::META_ACCOUNTS_FROM, super::height_key(from))?;
            }
            (false, Some(_)) => self.db.delete_cf(meta, super::META_ACCOUNTS_FROM)?,
            _ => {}
        }
        Ok(())
    }
}
