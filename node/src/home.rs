//! The node's home directory and its key files.
//!
//! ```text
//! HOME/config/config.toml       settings
//! HOME/config/genesis.json      the chain
//! HOME/config/node_key.json     libp2p identity (0600)
//! HOME/config/validator_key.json consensus signing key (0600)
//! HOME/config/signer_state      last signed height/round/step (fsynced)
//! HOME/data/db/                 RocksDB ledger
//! ```
//!
//! The signer state lives beside the validator key, not under `data/`:
//! `data/` holds only what the node can fetch again from its peers, so
//! wiping it and re-syncing must never let the validator sign something
//! different from what it signed before. Versions before this kept it in
//! `data/signer_state`; [`crate::signer_store::migrate`] moves it.

use std::io::Write;
use std::path::{Path, PathBuf};

use palisade_types::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a palisade key file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(PathBuf),
}

/// Paths inside a node's home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }
    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }
    pub fn genesis_file(&self) -> PathBuf {
        self.config_dir().join("genesis.json")
    }
    pub fn node_key_file(&self) -> PathBuf {
        self.config_dir().join("node_key.json")
    }
    pub fn validator_key_file(&self) -> PathBuf {
        self.config_dir().join("validator_key.json")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
    /// Beside the validator key (named after its location, so the two
    /// always share a directory), never under `data/`.
    pub fn signer_state_file(&self) -> PathBuf {
        self.validator_key_file().with_file_name("signer_state")
    }
    /// Where versions before this one kept the signer state; moved to
    /// [`Home::signer_state_file`] at start.
    pub fn legacy_signer_state_file(&self) -> PathBuf {
        self.data_dir().join("signer_state")
    }
}

/// A key file: an ed25519 secret seed and, for checking, its public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    public_key: PublicKey,
    secret_key: String,
}

/// Writes `key` to `path` readable by its owner only. Never overwrites.
pub fn write_key(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        return Err(KeyFileError::Exists(path.to_path_buf()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = KeyFile {
        kind: "ed25519".into(),
        public_key: key.public_key(),
        secret_key: format!("0x{}", hex::encode(key.seed())),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| KeyFileError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Reads a key file, checking that its public key matches its secret.
pub fn read_key(path: &Path) -> Result<Keypair, KeyFileError> {
    let invalid = |reason: String| KeyFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if file.kind != "ed25519" {
        return Err(invalid(format!(
            "key type {:?}, expected \"ed25519\"",
            file.kind
        )));
    }
    let seed = palisade_types::parse_hex(&file.secret_key)
        .map_err(|e| invalid(format!("secret_key: {e}")))?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|v: Vec<u8>| invalid(format!("secret_key is {} bytes, expected 32", v.len())))?;
    let key = Keypair::from_seed(seed);
    if key.public_key() != file.public_key {
        return Err(invalid("public_key does not match secret_key".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "key file is readable by other users; chmod 600 it");
            }
        }
    }
    Ok(key)
}
