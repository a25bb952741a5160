//! The consensus signer state on disk (`data/signer_state`).
//!
//! Saved before any vote or proposal leaves the node and loaded at start,
//! so a restarted validator re-sends what it signed instead of signing
//! something else. Each save writes a temporary file, fsyncs it, renames it
//! over the old one and fsyncs the directory: a crash leaves either the old
//! or the new state, never a torn one. The file carries a magic, a format
//! version and a SHA-256 checksum; a file that fails them stops the node
//! (guessing could mean double signing).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use palisade_consensus::SignerState;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"PSS1";
/// Far above any real state (a proposal and two votes, a lock and a polka).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SignerStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signer state file {path} is damaged ({reason}); refusing to sign until an operator restores it or removes it knowingly")]
    Corrupt { path: PathBuf, reason: String },
}

/// Reads and durably writes the signer state file.
#[derive(Debug, Clone)]
pub struct SignerStore {
    path: PathBuf,
}

impl SignerStore {
    pub fn new(path: impl Into<PathBuf>) -> SignerStore {
        SignerStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> SignerStoreError {
        SignerStoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> SignerStoreError {
        SignerStoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The saved state; the default (nothing signed) when no file exists yet.
    pub fn load(&self) -> Result<SignerState, SignerStoreError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SignerState::default()),
            Err(e) => return Err(self.io(e)),
        };
        if meta.len() > MAX_FILE_BYTES {
            return Err(self.corrupt(format!("{} bytes is too large", meta.len())));
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        if bytes.len() < MAGIC.len() + 32 || &bytes[..4] != MAGIC {
            return Err(self.corrupt("not a palisade signer state file"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err(self.corrupt("checksum mismatch"));
        }
        borsh::from_slice(&body[4..]).map_err(|e| self.corrupt(e.to_string()))
    }

    /// Durably replaces the saved state.
    pub fn save(&self, state: &SignerState) -> Result<(), SignerStoreError> {
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&palisade_types::encode(state));
        let sum = Sha256::digest(&body);
        body.extend_from_slice(&sum);

        let tmp = self.path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        f.write_all(&body).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        // The rename itself must be durable too.
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }
}
