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
//! `data/signer_state`; [`palisade_ledger::signer_store::migrate`] moves it.
//!
//! Key files must be readable by their owner only: one that group or
//! others can read is refused ([`KeyPermissions::Strict`]) unless the
//! caller explicitly accepts it ([`KeyPermissions::AllowInsecure`], then
//! with a warning).

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
    #[error("key file {path} is readable by group or others (mode {mode:04o}); refusing to use it: run `chmod 600 {path}` (or pass --allow-insecure-key-permissions to accept it)")]
    Insecure { path: PathBuf, mode: u32 },
}

/// What to do with a key file that group or others may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyPermissions {
    /// Refuse it (the default everywhere a key is used to sign).
    #[default]
    Strict,
    /// Use it, with a warning (`--allow-insecure-key-permissions`).
    AllowInsecure,
}

impl KeyPermissions {
    /// `AllowInsecure` when `allow`, else `Strict`.
    pub fn allow_insecure(allow: bool) -> KeyPermissions {
        if allow {
            KeyPermissions::AllowInsecure
        } else {
            KeyPermissions::Strict
        }
    }
}

/// Paths inside a node's home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    key_permissions: KeyPermissions,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home {
            root: root.into(),
            key_permissions: KeyPermissions::Strict,
        }
    }
    /// How this home's key files are checked when read (strict unless set).
    pub fn with_key_permissions(mut self, p: KeyPermissions) -> Home {
        self.key_permissions = p;
        self
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
    /// The admin account key `palisade init` writes for a new chain: an
    /// account key, not a node key (outside `config/`; the node never
    /// reads it), to be moved off the machine.
    /// Shared files' bytes, outboards, downloads and pins.
    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir().join("blobs")
    }

    pub fn admin_key_file(&self) -> PathBuf {
        self.root.join("admin_key.json")
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
    /// The libp2p identity key, checked as this home's policy says.
    pub fn node_key(&self) -> Result<Keypair, KeyFileError> {
        read_key_with(&self.node_key_file(), self.key_permissions)
    }
    /// The consensus key; `None` on an observer (no key file).
    pub fn validator_key(&self) -> Result<Option<Keypair>, KeyFileError> {
        let path = self.validator_key_file();
        if !path.exists() {
            return Ok(None);
        }
        read_key_with(&path, self.key_permissions).map(Some)
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

/// Reads a key file, checking that its public key matches its secret and
/// refusing one that group or others can read.
pub fn read_key(path: &Path) -> Result<Keypair, KeyFileError> {
    read_key_with(path, KeyPermissions::Strict)
}

/// [`read_key`] with an explicit policy for a file others can read.
pub fn read_key_with(path: &Path, permissions: KeyPermissions) -> Result<Keypair, KeyFileError> {
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
    // Checked once the file is known to be a key, so a file that is not one
    // says so first.
    if let Some(mode) = insecure_mode(path)? {
        match permissions {
            KeyPermissions::Strict => {
                return Err(KeyFileError::Insecure {
                    path: path.to_path_buf(),
                    mode,
                })
            }
            KeyPermissions::AllowInsecure => {
                tracing::warn!(path = %path.display(), mode = format!("{mode:04o}"), "key file is readable by group or others; using it because insecure key permissions were allowed; chmod 600 it");
            }
        }
    }
    Ok(key)
}

/// The file's permission bits when group or others have any access to it
/// (`None` when only its owner has). Follows symbolic links: what matters
/// is who can read the key itself.
pub fn insecure_mode(path: &Path) -> Result<Option<u32>, KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}
