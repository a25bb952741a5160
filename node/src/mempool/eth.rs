//! Pending Ethereum transactions waiting for a block.
//!
//! Bounded by count, bytes and transactions per sender; deduplicated by
//! hash; per-sender EVM nonce order kept, so a proposal takes runs of
//! consecutive nonces from each sender's next one. Each transaction was
//! decoded and its sender recovered once, on admission. After each block
//! the included ones go, and the senders the block touched (and everyone,
//! when it changed roles or parameters) are checked again against the new
//! state.

use std::collections::{BTreeMap, HashMap};

use palisade_runtime::{EthTxInput, NonceRule, Runtime, StateStore, StoreError};
use palisade_types::{EthTransaction, EvmAddress, Hash, Height};

use super::{AddError, MempoolConfig};

#[derive(Debug, Clone)]
struct Entry {
    raw: EthTransaction,
    input: EthTxInput,
    seq: u64,
    /// The height it was admitted for.
    added: Height,
    /// When this node admitted it.
    since: std::time::Instant,
}

/// The pool. Not thread-safe by itself; the node wraps it in a lock.
#[derive(Debug, Default)]
pub struct EthPool {
    cfg: MempoolConfig,
    by_hash: HashMap<Hash, Entry>,
    by_sender: BTreeMap<EvmAddress, BTreeMap<u64, Hash>>,
    bytes: usize,
    seq: u64,
    /// How long each transaction committed since the last
    /// [`EthPool::take_waits`] was in the pool.
    waits: Vec<std::time::Duration>,
    /// Poked on every admission (see [`crate::mempool::Mempool::arrivals`]).
    arrivals: std::sync::Arc<tokio::sync::Notify>,
}

impl EthPool {
    pub fn new(cfg: MempoolConfig, arrivals: std::sync::Arc<tokio::sync::Notify>) -> EthPool {
        EthPool {
            cfg,
            arrivals,
            ..EthPool::default()
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// How long each transaction committed since the last call waited here.
    pub fn take_waits(&mut self) -> Vec<std::time::Duration> {
        std::mem::take(&mut self.waits)
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The bytes of a pending transaction.
    pub fn get(&self, hash: &Hash) -> Option<(&EthTransaction, &EthTxInput)> {
        self.by_hash.get(hash).map(|e| (&e.raw, &e.input))
    }

    /// The next EVM nonce of `sender` counting its pending transactions:
    /// `eth_getTransactionCount(.., "pending")`.
    pub fn pending_nonce(&self, sender: &EvmAddress, committed: u64) -> u64 {
        let mut next = committed;
        if let Some(q) = self.by_sender.get(sender) {
            while q.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Admits `raw` (decoded and its sender recovered as `input`) after the
    /// runtime's checks against `store` for block `next_height`. (The node
    /// runs those checks without holding the pool: [`EthPool::precheck`],
    /// then [`Runtime::check_eth_tx`], then [`EthPool::insert_checked`].)
    pub fn add(
        &mut self,
        raw: EthTransaction,
        input: EthTxInput,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
    ) -> Result<Hash, AddError> {
        self.precheck(&input)?;
        rt.check_eth_tx(store, next_height, &input, NonceRule::Window)??;
        self.insert_checked(raw, input, next_height)
    }

    /// The pool's own, cheap, checks: not pooled yet, its nonce not taken,
    /// room for it.
    pub fn precheck(&self, input: &EthTxInput) -> Result<(), AddError> {
        if self.by_hash.contains_key(&input.hash) {
            return Err(AddError::Duplicate);
        }
        let queue = self.by_sender.get(&input.sender);
        if queue.is_some_and(|q| q.contains_key(&input.nonce)) {
            return Err(AddError::NonceTaken);
        }
        if queue.map_or(0, BTreeMap::len) >= self.cfg.max_per_sender {
            return Err(AddError::Full("transactions of this sender"));
        }
        if self.by_hash.len() >= self.cfg.max_txs {
            return Err(AddError::Full("transactions"));
        }
        if self.bytes + input.encoded_len > self.cfg.max_bytes {
            return Err(AddError::Full("bytes"));
        }
        Ok(())
    }

    /// Inserts a transaction the runtime admitted (the pool's checks run
    /// again: the pool may have changed meanwhile).
    pub fn insert_checked(
        &mut self,
        raw: EthTransaction,
        input: EthTxInput,
        added: Height,
    ) -> Result<Hash, AddError> {
        self.precheck(&input)?;
        let hash = input.hash;
        self.seq += 1;
        self.bytes += raw.bytes().len();
        self.by_sender
            .entry(input.sender)
            .or_default()
            .insert(input.nonce, hash);
        self.by_hash.insert(
            hash,
            Entry {
                raw,
                input,
                seq: self.seq,
                added,
                since: std::time::Instant::now(),
            },
        );
        self.arrivals.notify_one();
        Ok(hash)
    }

    fn remove(&mut self, hash: &Hash) {
        if let Some(e) = self.by_hash.remove(hash) {
            self.bytes -= e.raw.bytes().len();
            if let Some(q) = self.by_sender.get_mut(&e.input.sender) {
                q.remove(&e.input.nonce);
                if q.is_empty() {
                    self.by_sender.remove(&e.input.sender);
                }
            }
        }
    }

    /// Transactions for a block: for each sender the run of consecutive
    /// nonces from its next one (read from `store`), senders in order of
    /// their oldest transaction, within `max_txs`, `max_bytes` (counting
    /// each transaction's encoded size) and `max_gas` (their gas limits).
    pub fn reap(
        &self,
        store: &dyn StateStore,
        max_txs: usize,
        max_bytes: usize,
        max_gas: u64,
    ) -> Result<Vec<(EthTransaction, EthTxInput)>, StoreError> {
        let at_latest = palisade_runtime::evm::Latest(store);
        let mut senders: Vec<(u64, &EvmAddress, &BTreeMap<u64, Hash>)> = self
            .by_sender
            .iter()
            .filter_map(|(s, q)| {
                let oldest = q
                    .values()
                    .filter_map(|h| self.by_hash.get(h))
                    .map(|e| e.seq)
                    .min()?;
                Some((oldest, s, q))
            })
            .collect();
        senders.sort_by_key(|(seq, _, _)| *seq);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut gas = 0u64;
        'senders: for (_, sender, q) in senders {
            let mut next =
                palisade_runtime::evm::read_account(&at_latest, sender)?.map_or(0, |a| a.nonce);
            while let Some(h) = q.get(&next) {
                let Some(e) = self.by_hash.get(h) else { break };
                let size = e.raw.encoded_len();
                if out.len() >= max_txs {
                    break 'senders;
                }
                if bytes + size > max_bytes || gas.saturating_add(e.input.gas_limit) > max_gas {
                    break;
                }
                bytes += size;
                gas = gas.saturating_add(e.input.gas_limit);
                out.push((e.raw.clone(), e.input.clone()));
                next += 1;
            }
        }
        Ok(out)
    }

    /// After a block: drops `included`, then checks again every pending
    /// transaction of the senders in `touched` (all of them when
    /// `everything`), dropping those the new state refuses, and those that
    /// waited behind a nonce gap for more than `gap_ttl_blocks` (as the
    /// native pool does: future nonces cannot hold the pool's room).
    /// Returns how many were dropped.
    pub fn update(
        &mut self,
        included: &[Hash],
        touched: &[EvmAddress],
        everything: bool,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
    ) -> Result<usize, StoreError> {
        let mut senders: Vec<EvmAddress> = touched.to_vec();
        for h in included {
            if let Some(e) = self.by_hash.get(h) {
                senders.push(e.input.sender);
                self.waits.push(e.since.elapsed());
            }
            self.remove(h);
        }
        let recheck: Vec<Hash> = if everything {
            self.by_hash.keys().copied().collect()
        } else {
            senders.sort();
            senders.dedup();
            senders
                .iter()
                .filter_map(|s| self.by_sender.get(s))
                .flat_map(|q| q.values().copied())
                .collect()
        };
        let mut dropped = 0;
        for h in recheck {
            let Some(e) = self.by_hash.get(&h) else {
                continue;
            };
            if rt
                .check_eth_tx(store, next_height, &e.input, NonceRule::Window)?
                .is_err()
            {
                self.remove(&h);
                dropped += 1;
            }
        }
        Ok(dropped + self.expire_gapped(store, next_height)?)
    }

    /// Drops transactions older than `gap_ttl_blocks` that still wait for
    /// a nonce no pending transaction of their sender has. Only old ones
    /// are looked at, so a block costs one pass over the pool and a state
    /// read per old transaction.
    fn expire_gapped(
        &mut self,
        store: &dyn StateStore,
        next_height: Height,
    ) -> Result<usize, StoreError> {
        let ttl = self.cfg.gap_ttl_blocks;
        let old: Vec<(Hash, EvmAddress, u64)> = self
            .by_hash
            .iter()
            .filter(|(_, e)| next_height.get().saturating_sub(e.added.get()) > ttl)
            .map(|(h, e)| (*h, e.input.sender, e.input.nonce))
            .collect();
        let at_latest = palisade_runtime::evm::Latest(store);
        let mut expired = Vec::new();
        for (h, sender, nonce) in old {
            let committed =
                palisade_runtime::evm::read_account(&at_latest, &sender)?.map_or(0, |a| a.nonce);
            let gapped = self
                .by_sender
                .get(&sender)
                .is_some_and(|q| (committed..nonce).any(|n| !q.contains_key(&n)));
            if gapped {
                expired.push(h);
            }
        }
        for h in &expired {
            self.remove(h);
        }
        Ok(expired.len())
    }
}

/// What a block's writes mean for pending Ethereum transactions: the EVM
/// accounts whose record (nonce, balance) or roles it wrote, and whether
/// it changed something every check reads (the chain parameters).
pub fn touched<'k>(written: impl IntoIterator<Item = &'k Vec<u8>>) -> (Vec<EvmAddress>, bool) {
    use palisade_runtime::evm::keys;
    let mut out = Vec::new();
    let mut everything = false;
    for key in written {
        let addr = key
            .strip_prefix(keys::ACCOUNT_PREFIX)
            .or_else(|| key.strip_prefix(keys::ROLES_PREFIX));
        if let Some(a) = addr.and_then(|a| <[u8; 20]>::try_from(a).ok()) {
            out.push(EvmAddress(a));
        } else if key.as_slice() == palisade_runtime::state::keys::PARAMS {
            everything = true;
        }
    }
    (out, everything)
}
