//! Wiring: opens the ledger, starts the network, block sync, the consensus
//! driver, transaction ingress and gossip, and metrics, supervises them
//! (one that stops stops the node: [`crate::supervisor`]), and stops them
//! all on shutdown.

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
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};

use crate::app::App;
use crate::background::Background;
use crate::config::NodeConfig;
use crate::driver::{Committed, Driver, DriverConfig, SyncLink};
use crate::files::{Blobs, FileService};
use crate::health::{assess, Facts, NodeHealth};
use crate::home::Home;
use crate::ledger::Ledger;
use crate::mempool::{AddError, Mempool};
use crate::metrics::{gauge_value, Metrics};
use crate::network::{self, NetEvent, NetworkConfig, NetworkHandle, Verdict};
use crate::signer_store::SignerStore;
use crate::supervisor::{Supervisor, TaskExit, TaskFault};
use crate::sync::{LedgerSource, SyncConfig, SyncStatus, Syncer};

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("genesis: {0}")]
    Genesis(#[from] palisade_genesis::GenesisError),
    #[error("no genesis file: put the chain's genesis.json at {0} (every node of a chain has the same one; `palisade genesis validate FILE` prints the hash to compare)")]
    NoGenesis(std::path::PathBuf),
    #[error(transparent)]
    Key(#[from] crate::home::KeyFileError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Network(#[from] network::NetError),
    #[error("consensus driver stopped: {0}")]
    Driver(#[from] crate::driver::DriverError),
    /// A part of the node stopped while it ran; the node stopped with it.
    #[error("{task} stopped: {why}; the node cannot run without it and stopped too")]
    TaskStopped { task: &'static str, why: String },
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
    pub files: Arc<FileService>,
    pub metrics: Arc<Metrics>,
    pub committed: broadcast::Sender<Committed>,
    pub height: Arc<AtomicU64>,
    pub sync: Arc<SyncStatus>,
    pub validator: Option<palisade_types::PublicKey>,
    /// Liveness of the node's parts, for [`NodeContext::health`].
    pub health: Arc<NodeHealth>,
    /// The snapshots this node offers peers that state-sync.
    pub snapshots: Arc<crate::statesync::shelf::Shelf>,
    tx_gossip: mpsc::Sender<Arc<SignedTransaction>>,
    eth_gossip: mpsc::Sender<palisade_types::EthTransaction>,
    /// Where clients' transactions are checked and admitted: below the
    /// priority of block processing (see [`crate::background`]).
    client_admission: Background,
}

impl NodeContext {
    /// Whether the node is fit to serve now (`system_health`, `GET
    /// /health`): see [`crate::health`].
    pub fn health(&self) -> palisade_rpc::types::Health {
        let mut reasons = Vec::new();
        let ledger = self.app.ledger();
        let height = match ledger.latest_height() {
            Ok(h) => h.get(),
            Err(e) => {
                reasons.push(format!("ledger unreadable: {e}"));
                self.height.load(Ordering::Relaxed)
            }
        };
        let commits_alone = self.commits_alone().unwrap_or_else(|e| {
            reasons.push(format!("ledger unreadable: {e}"));
            false
        });
        let facts = Facts {
            height,
            peers: self.net.peer_count(),
            syncing: self.sync.syncing.load(Ordering::Relaxed),
            sync_target: self.sync.target.load(Ordering::Relaxed).max(height),
            commits_alone,
            block_age: self.health.block_age(),
            max_block_age: self.health.max_block_age(),
        };
        reasons.extend(assess(&self.health.tasks(), &facts));
        palisade_rpc::types::Health {
            ok: reasons.is_empty(),
            height,
            peers: facts.peers,
            syncing: facts.syncing,
            last_block_age_ms: u64::try_from(facts.block_age.as_millis()).unwrap_or(u64::MAX),
            reasons,
        }
    }

    /// Whether this node's own votes are a quorum for the next block (one
    /// validator holding more than two thirds of the power, as in
    /// `palisade dev`): it then commits without any peer.
    fn commits_alone(&self) -> Result<bool, String> {
        let Some(key) = self.validator else {
            return Ok(false);
        };
        let ledger = self.app.ledger();
        let next = ledger
            .latest_height()
            .map_err(|e| e.to_string())?
            .next()
            .map_err(|e| e.to_string())?;
        let Some(set) = ledger.validators(next).map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        let mine: u128 = set
            .validators()
            .iter()
            .filter(|v| v.public_key == key)
            .map(|v| u128::from(v.power))
            .sum();
        Ok(mine * 3 > u128::from(set.total_power()) * 2)
    }

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

impl NodeContext {
    /// Admits a raw Ethereum transaction from a client into the Ethereum
    /// pool: decoded and its sender recovered (once; cached), then the
    /// runtime's checks. Runs on the client-admission workers.
    pub fn submit_eth(&self, raw: Vec<u8>) -> Result<Hash, AddError> {
        let ctx = self.clone();
        self.client_admission
            .run_blocking(move || ctx.admit_eth(raw))
            .unwrap_or_else(|| {
                Err(AddError::Store(StoreError::Backend(
                    "the transaction admission workers stopped".into(),
                )))
            })
    }

    fn admit_eth(&self, raw: Vec<u8>) -> Result<Hash, AddError> {
        let store = |e: &dyn std::fmt::Display| AddError::Store(StoreError::Backend(e.to_string()));
        let tx = palisade_types::EthTransaction(palisade_types::BoundedBytes::new(raw).map_err(
            |len| {
                AddError::Rejected(TxError::TooLarge {
                    size: len,
                    max: palisade_types::limits::MAX_TX_BYTES,
                })
            },
        )?);
        let ledger = self.app.ledger();
        let next = ledger
            .latest_height()
            .map_err(|e| store(&e))?
            .next()
            .map_err(|e| store(&e))?;
        let chain_id = self.app.params().map_err(|e| store(&e))?.evm_chain_id;
        let input = self
            .app
            .eth_senders()
            .prepare(std::slice::from_ref(&tx), chain_id)
            .map_err(|(_, e)| AddError::Rejected(e))?
            .pop()
            .ok_or_else(|| store(&"no sender recovered"))?;
        let hash = self.admit_eth_checked(tx.clone(), input, next)?;
        // Best effort: a full queue means peers get it from the block.
        let _ = self.eth_gossip.try_send(tx);
        Ok(hash)
    }

    /// Admits a batch of Ethereum transactions a peer gossiped. Invalid
    /// when one does not decode or its signature gives no sender (only a
    /// faulty or malicious peer sends those); one the state refuses (a used
    /// nonce, a lost role) is only not admitted, as it may have been valid
    /// where the peer checked it.
    pub fn admit_gossiped_eth(&self, txs: Vec<palisade_types::EthTransaction>) -> Verdict {
        let Ok(params) = self.app.params() else {
            return Verdict::Unchecked;
        };
        let inputs = match self.app.eth_senders().prepare(&txs, params.evm_chain_id) {
            Ok(i) => i,
            Err(_) => return Verdict::Invalid,
        };
        let ledger = self.app.ledger();
        let Ok(next) = ledger.latest_height().map(|h| h.next()) else {
            return Verdict::Unchecked;
        };
        let Ok(next) = next else {
            return Verdict::Unchecked;
        };
        for (tx, input) in txs.into_iter().zip(inputs) {
            // Refusals by the state are expected (already included,
            // already pooled); they say nothing about the peer.
            let _ = self.admit_eth_checked(tx, input, next);
        }
        Verdict::Valid
    }

    /// Pools an Ethereum transaction whose sender is known: the pool's
    /// cheap checks, then the runtime's (an EVM trial run) without holding
    /// the pool, so the consensus driver never waits behind them, then the
    /// insertion.
    fn admit_eth_checked(
        &self,
        tx: palisade_types::EthTransaction,
        input: palisade_runtime::EthTxInput,
        next: Height,
    ) -> Result<Hash, AddError> {
        let poisoned = || AddError::Store(StoreError::Backend("mempool lock poisoned".into()));
        self.mempool
            .lock()
            .map_err(|_| poisoned())?
            .eth
            .precheck(&input)?;
        self.app.runtime().check_eth_tx(
            self.app.ledger().as_ref(),
            next,
            &input,
            palisade_runtime::NonceRule::Window,
        )??;
        self.mempool
            .lock()
            .map_err(|_| poisoned())?
            .eth
            .insert_checked(tx, input, next)
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
enum Ran {
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
        if !home.genesis_file().exists() {
            return Err(NodeError::NoGenesis(home.genesis_file()));
        }
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
        ledger.keep_account_index(cfg.ledger.account_index)?;
        ledger.record_replaced_pages(cfg.pruning.keep_state_versions > 0);
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
        let metrics = Arc::new(Metrics::new());
        {
            let ledger = ledger.clone();
            metrics.watch_disk(Arc::new(move || ledger.disk_usage()));
        }
        let files = Arc::new(
            FileService::open(
                &home.blobs_dir(),
                &cfg.files,
                genesis.chain_id.clone(),
                app.clone(),
                metrics.clone(),
            )
            .map_err(|e| {
                NodeError::State(format!(
                    "shared files ({}): {e}",
                    home.blobs_dir().display()
                ))
            })?,
        );
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
        let snapshots = Arc::new(crate::statesync::shelf::Shelf::new(
            crate::statesync::snapshot_dir(&home.data_dir()),
            crate::network::wire::MAX_OFFERED_SNAPSHOTS,
        ));
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
            // A quiet network's blocks come an empty-block interval apart:
            // that long is no sign of trouble.
            health: Arc::new(NodeHealth::new(
                Duration::from_millis(cfg.rpc.health_max_block_age_ms)
                    + cfg.consensus.idle_gap().unwrap_or_default(),
            )),
            snapshots,
            tx_gossip,
            eth_gossip,
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
            mut net_events,
            net_task,
            mut tx_gossip_rx,
            mut eth_gossip_rx,
            observers,
            tap,
            task_fault,
            bound,
            corrupt_pieces: _,
            corrupt_chunks: _,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Supervisor::new(ctx.health.clone()).with_fault(task_fault);
        tasks.watch("network", net_task);
        tasks.spawn("submit-threads", ctx.client_admission.stopped());

        tracing::info!(
            moniker = %cfg.moniker,
            chain = %ctx.genesis.chain_id,
            genesis = %ctx.genesis_hash,
            height = ctx.height.load(Ordering::Relaxed),
            peer_id = %ctx.net.local_peer_id(),
            validator = ?ctx.validator.map(|k| k.to_string()),
            "node starting"
        );

        let mut metrics_addr = None;
        if cfg.metrics.enabled {
            let listener = tokio::net::TcpListener::bind(cfg.metrics.listen)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: cfg.metrics.listen,
                    source,
                })?;
            let addr = listener.local_addr().unwrap_or(cfg.metrics.listen);
            metrics_addr = Some(addr);
            tracing::info!(%addr, "metrics listening");
            let c = ctx.clone();
            let health = move || c.health();
            tasks.spawn(
                "metrics",
                crate::metrics::serve(listener, ctx.metrics.clone(), Arc::new(health)),
            );
        }

        // JSON-RPC; commits also mark the node's health.
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
        if let Some(tx) = bound {
            // Nobody waiting any more is no reason to stop the node.
            let _ = tx.send(Bound {
                rpc: rpc.addr,
                metrics: metrics_addr,
            });
        }
        let rpc_handle = rpc.handle;
        tasks.watch("rpc", rpc.task);

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
        tasks.spawn("admission-threads", admission.stopped());
        {
            let ctx = ctx.clone();
            tasks.spawn("gossip-admission", async move {
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
                            crate::admission::admit_gossiped(
                                &c.app,
                                &c.mempool,
                                &c.metrics,
                                batches.into_iter().map(|(_, _, t)| t).collect(),
                            )
                        })
                        .await
                        .unwrap_or_else(|| vec![Verdict::Unchecked; ids.len()]);
                    for ((from, id), verdict) in ids.into_iter().zip(valid) {
                        let _ = ctx.net.report_txs(id, from, verdict).await;
                    }
                }
            });
        }
        // Ethereum transactions gossiped by peers: sender recovery runs on
        // a blocking thread, one batch at a time.
        let (eth_ingress_tx, mut eth_ingress_rx) = mpsc::channel::<(
            PeerId,
            libp2p::gossipsub::MessageId,
            Vec<palisade_types::EthTransaction>,
        )>(256);
        {
            let ctx = ctx.clone();
            tasks.spawn("eth-gossip-admission", async move {
                while let Some((from, id, txs)) = eth_ingress_rx.recv().await {
                    let c = ctx.clone();
                    let verdict = tokio::task::spawn_blocking(move || c.admit_gossiped_eth(txs))
                        .await
                        .unwrap_or(Verdict::Unchecked);
                    let _ = ctx.net.report_txs(id, from, verdict).await;
                }
            });
        }
        // Ethereum transactions from our clients, gossiped in batches.
        {
            let net = ctx.net.clone();
            tasks.spawn("eth-tx-gossip", async move {
                let mut buf = Vec::new();
                loop {
                    let Some(first) = eth_gossip_rx.recv().await else {
                        return;
                    };
                    buf.push(first);
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
                    while buf.len() < 4_096 {
                        match tokio::time::timeout_at(deadline, eth_gossip_rx.recv()).await {
                            Ok(Some(t)) => buf.push(t),
                            _ => break,
                        }
                    }
                    if net.publish_eth_txs(std::mem::take(&mut buf)).await.is_err() {
                        return;
                    }
                }
            });
        }
        // Network events.
        {
            let files = ctx.files.clone();
            tasks.spawn("network-events", async move {
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
                        NetEvent::EthTxs { from, id, txs } => {
                            let _ = eth_ingress_tx.try_send((from, id, txs));
                        }
                        NetEvent::FileHeld { holder, root, .. } => files.on_held(holder, root),
                    }
                }
            });
        }
        // Shared files: purge what the chain withdrew, announce holdings.
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
        {
            let net = ctx.net.clone();
            tasks.spawn("consensus-out", async move {
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
            tasks.spawn("tx-gossip", async move {
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
        tasks.spawn(
            "snapshots",
            crate::statesync::maker::Maker {
                ledger: ctx.app.ledger().clone(),
                chain_id: ctx.genesis.chain_id.clone(),
                genesis_hash: ctx.genesis_hash,
                dir: crate::statesync::snapshot_dir(&home.data_dir()),
                interval: cfg.statesync.snapshot_interval,
                keep: cfg.statesync.snapshot_keep as usize,
            }
            .run(ctx.committed.subscribe()),
        );
        {
            let ledger = ctx.app.ledger().clone();
            let keep = cfg.pruning.retention();
            let mut rx = ctx.committed.subscribe();
            tasks.spawn("pruning", async move {
                if keep == crate::ledger::Retention::default() {
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
        // State sync, below, recomputes the allowlist too.
        let sync_observers = observers.clone();
        // After each block: peers gauge, allowlist after validator changes.
        {
            let ctx = ctx.clone();
            let mut rx = ctx.committed.subscribe();
            let mut allowed = allowed_peers(ctx.app.ledger(), &observers).unwrap_or_default();
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

        // State sync first, before block sync and consensus touch the
        // ledger: a node with no blocks starts from a peer's snapshot.
        if cfg.statesync.enable && ctx.app.ledger().latest_height()? == Height::GENESIS {
            let joiner = crate::statesync::client::Joiner {
                net: ctx.net.clone(),
                ledger: ctx.app.ledger().clone(),
                chain_id: ctx.genesis.chain_id.clone(),
                genesis_hash: ctx.genesis_hash,
                trust: crate::statesync::Trust::genesis(
                    ctx.genesis.validator_set()?,
                    cfg.statesync
                        .trusted_block()
                        .map_err(|e| NodeError::Config(e.to_string()))?,
                ),
                cfg: crate::statesync::client::JoinConfig {
                    discovery: Duration::from_millis(cfg.statesync.discovery_ms),
                    ..Default::default()
                },
            };
            let joined = tokio::select! {
                r = joiner.run() => r,
                _ = &mut shutdown => {
                    tracing::info!("shutting down during state sync");
                    let _ = rpc_handle.stop();
                    tasks.abort_all();
                    return Ok(Ran::Stopped);
                }
            };
            match joined {
                Ok(Some(h)) => {
                    ctx.height.store(h.get(), Ordering::Relaxed);
                    ctx.metrics.height.set(gauge_value(h.get()));
                    // What was admitted meanwhile was checked against the
                    // genesis state; clients and peers send it again.
                    if let Ok(mut pool) = ctx.mempool.lock() {
                        *pool = Mempool::new(cfg.mempool_config());
                    }
                    // The validators may have changed since genesis.
                    match allowed_peers(ctx.app.ledger(), &sync_observers) {
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
                    let _ = rpc_handle.stop();
                    tasks.abort_all();
                    return Err(NodeError::State(format!("state sync failed: {e}")));
                }
            }
        }

        // A node that prunes itself, or syncs by snapshots anyway, catches
        // up by state sync when every peer has pruned what it needs next;
        // an archive node keeps its history and waits.
        let (pruned_past, caught_up) = if cfg.statesync.enable || cfg.pruning.keep_blocks > 0 {
            let (tx, rx) = mpsc::channel(1);
            let (done_tx, done_rx) = oneshot::channel();
            let catch_up = crate::statesync::catch_up::CatchUp {
                net: ctx.net.clone(),
                ledger: ctx.app.ledger().clone(),
                data_dir: home.data_dir(),
                chain_id: ctx.genesis.chain_id.clone(),
                genesis_hash: ctx.genesis_hash,
                trusted_block: cfg
                    .statesync
                    .trusted_block()
                    .map_err(|e| NodeError::Config(e.to_string()))?,
                join: crate::statesync::client::JoinConfig {
                    discovery: Duration::from_millis(cfg.statesync.discovery_ms),
                    ..Default::default()
                },
                retry: CATCH_UP_RETRY,
            };
            tasks.spawn("catch-up", async move {
                let _ = done_tx.send(catch_up.run(rx).await);
                // Ending is the node's to do, not a task failure.
                std::future::pending::<()>().await
            });
            (Some(tx), Some(done_rx))
        } else {
            (None, None)
        };
        let caught_up = async move {
            match caught_up {
                Some(rx) => rx.await.ok(),
                None => None,
            }
        };
        let syncer = Syncer {
            cfg: SyncConfig::default(),
            net: ctx.net.clone(),
            committed: ctx.height.clone(),
            status: ctx.sync.clone(),
            wake: wake.clone(),
            out: synced_tx,
            pruned_past,
        };
        let (rejected_tx, rejected_rx) = mpsc::channel(64);
        tasks.spawn("sync", syncer.run(rejected_rx, stop_rx.clone()));

        let driver = Driver::new(
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
            outbound_tx,
            ctx.committed.clone(),
        )
        .with_sync(SyncLink {
            blocks: synced_rx,
            wake,
            rejected: rejected_tx,
        })
        .with_metrics(ctx.metrics.clone())
        .with_height(ctx.height.clone())
        .with_tap(tap);
        let mut driver_task = tokio::spawn(driver.run(inbound_rx, stop_rx));
        ctx.health.task_started(DRIVER);

        enum Ending {
            Shutdown,
            CaughtUp(Height),
            Driver(Result<Result<(), crate::driver::DriverError>, tokio::task::JoinError>),
            Task(TaskExit),
        }
        let ending = tokio::select! {
            // The driver first: when it fails, tasks it fed end too, and
            // its own error is the one to report.
            biased;
            r = &mut driver_task => Ending::Driver(r),
            Some(h) = caught_up => Ending::CaughtUp(h),
            exit = tasks.next_exit() => Ending::Task(exit),
            _ = &mut shutdown => Ending::Shutdown,
        };
        // Stops the driver (it saves its signer state on the way out).
        let stop_driver = async {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(Duration::from_secs(10), &mut driver_task).await {
                Ok(Ok(r)) => r.map_err(NodeError::from),
                _ => Ok(()),
            }
        };
        let result = match ending {
            Ending::Shutdown => {
                tracing::info!("shutting down");
                stop_driver.await.map(|()| Ran::Stopped)
            }
            Ending::CaughtUp(h) => {
                tracing::info!(height = %h, "stopping to reopen on the snapshot's ledger");
                stop_driver.await.map(|()| Ran::CaughtUp)
            }
            Ending::Driver(r) => {
                // It returns by itself only on shutdown; anything else is
                // a failure, even without an error of its own.
                let e = match r {
                    Ok(Err(e)) => NodeError::from(e),
                    // It ends without an error when its input closes: the
                    // task that fed it stopped, which is the cause to
                    // report if it shows up.
                    Ok(Ok(())) => {
                        match tokio::time::timeout(Duration::from_millis(500), tasks.next_exit())
                            .await
                        {
                            Ok(TaskExit { task, why }) => NodeError::TaskStopped { task, why },
                            Err(_) => NodeError::TaskStopped {
                                task: DRIVER,
                                why: "ended unexpectedly".into(),
                            },
                        }
                    }
                    Err(e) => NodeError::TaskStopped {
                        task: DRIVER,
                        why: crate::supervisor::why(e),
                    },
                };
                ctx.health.task_stopped(DRIVER, e.to_string());
                tracing::error!(error = %e, "the consensus driver stopped; stopping the node");
                Err(e)
            }
            Ending::Task(TaskExit { task, why }) => {
                tracing::error!(task, why = %why, "a background task stopped; stopping the node");
                match stop_driver.await {
                    // The driver failed as well: its error is the more
                    // fundamental one (storage, signer state).
                    Err(e) => {
                        tracing::error!(error = %e, "the consensus driver failed too");
                        Err(e)
                    }
                    Ok(()) => Err(NodeError::TaskStopped { task, why }),
                }
            }
        };
        let _ = rpc_handle.stop();
        if matches!(result, Ok(Ran::CaughtUp)) {
            // The ports and the ledger are opened again right away.
            tasks.stop_all(REOPEN_WAIT).await;
        } else {
            tasks.abort_all();
        }
        if let Err(e) = ctx.app.ledger().flush() {
            tracing::warn!(error = %e, "could not flush the ledger on the way out");
        }
        result
    }
}

/// How often the node deletes files withdrawn on chain and announces
/// what it holds.
const FILE_MAINTENANCE: Duration = Duration::from_secs(2);

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

/// How long a catch-up that found no snapshot waits before trying again.
const CATCH_UP_RETRY: Duration = Duration::from_secs(30);

/// The consensus driver's name in health reports.
const DRIVER: &str = "consensus-driver";

/// Most gossiped transactions admitted with one signature batch.
const MAX_ADMISSION_BATCH: usize = 4_096;

/// How far below block processing transaction admission runs, gossiped
/// or submitted (nice steps; see [`crate::background`]).
const ADMISSION_NICE: i32 = 10;
