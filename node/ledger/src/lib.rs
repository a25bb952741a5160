//! The chain on disk, in RocksDB.
//!
//! Column families: `blocks` (height → block), `block_index` (block hash →
//! height), `commits` (height → commit certificate), `txs` (tx hash →
//! height, index and receipt: one record, as both are written and mostly
//! read together), `state` (state-tree pages and large value blobs),
//! `account_txs` (which transactions touched each account, [`account_index`])
//! and `meta` (schema version, chain id, genesis hash, latest
//! height, state root and validator set per height). Everything a block
//! changes is written in one synced write batch, so after a crash at any
//! point the ledger holds either the whole block or none of it.
//!
//! The data directory is locked for the life of the [`Ledger`]: a second
//! process opening it gets [`LedgerError::Locked`].
//!
//! State values live only in the tree: a key's latest value is read by
//! walking the pages from the latest root (one RocksDB record fewer per
//! written key than keeping a copy of each value beside the tree, and a
//! block writes some 1,300 keys at 7,000 transfers/s).
//!
//! Two caches sit in front of RocksDB ([`cache`]): state-tree pages, and
//! the latest committed state values. The value cache changes with every
//! commit, so commits and cache fills are ordered by a version number (a
//! sequence lock): a commit makes it odd before writing and even again once
//! the cache holds the block's values and the new root, and a value read
//! from the tree is cached only if the version did not move while it was
//! read. While a commit is being written the cache answers only for keys
//! the commit leaves as they are (their value is the same before and after
//! it); a key it changes is walked from the root RocksDB itself names as
//! latest, so a reader that can see a block in RocksDB never gets a value
//! from before it.
//! The latest height is kept in memory and advanced only after the cache,
//! so whoever sees height `h` reads `h`'s state or newer.
//!
//! The consensus signer's durable state ([`signer_store`]) lives beside the
//! ledger in the node's data directory.

#![forbid(unsafe_code)]

mod account_index;
pub mod cache;
mod file_index;
mod import;
mod prune;
mod set_changes;
pub mod signer_store;
mod small_bytes;

pub use import::{discard_staged, mark_staged, staging_dir, SnapshotBase};
pub use prune::{Pruned, Retention, StatePin};

pub use account_index::{AccountTx, AccountTxs};

use small_bytes::SmallBytes;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use palisade_runtime::evm::{LogsBloom, BLOOM_BYTES};
use palisade_runtime::page::Page;
use palisade_runtime::{Receipt, StateChanges, StateStore, StoreError};
use palisade_types::{
    decode, decode_with_limit, encode, Block, BlockHeader, ChainId, CommitCertificate,
    EthTransaction, EvmAddress, Hash, Height, SignedTransaction, ValidatorSet, Wire,
};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

/// Whether a commit is on disk before [`Ledger::commit_block`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced: survives a power loss once the call returns.
    Synced,
    /// Written but not synced; for blocks that can be fetched again (a
    /// node catching up commits many in a row, and one sync per block was
    /// a third of its time).
    Deferred,
}

/// Bumped whenever the on-disk layout changes incompatibly.
/// 2: the state tree is stored in pages of four levels ([`Page`]), not
/// node by node, and a transaction's receipt is kept with its location in
/// `txs` (there is no `receipts` column family).
/// 3: no copy of each latest value beside the tree (`state` holds pages and
/// blobs only; values are read from the tree).
/// 4: receipts have an EVM part, and the state the EVM's records (a chain
/// of schema 3 gives other state roots under this build's rules).
/// 5: each block records its parent's hash in the state (BLOCKHASH), so a
/// chain of schema 4 gives other state roots; blocks with logs keep a
/// logs bloom in `meta`.
/// 6: chain parameters have `file_quota_bytes`, and the state file records
/// (a chain of schema 5 decodes its parameters differently).
/// 7: a state page's record starts with the height that wrote it
/// ([`prune`]).
/// 8: a header names its parent's results (deferred execution, docs/spec.md)
/// and `root/` keeps each height's receipts root beside its state root.
pub const SCHEMA_VERSION: u32 = 8;

const CF_BLOCKS: &str = "blocks";
const CF_BLOCK_INDEX: &str = "block_index";
const CF_COMMITS: &str = "commits";
const CF_TXS: &str = "txs";
const CF_STATE: &str = "state";
const CF_META: &str = "meta";
const CF_ACCOUNT_TXS: &str = "account_txs";
const ALL_CFS: [&str; 7] = [
    CF_BLOCKS,
    CF_BLOCK_INDEX,
    CF_COMMITS,
    CF_TXS,
    CF_STATE,
    CF_META,
    CF_ACCOUNT_TXS,
];
/// Everything a decided block writes ([`Ledger::commit_block`]).
#[derive(Debug, Clone, Copy)]
pub struct BlockWrite<'a> {
    pub block: &'a Block,
    /// The certificate that decided it.
    pub commit: &'a CommitCertificate,
    /// One per transaction, in block order.
    pub receipts: &'a [Receipt],
    /// The Merkle root of `receipts` (the next block's header names it).
    pub receipts_root: Hash,
    /// The positions of the transactions execution refused, ascending:
    /// the block holds them, but they are not committed (no index names
    /// them; they may still be included later).
    pub refused: &'a [u32],
    pub state: &'a StateChanges,
    /// The set that decides the next height.
    pub next_validators: &'a ValidatorSet,
    /// The accounts each transaction touched, by index in the block (the
    /// account index).
    pub accounts: &'a [(EvmAddress, u32)],
}

/// Where a committed transaction is: its block's height and its index in
/// the block.
pub type TxPosition = (Height, u32);
/// Bytes of a `txs` record before its receipt: height (u64) and index (u32).
const TX_LOCATION_BYTES: usize = 12;

const META_SCHEMA: &[u8] = b"schema_version";
const META_CHAIN_ID: &[u8] = b"chain_id";
const META_GENESIS: &[u8] = b"genesis_hash";
const META_LATEST: &[u8] = b"latest_height";
const META_ROOT: &[u8] = b"root/";
const META_VALS: &[u8] = b"vals/";
/// Blocks consensus asked to keep (locked or valid) before their height is
/// decided: `pending/` ‖ height ‖ block hash.
const META_PENDING: &[u8] = b"pending/";
/// The logs bloom of each block that has EVM logs: `bloom/` ‖ height.
const META_BLOOM: &[u8] = b"bloom/";
/// The positions of the transactions execution refused, for each block
/// that has any: `refused/` ‖ height → u32 big-endian each, ascending.
const META_REFUSED: &[u8] = b"refused/";
/// The first height this ledger kept blooms for (a ledger written before
/// blooms were kept has none for its earlier blocks).
const META_BLOOMS_FROM: &[u8] = b"blooms_from";
/// The first height whose transactions are in `account_txs`.
const META_ACCOUNTS_FROM: &[u8] = b"accounts_from";
/// Each block's header on its own, `header/` ‖ height: reading a header
/// (proposals, validation, the explorer's activity view) must not read the
/// whole block, which may be megabytes.
const META_HEADER: &[u8] = b"header/";
/// The first height whose block this ledger has (absent: 1). A ledger
/// started from a snapshot at height h has blocks from h + 1 on, and h's
/// header and certificate.
const META_EARLIEST: &[u8] = b"earliest_block";

const STATE_PAGE: u8 = b'p';
const STATE_BLOB: u8 = b'b';

/// Bytes of decoded state-tree pages kept in memory per generation (two
/// generations: some 100 MiB at most).
const PAGE_CACHE_BYTES: usize = 48 * 1024 * 1024;
/// About what a page weighs decoded (a bottom page of a few accounts).
const TYPICAL_PAGE_BYTES: usize = 600;
/// Bytes of latest state values (keys and values) kept per generation.
const VALUE_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Entries the value cache's table starts with (it grows from there).
const VALUE_CACHE_EXPECTED: usize = 16 * 1024;
/// Values larger than this are read from RocksDB each time (rare: data
/// entries; accounts are some 30 bytes).
const MAX_CACHED_VALUE: usize = 4 * 1024;
/// Background writes (flushes, compactions) are synced every this many
/// bytes instead of all at once at the end of a file.
const BACKGROUND_SYNC_BYTES: u64 = 1 << 20;
/// `height` before the ledger is initialized from a genesis.
const NO_HEIGHT: u64 = u64::MAX;

/// Receipts are bounded by their transaction's events, and an EVM
/// transaction's by its gas (logs cost at least 8 gas a byte; a
/// transaction has at most 2^24 gas: under 3 MiB of logs) and the capped
/// output; this is a sanity cap above both.
const MAX_RECEIPT_BYTES: usize = 8 << 20;

/// A RocksDB key and its value, as an iterator yields them.
type KeyValue = (Box<[u8]>, Box<[u8]>);

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("data directory {0} is in use by another palisade process")]
    Locked(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("database schema version {found} is not supported (this build uses {expected}); use a matching palisade release or re-sync into an empty data directory")]
    Schema { found: u32, expected: u32 },
    #[error("data directory belongs to chain {found}, not {expected}")]
    ChainMismatch { found: String, expected: String },
    #[error("data directory was initialized from genesis {found}, but genesis.json hashes to {expected}")]
    GenesisMismatch { found: Hash, expected: Hash },
    #[error("ledger is not initialized from a genesis")]
    NotInitialized,
    #[error("data directory {0} already holds blocks: a snapshot goes only into a node that has none (move its data/ away first)")]
    NotBlank(PathBuf),
    #[error("cannot commit height {got}: the next height is {expected}")]
    NotNextHeight { expected: Height, got: Height },
    #[error("commit certificate is for {commit}, block is {block}")]
    CommitMismatch { commit: Hash, block: Hash },
    #[error("ledger is corrupt: {0}")]
    Corrupt(String),
}

/// The node's RocksDB ledger.
#[derive(Debug)]
pub struct Ledger {
    db: DB,
    dir: PathBuf,
    /// Recently written and read state-tree pages (immutable by hash).
    pages: Mutex<PageCache>,
    /// Latest committed state values, and the commit version.
    latest: Mutex<Latest>,
    /// `latest.version`, readable without the lock.
    version: AtomicU64,
    /// Last committed height ([`NO_HEIGHT`] before genesis).
    height: AtomicU64,
    /// The first height whose block is kept ([`Ledger::earliest_block`]);
    /// shared with the compaction filters that drop older index records.
    earliest: Arc<AtomicU64>,
    /// Whether commits record the state pages they replace ([`prune`]).
    record_stale: std::sync::atomic::AtomicBool,
    /// State versions being read that pruning must leave alone.
    pins: Mutex<BTreeMap<u64, usize>>,
    /// Held while a block's write goes in, and while pruning checks that a
    /// page it deletes was not written again meanwhile ([`prune`]).
    writes: Mutex<()>,
    /// Held (locked) for as long as the ledger is open.
    _lock: File,
}

type PageCache = cache::Generations<Hash, Arc<Page>, cache::DigestHasher>;

/// State values as of the last commit (`None`: the key is absent).
#[derive(Debug)]
struct Latest {
    values: cache::Generations<SmallBytes, Option<SmallBytes>>,
    /// Odd while a commit is being written; see the module docs.
    version: u64,
    /// While a commit is being written: the keys it changes. `None` then
    /// means it may change any key (a snapshot import).
    changing: Option<ChangedKeys>,
    /// State root of the last commit (of genesis before any block).
    root: Hash,
}

/// Options of the database as a whole.
///
/// Memtable flushes and compactions run at the lowest CPU and IO priority
/// and write their files out as they go (`bytes_per_sync`). Consensus
/// waits on this node's synced commits and signer-state saves; a flush
/// writes a 64 MiB file in one go, and at full priority it took one of the
/// cores and the disk queue for up to a second, during which every height
/// waited (docs/benchmarks/history/2026-12-04-r4-flushes.md). A flush has
/// the time of filling the next memtable to finish before writes would
/// stall.
fn db_options() -> Result<Options, LedgerError> {
    let mut opts = Options::default();
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts.set_bytes_per_sync(BACKGROUND_SYNC_BYTES);
    // The process-wide default environment: its thread pools serve every
    // database the process opens.
    let mut env = rocksdb::Env::new()?;
    env.lower_high_priority_thread_pool_cpu_priority();
    env.lower_high_priority_thread_pool_io_priority();
    env.lower_thread_pool_cpu_priority();
    env.lower_thread_pool_io_priority();
    opts.set_env(&env);
    Ok(opts)
}

/// Where a record's block height is, given its key and value.
type HeightOfRecord = fn(&[u8], &[u8]) -> Option<u64>;

/// Options of one column family.
fn cf_options(name: &str, earliest: &Arc<AtomicU64>) -> Options {
    let mut o = Options::default();
    // Records of pruned blocks that are keyed by hash or account, not by
    // height, go when their files are compacted ([`prune`]).
    let height_of: Option<HeightOfRecord> = match name {
        // Value: height (u64 LE, borsh), index, receipt.
        CF_TXS => Some(|_, v| Some(u64::from_le_bytes(v.get(..8)?.try_into().ok()?))),
        // Value: height (u64 BE).
        CF_BLOCK_INDEX => Some(|_, v| Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))),
        // Key: address (20) ‖ height (u64 BE) ‖ index.
        CF_ACCOUNT_TXS => Some(|k, _| Some(u64::from_be_bytes(k.get(20..28)?.try_into().ok()?))),
        _ => None,
    };
    if let Some(height_of) = height_of {
        let earliest = earliest.clone();
        o.set_compaction_filter("palisade-pruned-heights", move |_, k: &[u8], v: &[u8]| {
            match height_of(k, v) {
                Some(h) if h < earliest.load(Ordering::Acquire) => {
                    rocksdb::CompactionDecision::Remove
                }
                _ => rocksdb::CompactionDecision::Keep,
            }
        });
    }
    if name == CF_STATE {
        // Tree pages are mostly hashes: compression saved nothing (a 64 MB
        // flush came out 0.7% larger than its input) and cost CPU on every
        // flush and compaction.
        o.set_compression_type(rocksdb::DBCompressionType::None);
    } else {
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    }
    o
}

fn height_key(h: Height) -> [u8; 8] {
    h.get().to_be_bytes()
}

fn prefixed(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(tag);
    k.extend_from_slice(rest);
    k
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("{what}: {e}"))
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `data_dir` (the database
    /// lives in `data_dir/db`), locking the directory.
    pub fn open(data_dir: &Path) -> Result<Ledger, LedgerError> {
        let lock = lock_dir(data_dir)?;
        // A ledger a catch-up staged (and finished) replaces this one.
        if import::adopt_staged(data_dir)? {
            tracing::info!(dir = %data_dir.display(), "the ledger staged by state sync replaces the old one");
        }
        // Until the stored bound is read below: nothing is dropped.
        let earliest = Arc::new(AtomicU64::new(0));
        let db = open_db(&data_dir.join("db"), &earliest)?;
        let ledger = Ledger {
            db,
            dir: data_dir.to_path_buf(),
            pages: Mutex::new(cache::Generations::with_hasher(
                PAGE_CACHE_BYTES,
                PAGE_CACHE_BYTES / TYPICAL_PAGE_BYTES,
                cache::DigestHasher::new(),
            )),
            latest: Mutex::new(Latest {
                // Started small and left to grow: a chain's live accounts
                // may be far fewer than the byte budget holds, and a sparse
                // table only spreads lookups over more memory.
                values: cache::Generations::with_hasher(
                    VALUE_CACHE_BYTES,
                    VALUE_CACHE_EXPECTED,
                    Default::default(),
                ),
                version: 0,
                changing: None,
                root: palisade_runtime::smt::EMPTY,
            }),
            version: AtomicU64::new(0),
            height: AtomicU64::new(NO_HEIGHT),
            earliest: earliest.clone(),
            record_stale: std::sync::atomic::AtomicBool::new(false),
            pins: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(()),
            _lock: lock,
        };
        earliest.store(ledger.stored_earliest()?.get(), Ordering::Release);
        if let Some(h) = ledger.stored_latest_height()? {
            ledger.height.store(h.get(), Ordering::Release);
            ledger.lock_latest().root = ledger.root_of_latest(h)?;
        }
        ledger.check_schema()?;
        // A ledger written before blooms were kept has them only from now
        // on. (The account index is kept or not as the node's settings say:
        // `keep_account_index`.)
        if ledger.meta(META_BLOOMS_FROM)?.is_none() {
            let from = ledger
                .stored_latest_height()?
                .map_or(Ok(Height(1)), |h| h.next())
                .map_err(|e| corrupt("height", e))?;
            ledger
                .db
                .put_cf(ledger.cf(CF_META)?, META_BLOOMS_FROM, height_key(from))?;
        }
        ledger.backfill_set_changes()?;
        Ok(ledger)
    }

    /// Records the schema version in a new database; refuses one of
    /// another version.
    fn check_schema(&self) -> Result<(), LedgerError> {
        match self.meta(META_SCHEMA)? {
            None => {
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                let mut b = WriteBatch::default();
                b.put_cf(self.cf(CF_META)?, META_SCHEMA, SCHEMA_VERSION.to_le_bytes());
                self.db.write_opt(b, &wo)?;
                Ok(())
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| corrupt("schema version", "not 4 bytes"))?;
                if found != SCHEMA_VERSION {
                    return Err(LedgerError::Schema {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
        }
    }

    /// Each column family's live SST bytes and memtable bytes, as RocksDB
    /// reports them (0 where it does not).
    pub fn disk_usage(&self) -> Vec<(String, u64, u64)> {
        ALL_CFS
            .iter()
            .filter_map(|name| {
                let cf = self.db.cf_handle(name)?;
                let prop = |p: &str| {
                    self.db
                        .property_int_value_cf(cf, p)
                        .ok()
                        .flatten()
                        .unwrap_or(0)
                };
                Some((
                    name.to_string(),
                    prop("rocksdb.live-sst-files-size"),
                    prop("rocksdb.cur-size-all-mem-tables"),
                ))
            })
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes every memtable out to table files (on a clean stop: the next
    /// start has no log to replay, and what is on disk is what is kept).
    pub fn flush(&self) -> Result<(), LedgerError> {
        for name in ALL_CFS {
            self.db.flush_cf(self.cf(name)?)?;
        }
        Ok(())
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, LedgerError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| corrupt("column family missing", name))
    }

    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    /// Writes the genesis state (height 0) into an empty ledger, or checks
    /// that an initialized one belongs to this chain and genesis.
    pub fn init_genesis(
        &self,
        chain_id: &ChainId,
        genesis_hash: Hash,
        state: &StateChanges,
        validators: &ValidatorSet,
    ) -> Result<(), LedgerError> {
        if self.meta(META_GENESIS)?.is_some() {
            return self.check_genesis(chain_id, genesis_hash);
        }
        let mut b = WriteBatch::default();
        let meta = self.cf(CF_META)?;
        b.put_cf(meta, META_CHAIN_ID, chain_id.as_str().as_bytes());
        b.put_cf(meta, META_GENESIS, genesis_hash.0);
        b.put_cf(meta, META_LATEST, height_key(Height::GENESIS));
        b.put_cf(meta, root_key(Height::GENESIS), state.root.0);
        b.put_cf(meta, vals_key(Height(1)), encode(validators));
        self.put_state(&mut b, state, Height::GENESIS)?;
        self.write_state(b, state, Height::GENESIS, Durability::Synced)
    }

    /// Fails unless this ledger was initialized for `chain_id` from the
    /// genesis with hash `genesis_hash`.
    pub fn check_genesis(&self, chain_id: &ChainId, genesis_hash: Hash) -> Result<(), LedgerError> {
        let found_chain = self
            .meta(META_CHAIN_ID)?
            .ok_or(LedgerError::NotInitialized)?;
        let found_chain = String::from_utf8_lossy(&found_chain).to_string();
        if found_chain != chain_id.as_str() {
            return Err(LedgerError::ChainMismatch {
                found: found_chain,
                expected: chain_id.to_string(),
            });
        }
        let found = self
            .meta(META_GENESIS)?
            .and_then(|v| Hash::from_slice(&v))
            .ok_or(LedgerError::NotInitialized)?;
        if found != genesis_hash {
            return Err(LedgerError::GenesisMismatch {
                found,
                expected: genesis_hash,
            });
        }
        Ok(())
    }

    /// Height of the last committed block (0: only genesis).
    pub fn latest_height(&self) -> Result<Height, LedgerError> {
        match self.height.load(Ordering::Acquire) {
            NO_HEIGHT => Err(LedgerError::NotInitialized),
            h => Ok(Height(h)),
        }
    }

    /// The root of the latest height as RocksDB has it (written in the
    /// same batch as that height's block).
    fn stored_latest_root(&self) -> Result<Option<Hash>, LedgerError> {
        self.stored_latest_height()?
            .map(|h| self.root_of_latest(h))
            .transpose()
    }

    /// The state root of `h`, the latest height: it must be there.
    fn root_of_latest(&self, h: Height) -> Result<Hash, LedgerError> {
        self.state_root(h)?
            .ok_or_else(|| corrupt("state root", format!("none for latest height {h}")))
    }

    fn stored_latest_height(&self) -> Result<Option<Height>, LedgerError> {
        let Some(v) = self.meta(META_LATEST)? else {
            return Ok(None);
        };
        <[u8; 8]>::try_from(v.as_slice())
            .map(|b| Some(Height(u64::from_be_bytes(b))))
            .map_err(|_| corrupt("latest height", "not 8 bytes"))
    }

    /// The commit version: even between commits, odd while one is being
    /// written, and different after every commit. Whoever reads state and
    /// sees the same even version before and after knows no commit ran
    /// in between (the mempool relies on this).
    pub fn state_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// State root after `height` (0: genesis).
    pub fn state_root(&self, height: Height) -> Result<Option<Hash>, LedgerError> {
        Ok(self.results(height)?.map(|(state, _)| state))
    }

    /// What executing block `height` gave, as the header of the block
    /// after it names them: the state root after it and the root of its
    /// receipts (0: the genesis state and no receipts).
    pub fn results(&self, height: Height) -> Result<Option<(Hash, Hash)>, LedgerError> {
        let Some(v) = self.meta(&root_key(height))? else {
            return Ok(None);
        };
        let state = v.get(..32).and_then(Hash::from_slice);
        let receipts = match v.get(32..) {
            Some([]) => Some(palisade_runtime::receipts_root(&[])),
            Some(r) => Hash::from_slice(r),
            None => None,
        };
        match (state, receipts) {
            (Some(s), Some(r)) => Ok(Some((s, r))),
            _ => Err(corrupt(
                "results",
                format!("height {height}: {} bytes", v.len()),
            )),
        }
    }

    /// Commits block `block` (the next height) with the certificate that
    /// decided it, its receipts and its state changes, in one write batch,
    /// synced to disk or not. A [`Durability::Deferred`] commit is in the
    /// operating system's hands at once (a crash of the process loses
    /// nothing) and on disk with the next synced write (RocksDB's log is
    /// one sequence, so syncing it syncs everything before); only a power
    /// loss before that can take it back, and then the ledger recovers to
    /// an earlier height, whole blocks only.
    pub fn commit_block(
        &self,
        write: BlockWrite<'_>,
        durability: Durability,
    ) -> Result<(), LedgerError> {
        let BlockWrite {
            block,
            commit,
            receipts,
            receipts_root,
            refused,
            state,
            next_validators,
            accounts,
        } = write;
        let h = self.check_next(block, commit, receipts)?;
        let block_bytes = encode(block);
        let mut b = batch_for(block, &block_bytes, state);
        self.put_block(&mut b, block, block_bytes, commit)?;
        self.put_tx_index(&mut b, block, receipts, refused)?;
        self.put_account_index(&mut b, block, receipts, accounts, refused)?;
        self.put_state(&mut b, state, h)?;
        if self.record_stale.load(Ordering::Acquire) && !state.replaced.is_empty() {
            let hashes: Vec<u8> = state.replaced.iter().flat_map(|h| h.0).collect();
            b.put_cf(self.cf(CF_STATE)?, prune::stale_key(h), hashes);
        }
        if block.header.next_validators_hash != block.header.validators_hash {
            let change = palisade_types::SetChange {
                header: block.header.clone(),
                commit: commit.clone(),
                next_validators: next_validators.clone(),
            };
            set_changes::put_if_change(self, &mut b, &change)?;
        }
        let results = Results {
            receipts,
            receipts_root,
            refused,
            state,
            next_validators,
        };
        self.put_height_meta(&mut b, block, results)?;
        self.write_state(b, state, h, durability)?;
        // The next block's tree update starts from these.
        let mut pages = self.lock_pages();
        for (hash, p) in &state.pages {
            pages.insert(*hash, p.clone(), p.weight());
        }
        Ok(())
    }

    /// Checks that `block` is the next height, that `commit` decided it and
    /// that there is one receipt per transaction; the block's height.
    fn check_next(
        &self,
        block: &Block,
        commit: &CommitCertificate,
        receipts: &[Receipt],
    ) -> Result<Height, LedgerError> {
        let h = block.height();
        let expected = self
            .latest_height()?
            .next()
            .map_err(|e| corrupt("height", e))?;
        if h != expected {
            return Err(LedgerError::NotNextHeight { expected, got: h });
        }
        let hash = block.hash();
        if commit.block_hash != hash || commit.height != h {
            return Err(LedgerError::CommitMismatch {
                commit: commit.block_hash,
                block: hash,
            });
        }
        if receipts.len() != block.tx_count() {
            return Err(corrupt(
                "receipts",
                "one receipt per transaction is required",
            ));
        }
        Ok(h)
    }

    /// The block, its header, its hash's index entry and its certificate.
    fn put_block(
        &self,
        b: &mut WriteBatch,
        block: &Block,
        block_bytes: Vec<u8>,
        commit: &CommitCertificate,
    ) -> Result<(), LedgerError> {
        let h = block.height();
        b.put_cf(
            self.cf(CF_META)?,
            [META_HEADER, &height_key(h)].concat(),
            encode(&block.header),
        );
        b.put_cf(self.cf(CF_BLOCKS)?, height_key(h), block_bytes);
        // `check_next` found the certificate naming this block's hash.
        b.put_cf(self.cf(CF_BLOCK_INDEX)?, commit.block_hash.0, height_key(h));
        b.put_cf(self.cf(CF_COMMITS)?, height_key(h), encode(commit));
        // The previous block's certificate as this block carries it (which
        // every validator checked): it may hold precommits that reached its
        // proposer after this node had decided, so it replaces ours.
        if let Some(last) = &block.last_commit {
            if last.height.next().ok() == Some(h) && last.block_hash == block.header.last_block_hash
            {
                b.put_cf(self.cf(CF_COMMITS)?, height_key(last.height), encode(last));
            }
        }
        Ok(())
    }

    /// Each committed transaction's hash to (height, index, receipt); the
    /// ones execution refused are not committed and get no entry.
    fn put_tx_index(
        &self,
        b: &mut WriteBatch,
        block: &Block,
        receipts: &[Receipt],
        refused: &[u32],
    ) -> Result<(), LedgerError> {
        let h = block.height();
        let txs_cf = self.cf(CF_TXS)?;
        // In key order: RocksDB's memtable inserts neighbouring keys much
        // faster than scattered ones (it reuses the skip-list position).
        let mut by_hash = Vec::with_capacity(block.tx_count());
        // Each receipt names its transaction's hash: no need to hash the
        // transactions again.
        for (i, r) in receipts.iter().enumerate() {
            debug_assert_eq!(
                Some(r.tx_hash),
                block
                    .txs
                    .get(i)
                    .map(|t| t.hash())
                    .or_else(|| block.eth_txs.get(i - block.txs.len()).map(|t| t.hash()))
            );
            let index = u32::try_from(i).map_err(|e| corrupt("tx index", e))?;
            if refused.binary_search(&index).is_err() {
                by_hash.push((r.tx_hash, index, r));
            }
        }
        by_hash.sort_unstable_by_key(|(hash, _, _)| *hash);
        for (tx_hash, index, r) in &by_hash {
            b.put_cf(txs_cf, tx_hash.0, encode(&(h, *index, *r)));
        }
        Ok(())
    }

    /// The account index: each account a transaction touched, to it.
    fn put_account_index(
        &self,
        b: &mut WriteBatch,
        block: &Block,
        receipts: &[Receipt],
        accounts: &[(EvmAddress, u32)],
        refused: &[u32],
    ) -> Result<(), LedgerError> {
        let h = block.height();
        let mut account_keys: Vec<_> = accounts
            .iter()
            .filter(|(_, i)| refused.binary_search(i).is_err())
            .map(|(a, i)| (account_index::key(a, (h, *i)), *i))
            .collect();
        account_keys.sort_unstable();
        account_keys.dedup();
        let account_cf = self.cf(CF_ACCOUNT_TXS)?;
        for (k, i) in &account_keys {
            let r = usize::try_from(*i)
                .ok()
                .and_then(|i| receipts.get(i))
                .ok_or_else(|| corrupt("account index", "position past the block"))?;
            let eth = *i as usize >= block.txs.len();
            b.put_cf(account_cf, k, account_index::value(&r.tx_hash, eth));
        }
        Ok(())
    }

    /// The height's entries in the meta family: state root, next validator
    /// set, latest height, logs bloom, published files; and the blocks kept
    /// for its consensus, deleted.
    fn put_height_meta(
        &self,
        b: &mut WriteBatch,
        block: &Block,
        results: Results<'_>,
    ) -> Result<(), LedgerError> {
        let Results {
            receipts,
            receipts_root,
            refused,
            state,
            next_validators,
        } = results;
        let h = block.height();
        let meta = self.cf(CF_META)?;
        b.put_cf(meta, root_key(h), results_value(state.root, receipts_root));
        b.put_cf(
            meta,
            vals_key(h.next().map_err(|e| corrupt("height", e))?),
            encode(next_validators),
        );
        b.put_cf(meta, META_LATEST, height_key(h));
        let bloom = LogsBloom::of_receipts(receipts);
        if !bloom.is_empty() {
            b.put_cf(meta, bloom_key(h), bloom.0);
        }
        if !refused.is_empty() {
            let positions: Vec<u8> = refused.iter().flat_map(|i| i.to_be_bytes()).collect();
            b.put_cf(meta, refused_key(h), positions);
        }
        for (k, root) in file_index::published(block, receipts) {
            b.put_cf(meta, k, root.0);
        }
        // Blocks kept for this height's consensus are no longer needed.
        // Only this height can have any: every commit removes its own. They
        // are deleted key by key: a range deletion per block piles up range
        // tombstones in the memtable, and RocksDB re-fragments all of them
        // on reads, so an idle node's CPU grew with every block.
        for key in self.pending_keys(h)? {
            b.delete_cf(meta, key);
        }
        Ok(())
    }

    /// Writes a batch that commits `state` as of `height`, keeping the
    /// value cache, the version and the latest height in step with it.
    fn write_state(
        &self,
        b: WriteBatch,
        state: &StateChanges,
        height: Height,
        durability: Durability,
    ) -> Result<(), LedgerError> {
        let _writing = self.lock_writes();
        let changing = ChangedKeys::of(&state.values);
        {
            let mut latest = self.lock_latest();
            latest.version = latest.version.wrapping_add(1);
            latest.changing = Some(changing);
            self.version.store(latest.version, Ordering::Release);
        }
        let written = match durability {
            Durability::Synced => self.write_synced(b),
            Durability::Deferred => self.db.write(b).map_err(LedgerError::from),
        };
        let mut latest = self.lock_latest();
        if written.is_ok() {
            cache_values(&mut latest, &state.values);
            latest.root = state.root;
            self.height.store(height.get(), Ordering::Release);
        }
        latest.changing = None;
        latest.version = latest.version.wrapping_add(1);
        self.version.store(latest.version, Ordering::Release);
        written
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        match self.writes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn lock_latest(&self) -> MutexGuard<'_, Latest> {
        // The cache holds nothing a panic elsewhere could have left half
        // written that matters: a poisoned lock is used as it is.
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pages(&self) -> MutexGuard<'_, PageCache> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Durably keeps `block` for `height` until that height is committed
    /// (consensus `PersistBlock`).
    pub fn save_pending_block(&self, block: &Block) -> Result<(), LedgerError> {
        let key = [META_PENDING, &height_key(block.height()), &block.hash().0].concat();
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(CF_META)?, key, encode(block));
        self.write_synced(b)
    }

    /// Blocks kept with [`Ledger::save_pending_block`] for `height`.
    pub fn pending_blocks(&self, height: Height) -> Result<Vec<Block>, LedgerError> {
        self.pending(height)?
            .into_iter()
            .map(|(_, v)| decode::<Block>(&v).map_err(|e| corrupt("pending block", e)))
            .collect()
    }

    fn pending_keys(&self, height: Height) -> Result<Vec<Box<[u8]>>, LedgerError> {
        Ok(self.pending(height)?.into_iter().map(|(k, _)| k).collect())
    }

    /// (key, encoded block) of every block kept for `height`.
    fn pending(&self, height: Height) -> Result<Vec<KeyValue>, LedgerError> {
        let prefix = [META_PENDING, &height_key(height)].concat();
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(CF_META)?, &prefix) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// Writes `state`'s pages (as written at height `born`) and blobs.
    fn put_state(
        &self,
        b: &mut WriteBatch,
        state: &StateChanges,
        born: Height,
    ) -> Result<(), LedgerError> {
        let cf = self.cf(CF_STATE)?;
        // The values themselves are in the pages' leaves (or blobs).
        for (h, p) in &state.pages {
            b.put_cf(cf, prefixed(STATE_PAGE, &h.0), prune::page_record(born, p));
        }
        for (h, blob) in &state.blobs {
            b.put_cf(cf, prefixed(STATE_BLOB, &h.0), blob);
        }
        Ok(())
    }

    fn write_synced(&self, b: WriteBatch) -> Result<(), LedgerError> {
        let mut wo = WriteOptions::default();
        // Durable before we report the block committed: a crash right after
        // must not lose it.
        wo.set_sync(true);
        self.db.write_opt(b, &wo)?;
        Ok(())
    }

    fn get_decoded<T: Wire>(&self, cf: &str, key: &[u8]) -> Result<Option<T>, LedgerError> {
        match self.db.get_cf(self.cf(cf)?, key)? {
            None => Ok(None),
            Some(bytes) => decode::<T>(&bytes).map(Some).map_err(|e| corrupt(cf, e)),
        }
    }

    /// The positions in block `h` of the transactions execution refused
    /// (ascending; none for a block without, or one not kept).
    pub fn refused(&self, h: Height) -> Result<Vec<u32>, LedgerError> {
        let Some(v) = self.meta(&refused_key(h))? else {
            return Ok(Vec::new());
        };
        if v.len() % 4 != 0 {
            return Err(corrupt("refused", format!("height {h}: {} bytes", v.len())));
        }
        Ok(v.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The validator set that decides height `h` (known up to latest + 1).
    pub fn validators(&self, h: Height) -> Result<Option<ValidatorSet>, LedgerError> {
        self.get_decoded(CF_META, &vals_key(h))
    }

    pub fn block(&self, h: Height) -> Result<Option<Block>, LedgerError> {
        self.get_decoded(CF_BLOCKS, &height_key(h))
    }

    /// The header of block `h`, without decoding its transactions: a busy
    /// block is hundreds of kilobytes, and each proposal and validation
    /// needs only the previous block's hash and time.
    pub fn block_header(&self, h: Height) -> Result<Option<BlockHeader>, LedgerError> {
        let meta = self.cf(CF_META)?;
        if let Some(bytes) = self
            .db
            .get_pinned_cf(meta, [META_HEADER, &height_key(h)].concat())?
        {
            return decode::<BlockHeader>(&bytes)
                .map(Some)
                .map_err(|e| corrupt("block header", e));
        }
        // A block committed before headers were kept apart.
        match self.db.get_pinned_cf(self.cf(CF_BLOCKS)?, height_key(h))? {
            None => Ok(None),
            Some(bytes) => {
                // A block's encoding starts with its header; the rest of the
                // record is the block's own and read by `block`.
                let mut rest: &[u8] = &bytes;
                <BlockHeader as borsh::BorshDeserialize>::deserialize(&mut rest)
                    .map(Some)
                    .map_err(|e| corrupt(CF_BLOCKS, e))
            }
        }
    }

    /// The first height whose block this ledger has: 1, or the height
    /// after the snapshot it started from (or after what it pruned).
    pub fn earliest_block(&self) -> Result<Height, LedgerError> {
        Ok(Height(self.earliest.load(Ordering::Acquire)))
    }

    fn stored_earliest(&self) -> Result<Height, LedgerError> {
        match self.meta(META_EARLIEST)? {
            None => Ok(Height(1)),
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(|b| Height(u64::from_be_bytes(b)))
                .map_err(|_| corrupt("earliest block", "not 8 bytes")),
        }
    }

    pub fn commit(&self, h: Height) -> Result<Option<CommitCertificate>, LedgerError> {
        self.get_decoded(CF_COMMITS, &height_key(h))
    }

    /// The logs bloom of each block from `from` to `to` that may have
    /// logs, in height order: the kept bloom of blocks with logs, and a
    /// full one for blocks older than the ledger's blooms.
    pub fn log_blooms(
        &self,
        from: Height,
        to: Height,
    ) -> Result<Vec<(Height, LogsBloom)>, LedgerError> {
        let mut out = Vec::new();
        // The genesis state has no block and no logs.
        let from = from.max(Height(1));
        if from > to {
            return Ok(out);
        }
        let kept_from = match self.meta(META_BLOOMS_FROM)? {
            Some(v) => Height(
                <[u8; 8]>::try_from(v.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("blooms_from", "not 8 bytes"))?,
            ),
            None => Height(1),
        };
        for h in from.get()..kept_from.get().min(to.get().saturating_add(1)) {
            out.push((Height(h), LogsBloom::FULL));
        }
        let start = bloom_key(from.max(kept_from));
        let end = bloom_key(to);
        let mode = rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(CF_META)?, mode) {
            let (key, value) = item?;
            if key.as_ref() > end.as_slice() || !key.starts_with(META_BLOOM) {
                break;
            }
            let h = <[u8; 8]>::try_from(&key[META_BLOOM.len()..])
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("bloom key", "not a height"))?;
            let bloom = <[u8; BLOOM_BYTES]>::try_from(value.as_ref())
                .map_err(|_| corrupt("bloom", "not 256 bytes"))?;
            out.push((Height(h), LogsBloom(bloom)));
        }
        Ok(out)
    }

    pub fn height_of(&self, block_hash: &Hash) -> Result<Option<Height>, LedgerError> {
        match self.db.get_cf(self.cf(CF_BLOCK_INDEX)?, block_hash.0)? {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(|b| Some(Height(u64::from_be_bytes(b))))
                .map_err(|_| corrupt("block index", "not 8 bytes")),
        }
    }

    /// Where a committed transaction is: (height, index in block).
    pub fn tx_location(&self, tx_hash: &Hash) -> Result<Option<TxPosition>, LedgerError> {
        match self.db.get_pinned_cf(self.cf(CF_TXS)?, tx_hash.0)? {
            None => Ok(None),
            Some(v) => split_tx_record(&v).map(|(location, _)| Some(location)),
        }
    }

    pub fn tx(&self, tx_hash: &Hash) -> Result<Option<SignedTransaction>, LedgerError> {
        let Some((h, i)) = self.tx_location(tx_hash)? else {
            return Ok(None);
        };
        let block = self
            .block(h)?
            .ok_or_else(|| corrupt("txs", format!("block {h} missing")))?;
        Ok(block.txs.get(i as usize).cloned())
    }

    /// A committed Ethereum transaction's bytes and where it is.
    pub fn eth_tx(
        &self,
        tx_hash: &Hash,
    ) -> Result<Option<(EthTransaction, TxPosition)>, LedgerError> {
        let Some((h, i)) = self.tx_location(tx_hash)? else {
            return Ok(None);
        };
        let block = self
            .block(h)?
            .ok_or_else(|| corrupt("txs", format!("block {h} missing")))?;
        Ok((i as usize)
            .checked_sub(block.txs.len())
            .and_then(|k| block.eth_txs.get(k))
            .map(|t| (t.clone(), (h, i))))
    }

    /// A committed transaction's receipt and where the transaction is
    /// (height, index in block): one read.
    pub fn receipt(&self, tx_hash: &Hash) -> Result<Option<(Receipt, TxPosition)>, LedgerError> {
        match self.db.get_pinned_cf(self.cf(CF_TXS)?, tx_hash.0)? {
            None => Ok(None),
            Some(v) => {
                let (location, receipt) = split_tx_record(&v)?;
                decode_with_limit::<Receipt>(receipt, "receipt", MAX_RECEIPT_BYTES)
                    .map(|r| Some((r, location)))
                    .map_err(|e| corrupt("txs", e))
            }
        }
    }
}

/// A `txs` record: the transaction's location, then its receipt's bytes.
fn split_tx_record(record: &[u8]) -> Result<(TxPosition, &[u8]), LedgerError> {
    if record.len() < TX_LOCATION_BYTES {
        return Err(corrupt("txs", "record shorter than a location"));
    }
    let (location, receipt) = record.split_at(TX_LOCATION_BYTES);
    let location = borsh::from_slice(location).map_err(|e| corrupt("txs", e))?;
    Ok((location, receipt))
}

fn cache_values(latest: &mut Latest, values: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in values {
        match v {
            // Not cached; nor may an older value stay.
            Some(v) if v.len() > MAX_CACHED_VALUE => latest.values.remove(k.as_slice()),
            _ => cache_value(latest, k, v.as_deref()),
        }
    }
}

/// The keys a commit changes, as fingerprints: a key whose fingerprint is
/// not among them is certainly not changed; one whose is may be (a
/// fingerprint shared by chance only costs a walk).
#[derive(Debug)]
struct ChangedKeys(Vec<u64>);

impl ChangedKeys {
    fn of(values: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> ChangedKeys {
        let mut prints: Vec<u64> = values.keys().map(|k| fingerprint(k)).collect();
        prints.sort_unstable();
        ChangedKeys(prints)
    }

    fn may_change(&self, key: &[u8]) -> bool {
        self.0.binary_search(&fingerprint(key)).is_ok()
    }
}

fn fingerprint(key: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

/// Caches `key`'s latest value (`None`: absent), weighed by its bytes
/// plus the table's per-entry overhead.
fn cache_value(latest: &mut Latest, key: &[u8], value: Option<&[u8]>) {
    let weight = key.len() + value.map_or(0, <[u8]>::len) + 64;
    latest
        .values
        .insert(SmallBytes::from(key), value.map(SmallBytes::from), weight);
}

fn vals_key(h: Height) -> Vec<u8> {
    [META_VALS, &height_key(h)].concat()
}

fn bloom_key(h: Height) -> Vec<u8> {
    [META_BLOOM, &height_key(h)].concat()
}

fn refused_key(h: Height) -> Vec<u8> {
    [META_REFUSED, &height_key(h)].concat()
}

/// A height's `root/` entry: its state root, then its receipts root.
pub(crate) fn results_value(state_root: Hash, receipts_root: Hash) -> [u8; 64] {
    let mut v = [0u8; 64];
    v[..32].copy_from_slice(&state_root.0);
    v[32..].copy_from_slice(&receipts_root.0);
    v
}

/// What executing a block gave, for its `meta` entries.
struct Results<'a> {
    receipts: &'a [Receipt],
    receipts_root: Hash,
    refused: &'a [u32],
    state: &'a StateChanges,
    next_validators: &'a ValidatorSet,
}

fn root_key(h: Height) -> Vec<u8> {
    [META_ROOT, &height_key(h)].concat()
}

fn store_err(e: LedgerError) -> StoreError {
    match e {
        LedgerError::Db(e) => StoreError::Backend(e.to_string()),
        other => StoreError::Corrupt(other.to_string()),
    }
}

impl StateStore for Ledger {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (version, root) = {
            let mut latest = self.lock_latest();
            // While a commit is being written (odd version) the cache may
            // still hold values from before a block RocksDB already shows
            // (its receipts, its index): a key the block changes is walked
            // from the root RocksDB names then, so whoever can see a block
            // reads its state or newer. Any other key has one value before
            // and after the block, so the cache answers for it: mempool
            // admission goes on during commits, and a walk costs some
            // twenty times a cache hit.
            let answers = latest.version.is_multiple_of(2)
                || latest.changing.as_ref().is_some_and(|c| !c.may_change(key));
            if answers {
                if let Some(v) = latest.values.get(key) {
                    return Ok(v.map(|v| v.as_slice().to_vec()));
                }
            }
            (latest.version, latest.root)
        };
        let root = if version.is_multiple_of(2) {
            root
        } else {
            self.stored_latest_root()
                .map_err(store_err)?
                .ok_or_else(|| StoreError::Corrupt("no latest state root".into()))?
        };
        let value = palisade_runtime::get_at(self, root, key)?;
        if value.as_ref().is_none_or(|v| v.len() <= MAX_CACHED_VALUE) {
            let mut latest = self.lock_latest();
            // Only if no commit started since: otherwise this may be the
            // value from before it, and the commit's own is the one to keep.
            if latest.version == version && version.is_multiple_of(2) {
                cache_value(&mut latest, key, value.as_deref());
            }
        }
        Ok(value)
    }

    fn page(&self, hash: &Hash) -> Result<Option<Arc<Page>>, StoreError> {
        if let Some(p) = self.lock_pages().get(hash) {
            return Ok(Some(p));
        }
        let cf = self.cf(CF_STATE).map_err(store_err)?;
        match self
            .db
            .get_pinned_cf(cf, prefixed(STATE_PAGE, &hash.0))
            .map_err(|e| StoreError::Backend(e.to_string()))?
        {
            None => Ok(None),
            Some(v) => {
                let (_, encoded) = prune::split_page_record(&v).map_err(store_err)?;
                // Decoding recomputes the page's hashes: a damaged record
                // is reported, never used.
                let p = Arc::new(Page::decode(encoded, hash)?);
                self.lock_pages().insert(*hash, p.clone(), p.weight());
                Ok(Some(p))
            }
        }
    }

    fn version(&self) -> u64 {
        self.state_version()
    }

    fn value_by_hash(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf(CF_STATE).map_err(store_err)?;
        self.db
            .get_cf(cf, prefixed(STATE_BLOB, &hash.0))
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

/// Creates `data_dir` if needed and takes its lock: one process at a time.
fn lock_dir(data_dir: &Path) -> Result<File, LedgerError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LedgerError::Io { path, source }
    };
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let lock_path = data_dir.join("LOCK");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Locked(data_dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&lock_path)(e)),
    }
}

/// Opens (creating if needed) the database at `db_path` with every column
/// family. Those a database of another schema has are opened too, so that
/// such a database gets the schema error rather than RocksDB's refusal to
/// open.
fn open_db(db_path: &Path, earliest: &Arc<AtomicU64>) -> Result<DB, LedgerError> {
    let mut opts = db_options()?;
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let mut names: Vec<String> = ALL_CFS.iter().map(|n| n.to_string()).collect();
    for name in DB::list_cf(&opts, db_path).unwrap_or_default() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let cfs = names
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name, earliest)));
    Ok(DB::open_cf_descriptors(&opts, db_path, cfs)?)
}

/// A write batch sized up front for `block`: a busy block's batch is
/// megabytes, and growing it by doubling copied all of it several times.
fn batch_for(block: &Block, block_bytes: &[u8], state: &StateChanges) -> WriteBatch {
    let entries = block.tx_count() + state.blobs.len();
    WriteBatch::with_capacity_bytes(
        block_bytes.len()
            + 160 * entries
            + 64 * state.pages.len()
            + state.pages.values().map(|p| p.weight()).sum::<usize>()
            + state.blobs.values().map(Vec::len).sum::<usize>()
            + 4096,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::{PublicKey, Validator};

    /// A ledger at genesis holding `a` = 1 and `b` = 2.
    fn ledger_with_two_keys() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(dir.path()).expect("opens");
        let writes = BTreeMap::from([
            (b"a".to_vec(), Some(vec![1])),
            (b"b".to_vec(), Some(vec![2])),
        ]);
        let state = palisade_runtime::commit_writes(
            &palisade_runtime::MemStore::default(),
            palisade_runtime::smt::EMPTY,
            writes,
        )
        .expect("tree");
        let set = ValidatorSet::new(vec![Validator {
            public_key: PublicKey([1; 32]),
            power: 1,
        }])
        .expect("set");
        let chain = ChainId::new("cache-test").expect("chain id");
        ledger
            .init_genesis(&chain, Hash([7; 32]), &state, &set)
            .expect("genesis");
        (dir, ledger)
    }

    /// While a commit that changes `a` is being written, a read of `b`
    /// (which the commit leaves alone) is answered by the cache, and a read
    /// of `a` walks the tree RocksDB shows. Planted cache entries tell the
    /// two apart: a walk returns the stored value, the cache the plant.
    #[test]
    fn during_a_commit_the_cache_answers_only_for_keys_it_leaves_alone() {
        let (_dir, ledger) = ledger_with_two_keys();
        {
            let mut latest = ledger.lock_latest();
            cache_value(&mut latest, b"a", Some(&[10]));
            cache_value(&mut latest, b"b", Some(&[20]));
            latest.version = latest.version.wrapping_add(1);
            latest.changing = Some(ChangedKeys::of(&BTreeMap::from([(
                b"a".to_vec(),
                Some(vec![3]),
            )])));
        }
        assert_eq!(ledger.get(b"a").expect("reads"), Some(vec![1]));
        assert_eq!(ledger.get(b"b").expect("reads"), Some(vec![20]));
        // A commit that may change anything (a snapshot import): no key is
        // answered from the cache.
        ledger.lock_latest().changing = None;
        assert_eq!(ledger.get(b"b").expect("reads"), Some(vec![2]));
        // No commit: the cache answers.
        {
            let mut latest = ledger.lock_latest();
            latest.version = latest.version.wrapping_add(1);
        }
        assert_eq!(ledger.get(b"a").expect("reads"), Some(vec![10]));
    }
}
