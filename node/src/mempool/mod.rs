//! Pending transactions waiting for a block.
//!
//! Bounded by count, bytes and transactions per sender; deduplicated by
//! hash; every transaction's signature is verified once, on admission, and
//! never again while it waits; per-sender nonce order is kept so a proposal
//! only takes runs of consecutive nonces starting at the account's next one.
//! After each committed block the pool drops what was included and
//! re-checks what the block's writes can affect against the new state
//! (without re-verifying signatures), so nothing that became invalid is
//! proposed or gossiped. A transaction is checked once on admission and
//! again only when a block writes an account it depends on, or when a
//! commit ran while it was being admitted (its check may have read a mix
//! of two states; [`StateStore::version`] tells).

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_runtime::{NonceRule, Runtime, Signatures, StateStore, StoreError, TxError};
use palisade_types::{Action, Address, Hash, Height, SignedTransaction};

pub mod eth;

use self::eth::EthPool;
use palisade_ledger::cache::DigestHasher;

/// Keyed by transaction hashes and addresses, which are uniformly random:
/// SipHash over all 32 bytes was ~1% of a busy machine's CPU here.
type Map<K, V> = HashMap<K, V, DigestHasher>;
type Set<K> = HashSet<K, DigestHasher>;

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub max_per_sender: usize,
    /// Blocks a transaction may wait behind a nonce gap (its predecessor
    /// is nowhere in the pool) before it is dropped.
    pub gap_ttl_blocks: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 50_000,
            max_bytes: 64 * 1024 * 1024,
            max_per_sender: 1_024,
            gap_ttl_blocks: 20,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("transaction is already in the mempool")]
    Duplicate,
    #[error("mempool is full ({0})")]
    Full(&'static str),
    #[error("another pending transaction from this account has the same nonce")]
    NonceTaken,
    #[error(transparent)]
    Rejected(#[from] TxError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
struct Entry {
    tx: Arc<SignedTransaction>,
    size: usize,
    seq: u64,
    /// The height it was admitted for.
    added: Height,
    /// Checked against one committed state with no commit running: only
    /// blocks' writes can invalidate it.
    clean: bool,
    /// When this node admitted it (for `palisade_tx_commit_latency_seconds`).
    since: Instant,
}

/// A transaction that passed the runtime's checks against the committed
/// state ([`Mempool::check`]), ready for [`Mempool::insert_checked`].
#[derive(Debug)]
pub struct Checked {
    tx: SignedTransaction,
    hash: Hash,
    /// The state version the check read, if it read one committed state.
    version: Option<u64>,
    /// The height it was checked for.
    next_height: Height,
}

/// The pool. Not thread-safe by itself; the node wraps it in a lock.
#[derive(Debug, Default)]
pub struct Mempool {
    cfg: MempoolConfig,
    by_hash: Map<Hash, Entry>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Hash>>,
    /// Transactions found waiting behind a nonce gap at the last block, by
    /// arrival: the first to go when the pool is full. A pool full of
    /// transactions that can never be proposed must not lock out ones that
    /// can (a flood whose earlier nonces were dropped would do that).
    gapped: BTreeMap<u64, Hash>,
    bytes: usize,
    seq: u64,
    /// Senders with transactions admitted since the last block: their gap
    /// status must be looked at again.
    touched: Set<Address>,
    /// Accounts written by blocks whose update has not completed yet: the
    /// transactions that depend on them must be checked again.
    written: Set<Address>,
    /// Pending Ethereum transactions, in a pool of their own (EVM nonces,
    /// 20-byte senders).
    pub eth: EthPool,
    /// How long each transaction committed since the last
    /// [`Mempool::take_waits`] was in the pool.
    waits: Vec<Duration>,
    /// Poked on every admission, native or Ethereum: a node that holds back
    /// an empty block waits on it ([`crate::driver`]).
    arrivals: Arc<tokio::sync::Notify>,
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Mempool {
        let arrivals = Arc::new(tokio::sync::Notify::new());
        Mempool {
            cfg,
            eth: EthPool::new(cfg, arrivals.clone()),
            arrivals,
            ..Mempool::default()
        }
    }

    /// Notified whenever a transaction is admitted (a permit is kept when
    /// nobody waits, so an admission between a check and the wait is not
    /// missed).
    pub fn arrivals(&self) -> Arc<tokio::sync::Notify> {
        self.arrivals.clone()
    }

    /// Whether a block built now could hold a transaction: something in the
    /// pool that was not found behind a nonce gap at the last block.
    pub fn has_proposable(&self) -> bool {
        self.by_hash.len() > self.gapped.len() || !self.eth.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// How long each transaction committed since the last call (native and
    /// Ethereum) waited here from admission to the commit of its block;
    /// transactions this node never had are not in it.
    pub fn take_waits(&mut self) -> Vec<Duration> {
        let mut w = std::mem::take(&mut self.waits);
        w.append(&mut self.eth.take_waits());
        w
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

    pub fn get(&self, hash: &Hash) -> Option<Arc<SignedTransaction>> {
        self.by_hash.get(hash).map(|e| e.tx.clone())
    }

    /// Admits `tx` if the runtime accepts it against `store` (the latest
    /// committed state, for execution at `next_height`) and it fits.
    pub fn add(
        &mut self,
        tx: SignedTransaction,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
    ) -> Result<Hash, AddError> {
        self.add_checked(tx, rt, store, next_height, Signatures::Verify)
    }

    /// [`Mempool::add`] for a transaction whose signature the caller has
    /// already verified (`Signatures::Verified`), e.g. in a batch.
    pub fn add_checked(
        &mut self,
        tx: SignedTransaction,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
        sigs: Signatures,
    ) -> Result<Hash, AddError> {
        let hash = tx.hash();
        self.admissible(&hash, &tx)?;
        let checked = Mempool::check_hashed(tx, hash, rt, store, next_height, sigs)?;
        self.insert_checked(checked, store)
    }

    /// The runtime's checks of `tx` against the latest committed state in
    /// `store`, without the pool: the node runs them before it locks the
    /// pool, so that the consensus driver never waits behind them.
    pub fn check(
        tx: SignedTransaction,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
        sigs: Signatures,
    ) -> Result<Checked, AddError> {
        let hash = tx.hash();
        Mempool::check_hashed(tx, hash, rt, store, next_height, sigs)
    }

    /// [`Mempool::check`] for a transaction whose hash the caller has.
    pub fn check_hashed(
        tx: SignedTransaction,
        hash: Hash,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
        sigs: Signatures,
    ) -> Result<Checked, AddError> {
        let version = store.version();
        rt.check_tx(store, next_height, &tx, sigs, NonceRule::Window)??;
        let steady = version.is_multiple_of(2) && store.version() == version;
        Ok(Checked {
            tx,
            hash,
            version: steady.then_some(version),
            next_height,
        })
    }

    /// Adds a transaction that passed [`Mempool::check`] if the pool has
    /// room for it. It counts as checked against the current state only if
    /// no commit ran since the check (else the next block's update checks
    /// it again).
    pub fn insert_checked(
        &mut self,
        checked: Checked,
        store: &dyn StateStore,
    ) -> Result<Hash, AddError> {
        let Checked {
            tx,
            hash,
            version,
            next_height,
        } = checked;
        let size = self.admissible(&hash, &tx)?;
        let signer = tx.tx.signer;
        let nonce = tx.tx.nonce;
        let clean = version.is_some_and(|v| store.version() == v);
        if let Some(why) = self.full(size) {
            // Room only for a transaction that can be proposed: the
            // account's next nonce, or the one after a pending run.
            let executable = pending_prev(&self.by_sender, &signer, nonce)
                || account_nonce(store, &signer)? == nonce;
            if !executable {
                return Err(AddError::Full(why));
            }
            while self.full(size).is_some() {
                let Some((_, victim)) = self.gapped.pop_last() else {
                    return Err(AddError::Full(why));
                };
                self.remove(&victim);
            }
        }
        self.seq += 1;
        self.bytes += size;
        self.touched.insert(signer);
        self.by_sender
            .entry(signer)
            .or_default()
            .insert(nonce, hash);
        self.by_hash.insert(
            hash,
            Entry {
                tx: Arc::new(tx),
                size,
                seq: self.seq,
                added: next_height,
                clean,
                since: Instant::now(),
            },
        );
        self.arrivals.notify_one();
        Ok(hash)
    }

    /// The pool's own checks (no state read): not a duplicate, nonce free,
    /// under the sender's limit, and room or something to evict. Returns
    /// the transaction's size.
    fn admissible(&self, hash: &Hash, tx: &SignedTransaction) -> Result<usize, AddError> {
        if self.by_hash.contains_key(hash) {
            return Err(AddError::Duplicate);
        }
        let signer = tx.tx.signer;
        let nonce = tx.tx.nonce;
        let pending = self.by_sender.get(&signer);
        if pending.is_some_and(|p| p.contains_key(&nonce)) {
            return Err(AddError::NonceTaken);
        }
        if pending.is_some_and(|p| p.len() >= self.cfg.max_per_sender) {
            return Err(AddError::Full(
                "too many pending transactions from this account",
            ));
        }
        let size = tx.encoded_len();
        match self.full(size) {
            Some(why) if self.gapped.is_empty() => Err(AddError::Full(why)),
            _ => Ok(size),
        }
    }

    /// Which limit a transaction of `size` bytes would break, if any.
    fn full(&self, size: usize) -> Option<&'static str> {
        if self.by_hash.len() >= self.cfg.max_txs {
            Some("transaction count limit")
        } else if self.bytes + size > self.cfg.max_bytes {
            Some("byte limit")
        } else {
            None
        }
    }

    fn remove(&mut self, hash: &Hash) -> Option<Entry> {
        let e = self.by_hash.remove(hash)?;
        self.bytes -= e.size;
        self.gapped.remove(&e.seq);
        let signer = e.tx.tx.signer;
        if let Some(m) = self.by_sender.get_mut(&signer) {
            m.remove(&e.tx.tx.nonce);
            if m.is_empty() {
                self.by_sender.remove(&signer);
            }
        }
        Some(e)
    }

    /// Up to `max_txs` transactions and `max_bytes` bytes for a proposal:
    /// for each sender the consecutive nonces from its account's next one,
    /// senders interleaved by arrival.
    pub fn reap(
        &self,
        store: &dyn StateStore,
        max_txs: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<SignedTransaction>>, StoreError> {
        Ok(self
            .reap_hashed(store, max_txs, max_bytes, u64::MAX)?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }

    /// [`Mempool::reap`] with each transaction's hash, which the pool
    /// already knows (a proposal needs them; hashing again costs), and with
    /// the EVM actions' gas limits bounded by `max_gas` together (the block
    /// executes them in this order: one past what is left would be refused,
    /// and its sender's later nonces with it).
    pub fn reap_hashed(
        &self,
        store: &dyn StateStore,
        max_txs: usize,
        max_bytes: usize,
        max_gas: u64,
    ) -> Result<Vec<(Hash, Arc<SignedTransaction>)>, StoreError> {
        let mut runs: Vec<Vec<(&Hash, &Entry)>> = Vec::new();
        for (signer, nonces) in &self.by_sender {
            let next = account_nonce(store, signer)?;
            let mut run = Vec::new();
            for (want, (n, h)) in (next..).zip(nonces.range(next..)) {
                if *n != want {
                    break;
                }
                if let Some(e) = self.by_hash.get(h) {
                    run.push((h, e));
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize, usize)>> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| std::cmp::Reverse((r[0].1.seq, i, 0)))
            .collect();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut gas = 0u64;
        while let Some(std::cmp::Reverse((_, i, pos))) = heap.pop() {
            if out.len() >= max_txs {
                break;
            }
            let (h, e) = runs[i][pos];
            let tx_gas = e.tx.tx.action.evm_gas_limit().unwrap_or(0);
            if bytes + e.size > max_bytes || gas.saturating_add(tx_gas) > max_gas {
                // This sender's later nonces cannot come without this one.
                continue;
            }
            bytes += e.size;
            gas = gas.saturating_add(tx_gas);
            out.push((*h, e.tx.clone()));
            if let Some((_, next)) = runs[i].get(pos + 1) {
                heap.push(std::cmp::Reverse((next.seq, i, pos + 1)));
            }
        }
        Ok(out)
    }

    /// After a block: drops the included transactions, then everything that
    /// the new state makes invalid (used nonces, lost roles, spent funds).
    /// `written` is every state key the block wrote. Only transactions that
    /// a write can affect are re-checked: those whose signer or named
    /// account was written, every other kind of action, and any whose
    /// admission overlapped a commit; all of them when the block wrote
    /// anything but accounts and EVM records (parameters, the validator
    /// set, data). Returns
    /// how many were dropped as invalid.
    pub fn update<'k>(
        &mut self,
        included: &[SignedTransaction],
        written: impl IntoIterator<Item = &'k [u8]>,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
    ) -> Result<usize, StoreError> {
        let hashes: Vec<Hash> = included.iter().map(SignedTransaction::hash).collect();
        self.update_hashed(included, &hashes, written, rt, store, next_height)
    }

    /// [`Mempool::update`] with the included transactions' hashes (the
    /// block's receipts carry them), in order.
    pub fn update_hashed<'k>(
        &mut self,
        included: &[SignedTransaction],
        hashes: &[Hash],
        written: impl IntoIterator<Item = &'k [u8]>,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
    ) -> Result<usize, StoreError> {
        // Kept in `self` until the update went through, so a storage error
        // midway leaves these accounts marked for the next one.
        for (i, tx) in included.iter().enumerate() {
            self.written.insert(tx.tx.signer);
            let hash = hashes.get(i).copied().unwrap_or_else(|| tx.hash());
            if let Some(e) = self.remove(&hash) {
                self.waits.push(e.since.elapsed());
            }
        }
        let everything = self.note_written(written);
        let (invalid, rechecked_senders) = self.recheck(rt, store, next_height, everything)?;
        self.rescan_gaps(store, everything, &rechecked_senders)?;
        let expired = self.expire_gapped(next_height);
        self.touched.clear();
        self.written.clear();
        Ok(invalid + expired)
    }

    /// Marks the accounts whose records the block `written`; true when it
    /// wrote something that may bear on any transaction (every one is
    /// checked again then).
    fn note_written<'k>(&mut self, written: impl IntoIterator<Item = &'k [u8]>) -> bool {
        let mut everything = false;
        for key in written {
            match key
                .strip_prefix(palisade_runtime::state::keys::ACCOUNT_PREFIX)
                .and_then(|a| <[u8; 32]>::try_from(a).ok())
            {
                Some(a) => {
                    self.written.insert(Address(a));
                }
                // EVM records (a new account's EVM index among them) only
                // bear on EVM actions, which are re-checked anyway.
                None if key.starts_with(b"evm/") => {}
                None => everything = true,
            }
        }
        everything
    }

    /// Checks again, against the new state, the transactions the block may
    /// have made invalid, and removes those it did; how many went, and the
    /// senders checked.
    fn recheck(
        &mut self,
        rt: &Runtime,
        store: &dyn StateStore,
        next_height: Height,
        everything: bool,
    ) -> Result<(usize, Set<Address>), StoreError> {
        let dirty = &self.written;
        let affected = |e: &Entry| {
            let tx = &e.tx;
            everything
                || !e.clean
                || dirty.contains(&tx.tx.signer)
                || match &tx.tx.action {
                    Action::Transfer { to, .. } | Action::Mint { to, .. } => dirty.contains(to),
                    Action::GrantRole { account, .. } | Action::RevokeRole { account, .. } => {
                        dirty.contains(account)
                    }
                    Action::Burn { .. } => false,
                    // Rare, and their checks read more than accounts (the
                    // validator changes pending at the next height).
                    _ => true,
                }
        };
        let mut invalid = Vec::new();
        let mut rechecked = Vec::new();
        let mut rechecked_senders = Set::default();
        for (h, e) in &self.by_hash {
            if !affected(e) {
                continue;
            }
            rechecked_senders.insert(e.tx.tx.signer);
            // Signatures were verified on admission.
            let verdict = rt.check_tx(
                store,
                next_height,
                &e.tx,
                Signatures::Verified,
                NonceRule::Window,
            )?;
            if verdict.is_err() {
                invalid.push(*h);
            } else {
                rechecked.push(*h);
            }
        }
        // The driver, the only committer, runs this between its commits:
        // what was checked here was checked against one state.
        for h in &rechecked {
            if let Some(e) = self.by_hash.get_mut(h) {
                e.clean = true;
            }
        }
        for h in &invalid {
            self.remove(h);
        }
        Ok((invalid.len(), rechecked_senders))
    }

    /// Which transactions wait behind a nonce gap changes only for senders
    /// whose account or pending set changed; finds theirs anew.
    fn rescan_gaps(
        &mut self,
        store: &dyn StateStore,
        everything: bool,
        rechecked_senders: &Set<Address>,
    ) -> Result<(), StoreError> {
        let rescan: Set<Address> = if everything {
            self.by_sender.keys().copied().collect()
        } else {
            self.touched
                .union(&self.written)
                .chain(rechecked_senders)
                .filter(|a| self.by_sender.contains_key(a))
                .copied()
                .collect()
        };
        if everything {
            self.gapped.clear();
        }
        for signer in rescan {
            let Some(nonces) = self.by_sender.get(&signer) else {
                continue;
            };
            let mut want = Some(account_nonce(store, &signer)?);
            for (n, h) in nonces {
                let Some(e) = self.by_hash.get(h) else {
                    continue;
                };
                if want == Some(*n) {
                    want = n.checked_add(1);
                    self.gapped.remove(&e.seq);
                } else {
                    // From here on this sender's transactions are gapped.
                    want = None;
                    self.gapped.insert(e.seq, *h);
                }
            }
        }
        Ok(())
    }

    /// Removes what waited behind a gap for too long; how many.
    fn expire_gapped(&mut self, next_height: Height) -> usize {
        let expired: Vec<Hash> = self
            .gapped
            .values()
            .filter(|h| {
                self.by_hash.get(*h).is_some_and(|e| {
                    next_height.get().saturating_sub(e.added.get()) > self.cfg.gap_ttl_blocks
                })
            })
            .copied()
            .collect();
        for h in &expired {
            self.remove(h);
        }
        expired.len()
    }
}

/// Whether `signer`'s nonce `nonce - 1` is pending.
fn pending_prev(
    by_sender: &BTreeMap<Address, BTreeMap<u64, Hash>>,
    signer: &Address,
    nonce: u64,
) -> bool {
    nonce
        .checked_sub(1)
        .is_some_and(|p| by_sender.get(signer).is_some_and(|m| m.contains_key(&p)))
}

fn account_nonce(store: &dyn StateStore, a: &Address) -> Result<u64, StoreError> {
    match store.get(&palisade_runtime::state::keys::account(a))? {
        None => Ok(0),
        Some(raw) => borsh::from_slice::<palisade_runtime::Account>(&raw)
            .map(|acct| acct.nonce)
            .map_err(|e| StoreError::Corrupt(format!("account {a}: {e}"))),
    }
}
