//! State sync from the node's side: joining from a snapshot at first
//! start, and catching up by one later when every peer pruned what this
//! node needs next.

use std::sync::atomic::Ordering;
use std::time::Duration;

use libp2p::PeerId;
use palisade_types::Height;
use tokio::sync::{mpsc, oneshot};

use super::{allowed_peers, NodeError};
use crate::config::NodeConfig;
use crate::context::NodeContext;
use crate::home::Home;
use crate::mempool::Mempool;
use crate::metrics::gauge_value;
use crate::supervisor::Supervisor;
use palisade_statesync::client::{JoinConfig, Joiner};

/// How long a catch-up that found no snapshot waits before trying again.
const CATCH_UP_RETRY: Duration = Duration::from_secs(30);

/// Restores a peer's snapshot into a node that has no blocks; a node
/// that finds none usable block-syncs from genesis instead.
pub(super) async fn join(
    ctx: &NodeContext,
    cfg: &NodeConfig,
    observers: &[PeerId],
) -> Result<(), NodeError> {
    let joiner = Joiner {
        net: ctx.net.clone(),
        ledger: ctx.app.ledger().clone(),
        chain_id: ctx.genesis.chain_id.clone(),
        genesis_hash: ctx.genesis_hash,
        trust: palisade_statesync::Trust::genesis(
            ctx.genesis.validator_set()?,
            cfg.statesync
                .trusted_block()
                .map_err(|e| NodeError::Config(e.to_string()))?,
        ),
        cfg: join_config(cfg),
    };
    match joiner.run().await {
        Ok(Some(h)) => {
            ctx.height.store(h.get(), Ordering::Relaxed);
            ctx.metrics.height.set(gauge_value(h.get()));
            // What was admitted meanwhile was checked against the genesis
            // state; clients and peers send it again.
            if let Ok(mut pool) = ctx.mempool.lock() {
                *pool = Mempool::new(cfg.mempool_config());
            }
            // The validators may have changed since genesis.
            match allowed_peers(ctx.app.ledger(), observers) {
                Ok(now) => {
                    let _ = ctx.net.set_allowed(now).await;
                }
                Err(e) => tracing::error!(error = %e, "cannot compute the allowlist"),
            }
        }
        Ok(None) => tracing::warn!(
            "state sync: no peer offered a snapshot this node can use; block-syncing from genesis"
        ),
        Err(e) => {
            tracing::error!(error = %e, "state sync failed");
            return Err(NodeError::State(format!("state sync failed: {e}")));
        }
    }
    Ok(())
}

/// Where block sync reports that every peer pruned this node's next
/// height, and what the catch-up then staged: both `None` for an archive
/// node without state sync, which keeps its history and waits.
pub(super) type CatchUpLink = (
    Option<mpsc::Sender<Height>>,
    Option<oneshot::Receiver<Height>>,
);

/// Starts the catch-up task of a node that prunes itself or syncs by
/// snapshots anyway.
pub(super) fn catch_up(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    cfg: &NodeConfig,
    home: &Home,
) -> Result<CatchUpLink, NodeError> {
    if !(cfg.statesync.enable || cfg.pruning.keep_blocks > 0) {
        return Ok((None, None));
    }
    let (tx, rx) = mpsc::channel(1);
    let (done_tx, done_rx) = oneshot::channel();
    let catch_up = palisade_statesync::catch_up::CatchUp {
        net: ctx.net.clone(),
        ledger: ctx.app.ledger().clone(),
        data_dir: home.data_dir(),
        chain_id: ctx.genesis.chain_id.clone(),
        genesis_hash: ctx.genesis_hash,
        trusted_block: cfg
            .statesync
            .trusted_block()
            .map_err(|e| NodeError::Config(e.to_string()))?,
        join: join_config(cfg),
        retry: CATCH_UP_RETRY,
    };
    tasks.spawn("catch-up", async move {
        let _ = done_tx.send(catch_up.run(rx).await);
        // Ending is the node's to do, not a task failure.
        std::future::pending::<()>().await
    });
    Ok((Some(tx), Some(done_rx)))
}

fn join_config(cfg: &NodeConfig) -> JoinConfig {
    JoinConfig {
        discovery: Duration::from_millis(cfg.statesync.discovery_ms),
        ..Default::default()
    }
}
