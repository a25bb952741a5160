//! The node's own snapshots: one of every block whose height is a
//! multiple of `statesync.snapshot_interval`, two blocks later (the next
//! header names the snapshot's state root, and the one after carries the
//! certificate every node keeps for it), written in the background
//! (state pages never change once written, so the walk reads a fixed tree
//! while blocks keep committing), the oldest deleted past
//! `statesync.snapshot_keep`.

use std::path::PathBuf;
use std::sync::Arc;

use palisade_types::{ChainId, Hash, Height};
use tokio::sync::broadcast;

use crate::driver::Committed;
use palisade_ledger::Ledger;

/// What the snapshot maker needs.
#[derive(Debug, Clone)]
pub struct Maker {
    pub ledger: Arc<Ledger>,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub dir: PathBuf,
    pub interval: u64,
    pub keep: usize,
}

impl Maker {
    /// Runs until the node stops (`committed` closes).
    pub async fn run(self, mut committed: broadcast::Receiver<Committed>) {
        if self.interval == 0 {
            return std::future::pending().await;
        }
        // Heights that came due while a snapshot was being written: only
        // the newest is made.
        let mut due: Option<Height> = None;
        loop {
            match committed.recv().await {
                // The snapshot of a height is made two blocks later: the
                // block after it names its state root, and the one after
                // that carries the certificate every node keeps for it, so
                // every node's manifest of it is the same.
                Ok(c) => {
                    let base = c.height.get().saturating_sub(2);
                    if base > 0 && base.is_multiple_of(self.interval) {
                        due = Some(Height(base));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Blocks went by unseen: the latest multiple of the
                    // interval among them is still owed.
                    if let Ok(h) = self.ledger.latest_height() {
                        let h = h.get().saturating_sub(2);
                        let last = h - h % self.interval;
                        if last > 0 && due.is_none_or(|d| d.get() < last) {
                            due = Some(Height(last));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
            if let Some(height) = due.take() {
                let me = self.clone();
                match tokio::task::spawn_blocking(move || me.make(height)).await {
                    Ok(()) => {}
                    Err(e) => tracing::error!(error = %e, "snapshot task failed"),
                }
            }
        }
    }

    fn make(&self, height: Height) {
        let path = palisade_statesync::snapshot_path(&self.dir, height);
        if path.exists() {
            return;
        }
        let started = std::time::Instant::now();
        match palisade_statesync::create(
            &self.ledger,
            &self.chain_id,
            self.genesis_hash,
            height,
            &path,
        ) {
            Ok((info, counts)) => tracing::info!(
                height = %height,
                chunks = info.chunks,
                bytes = info.bytes,
                pages = counts.pages,
                ms = started.elapsed().as_millis() as u64,
                "snapshot written"
            ),
            Err(e) => {
                tracing::error!(%height, error = %e, "snapshot failed");
                return;
            }
        }
        match palisade_statesync::list(&self.dir) {
            Ok(all) if all.len() > self.keep => {
                for old in &all[..all.len() - self.keep] {
                    if let Err(e) = std::fs::remove_file(&old.path) {
                        tracing::warn!(path = %old.path.display(), error = %e, "cannot delete an old snapshot");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot list snapshots"),
        }
    }
}
