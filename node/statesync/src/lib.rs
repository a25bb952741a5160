//! Snapshots of the state at a block, certified by that block's commit:
//! written to files an operator can copy, and read back into an empty
//! node, which then block-syncs from the snapshot's height on.
//!
//! - [`chunks`]: the state tree as a stream of pages and values cut into
//!   chunks, and the in-order check of a stream against a state root.
//! - [`manifest`]: what a snapshot says of itself (the certified header,
//!   the validator sets, the chunks' hashes) and the checks on it.
//! - [`file`]: the one-file form (`palisade snapshot export|import`).
//!
//! - [`client`]: state sync from peers into a node with no blocks, and
//!   [`catch_up`]: into one that has fallen behind what peers keep.
//!
//! Below: making a node's snapshots (`data/snapshots/<height>.snap`),
//! listing them, and importing or verifying one. (The node's task that
//! makes one every so many blocks is the node's `snapshot_maker`.)

#![forbid(unsafe_code)]

pub mod catch_up;
pub mod chunks;
pub mod client;
pub mod file;
pub mod manifest;
pub mod shelf;

use std::path::{Path, PathBuf};

use palisade_types::{BoundedVec, ChainId, Hash, Height};

use chunks::{ChunkError, Counts, Verifier};
use file::{FileError, SnapshotFile};
pub use manifest::{Manifest, ManifestError, Trust};
use palisade_ledger::{Ledger, LedgerError, SnapshotBase};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("chunk {index}: {source}")]
    Chunk { index: usize, source: ChunkError },
    #[error("the snapshot ends before its state tree does")]
    Incomplete,
    #[error("height {height}: {why}")]
    Unavailable { height: Height, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A snapshot on disk, as `snapshot list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub height: u64,
    pub block_hash: Hash,
    pub state_root: Hash,
    pub chunks: usize,
    pub bytes: u64,
    pub path: PathBuf,
}

impl SnapshotInfo {
    fn of(f: &SnapshotFile) -> SnapshotInfo {
        let m = f.manifest();
        SnapshotInfo {
            height: m.height().get(),
            block_hash: m.header.hash(),
            state_root: m.state_root(),
            chunks: m.chunks.len(),
            bytes: m.state_bytes(),
            path: f.path().to_path_buf(),
        }
    }
}

/// Where a node keeps its snapshots.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The snapshot file of `height` in `dir`.
pub fn snapshot_path(dir: &Path, height: Height) -> PathBuf {
    dir.join(format!("{:020}.snap", height.get()))
}

/// The manifest of `height` without its chunks: the block's header and
/// certificate and the validator sets of it and the next height.
pub fn manifest_at(
    ledger: &Ledger,
    chain_id: &ChainId,
    genesis_hash: Hash,
    height: Height,
) -> Result<Manifest, SnapshotError> {
    let missing = |what: &str| SnapshotError::Unavailable {
        height,
        why: format!("this node does not have its {what}"),
    };
    if height == Height::GENESIS {
        return Err(SnapshotError::Unavailable {
            height,
            why: "a snapshot is of a block; a node starts from genesis by itself".into(),
        });
    }
    let header = ledger
        .block_header(height)?
        .ok_or_else(|| missing("block"))?;
    let commit = ledger.commit(height)?.ok_or_else(|| missing("commit"))?;
    let validators = ledger
        .validators(height)?
        .ok_or_else(|| missing("validator set"))?;
    let next = height.next().map_err(|e| SnapshotError::Unavailable {
        height,
        why: e.to_string(),
    })?;
    let next_validators = ledger
        .validators(next)?
        .ok_or_else(|| missing("next validator set"))?;
    let next_header = ledger.block_header(next)?.ok_or_else(|| {
        missing("next block (a snapshot is made once the block after it is committed)")
    })?;
    let next_commit = ledger
        .commit(next)?
        .ok_or_else(|| missing("next block's commit"))?;
    let root = ledger.state_root(height)?.ok_or_else(|| missing("state"))?;
    if root != next_header.state_root {
        return Err(SnapshotError::Unavailable {
            height,
            why: format!(
                "its stored state root {root} is not the one the next header names, {}",
                next_header.state_root
            ),
        });
    }
    Ok(Manifest {
        format: manifest::FORMAT,
        chain_id: chain_id.clone(),
        genesis_hash,
        header,
        commit,
        validators,
        next_validators,
        next_header,
        next_commit,
        chunks: BoundedVec::default(),
    })
}

/// Writes the snapshot of `height` to `path` (replacing a file there).
pub fn create(
    ledger: &Ledger,
    chain_id: &ChainId,
    genesis_hash: Hash,
    height: Height,
    path: &Path,
) -> Result<(SnapshotInfo, Counts), SnapshotError> {
    // Pruning leaves this version alone while it is read.
    let Some(_pin) = ledger.pin_state(height)? else {
        return Err(SnapshotError::Unavailable {
            height,
            why: "its state is pruned on this node".into(),
        });
    };
    let base = manifest_at(ledger, chain_id, genesis_hash, height)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SnapshotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let (_, counts) = file::write(ledger, base, path)?;
    let f = SnapshotFile::open(path)?;
    Ok((SnapshotInfo::of(&f), counts))
}

/// The snapshots in `dir`, oldest first. Files that are not whole
/// snapshots (a `.partial` being written) are skipped.
pub fn list(dir: &Path) -> Result<Vec<SnapshotInfo>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "snap") {
            match SnapshotFile::open(&path) {
                Ok(f) => out.push(SnapshotInfo::of(&f)),
                Err(e) => tracing::warn!(error = %e, "not a snapshot; skipped"),
            }
        }
    }
    out.sort_by_key(|s| s.height);
    Ok(out)
}

/// What checking or importing a snapshot found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub height: u64,
    pub block_hash: Hash,
    pub state_root: Hash,
    pub chunks: usize,
    pub bytes: u64,
    pub pages: u64,
    pub values: u64,
}

/// Checks the snapshot in `path` (its manifest against `trust`, then every
/// chunk against the state root) and, with `into`, writes its state into
/// that blank ledger and makes its block the ledger's latest height.
pub fn check_file(
    path: &Path,
    chain_id: &ChainId,
    genesis_hash: Hash,
    trust: &Trust,
    into: Option<&Ledger>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Checked, SnapshotError> {
    let f = SnapshotFile::open(path)?;
    let m = f.manifest();
    m.check(chain_id, genesis_hash, trust)?;
    if let Some(ledger) = into {
        if !ledger.is_blank()? {
            return Err(LedgerError::NotBlank(ledger.dir().to_path_buf()).into());
        }
    }
    let mut verifier = Verifier::new(m.state_root());
    let mut counts = Counts::default();
    for index in 0..m.chunks.len() {
        let chunk = f.chunk(index)?;
        let proven = verifier
            .feed(&chunk)
            .map_err(|source| SnapshotError::Chunk { index, source })?;
        counts.pages += proven.pages.len() as u64;
        counts.values += proven.values.len() as u64;
        if let Some(ledger) = into {
            ledger.put_proven_state(m.height(), &proven.pages, &proven.values)?;
        }
        progress(index + 1, m.chunks.len());
    }
    if !verifier.is_complete() {
        return Err(SnapshotError::Incomplete);
    }
    if let Some(ledger) = into {
        ledger.finish_import(SnapshotBase {
            chain_id,
            genesis_hash,
            header: &m.header,
            commit: &m.commit,
            validators: &m.validators,
            next_validators: &m.next_validators,
            state_root: m.state_root(),
            receipts_root: m.receipts_root(),
        })?;
    }
    Ok(Checked {
        height: m.height().get(),
        block_hash: m.header.hash(),
        state_root: m.state_root(),
        chunks: m.chunks.len(),
        bytes: m.state_bytes(),
        pages: counts.pages,
        values: counts.values,
    })
}
