//! Pins: why this node keeps a file. One file per pinned root under
//! `data/blobs/pins/`, holding the reasons one per line (`published`: this
//! node's operator published it; `fetched`: fetched here on request), so
//! a pin is created or dropped with one atomic rename or removal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_files::{FileError, FileRoot};

/// Why a file is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinReason {
    /// Published through this node: kept (and served) at least until the
    /// network holds `min_replicas` complete copies.
    Published,
    /// Fetched here on a user's request.
    Fetched,
    /// Pinned by the operator.
    Operator,
}

impl PinReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PinReason::Published => "published",
            PinReason::Fetched => "fetched",
            PinReason::Operator => "operator",
        }
    }

    fn parse(s: &str) -> Option<PinReason> {
        match s.trim() {
            "published" => Some(PinReason::Published),
            "fetched" => Some(PinReason::Fetched),
            "operator" => Some(PinReason::Operator),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Pins {
    dir: PathBuf,
    /// One change at a time (each reads, changes and writes a pin file).
    lock: std::sync::Mutex<()>,
}

impl Pins {
    pub fn open(blobs: &Path) -> Result<Pins, FileError> {
        let dir = blobs.join("pins");
        std::fs::create_dir_all(&dir)?;
        Ok(Pins {
            dir,
            lock: std::sync::Mutex::new(()),
        })
    }

    fn path(&self, root: &FileRoot) -> PathBuf {
        self.dir.join(hex::encode(root.0))
    }

    /// The reasons `root` is pinned (none: not pinned).
    pub fn reasons(&self, root: &FileRoot) -> Result<BTreeSet<PinReason>, FileError> {
        match std::fs::read_to_string(self.path(root)) {
            Ok(text) => Ok(text.lines().filter_map(PinReason::parse).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write(&self, root: &FileRoot, reasons: &BTreeSet<PinReason>) -> Result<(), FileError> {
        let path = self.path(root);
        if reasons.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        let text: String = reasons
            .iter()
            .map(|r| format!("{}\n", r.as_str()))
            .collect();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub fn add(&self, root: &FileRoot, reason: PinReason) -> Result<(), FileError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut r = self.reasons(root)?;
        if r.insert(reason) {
            self.write(root, &r)?;
        }
        Ok(())
    }

    /// Drops every pin of `root`.
    pub fn clear(&self, root: &FileRoot) -> Result<(), FileError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.write(root, &BTreeSet::new())
    }
}
