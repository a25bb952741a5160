//! The node's long-running tasks, each started under the node's
//! [`Supervisor`]: servers, transaction ingress and egress, and upkeep.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use palisade_consensus::{Message, Verified};
use palisade_types::{EthTransaction, Height, SignedTransaction};
use tokio::sync::{broadcast, mpsc};

use super::{allowed_peers, NodeError, ADMISSION_NICE};
use crate::background::Background;
use crate::config::NodeConfig;
use crate::context::NodeContext;
use crate::home::Home;
use crate::metrics::gauge_value;
use crate::supervisor::Supervisor;
use palisade_network::{NetEvent, NetworkHandle, Verdict};

/// How often the node deletes files withdrawn on chain and announces
/// what it holds.
const FILE_MAINTENANCE: Duration = Duration::from_secs(2);

/// Most gossiped transactions admitted with one signature batch.
const MAX_ADMISSION_BATCH: usize = 4_096;

/// Most of our clients' transactions gossiped in one message, and how
/// long the first of them waits for others to join it.
const GOSSIP_BATCH: usize = 4_096;
const GOSSIP_BATCH_WAIT: Duration = Duration::from_millis(10);

/// A gossip message's id, with the peer it came from.
type Origin = (PeerId, libp2p::gossipsub::MessageId);

/// Serves Prometheus metrics and `GET /health` when enabled; returns the
/// address it listens on.
pub(super) async fn serve_metrics(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    cfg: &NodeConfig,
) -> Result<Option<SocketAddr>, NodeError> {
    if !cfg.metrics.enabled {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(cfg.metrics.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.metrics.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(cfg.metrics.listen);
    tracing::info!(%addr, "metrics listening");
    let c = ctx.clone();
    let health = move || c.health();
    tasks.spawn(
        "metrics",
        crate::metrics::serve(listener, ctx.metrics.clone(), Arc::new(health)),
    );
    Ok(Some(addr))
}

/// Serves JSON-RPC (HTTP and WebSocket), and feeds it the committed
/// heights; commits also mark the node's health.
pub(super) async fn serve_rpc(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    cfg: &NodeConfig,
) -> Result<palisade_rpc::RpcServer, NodeError> {
    let (heights_tx, _) = broadcast::channel::<Height>(1024);
    {
        let mut rx = ctx.committed.subscribe();
        let tx = heights_tx.clone();
        let health = ctx.health.clone();
        tasks.spawn("commit-feed", async move {
            loop {
                match rx.recv().await {
                    Ok(c) => {
                        health.block_committed();
                        let _ = tx.send(c.height);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => health.block_committed(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    let backend = crate::rpc_backend::Backend {
        ctx: ctx.clone(),
        moniker: cfg.moniker.clone(),
        max_txs: cfg.mempool.max_txs,
        max_bytes: cfg.mempool.max_bytes,
        commits: heights_tx,
    };
    let limits = palisade_rpc::RpcLimits {
        max_request_bytes: cfg.rpc.max_request_bytes,
        max_response_bytes: cfg.rpc.max_response_bytes,
        max_connections: cfg.rpc.max_connections,
        max_batch: cfg.rpc.max_batch,
        max_subscriptions_per_connection: cfg.rpc.max_subscriptions_per_connection,
    };
    let mut origins = cfg
        .allowed_origins()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    if cfg.rpc.explorer {
        origins = origins.with_own_pages();
    }
    let rpc = palisade_rpc::start(cfg.rpc.listen, limits, origins, Arc::new(backend))
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.rpc.listen,
            source,
        })?;
    tracing::info!(addr = %rpc.addr, allowed_origins = ?cfg.rpc.allowed_origins, "json-rpc listening (http and websocket)");
    if cfg.rpc.explorer {
        tracing::info!(url = %format!("http://{}{}", rpc.addr, palisade_rpc::explorer::PATH), "explorer");
    }
    Ok(rpc)
}

/// Routes network events: consensus messages to the driver (`inbound`),
/// gossiped transactions to admission, which runs apart so that
/// consensus messages never wait behind a big batch.
pub(super) fn route_network_events(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    mut events: mpsc::Receiver<NetEvent>,
    inbound: mpsc::Sender<Verified<Message>>,
) -> Result<(), NodeError> {
    let admission = Background::spawn("palisade-admit", 1, ADMISSION_NICE)
        .map_err(|e| NodeError::State(format!("cannot start the admission thread: {e}")))?;
    tasks.spawn("admission-threads", admission.stopped());
    let txs = gossip_admission(
        tasks,
        "gossip-admission",
        ctx,
        admission.clone(),
        1_024,
        |c, txs| crate::admission::admit_gossiped(&c.app, &c.mempool, &c.metrics, txs),
    );
    let eth_txs = gossip_admission(
        tasks,
        "eth-gossip-admission",
        ctx,
        admission,
        256,
        NodeContext::admit_gossiped_eth,
    );
    let files = ctx.files.clone();
    tasks.spawn("network-events", async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetEvent::Consensus(m) => {
                    if inbound.send(m).await.is_err() {
                        return;
                    }
                }
                // A batch that finds its queue full is dropped unvalidated
                // (never forwarded).
                NetEvent::Txs { from, id, txs: t } => {
                    let _ = txs.try_send(((from, id), t));
                }
                NetEvent::EthTxs { from, id, txs: t } => {
                    let _ = eth_txs.try_send(((from, id), t));
                }
                NetEvent::FileHeld { holder, root, .. } => files.on_held(holder, root),
            }
        }
    });
    Ok(())
}

/// Admits transactions gossiped by peers (`admit` answers one verdict per
/// message) on the low-priority `admission` thread and reports each
/// message's verdict to gossipsub; returns where to send them.
fn gossip_admission<T: Send + 'static>(
    tasks: &mut Supervisor,
    name: &'static str,
    ctx: &NodeContext,
    admission: Background,
    queue: usize,
    admit: fn(&NodeContext, Vec<Vec<T>>) -> Vec<Verdict>,
) -> mpsc::Sender<(Origin, Vec<T>)> {
    let (tx, mut rx) = mpsc::channel::<(Origin, Vec<T>)>(queue);
    let ctx = ctx.clone();
    tasks.spawn(name, async move {
        while let Some(first) = rx.recv().await {
            // Whatever queued up meanwhile goes into the same batch of
            // signature checks or sender recoveries: the busier the node,
            // the bigger (and cheaper per transaction) its batches.
            let mut n = first.1.len();
            let mut batches = vec![first];
            while n < MAX_ADMISSION_BATCH {
                match rx.try_recv() {
                    Ok(b) => {
                        n += b.1.len();
                        batches.push(b);
                    }
                    Err(_) => break,
                }
            }
            let (origins, txs): (Vec<Origin>, Vec<Vec<T>>) = batches.into_iter().unzip();
            let c = ctx.clone();
            let verdicts = admission
                .run(move || admit(&c, txs))
                .await
                .unwrap_or_else(|| vec![Verdict::Unchecked; origins.len()]);
            for ((from, id), verdict) in origins.into_iter().zip(verdicts) {
                let _ = ctx.net.report_txs(id, from, verdict).await;
            }
        }
    });
    tx
}

/// Sends out what this node originates: its consensus messages, and its
/// clients' transactions gossiped in batches.
pub(super) fn send_out(
    tasks: &mut Supervisor,
    net: &NetworkHandle,
    mut outbound: mpsc::Receiver<Message>,
    txs: mpsc::Receiver<Arc<SignedTransaction>>,
    eth_txs: mpsc::Receiver<EthTransaction>,
) {
    {
        let net = net.clone();
        tasks.spawn("consensus-out", async move {
            while let Some(m) = outbound.recv().await {
                if net.broadcast(m).await.is_err() {
                    return;
                }
            }
        });
    }
    let n = net.clone();
    tasks.spawn(
        "tx-gossip",
        gossip_in_batches(txs, move |b| {
            let n = n.clone();
            async move { n.publish_txs(b).await.is_ok() }
        }),
    );
    let n = net.clone();
    tasks.spawn(
        "eth-tx-gossip",
        gossip_in_batches(eth_txs, move |b| {
            let n = n.clone();
            async move { n.publish_eth_txs(b).await.is_ok() }
        }),
    );
}

/// Publishes what `rx` yields, collecting what arrives within
/// [`GOSSIP_BATCH_WAIT`] of the first into one message; ends when `rx`
/// closes or `publish` fails.
async fn gossip_in_batches<T, F, Fut>(mut rx: mpsc::Receiver<T>, publish: F)
where
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while let Some(first) = rx.recv().await {
        let mut buf = vec![first];
        let deadline = tokio::time::Instant::now() + GOSSIP_BATCH_WAIT;
        while buf.len() < GOSSIP_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(t)) => buf.push(t),
                _ => break,
            }
        }
        if !publish(buf).await {
            return;
        }
    }
}

/// Upkeep after blocks: shared files, snapshots, pruning, the peer
/// allowlist and the peer gauges.
pub(super) fn keep_up(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    cfg: &NodeConfig,
    home: &Home,
    observers: &[PeerId],
) {
    {
        let files = ctx.files.clone();
        tasks.spawn("files", async move {
            let mut announced = std::collections::HashMap::new();
            let mut every = tokio::time::interval(FILE_MAINTENANCE);
            loop {
                every.tick().await;
                files.maintain(&mut announced).await;
            }
        });
    }
    tasks.spawn(
        "snapshots",
        crate::snapshot_maker::Maker {
            ledger: ctx.app.ledger().clone(),
            chain_id: ctx.genesis.chain_id.clone(),
            genesis_hash: ctx.genesis_hash,
            dir: palisade_statesync::snapshot_dir(&home.data_dir()),
            interval: cfg.statesync.snapshot_interval,
            keep: cfg.statesync.snapshot_keep as usize,
        }
        .run(ctx.committed.subscribe()),
    );
    prune(tasks, ctx, cfg.pruning.retention());
    watch_peers(tasks, ctx, observers.to_vec());
}

/// Prunes after every block, when this node keeps less than everything.
fn prune(tasks: &mut Supervisor, ctx: &NodeContext, keep: palisade_ledger::Retention) {
    let ledger = ctx.app.ledger().clone();
    let mut rx = ctx.committed.subscribe();
    tasks.spawn("pruning", async move {
        if keep == palisade_ledger::Retention::default() {
            return std::future::pending().await;
        }
        loop {
            match rx.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
            let ledger = ledger.clone();
            match tokio::task::spawn_blocking(move || ledger.prune(keep)).await {
                Ok(Ok(p)) if p.blocks_from.is_some() || p.pages_deleted > 0 => {
                    tracing::debug!(blocks_from = ?p.blocks_from, state_from = ?p.state_from, pages = p.pages_deleted, "pruned");
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "pruning failed"),
                Err(e) => tracing::error!(error = %e, "pruning task failed"),
            }
        }
    });
}

/// After each block, the allowlist when the validators changed; every
/// second, the peer and sync gauges.
fn watch_peers(tasks: &mut Supervisor, ctx: &NodeContext, observers: Vec<PeerId>) {
    let ctx = ctx.clone();
    let mut rx = ctx.committed.subscribe();
    let mut allowed: HashSet<PeerId> =
        allowed_peers(ctx.app.ledger(), &observers).unwrap_or_default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tasks.spawn("allowlist", async move {
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        match allowed_peers(ctx.app.ledger(), &observers) {
                            Ok(now) if now != allowed => {
                                tracing::info!(peers = now.len(), "validator set changed; allowlist updated");
                                allowed = now.clone();
                                let _ = ctx.net.set_allowed(now).await;
                            }
                            Ok(_) => {}
                            Err(e) => tracing::error!(error = %e, "cannot compute the allowlist"),
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    ctx.metrics.peers.set(gauge_value(ctx.net.peer_count() as u64));
                    ctx.metrics.sync_target.set(gauge_value(ctx.sync.target.load(Ordering::Relaxed)));
                    ctx.metrics.syncing.set(i64::from(ctx.sync.syncing.load(Ordering::Relaxed)));
                }
            }
        }
    });
}
