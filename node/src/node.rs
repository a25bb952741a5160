//! Wiring: opens the ledger, starts the network, block sync, the consensus
//! driver, transaction ingress and gossip, and metrics, and stops them all
//! on shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use palisade_consensus::{Config as ConsensusConfig, Message, TimeoutConfig};
use palisade_genesis::Genesis;
use palisade_runtime::state::keys;
use palisade_runtime::{
    Runtime, Signatures, StateStore, StoreError, TxError, ValidatorChange, ValidatorInfo,
};
use palisade_types::{Hash, Height, Keypair, SignedTransaction};
use tokio::sync::{broadcast, mpsc, watch, Notify};

use crate::app::App;
use crate::background::Background;
use crate::config::NodeConfig;
use crate::driver::{Committed, Driver, DriverConfig, SyncLink};
use crate::home::Home;
use crate::ledger::Ledger;
use crate::mempool::{AddError, Mempool};
use crate::metrics::{gauge_value, Metrics};
use crate::network::{self, NetEvent, NetworkConfig, NetworkHandle};
use crate::signer_store::SignerStore;
use crate::sync::{LedgerSource, SyncConfig, SyncStatus, Syncer};

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("genesis: {0}")]
    Genesis(#[from] palisade_genesis::GenesisError),
    #[error(transparent)]
    Key(#[from] crate::home::KeyFileError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Network(#[from] network::NetError),
    #[error("consensus driver stopped: {0}")]
    Driver(#[from] crate::driver::DriverError),
    #[error(transparent)]
    Signer(#[from] crate::signer_store::SignerStoreError),
    #[error("config: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("state: {0}")]
    State(String),
}

/// What the RPC layer and tests reach into a running node through.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub genesis: Arc<Genesis>,
    pub genesis_hash: Hash,
    pub app: Arc<App>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub net: NetworkHandle,
    pub metrics: Arc<Metrics>,
    pub committed: broadcast::Sender<Committed>,
    pub height: Arc<AtomicU64>,
    pub sync: Arc<SyncStatus>,
    pub validator: Option<palisade_types::PublicKey>,
    tx_gossip: mpsc::Sender<Arc<SignedTransaction>>,
    /// Where clients' transactions are checked and admitted: below the
    /// priority of block processing (see [`crate::background`]).
    client_admission: Background,
}

impl NodeContext {
    /// Admits transactions from a client into the mempool and queues them
    /// for gossip, one result per transaction in order. Runs on the
    /// client-admission workers; the calling thread blocks until they are
    /// done, so call it from a thread that may block.
    pub fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AddError>> {
        let n = txs.len();
        let ctx = self.clone();
        self.client_admission
            .run_blocking(move || ctx.admit_submitted(txs))
            .unwrap_or_else(|| {
                let e = AddError::Store(StoreError::Backend(
                    "the transaction admission workers stopped".into(),
                ));
                vec![Err(e); n]
            })
    }

    /// [`NodeContext::submit_batch`] on the calling thread. Signatures are
    /// checked as one batch (each alone only if the batch fails, to name
    /// the bad ones) before the pool is locked, so the consensus driver
    /// never waits behind them.
    fn admit_submitted(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AddError>> {
        let store = |e: &dyn std::fmt::Display| AddError::Store(StoreError::Backend(e.to_string()));
        let ledger = self.app.ledger();
        let next = match ledger.latest_height() {
            Ok(h) => h.next().map_err(|e| store(&e)),
            Err(e) => Err(store(&e)),
        };
        let next = match next {
            Ok(n) => n,
            Err(e) => return txs.iter().map(|_| Err(e.clone())).collect(),
        };
        let signed_ok: Vec<bool> = if palisade_types::batch::verify_transactions(&txs).is_ok() {
            vec![true; txs.len()]
        } else {
            txs.iter()
                .map(|t| {
                    palisade_types::batch::verify_transactions(std::slice::from_ref(t)).is_ok()
                })
                .collect()
        };
        let mut gossip = Vec::new();
        // The state checks run before the pool is locked, and the pool is
        // locked per transaction, not for the whole batch: the consensus
        // driver (proposals, post-block updates) takes the same lock, and
        // this thread runs at a lower priority; preempted while holding
        // the lock, it would hold the driver up.
        let results: Vec<Result<Hash, AddError>> = txs
            .into_iter()
            .zip(signed_ok)
            .map(|(tx, ok)| {
                if !ok {
                    return Err(AddError::Rejected(TxError::BadSignature));
                }
                let checked = Mempool::check(
                    tx,
                    self.app.runtime(),
                    ledger.as_ref(),
                    next,
                    Signatures::Verified,
                )?;
                let mut pool = self
                    .mempool
                    .lock()
                    .map_err(|_| store(&"mempool lock poisoned"))?;
                let h = pool.insert_checked(checked, ledger.as_ref())?;
                gossip.extend(pool.get(&h));
                self.metrics.mempool_txs.set(gauge_value(pool.len() as u64));
                self.metrics
                    .mempool_bytes
                    .set(gauge_value(pool.bytes() as u64));
                Ok(h)
            })
            .collect();
        for t in gossip {
            // Gossip is best effort: a full queue means peers get it from
            // the block instead.
            let _ = self.tx_gossip.try_send(t);
        }
        results
    }
}

/// Consensus timeouts from genesis.
pub fn timeouts(g: &Genesis) -> TimeoutConfig {
    let c = &g.consensus;
    TimeoutConfig {
        propose_ms: c.propose_ms,
        propose_delta_ms: c.propose_delta_ms,
        prevote_ms: c.prevote_ms,
        prevote_delta_ms: c.prevote_delta_ms,
        precommit_ms: c.precommit_ms,
        precommit_delta_ms: c.precommit_delta_ms,
        rebroadcast_ms: c.propose_ms.clamp(200, 2_000),
        max_ms: c.max_timeout_ms,
    }
}

/// Peer ids allowed to connect: the validators' node keys (the current set
/// and those scheduled to join) and the configured observers.
pub fn allowed_peers(ledger: &Ledger, observers: &[PeerId]) -> Result<HashSet<PeerId>, NodeError> {
    let state = |e: &dyn std::fmt::Display| NodeError::State(e.to_string());
    let mut infos: Vec<ValidatorInfo> = match ledger.get(keys::VALIDATORS).map_err(|e| state(&e))? {
        Some(raw) => borsh::from_slice(&raw).map_err(|e| state(&e))?,
        None => Vec::new(),
    };
    let latest = ledger.latest_height()?.get();
    let delay = match ledger.get(keys::PARAMS).map_err(|e| state(&e))? {
        Some(raw) => {
            borsh::from_slice::<palisade_runtime::ChainParams>(&raw)
                .map_err(|e| state(&e))?
                .validator_update_delay
        }
        None => 0,
    };
    for h in latest.saturating_add(1)..=latest.saturating_add(delay).saturating_add(1) {
        if let Some(raw) = ledger
            .get(&keys::pending_validators(Height(h)))
            .map_err(|e| state(&e))?
        {
            let changes: Vec<ValidatorChange> = borsh::from_slice(&raw).map_err(|e| state(&e))?;
            for c in changes {
                if let ValidatorChange::Add(v) = c {
                    infos.push(v);
                }
            }
        }
    }
    let mut out: HashSet<PeerId> = observers.iter().copied().collect();
    for v in infos {
        out.insert(network::peer_id_of(&v.node_key)?);
    }
    Ok(out)
}

/// A node assembled from its home directory, ready to [`run`](Node::run).
#[derive(Debug)]
pub struct Node {
    pub ctx: NodeContext,
    cfg: NodeConfig,
    home: Home,
    key: Option<Keypair>,
    net_events: mpsc::Receiver<NetEvent>,
    net_task: tokio::task::JoinHandle<()>,
    tx_gossip_rx: mpsc::Receiver<Arc<SignedTransaction>>,
    observers: Vec<PeerId>,
    byzantine: Option<crate::driver::Byzantine>,
}

impl Node {
    /// Opens everything; binds the p2p port. Must run inside a tokio runtime.
    pub fn open(home: Home, cfg: NodeConfig) -> Result<Node, NodeError> {
        cfg.validate()
            .map_err(|e| NodeError::Config(e.to_string()))?;
        let genesis = Genesis::from_file(&home.genesis_file())?;
        genesis.validate()?;
        let genesis_hash = genesis.hash();
        let node_key = home.node_key()?;
        let validator_key = home.validator_key()?;

        let ledger = Arc::new(Ledger::open(&home.data_dir())?);
        // Under the data directory's lock, so no other node of this home runs.
        crate::signer_store::migrate(&home.legacy_signer_state_file(), &home.signer_state_file())?;
        ledger.init_genesis(
            &genesis.chain_id,
            genesis_hash,
            &genesis.initial_state()?,
            &genesis.validator_set()?,
        )?;
        let latest = ledger.latest_height()?;
        let app = Arc::new(App::new(
            Runtime::new(genesis.chain_id.clone()),
            ledger.clone(),
            genesis_hash,
        ));

        let observers = cfg
            .p2p
            .observers
            .iter()
            .map(|s| {
                PeerId::from_str(s)
                    .map_err(|e| NodeError::Config(format!("p2p.observers: {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let parse_addr = |field: &str, s: &String| {
            Multiaddr::from_str(s).map_err(|e| NodeError::Config(format!("{field}: {s:?}: {e}")))
        };
        let listen = cfg
            .p2p
            .listen
            .iter()
            .map(|s| parse_addr("p2p.listen", s))
            .collect::<Result<Vec<_>, _>>()?;
        let peers = cfg
            .p2p
            .peers
            .iter()
            .map(|s| parse_addr("p2p.peers", s))
            .collect::<Result<Vec<_>, _>>()?;
        let net_cfg = NetworkConfig {
            chain_id: genesis.chain_id.clone(),
            listen,
            peers,
            allowed: allowed_peers(&ledger, &observers)?,
            max_peers: cfg.p2p.max_peers,
            sync_timeout: Duration::from_secs(20),
        };
        let identity = network::identity_from_seed(node_key.seed())?;
        let (net, net_events, net_task) =
            network::start(net_cfg, identity, Arc::new(LedgerSource(ledger.clone())))?;

        let metrics = Arc::new(Metrics::new());
        metrics.height.set(gauge_value(latest.get()));
        let (committed, _) = broadcast::channel(1024);
        let (tx_gossip, tx_gossip_rx) = mpsc::channel(65_536);
        let ctx = NodeContext {
            genesis: Arc::new(genesis),
            genesis_hash,
            app,
            mempool: Arc::new(Mutex::new(Mempool::new(cfg.mempool_config()))),
            net,
            metrics,
            committed,
            height: Arc::new(AtomicU64::new(latest.get())),
            sync: Arc::new(SyncStatus::default()),
            validator: validator_key.as_ref().map(Keypair::public_key),
            tx_gossip,
            client_admission: Background::spawn(
                "palisade-submit",
                std::thread::available_parallelism().map_or(1, usize::from),
                ADMISSION_NICE,
            )
            .map_err(|e| NodeError::State(format!("cannot start the admission threads: {e}")))?,
        };
        Ok(Node {
            ctx,
            cfg,
            home,
            key: validator_key,
            net_events,
            net_task,
            tx_gossip_rx,
            observers,
            byzantine: None,
        })
    }

    /// TEST ONLY: a validator that attacks the chain (fault tests).
    pub fn with_byzantine(mut self, b: Option<crate::driver::Byzantine>) -> Node {
        if let Some(b) = b {
            tracing::warn!(mode = ?b, "BYZANTINE TEST MODE: this validator misbehaves on purpose");
        }
        self.byzantine = b;
        self
    }

    /// Runs until `shutdown` completes or a fatal error.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let Node {
            ctx,
            cfg,
            home,
            key,
            mut net_events,
            net_task,
            mut tx_gossip_rx,
            observers,
            byzantine,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();

        tracing::info!(
            moniker = %cfg.moniker,
            chain = %ctx.genesis.chain_id,
            genesis = %ctx.genesis_hash,
            height = ctx.height.load(Ordering::Relaxed),
            peer_id = %ctx.net.local_peer_id(),
            validator = ?ctx.validator.map(|k| k.to_string()),
            "node starting"
        );

        if cfg.metrics.enabled {
            let listener = tokio::net::TcpListener::bind(cfg.metrics.listen)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: cfg.metrics.listen,
                    source,
                })?;
            tracing::info!(addr = %cfg.metrics.listen, "metrics listening");
            tasks.spawn(crate::metrics::serve(listener, ctx.metrics.clone()));
        }

        // JSON-RPC.
        let (heights_tx, _) = broadcast::channel::<Height>(1024);
        {
            let mut rx = ctx.committed.subscribe();
            let tx = heights_tx.clone();
            tasks.spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(c) => {
                            let _ = tx.send(c.height);
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
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
        let (rpc_addr, rpc_handle) = palisade_rpc::start(cfg.rpc.listen, limits, Arc::new(backend))
            .await
            .map_err(|source| NodeError::Listen {
                addr: cfg.rpc.listen,
                source,
            })?;
        tracing::info!(addr = %rpc_addr, "json-rpc listening (http and websocket)");

        // Consensus messages from the network into the driver; the
        // driver's messages out to the network.
        let (inbound_tx, inbound_rx) = mpsc::channel::<Message>(8_192);
        let (outbound_tx, mut outbound_rx) = mpsc::channel::<Message>(8_192);
        let (synced_tx, synced_rx) = mpsc::channel(256);
        let wake = Arc::new(Notify::new());

        // Transactions gossiped by peers into the mempool.
        let (ingress_tx, mut ingress_rx) =
            mpsc::channel::<(PeerId, libp2p::gossipsub::MessageId, Vec<SignedTransaction>)>(1_024);
        let admission = Background::spawn("palisade-admit", 1, ADMISSION_NICE)
            .map_err(|e| NodeError::State(format!("cannot start the admission thread: {e}")))?;
        {
            let ctx = ctx.clone();
            tasks.spawn(async move {
                while let Some(first) = ingress_rx.recv().await {
                    // Whatever queued up meanwhile goes into the same
                    // signature batch: the busier the node, the bigger
                    // (and cheaper per signature) its batches.
                    let mut n = first.2.len();
                    let mut batches = vec![first];
                    while n < MAX_ADMISSION_BATCH {
                        match ingress_rx.try_recv() {
                            Ok(b) => {
                                n += b.2.len();
                                batches.push(b);
                            }
                            Err(_) => break,
                        }
                    }
                    let c = ctx.clone();
                    let ids: Vec<(PeerId, libp2p::gossipsub::MessageId)> =
                        batches.iter().map(|(p, id, _)| (*p, id.clone())).collect();
                    let valid = admission
                        .run(move || {
                            admit_gossiped(&c, batches.into_iter().map(|(_, _, t)| t).collect())
                        })
                        .await
                        .unwrap_or_else(|| vec![true; ids.len()]);
                    for ((from, id), ok) in ids.into_iter().zip(valid) {
                        let _ = ctx.net.report_txs(id, from, ok).await;
                    }
                }
            });
        }
        // Network events.
        {
            tasks.spawn(async move {
                while let Some(ev) = net_events.recv().await {
                    match ev {
                        NetEvent::Consensus(m) => {
                            if inbound_tx.send(m).await.is_err() {
                                return;
                            }
                        }
                        NetEvent::Txs { from, id, txs } => {
                            // Admission runs apart so that consensus
                            // messages never wait behind a big batch. A
                            // batch that finds the queue full is dropped
                            // unvalidated (never forwarded).
                            let _ = ingress_tx.try_send((from, id, txs));
                        }
                    }
                }
            });
        }
        {
            let net = ctx.net.clone();
            tasks.spawn(async move {
                while let Some(m) = outbound_rx.recv().await {
                    if net.broadcast(m).await.is_err() {
                        return;
                    }
                }
            });
        }
        // Transactions from our clients, gossiped in batches.
        {
            let net = ctx.net.clone();
            tasks.spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(first) = tx_gossip_rx.recv().await else {
                        return;
                    };
                    buf.push(first);
                    // Collect what arrives in the next few ms into one batch.
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
                    while buf.len() < 4_096 {
                        match tokio::time::timeout_at(deadline, tx_gossip_rx.recv()).await {
                            Ok(Some(t)) => buf.push(t),
                            _ => break,
                        }
                    }
                    if net.publish_txs(std::mem::take(&mut buf)).await.is_err() {
                        return;
                    }
                }
            });
        }
        // After each block: peers gauge, allowlist after validator changes.
        {
            let ctx = ctx.clone();
            let mut rx = ctx.committed.subscribe();
            let mut allowed = allowed_peers(ctx.app.ledger(), &observers).unwrap_or_default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tasks.spawn(async move {
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

        let syncer = Syncer {
            cfg: SyncConfig::default(),
            net: ctx.net.clone(),
            committed: ctx.height.clone(),
            status: ctx.sync.clone(),
            wake: wake.clone(),
            out: synced_tx,
        };
        tasks.spawn(syncer.run(stop_rx.clone()));

        let driver = Driver::new(
            DriverConfig {
                consensus: ConsensusConfig {
                    chain_id: ctx.genesis.chain_id.clone(),
                    timeouts: timeouts(&ctx.genesis),
                },
                block_interval: Duration::from_millis(ctx.genesis.consensus.block_interval_ms),
            },
            ctx.app.clone(),
            ctx.mempool.clone(),
            SignerStore::new(home.signer_state_file()),
            key,
            outbound_tx,
            ctx.committed.clone(),
        )
        .with_sync(SyncLink {
            blocks: synced_rx,
            wake,
        })
        .with_metrics(ctx.metrics.clone())
        .with_height(ctx.height.clone())
        .with_byzantine(byzantine);
        let mut driver_task = tokio::spawn(driver.run(inbound_rx, stop_rx));

        let result = tokio::select! {
            _ = shutdown => {
                tracing::info!("shutting down");
                let _ = stop_tx.send(true);
                match tokio::time::timeout(Duration::from_secs(10), &mut driver_task).await {
                    Ok(Ok(r)) => r.map_err(NodeError::from),
                    _ => Ok(()),
                }
            }
            r = &mut driver_task => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(NodeError::from(e)),
                Err(e) => Err(NodeError::State(format!("consensus driver panicked: {e}"))),
            },
        };
        let _ = rpc_handle.stop();
        tasks.abort_all();
        net_task.abort();
        result
    }
}

/// Most gossiped transactions admitted with one signature batch.
const MAX_ADMISSION_BATCH: usize = 4_096;

/// How far below block processing transaction admission runs, gossiped
/// or submitted (nice steps; see [`crate::background`]).
const ADMISSION_NICE: i32 = 10;

/// A gossiped transaction on its way into the pool.
struct Incoming {
    tx: SignedTransaction,
    hash: Hash,
    /// Its signature verified already (see
    /// [`crate::app::App::recently_verified`]).
    verified: bool,
}

/// The transactions of `batch` whose signatures are still to be checked.
fn unverified(batch: &[Incoming]) -> Vec<&SignedTransaction> {
    batch
        .iter()
        .filter(|t| !t.verified)
        .map(|t| &t.tx)
        .collect()
}

/// Adds gossip batches of transactions to the mempool. Returns, per batch,
/// false if it holds a transaction no honest node would have forwarded
/// (bad signature or another chain's), which gets its sender penalized.
/// Transactions this node already has are dropped unchecked, so they count
/// for nothing either way.
fn admit_gossiped(ctx: &NodeContext, batches: Vec<Vec<SignedTransaction>>) -> Vec<bool> {
    let ledger = ctx.app.ledger();
    let Ok(next) = ledger
        .latest_height()
        .map(|h| Height(h.get().saturating_add(1)))
    else {
        return vec![true; batches.len()];
    };
    let received: usize = batches.iter().map(Vec::len).sum();
    // Transactions this node already has (pooled, or committed: a
    // proposal often carries a client's transactions to the other
    // validators before the gossip does) are dropped before any signature
    // is checked; that gossip is a normal race, not the sender's fault. A
    // store error is not the sender's fault either: such a transaction goes
    // on to the full check, which reports it.
    let mut batches: Vec<Vec<Incoming>> = batches
        .into_iter()
        .map(|b| {
            b.into_iter()
                .filter(|tx| !Mempool::nonce_used(tx, ledger.as_ref()).unwrap_or(false))
                .map(|tx| Incoming {
                    hash: tx.hash(),
                    tx,
                    verified: false,
                })
                .collect()
        })
        .collect();
    {
        let Ok(pool) = ctx.mempool.lock() else {
            return vec![true; batches.len()];
        };
        for b in &mut batches {
            b.retain(|t| !pool.contains(&t.hash));
        }
    }
    let seen = ctx
        .app
        .recently_verified()
        .contains_each(batches.iter().flatten().map(|t| t.hash));
    for (t, seen) in batches.iter_mut().flatten().zip(seen) {
        t.verified = seen;
    }
    let kept: usize = batches.iter().map(Vec::len).sum();
    ctx.metrics
        .gossip_txs_known
        .inc_by(u64::try_from(received.saturating_sub(kept)).unwrap_or(0));
    let skipped = batches.iter().flatten().filter(|t| t.verified).count();
    ctx.metrics
        .gossip_sigs_skipped
        .inc_by(u64::try_from(skipped).unwrap_or(0));
    // One batch check for all that are left (a batch of hundreds costs
    // about a third of checking one by one), before the pool is locked so
    // the consensus driver never waits behind it; if it fails, each gossip
    // batch is checked on its own, and the transactions of one that fails
    // alone, so the good ones still get in and the sender is marked.
    let all: Vec<&SignedTransaction> = batches.iter().flat_map(|b| unverified(b)).collect();
    let all_ok = palisade_types::batch::verify_transaction_refs(&all).is_ok();
    drop(all);
    let batch_ok: Vec<bool> = batches
        .iter()
        .map(|b| all_ok || palisade_types::batch::verify_transaction_refs(&unverified(b)).is_ok())
        .collect();
    let n = batches.len();
    let mut verdicts = Vec::with_capacity(n);
    for (txs, batch_ok) in batches.into_iter().zip(batch_ok) {
        let mut valid = true;
        for Incoming { tx, hash, verified } in txs {
            let sigs = if batch_ok || verified {
                Signatures::Verified
            } else {
                Signatures::Verify
            };
            // Checked before the pool is locked, and locked per
            // transaction: this thread runs at a lower priority, and the
            // driver (proposals, post-block updates) must not wait behind
            // it while it is preempted holding the lock.
            let checked =
                Mempool::check_hashed(tx, hash, ctx.app.runtime(), ledger.as_ref(), next, sigs);
            let added = match checked {
                Ok(c) => {
                    let Ok(mut pool) = ctx.mempool.lock() else {
                        return vec![true; n];
                    };
                    pool.insert_checked(c, ledger.as_ref())
                }
                Err(e) => Err(e),
            };
            match added {
                Ok(_) => {}
                Err(AddError::Rejected(TxError::BadSignature | TxError::WrongChainId { .. })) => {
                    valid = false;
                }
                // Duplicates, nonces already used, a full pool: normal races.
                Err(_) => {}
            }
        }
        verdicts.push(valid);
    }
    if let Ok(pool) = ctx.mempool.lock() {
        ctx.metrics.mempool_txs.set(gauge_value(pool.len() as u64));
        ctx.metrics
            .mempool_bytes
            .set(gauge_value(pool.bytes() as u64));
    }
    verdicts
}
