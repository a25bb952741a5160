//! State sync for a running node that has fallen behind what every peer
//! keeps: block sync cannot fetch the blocks it needs next, so it restores
//! a snapshot newer than its latest block into a ledger staged beside its
//! own ([`palisade_ledger::staging_dir`]). The node then stops, reopens on
//! the staged ledger (which replaces its old one, blocks and all) and goes
//! on by block sync from the snapshot's height, in the same process.
//!
//! Trust carries over from the node's own chain: a snapshot is accepted
//! when the set this node's latest block names for its next height
//! decided it (directly or through the validator-set changes since,
//! walked as a joining node walks them from genesis), or when it is the
//! operator's trusted block.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use palisade_types::{ChainId, Hash, Height};
use tokio::sync::mpsc;

use super::client::{JoinConfig, Joiner};
use super::{SnapshotError, Trust};
use palisade_ledger::{discard_staged, mark_staged, staging_dir, Ledger};
use palisade_network::NetworkHandle;

/// What a catch-up needs from the node.
#[derive(Debug, Clone)]
pub struct CatchUp {
    pub net: NetworkHandle,
    /// The node's own ledger: its latest block says what to trust.
    pub ledger: Arc<Ledger>,
    pub data_dir: PathBuf,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    /// `statesync.trust_height/trust_hash`, used if above this node's blocks.
    pub trusted_block: Option<(Height, Hash)>,
    pub join: JoinConfig,
    /// After an attempt that found nothing, how long before the next.
    pub retry: Duration,
}

impl CatchUp {
    /// Waits until block sync reports that every peer has pruned the next
    /// height this node needs, then stages a snapshot's state; returns its
    /// height once a staged ledger is finished and marked (the node
    /// reopens on it). Attempts that find no snapshot, or fail, are retried
    /// after `retry` while block sync still reports the same.
    pub async fn run(self, mut pruned_past: mpsc::Receiver<Height>) -> Height {
        loop {
            let Some(needed) = pruned_past.recv().await else {
                return std::future::pending().await;
            };
            match self.attempt().await {
                Ok(Some(h)) => {
                    tracing::info!(from = %needed, to = %h, "caught up by state sync: reopening on the snapshot's state");
                    return h;
                }
                Ok(None) => tracing::warn!(
                    %needed,
                    retry_s = self.retry.as_secs(),
                    "no peer offers a snapshot this node can trust past its latest block; trying again later"
                ),
                Err(e) => {
                    tracing::error!(%needed, error = %e, "catching up by state sync failed; trying again later")
                }
            }
            tokio::time::sleep(self.retry).await;
            // Only a fresh report counts: block sync may have found a peer
            // that has the blocks meanwhile.
            while pruned_past.try_recv().is_ok() {}
        }
    }

    /// One try: a blank staged ledger, a snapshot past this node's latest
    /// block fetched into it, and the mark that makes the node adopt it.
    async fn attempt(&self) -> Result<Option<Height>, SnapshotError> {
        let latest = self.ledger.latest_height()?;
        let from = latest.next().map_err(|e| SnapshotError::Unavailable {
            height: latest,
            why: e.to_string(),
        })?;
        let validators =
            self.ledger
                .validators(from)?
                .ok_or_else(|| SnapshotError::Unavailable {
                    height: from,
                    why: "this node does not have the validator set of its next height".into(),
                })?;
        let trust = Trust::new(
            validators,
            from,
            self.trusted_block.filter(|(h, _)| *h >= from),
        );
        let dir = staging_dir(&self.data_dir);
        discard_staged(&dir)?;
        let staged = Arc::new(Ledger::open(&dir)?);
        // The validator-set changes this node knows of go with it, so that
        // it can pass them on to nodes walking from genesis.
        staged.put_set_changes(&self.ledger.set_changes_after(
            Height::GENESIS,
            usize::MAX,
            usize::MAX,
        )?)?;
        let joiner = Joiner {
            net: self.net.clone(),
            ledger: staged.clone(),
            chain_id: self.chain_id.clone(),
            genesis_hash: self.genesis_hash,
            trust,
            cfg: self.join.clone(),
        };
        let joined = joiner.run().await;
        drop(joiner);
        // Closed before it is marked: the node's reopen may adopt it as
        // soon as the mark is there.
        drop(staged);
        match joined {
            // Block sync may have found the blocks meanwhile and gone past
            // the snapshot: then the staged ledger would take it back.
            Ok(Some(h)) if self.ledger.latest_height()? >= h => {
                tracing::info!(snapshot = %h, "block sync went past the snapshot meanwhile; it is not used");
                discard_staged(&dir)?;
                Ok(None)
            }
            Ok(Some(h)) => {
                mark_staged(&dir)?;
                Ok(Some(h))
            }
            other => {
                discard_staged(&dir)?;
                other
            }
        }
    }
}
