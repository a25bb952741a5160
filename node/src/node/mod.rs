//! Wiring: opens the ledger, starts the network, block sync, the consensus
//! driver, transaction ingress and gossip, and metrics, supervises them
//! (one that stops stops the node: [`crate::supervisor`]), and stops them
//! all on shutdown.

mod ending;
mod join;
mod tasks;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use palisade_consensus::{Config as ConsensusConfig, Message, TimeoutConfig, Verified};
use palisade_genesis::Genesis;
use palisade_runtime::state::keys;
use palisade_runtime::{Runtime, StateStore, ValidatorChange, ValidatorInfo};
use palisade_types::{Height, Keypair, SignedTransaction};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};

use self::ending::Ending;
use crate::app::App;
use crate::background::Background;
use crate::config::NodeConfig;
pub use crate::context::NodeContext;
use crate::driver::{Driver, DriverConfig, SyncLink};
use crate::files::{Blobs, FileService};
use crate::health::NodeHealth;
use crate::home::Home;
use crate::mempool::Mempool;
use crate::metrics::{gauge_value, Metrics};
use crate::supervisor::{Supervisor, TaskFault};
use crate::sync::{LedgerSource, SyncConfig, SyncStatus, Syncer};
use palisade_ledger::signer_store::SignerStore;
use palisade_ledger::Ledger;
use palisade_network::{self as network, NetEvent, NetworkConfig};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("genesis: {0}")]
    Genesis(#[from] palisade_genesis::GenesisError),
    #[error("no genesis file: put the chain's genesis.json at {0} (every node of a chain has the same one; `palisade genesis validate FILE` prints the hash to compare)")]
    NoGenesis(std::path::PathBuf),
    #[error(transparent)]
    Key(#[from] crate::home::KeyFileError),
    #[error(transparent)]
    Ledger(#[from] palisade_ledger::LedgerError),
    #[error(transparent)]
    Network(#[from] network::NetError),
    #[error("consensus driver stopped: {0}")]
    Driver(#[from] crate::driver::DriverError),
    /// A part of the node stopped while it ran; the node stopped with it.
    #[error("{task} stopped: {why}; the node cannot run without it and stopped too")]
    TaskStopped { task: &'static str, why: String },
    #[error(transparent)]
    Signer(#[from] palisade_ledger::signer_store::SignerStoreError),
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

/// The home's ledger, holding the genesis state, set as `cfg` says; the
/// signer state moved beside the validator key if an older version left
/// it in the data directory.
fn open_ledger(
    home: &Home,
    cfg: &NodeConfig,
    genesis: &Genesis,
    genesis_hash: palisade_types::Hash,
) -> Result<Arc<Ledger>, NodeError> {
    let ledger = Arc::new(Ledger::open(&home.data_dir())?);
    // Under the data directory's lock, so no other node of this home runs.
    palisade_ledger::signer_store::migrate(
        &home.legacy_signer_state_file(),
        &home.signer_state_file(),
    )?;
    ledger.init_genesis(
        &genesis.chain_id,
        genesis_hash,
        &genesis.initial_state()?,
        &genesis.validator_set()?,
    )?;
    ledger.keep_account_index(cfg.ledger.account_index)?;
    ledger.record_replaced_pages(cfg.pruning.keep_state_versions > 0);
    Ok(ledger)
}

/// The home's genesis, checked.
fn read_genesis(home: &Home) -> Result<Genesis, NodeError> {
    if !home.genesis_file().exists() {
        return Err(NodeError::NoGenesis(home.genesis_file()));
    }
    let genesis = Genesis::from_file(&home.genesis_file())?;
    genesis.validate()?;
    Ok(genesis)
}

/// The node's metrics, watching the disk `ledger` takes up.
fn node_metrics(ledger: &Arc<Ledger>) -> Arc<Metrics> {
    let metrics = Arc::new(Metrics::new());
    {
        let ledger = ledger.clone();
        metrics.watch_disk(Arc::new(move || ledger.disk_usage()));
    }
    metrics
}

/// The shared files this home holds.
fn open_files(
    home: &Home,
    cfg: &NodeConfig,
    genesis: &Genesis,
    app: &Arc<App>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<FileService>, NodeError> {
    FileService::open(
        &home.blobs_dir(),
        &cfg.files,
        genesis.chain_id.clone(),
        app.clone(),
        metrics.clone(),
    )
    .map(Arc::new)
    .map_err(|e| {
        NodeError::State(format!(
            "shared files ({}): {e}",
            home.blobs_dir().display()
        ))
    })
}

/// The snapshots this home offers its peers.
fn snapshot_shelf(home: &Home) -> Arc<palisade_statesync::shelf::Shelf> {
    Arc::new(palisade_statesync::shelf::Shelf::new(
        palisade_statesync::snapshot_dir(&home.data_dir()),
        palisade_network::wire::MAX_OFFERED_SNAPSHOTS,
    ))
}

/// Starts the network, serving blocks and snapshots from `ledger` and
/// `snapshots` and file pieces from `files` (which then use it).
fn start_network(
    net_cfg: NetworkConfig,
    identity: libp2p::identity::Keypair,
    ledger: &Arc<Ledger>,
    snapshots: &Arc<palisade_statesync::shelf::Shelf>,
    files: &Arc<FileService>,
) -> Result<
    (
        network::NetworkHandle,
        mpsc::Receiver<NetEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NodeError,
> {
    let (net, net_events, net_task) = network::start(
        net_cfg,
        identity,
        Arc::new(LedgerSource {
            ledger: ledger.clone(),
            snapshots: snapshots.clone(),
        }),
        Arc::new(Blobs(files.clone())),
    )?;
    files.attach(net.clone());
    Ok((net, net_events, net_task))
}

/// The node's health as `cfg` judges it.
fn node_health(cfg: &NodeConfig) -> Arc<NodeHealth> {
    // A quiet network's blocks come an empty-block interval apart:
    // that long is no sign of trouble.
    Arc::new(NodeHealth::new(
        Duration::from_millis(cfg.rpc.health_max_block_age_ms)
            + cfg.consensus.idle_gap().unwrap_or_default(),
    ))
}

/// The threads that admit clients' transactions, one a core.
fn admission_threads() -> Result<Background, NodeError> {
    Background::spawn(
        "palisade-submit",
        std::thread::available_parallelism().map_or(1, usize::from),
        ADMISSION_NICE,
    )
    .map_err(|e| NodeError::State(format!("cannot start the admission threads: {e}")))
}

/// Each of a config list's entries parsed, or the first that does not
/// parse, named by its `field`.
fn parse_all<T, E: std::fmt::Display>(
    entries: &[String],
    field: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, NodeError> {
    entries
        .iter()
        .map(|s| parse(s).map_err(|e| NodeError::Config(format!("{field}: {s:?}: {e}"))))
        .collect()
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
    // Every pending height (the runtime's index), whatever delay each
    // change was queued with.
    let st = palisade_runtime::state::Overlay::new(ledger);
    for h in st.pending_heights().map_err(|e| state(&e))? {
        for c in st.pending(h).map_err(|e| state(&e))? {
            if let ValidatorChange::Add(v) = c {
                infos.push(v);
            }
        }
    }
    let mut out: HashSet<PeerId> = observers.iter().copied().collect();
    for v in infos {
        // The runtime refuses such keys now; a chain that recorded one
        // before must still be able to start (that validator just cannot
        // connect), not be bricked by it.
        match network::peer_id_of(&v.node_key) {
            Ok(p) => {
                out.insert(p);
            }
            Err(e) => tracing::warn!(
                validator = %v.consensus_key,
                error = %e,
                "a validator's node key is not a valid ed25519 key; it cannot connect"
            ),
        }
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
    eth_gossip_rx: mpsc::Receiver<palisade_types::EthTransaction>,
    observers: Vec<PeerId>,
    tap: Option<Arc<dyn crate::driver::OutboundTap>>,
    task_fault: Option<TaskFault>,
    bound: Option<oneshot::Sender<Bound>>,
    /// TEST ONLY hooks, kept to install again when the node reopens.
    corrupt_pieces: bool,
    corrupt_chunks: bool,
}

/// How one [`Node::run_once`] ended.
pub(super) enum Ran {
    Stopped,
    /// A catch-up staged a snapshot's ledger: open the node again on it.
    CaughtUp,
}

/// How long a reopening node waits for what the old one held (its
/// ledger's lock, its ports) to be let go.
const REOPEN_WAIT: Duration = Duration::from_secs(30);

/// The addresses a running node's servers listen on: with port 0 in the
/// configuration, the ports the system chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub rpc: SocketAddr,
    /// None when metrics are disabled.
    pub metrics: Option<SocketAddr>,
}

impl Node {
    /// Opens everything; binds the p2p port. Must run inside a tokio runtime.
    pub fn open(home: Home, cfg: NodeConfig) -> Result<Node, NodeError> {
        cfg.validate()
            .map_err(|e| NodeError::Config(e.to_string()))?;
        let genesis = read_genesis(&home)?;
        let genesis_hash = genesis.hash();
        let node_key = home.node_key()?;
        let validator_key = home.validator_key()?;

        let ledger = open_ledger(&home, &cfg, &genesis, genesis_hash)?;
        let latest = ledger.latest_height()?;
        let app = Arc::new(App::new(
            Runtime::new(genesis.chain_id.clone()),
            ledger.clone(),
            genesis_hash,
        ));

        let observers = parse_all(&cfg.p2p.observers, "p2p.observers", PeerId::from_str)?;
        let listen = parse_all(&cfg.p2p.listen, "p2p.listen", Multiaddr::from_str)?;
        let peers = parse_all(&cfg.p2p.peers, "p2p.peers", Multiaddr::from_str)?;
        let metrics = node_metrics(&ledger);
        let files = open_files(&home, &cfg, &genesis, &app, &metrics)?;
        let net_cfg = NetworkConfig {
            chain_id: genesis.chain_id.clone(),
            listen,
            peers,
            allowed: allowed_peers(&ledger, &observers)?,
            max_peers: cfg.p2p.max_peers,
            sync_timeout: Duration::from_secs(20),
            limits: cfg.p2p.rate_limits,
            metrics: metrics.clone(),
            blob_timeout: Duration::from_secs(60),
        };
        let identity = network::identity_from_seed(node_key.seed())?;
        let snapshots = snapshot_shelf(&home);
        let (net, net_events, net_task) =
            start_network(net_cfg, identity, &ledger, &snapshots, &files)?;

        metrics.height.set(gauge_value(latest.get()));
        let (committed, _) = broadcast::channel(1024);
        let (tx_gossip, tx_gossip_rx) = mpsc::channel(65_536);
        let (eth_gossip, eth_gossip_rx) = mpsc::channel(65_536);
        let ctx = NodeContext {
            genesis: Arc::new(genesis),
            genesis_hash,
            app,
            mempool: Arc::new(Mutex::new(Mempool::new(cfg.mempool_config()))),
            net,
            files,
            metrics,
            committed,
            height: Arc::new(AtomicU64::new(latest.get())),
            sync: Arc::new(SyncStatus::default()),
            validator: validator_key.as_ref().map(Keypair::public_key),
            health: node_health(&cfg),
            snapshots,
            tx_gossip,
            eth_gossip,
            client_admission: admission_threads()?,
            tx_intake: Default::default(),
            eth_intake: Default::default(),
        };
        Ok(Node {
            ctx,
            cfg,
            home,
            key: validator_key,
            net_events,
            net_task,
            tx_gossip_rx,
            eth_gossip_rx,
            observers,
            tap: None,
            task_fault: None,
            bound: None,
            corrupt_pieces: false,
            corrupt_chunks: false,
        })
    }

    /// [`Node::open`] once what a stopped node of this home held is let
    /// go: tried again until [`REOPEN_WAIT`] has passed.
    async fn reopen(home: Home, cfg: NodeConfig) -> Result<Node, NodeError> {
        let deadline = tokio::time::Instant::now() + REOPEN_WAIT;
        loop {
            match Node::open(home.clone(), cfg.clone()) {
                Ok(node) => return Ok(node),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "reopening the node: trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// TEST ONLY: make a supervised task fail (supervision tests, through
    /// the test-only `palisade-test-node` binary; see
    /// [`crate::supervisor::TaskFault`]).
    pub fn with_task_fault(mut self, fault: Option<TaskFault>) -> Node {
        if let Some(f) = &fault {
            tracing::warn!(task = %f.task, "TEST ONLY: a background task of this node will be made to fail");
        }
        self.task_fault = fault;
        self
    }

    /// TEST ONLY: serve file pieces with a byte flipped (fault tests'
    /// Byzantine holders).
    pub fn with_corrupt_pieces(mut self, corrupt: bool) -> Node {
        self.corrupt_pieces = corrupt;
        if corrupt {
            tracing::warn!("TEST ONLY: this node serves corrupted file pieces");
            self.ctx.files.corrupt_pieces();
        }
        self
    }

    /// TEST ONLY: serve snapshot chunks with a byte flipped (state-sync
    /// tests' Byzantine peers).
    pub fn with_corrupt_chunks(mut self, corrupt: bool) -> Node {
        self.corrupt_chunks = corrupt;
        if corrupt {
            tracing::warn!("TEST ONLY: this node serves corrupted snapshot chunks");
            self.ctx.snapshots.corrupt_chunks();
        }
        self
    }

    /// Installs an [`OutboundTap`](crate::driver::OutboundTap) on the
    /// consensus driver (fault tests' Byzantine validators).
    pub fn with_tap(mut self, tap: Option<Arc<dyn crate::driver::OutboundTap>>) -> Node {
        self.tap = tap;
        self
    }

    /// Has [`run`](Node::run) send the addresses its RPC and metrics
    /// servers listen on once both are bound, for whoever prints them
    /// (`palisade dev` with `--rpc-listen 127.0.0.1:0`).
    pub fn on_bound(mut self, bound: oneshot::Sender<Bound>) -> Node {
        self.bound = Some(bound);
        self
    }

    /// Runs until `shutdown` completes or a fatal error. A node that
    /// catches up by state sync reopens itself on the new ledger here.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut node = self;
        loop {
            let (home, cfg) = (node.home.clone(), node.cfg.clone());
            let (tap, fault) = (node.tap.clone(), node.task_fault.clone());
            let (pieces, chunks) = (node.corrupt_pieces, node.corrupt_chunks);
            let ledger = Arc::downgrade(node.ctx.app.ledger());
            match node.run_once(shutdown.as_mut()).await? {
                Ran::Stopped => return Ok(()),
                Ran::CaughtUp => {
                    released(&ledger).await;
                    node = Node::reopen(home, cfg)
                        .await?
                        .with_tap(tap)
                        .with_task_fault(fault)
                        .with_corrupt_pieces(pieces)
                        .with_corrupt_chunks(chunks);
                }
            }
        }
    }

    /// One life of the node on one ledger.
    async fn run_once(
        self,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Ran, NodeError> {
        let Node {
            ctx,
            cfg,
            home,
            key,
            net_events,
            net_task,
            tx_gossip_rx,
            eth_gossip_rx,
            observers,
            tap,
            task_fault,
            bound,
            corrupt_pieces: _,
            corrupt_chunks: _,
        } = self;
        let mut tasks = Supervisor::new(ctx.health.clone()).with_fault(task_fault);
        tasks.watch("network", net_task);
        tasks.spawn("submit-threads", ctx.client_admission.stopped());
        log_starting(&ctx, &cfg);

        let rpc_handle = serve(&mut tasks, &ctx, &cfg, bound).await?;
        let (inbound_tx, inbound_rx) = mpsc::channel::<Verified<Message>>(8_192);
        let (outbound_tx, outbound_rx) = mpsc::channel::<Message>(8_192);
        tasks::route_network_events(&mut tasks, &ctx, net_events, inbound_tx)?;
        tasks::send_out(
            &mut tasks,
            &ctx.net,
            outbound_rx,
            tx_gossip_rx,
            eth_gossip_rx,
        );
        tasks::keep_up(&mut tasks, &ctx, &cfg, &home, &observers);

        // State sync first, before block sync and consensus touch the
        // ledger: a node with no blocks starts from a peer's snapshot.
        if cfg.statesync.enable && ctx.app.ledger().latest_height()? == Height::GENESIS {
            let joined = join_unless_shut_down(&ctx, &cfg, &observers, shutdown.as_mut()).await;
            // Shut down or failed: the node ends here.
            if let Some(ended) = joined.transpose() {
                let _ = rpc_handle.stop();
                tasks.abort_all();
                return ended;
            }
        }
        let (pruned_past, caught_up) = join::catch_up(&mut tasks, &ctx, &cfg, &home)?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let sync = start_sync(&mut tasks, &ctx, pruned_past, stop_rx.clone());
        let driver = consensus_driver(&ctx, &cfg, &home, key, outbound_tx, tap).with_sync(sync);
        let mut driver_task = tokio::spawn(driver.run(inbound_rx, stop_rx));
        ctx.health.task_started(DRIVER);

        let caught_up = async move {
            match caught_up {
                Some(rx) => rx.await.ok(),
                None => None,
            }
        };
        let ending = tokio::select! {
            // The driver first: when it fails, tasks it fed end too, and
            // its own error is the one to report.
            biased;
            r = &mut driver_task => Ending::Driver(r),
            Some(h) = caught_up => Ending::CaughtUp(h),
            exit = tasks.next_exit() => Ending::Task(exit),
            _ = &mut shutdown => Ending::Shutdown,
        };
        let result = ending::conclude(ending, stop_tx, &mut driver_task, &mut tasks, &ctx).await;
        let _ = rpc_handle.stop();
        wind_down(&result, &mut tasks, &ctx).await;
        result
    }
}

/// Says which node is starting, on which chain, from which height.
fn log_starting(ctx: &NodeContext, cfg: &NodeConfig) {
    tracing::info!(
        moniker = %cfg.moniker,
        chain = %ctx.genesis.chain_id,
        genesis = %ctx.genesis_hash,
        height = ctx.height.load(Ordering::Relaxed),
        peer_id = %ctx.net.local_peer_id(),
        validator = ?ctx.validator.map(|k| k.to_string()),
        "node starting"
    );
}

/// Starts the metrics and RPC servers, tells `bound` where they listen,
/// and hands back what stops the RPC server.
async fn serve(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    cfg: &NodeConfig,
    bound: Option<oneshot::Sender<Bound>>,
) -> Result<jsonrpsee::server::ServerHandle, NodeError> {
    let metrics_addr = tasks::serve_metrics(tasks, ctx, cfg).await?;
    let rpc = tasks::serve_rpc(tasks, ctx, cfg).await?;
    if let Some(tx) = bound {
        // Nobody waiting any more is no reason to stop the node.
        let _ = tx.send(Bound {
            rpc: rpc.addr,
            metrics: metrics_addr,
        });
    }
    let rpc_handle = rpc.handle;
    tasks.watch("rpc", rpc.task);
    Ok(rpc_handle)
}

/// State sync, unless `shutdown` comes first: `Some(Ran::Stopped)` then.
async fn join_unless_shut_down(
    ctx: &NodeContext,
    cfg: &NodeConfig,
    observers: &[PeerId],
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<Ran>, NodeError> {
    tokio::select! {
        r = join::join(ctx, cfg, observers) => r.map(|()| None),
        _ = shutdown => {
            tracing::info!("shutting down during state sync");
            Ok(Some(Ran::Stopped))
        }
    }
}

/// Starts block sync, which stops when `stop` says so; the consensus
/// driver's end of it.
fn start_sync(
    tasks: &mut Supervisor,
    ctx: &NodeContext,
    pruned_past: Option<mpsc::Sender<Height>>,
    stop: watch::Receiver<bool>,
) -> SyncLink {
    let (synced_tx, synced_rx) = mpsc::channel(256);
    let (rejected_tx, rejected_rx) = mpsc::channel(64);
    let wake = Arc::new(Notify::new());
    let syncer = Syncer {
        cfg: SyncConfig::default(),
        net: ctx.net.clone(),
        committed: ctx.height.clone(),
        status: ctx.sync.clone(),
        wake: wake.clone(),
        out: synced_tx,
        pruned_past,
    };
    tasks.spawn("sync", syncer.run(rejected_rx, stop));
    SyncLink {
        blocks: synced_rx,
        wake,
        rejected: rejected_tx,
    }
}

/// Stops the node's tasks (letting them end when the node reopens on a
/// caught-up ledger) and flushes the ledger.
async fn wind_down(result: &Result<Ran, NodeError>, tasks: &mut Supervisor, ctx: &NodeContext) {
    if matches!(result, Ok(Ran::CaughtUp)) {
        // The ports and the ledger are opened again right away.
        tasks.stop_all(REOPEN_WAIT).await;
    } else {
        tasks.abort_all();
    }
    if let Err(e) = ctx.app.ledger().flush() {
        tracing::warn!(error = %e, "could not flush the ledger on the way out");
    }
}

/// The consensus driver of this node's chain, signing with `key`.
fn consensus_driver(
    ctx: &NodeContext,
    cfg: &NodeConfig,
    home: &Home,
    key: Option<Keypair>,
    outbound: mpsc::Sender<Message>,
    tap: Option<Arc<dyn crate::driver::OutboundTap>>,
) -> Driver {
    Driver::new(
        DriverConfig {
            consensus: ConsensusConfig {
                chain_id: ctx.genesis.chain_id.clone(),
                timeouts: timeouts(&ctx.genesis),
            },
            block_interval: Duration::from_millis(ctx.genesis.consensus.block_interval_ms),
            idle_gap: cfg.consensus.idle_gap(),
        },
        ctx.app.clone(),
        ctx.mempool.clone(),
        SignerStore::new(home.signer_state_file()),
        key,
        outbound,
        ctx.committed.clone(),
    )
    .with_metrics(ctx.metrics.clone())
    .with_height(ctx.height.clone())
    .with_tap(tap)
}

/// Waits until nothing holds the stopped node's ledger any more (work
/// running on blocking threads, a snapshot being written or a pruning
/// pass, is not cancelled: it ends by itself), so that it is closed
/// before it is opened again. Gives up after [`RELEASE_WAIT`]: opening
/// then fails and says the ledger is in use.
async fn released(ledger: &std::sync::Weak<Ledger>) {
    let started = tokio::time::Instant::now();
    let mut said = started;
    while ledger.strong_count() > 0 && started.elapsed() < RELEASE_WAIT {
        if said.elapsed() >= Duration::from_secs(10) {
            said = tokio::time::Instant::now();
            tracing::info!(
                waited_s = started.elapsed().as_secs(),
                "waiting for background work on the old ledger to end before reopening"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// At most how long a reopening node waits for its old ledger's users.
const RELEASE_WAIT: Duration = Duration::from_secs(600);

/// The consensus driver's name in health reports.
pub(super) const DRIVER: &str = "consensus-driver";

/// How far below block processing transaction admission runs, gossiped
/// or submitted (nice steps; see [`crate::background`]).
pub(super) const ADMISSION_NICE: i32 = 10;
