//! A ledger that starts from a snapshot instead of genesis: the state tree
//! goes in first, chunk by chunk (each proven against the snapshot's root
//! before it gets here), then one synced write makes the snapshot's block
//! the latest height. Until that write the ledger holds no chain, so a
//! crash part-way leaves a ledger an import can start over in (the pages
//! already written are content-addressed and simply written again).
//!
//! A node that already has blocks but has fallen behind what every peer
//! keeps imports into a staged ledger beside its own
//! ([`staging_dir`]); once that import is finished and marked
//! ([`mark_staged`]), the next [`Ledger::open`] of the node's data
//! directory swaps it in ([`adopt_staged`]).

use std::path::{Path, PathBuf};

use palisade_runtime::page::Page;
use palisade_types::{encode, BlockHeader, ChainId, CommitCertificate, Hash, Height, ValidatorSet};
use rocksdb::WriteBatch;

use super::{
    corrupt, height_key, prefixed, root_key, vals_key, Ledger, LedgerError, CF_BLOCK_INDEX,
    CF_COMMITS, CF_META, CF_STATE, META_BLOOMS_FROM, META_CHAIN_ID, META_EARLIEST, META_GENESIS,
    META_HEADER, META_LATEST, STATE_BLOB, STATE_PAGE,
};

/// The block a snapshot's state is of, with what certifies it.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotBase<'a> {
    pub chain_id: &'a ChainId,
    pub genesis_hash: Hash,
    pub header: &'a BlockHeader,
    pub commit: &'a CommitCertificate,
    pub validators: &'a ValidatorSet,
    pub next_validators: &'a ValidatorSet,
    /// The state after the block, whose root the next header names.
    pub state_root: Hash,
    /// The root of the block's receipts, as the next header names it.
    pub receipts_root: Hash,
}

impl Ledger {
    /// Whether this ledger has no block yet (nothing, or only the genesis
    /// state): only then may a snapshot go in.
    pub fn is_blank(&self) -> Result<bool, LedgerError> {
        Ok(self.meta(META_GENESIS)?.is_none()
            || self.stored_latest_height()? == Some(Height::GENESIS))
    }

    fn must_be_blank(&self) -> Result<(), LedgerError> {
        if self.is_blank()? {
            Ok(())
        } else {
            Err(LedgerError::NotBlank(self.dir.clone()))
        }
    }

    /// Writes state-tree pages and large values proven to belong to a
    /// snapshot's tree (not synced: [`Ledger::finish_import`] syncs).
    /// `height` is the snapshot's.
    pub fn put_proven_state(
        &self,
        height: Height,
        pages: &[(Hash, Page)],
        values: &[(Hash, Vec<u8>)],
    ) -> Result<(), LedgerError> {
        self.must_be_blank()?;
        let cf = self.cf(CF_STATE)?;
        let mut b = WriteBatch::default();
        for (h, page) in pages {
            b.put_cf(
                cf,
                prefixed(STATE_PAGE, &h.0),
                super::prune::page_record(height, page),
            );
        }
        for (h, value) in values {
            b.put_cf(cf, prefixed(STATE_BLOB, &h.0), value);
        }
        self.db.write(b)?;
        Ok(())
    }

    /// Makes the snapshot's block the latest height, once its whole tree
    /// is in: the chain's identity, the block's header, certificate, state
    /// root and the validator sets of it and the next height, in one synced
    /// write. Blocks before the next height are not kept
    /// ([`Ledger::earliest_block`]).
    pub fn finish_import(&self, base: SnapshotBase<'_>) -> Result<(), LedgerError> {
        // As every write that moves the latest state: readers rely on one
        // writer at a time for the cache's version protocol.
        let _writing = self.lock_writes();
        self.must_be_blank()?;
        // Over the genesis state of the same chain only.
        if self.meta(META_GENESIS)?.is_some() {
            self.check_genesis(base.chain_id, base.genesis_hash)?;
        }
        let h = base.header.height;
        let root = base.state_root;
        if root != palisade_runtime::smt::EMPTY && self.page_record(&root)?.is_none() {
            return Err(corrupt(
                "snapshot import",
                format!("the state root {root} is not in the ledger"),
            ));
        }
        let next = h.next().map_err(|e| corrupt("height", e))?;
        let meta = self.cf(CF_META)?;
        let mut b = WriteBatch::default();
        b.put_cf(meta, META_CHAIN_ID, base.chain_id.as_str().as_bytes());
        b.put_cf(meta, META_GENESIS, base.genesis_hash.0);
        b.put_cf(meta, META_LATEST, height_key(h));
        b.put_cf(
            meta,
            root_key(h),
            super::results_value(root, base.receipts_root),
        );
        b.put_cf(meta, vals_key(h), encode(base.validators));
        b.put_cf(meta, vals_key(next), encode(base.next_validators));
        b.put_cf(
            meta,
            [META_HEADER, &height_key(h)].concat(),
            encode(base.header),
        );
        b.put_cf(meta, META_BLOOMS_FROM, height_key(next));
        b.put_cf(meta, META_EARLIEST, height_key(next));
        // The snapshot's version is the first this ledger has.
        b.put_cf(meta, super::prune::META_STATE_FROM, height_key(h));
        if self.account_index_from()?.is_some() {
            b.put_cf(meta, super::META_ACCOUNTS_FROM, height_key(next));
        }
        b.put_cf(self.cf(CF_COMMITS)?, height_key(h), encode(base.commit));
        super::set_changes::put_if_change(
            self,
            &mut b,
            &palisade_types::SetChange {
                header: base.header.clone(),
                commit: base.commit.clone(),
                next_validators: base.next_validators.clone(),
            },
        )?;
        b.put_cf(
            self.cf(CF_BLOCK_INDEX)?,
            base.header.hash().0,
            height_key(h),
        );
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        {
            let mut latest = self.lock_latest();
            latest.version = latest.version.wrapping_add(1);
            self.version
                .store(latest.version, std::sync::atomic::Ordering::Release);
        }
        let written = self.db.write_opt(b, &wo);
        let mut latest = self.lock_latest();
        if written.is_ok() {
            self.earliest
                .store(next.get(), std::sync::atomic::Ordering::Release);
            latest.values.clear();
            latest.root = root;
            self.height
                .store(h.get(), std::sync::atomic::Ordering::Release);
        }
        latest.version = latest.version.wrapping_add(1);
        self.version
            .store(latest.version, std::sync::atomic::Ordering::Release);
        written.map_err(LedgerError::from)
    }

    /// A state page's stored record, read past the caches.
    pub(super) fn page_record(&self, hash: &Hash) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_STATE)?, prefixed(STATE_PAGE, &hash.0))?)
    }
}

/// Where a catch-up builds the ledger that replaces the node's own.
pub fn staging_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("catch-up")
}

/// Written, synced, once the staged ledger's import has finished: only a
/// marked staging directory replaces the node's ledger.
const STAGED_MARK: &str = "COMPLETE";
/// The database directory inside a ledger's data directory.
const DB_DIR: &str = "db";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError {
    let path = path.to_path_buf();
    move |source| LedgerError::Io { path, source }
}

fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Marks the ledger staged in `staging` as finished (its import's last
/// write is synced): the node's next open adopts it.
pub fn mark_staged(staging: &Path) -> Result<(), LedgerError> {
    let mark = staging.join(STAGED_MARK);
    std::fs::File::create(&mark)
        .and_then(|f| f.sync_all())
        .map_err(io_error(&mark))?;
    sync_dir(staging)
}

/// Removes a staging directory (an abandoned or failed catch-up).
pub fn discard_staged(staging: &Path) -> Result<(), LedgerError> {
    match std::fs::remove_dir_all(staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(staging)(e)),
        _ => Ok(()),
    }
}

/// Under `data_dir`'s lock, before its database opens: a marked staged
/// ledger replaces the database (`true`); an unmarked one is an abandoned
/// catch-up and is removed. Each step can be redone after a crash: the
/// mark goes last, with the staging directory.
pub(super) fn adopt_staged(data_dir: &Path) -> Result<bool, LedgerError> {
    let staging = staging_dir(data_dir);
    if !staging.exists() {
        return Ok(false);
    }
    if !staging.join(STAGED_MARK).exists() {
        discard_staged(&staging)?;
        return Ok(false);
    }
    let staged_db = staging.join(DB_DIR);
    let db = data_dir.join(DB_DIR);
    if staged_db.exists() {
        discard_staged(&db)?;
        std::fs::rename(&staged_db, &db).map_err(io_error(&db))?;
        sync_dir(data_dir)?;
    }
    discard_staged(&staging)?;
    Ok(true)
}
