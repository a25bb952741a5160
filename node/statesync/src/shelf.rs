//! The snapshots a node offers its peers: the newest files in
//! `data/snapshots/`, kept open (a file the snapshot maker deletes stays
//! readable through its open handle until the next listing drops it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_types::{encode, Height};

use super::file::SnapshotFile;

/// How often the directory is looked at again.
const RELIST_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Shelf {
    dir: PathBuf,
    offered: usize,
    open: Mutex<(Option<Instant>, Vec<Arc<SnapshotFile>>)>,
    /// Test hook: serve chunks with a byte flipped (a Byzantine peer).
    corrupt: AtomicBool,
}

impl Shelf {
    /// Offers the newest `offered` snapshots in `dir`.
    pub fn new(dir: PathBuf, offered: usize) -> Shelf {
        Shelf {
            dir,
            offered,
            open: Mutex::new((None, Vec::new())),
            corrupt: AtomicBool::new(false),
        }
    }

    /// Serve every chunk damaged (tests of the joining side only).
    pub fn corrupt_chunks(&self) {
        self.corrupt.store(true, Ordering::Relaxed);
    }

    /// The offered snapshots, newest first.
    fn files(&self) -> Vec<Arc<SnapshotFile>> {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let stale = open.0.is_none_or(|t| t.elapsed() >= RELIST_EVERY);
        if stale {
            let listed = super::list(&self.dir).unwrap_or_default();
            let mut files = Vec::new();
            for info in listed.iter().rev().take(self.offered) {
                // Reuse what is open: the file under a name never changes.
                match open.1.iter().find(|f| f.path() == info.path) {
                    Some(f) => files.push(f.clone()),
                    None => match SnapshotFile::open(&info.path) {
                        Ok(f) => files.push(Arc::new(f)),
                        Err(e) => tracing::warn!(error = %e, "cannot offer a snapshot"),
                    },
                }
            }
            *open = (Some(Instant::now()), files);
        }
        open.1.clone()
    }

    /// The manifests on offer, newest first, encoded: snapshots of
    /// `from` or later (a node that takes one must find the blocks after
    /// it here).
    pub fn manifests(&self, from: Height) -> Vec<Vec<u8>> {
        self.files()
            .iter()
            .filter(|f| f.manifest().height() >= from)
            .map(|f| encode(f.manifest()))
            .collect()
    }

    /// Chunk `index` of the snapshot of `height`, if offered.
    pub fn chunk(&self, height: Height, index: u32) -> Option<Vec<u8>> {
        let file = self
            .files()
            .into_iter()
            .find(|f| f.manifest().height() == height)?;
        let mut chunk = match file.chunk(index as usize) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot serve a snapshot chunk");
                return None;
            }
        };
        if self.corrupt.load(Ordering::Relaxed) {
            let middle = chunk.len() / 2;
            if let Some(b) = chunk.get_mut(middle) {
                *b ^= 0xff;
            }
        }
        Some(chunk)
    }
}
