//! The permissioned libp2p network.
//!
//! TCP + Noise + Yamux; the PeerId is the node key's. Gossipsub carries two
//! topics per chain — consensus messages and transaction batches — without
//! gossipsub's own message signatures (every payload carries its own
//! ed25519 signatures, so signing again would only cost CPU). A
//! request-response protocol serves block sync; identify and ping keep
//! connections honest.
//!
//! Only peers on the allowlist (the validators' node keys and configured
//! observers) may hold a connection: anyone else is refused at connection
//! time and logged. Every gossip message is decoded with a size bound and
//! its signatures checked before it is forwarded; a peer that sends
//! undecodable or badly signed data is disconnected, scored down and kept
//! out for a while that doubles with each offence. Each peer's gossip and
//! sync requests are rate-limited ([`rate`]); what is dropped, and every
//! penalty, is counted by reason in the metrics.

mod codec;
mod deadline;
pub mod rate;
pub mod vectors;
pub mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{dial_opts::DialOpts, NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, connection_limits, identify, identity, ping, Multiaddr, PeerId};
use palisade_consensus::{Message, MessageError, Verified};
use palisade_types::{sha256, ChainId, EthTransaction, PublicKey, SignedTransaction};
use tokio::sync::{mpsc, oneshot};

use codec::{BlobCodec, SyncCodec};
pub use codec::{BLOB_PROTOCOL, SYNC_PROTOCOL};
use palisade_files::wire::{BlobRequest, BlobResponse};
use palisade_files::FileRoot;
use rate::{PeerLimits, RateLimiter, Traffic};

use wire::{ConsensusGossip, EthTxBatch, SyncRequest, SyncResponse, TxBatch};

/// Where the network counts what it drops and whom it penalizes, by reason
/// (the node's Prometheus metrics).
pub trait NetworkMetrics: Send + Sync + std::fmt::Debug {
    /// A message or request dropped for `reason`.
    fn count_drop(&self, reason: &str);
    /// A peer penalized for `reason`.
    fn count_penalty(&self, reason: &str);
}

/// Settings of the network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub chain_id: ChainId,
    pub listen: Vec<Multiaddr>,
    /// Peers to dial and keep dialing; each address ends in `/p2p/<id>`.
    pub peers: Vec<Multiaddr>,
    /// Who may connect (besides this node).
    pub allowed: HashSet<PeerId>,
    pub max_peers: u32,
    pub sync_timeout: Duration,
    /// Rate limits per peer.
    pub limits: PeerLimits,
    /// Where drops and penalties are counted.
    pub metrics: Arc<dyn NetworkMetrics>,
    /// How long a blob request (one piece) may take.
    pub blob_timeout: Duration,
}

/// The node's verdict on a gossiped transaction batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every transaction is well formed, for this chain and correctly
    /// signed: forward it.
    Valid,
    /// Some transaction is not: no honest node forwards it, so the sender
    /// is penalized.
    Invalid,
    /// Not judged (the node is overloaded or shutting down): neither
    /// forwarded nor held against the sender.
    Unchecked,
}

/// Something the network hands to the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A consensus message whose signature checked out.
    Consensus(Verified<Message>),
    /// A batch of transactions; answer with [`NetworkHandle::report_txs`].
    Txs {
        from: PeerId,
        id: MessageId,
        txs: Vec<SignedTransaction>,
    },
    /// A batch of Ethereum transactions; answer with
    /// [`NetworkHandle::report_txs`].
    EthTxs {
        from: PeerId,
        id: MessageId,
        txs: Vec<EthTransaction>,
    },
    /// A peer says it holds (some or all of) a file: a hint, to be checked
    /// by asking it.
    FileHeld {
        holder: PeerId,
        root: FileRoot,
        complete: bool,
    },
}

/// Why a network call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    #[error("the network task has stopped")]
    Stopped,
    #[error("request to {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
    #[error("cannot start the network: {0}")]
    Setup(String),
}

/// Answers block-sync requests from peers (the ledger, in the node).
pub trait SyncSource: Send + Sync + 'static {
    fn serve(&self, request: SyncRequest) -> SyncResponse;
}

/// Answers blob requests from peers (the node's files).
pub trait BlobServer: Send + Sync + 'static {
    fn serve(
        &self,
        peer: PeerId,
        request: BlobRequest,
    ) -> futures::future::BoxFuture<'static, BlobResponse>;
}

enum Command {
    Broadcast(Box<Message>),
    PublishTxs(Vec<Arc<SignedTransaction>>),
    PublishEthTxs(Vec<EthTransaction>),
    Report {
        id: MessageId,
        from: PeerId,
        verdict: Verdict,
    },
    Penalize {
        peer: PeerId,
        reason: &'static str,
        why: String,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetError>>,
    },
    BlobRequest {
        peer: PeerId,
        request: BlobRequest,
        reply: oneshot::Sender<Result<BlobResponse, NetError>>,
    },
    AnnounceFile {
        root: FileRoot,
        complete: bool,
    },
    Peers(oneshot::Sender<Vec<PeerId>>),
    SetAllowed(HashSet<PeerId>),
}

/// A cheap, cloneable handle to the network task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    cmd: mpsc::Sender<Command>,
    peer_count: Arc<AtomicUsize>,
    local: PeerId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl NetworkHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.peer_count.load(Ordering::Relaxed)
    }

    /// Sends a consensus message to every peer.
    pub async fn broadcast(&self, m: Message) -> Result<(), NetError> {
        self.send(Command::Broadcast(Box::new(m))).await
    }

    /// Gossips transactions this node admitted from its own clients.
    pub async fn publish_txs(&self, txs: Vec<Arc<SignedTransaction>>) -> Result<(), NetError> {
        self.send(Command::PublishTxs(txs)).await
    }

    /// Gossips Ethereum transactions this node admitted from its clients.
    pub async fn publish_eth_txs(&self, txs: Vec<EthTransaction>) -> Result<(), NetError> {
        self.send(Command::PublishEthTxs(txs)).await
    }

    /// Verdict on a [`NetEvent::Txs`] batch: forwarded if valid; the sender
    /// is penalized if invalid.
    pub async fn report_txs(
        &self,
        id: MessageId,
        from: PeerId,
        verdict: Verdict,
    ) -> Result<(), NetError> {
        self.send(Command::Report { id, from, verdict }).await
    }

    /// Disconnects `peer` and keeps it out for a while (longer each
    /// time), for something only a faulty or malicious node does: `reason`
    /// is the metric label, `why` the log line.
    pub async fn penalize(
        &self,
        peer: PeerId,
        reason: &'static str,
        why: String,
    ) -> Result<(), NetError> {
        self.send(Command::Penalize { peer, reason, why }).await
    }

    /// Sends a sync request and waits for the answer (bounded by the
    /// configured sync timeout).
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Sends a blob request and waits for the answer (bounded by the
    /// configured blob timeout).
    pub async fn blob_request(
        &self,
        peer: PeerId,
        request: BlobRequest,
    ) -> Result<BlobResponse, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::BlobRequest {
            peer,
            request,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Tells peers this node holds (some or all of) a file.
    pub async fn announce_file(&self, root: FileRoot, complete: bool) -> Result<(), NetError> {
        self.send(Command::AnnounceFile { root, complete }).await
    }

    /// The peers connected now.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Peers(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Replaces the allowlist (after a validator-set change); peers no
    /// longer on it are disconnected.
    pub async fn set_allowed(&self, allowed: HashSet<PeerId>) -> Result<(), NetError> {
        self.send(Command::SetAllowed(allowed)).await
    }

    async fn send(&self, c: Command) -> Result<(), NetError> {
        self.cmd.send(c).await.map_err(|_| NetError::Stopped)
    }
}

/// The libp2p PeerId of a node key as written in genesis.
pub fn peer_id_of(node_key: &PublicKey) -> Result<PeerId, NetError> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(node_key.as_bytes())
        .map_err(|e| NetError::Setup(format!("node key {node_key}: {e}")))?;
    Ok(PeerId::from_public_key(&identity::PublicKey::from(pk)))
}

/// The libp2p identity for a node key seed.
pub fn identity_from_seed(seed: [u8; 32]) -> Result<identity::Keypair, NetError> {
    identity::Keypair::ed25519_from_bytes(seed).map_err(|e| NetError::Setup(e.to_string()))
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossip: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    blob: request_response::Behaviour<BlobCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Consensus messages waiting for the node; the swarm never blocks on it.
const EVENT_QUEUE: usize = 8_192;
const COMMAND_QUEUE: usize = 8_192;
const REDIAL_EVERY: Duration = Duration::from_secs(2);
/// Transaction batches kept while no peer takes the topic yet (a node
/// that just started, or lost its peers), at most, and for how long.
const MAX_UNSENT_BATCHES: usize = 256;
const UNSENT_FOR: Duration = Duration::from_secs(60);
/// How long a valid consensus message too big for gossipsub's IDONTWANT
/// cutoff (a proposal with its block) waits before it is forwarded. Peers
/// send IDONTWANT for such a message as soon as they receive it; relaying
/// at once raced those, so on a fully connected validator set every node
/// got each block three times (once from the proposer and once from each
/// other peer): 7 of 18 MB/s on a 4-validator devnet at 7,000 tx/s. After
/// the wait only peers that have not said they hold it get a copy. The
/// message itself goes to consensus at once.
const FORWARD_BIG_AFTER: Duration = Duration::from_millis(10);
/// Gossipsub's default IDONTWANT size threshold (bytes).
const IDONTWANT_ABOVE: usize = 1_000;
/// First ban after an offence; doubles per offence up to [`MAX_BAN`].
const FIRST_BAN: Duration = Duration::from_secs(5);
const MAX_BAN: Duration = Duration::from_secs(600);

/// Starts the network task. Returns its handle and the stream of events
/// for the node.
pub fn start(
    cfg: NetworkConfig,
    key: identity::Keypair,
    source: Arc<dyn SyncSource>,
    blobs: Arc<dyn BlobServer>,
) -> Result<
    (
        NetworkHandle,
        mpsc::Receiver<NetEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetError,
> {
    let local = key.public().to_peer_id();
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());

    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .max_transmit_size(wire::MAX_CONSENSUS_MSG_BYTES)
        .message_id_fn(|m: &gossipsub::Message| MessageId::from(sha256(&m.data).0[..20].to_vec()))
        .heartbeat_interval(Duration::from_millis(500))
        .duplicate_cache_time(Duration::from_secs(30))
        .flood_publish(true)
        .build()
        .map_err(|e| setup(&e))?;
    let mut gossip =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_cfg)
            .map_err(|e| setup(&e))?;
    let consensus_topic = IdentTopic::new(format!("/palisade/{}/consensus/1", cfg.chain_id));
    let tx_topic = IdentTopic::new(format!("/palisade/{}/txs/1", cfg.chain_id));
    let eth_tx_topic = IdentTopic::new(format!("/palisade/{}/eth-txs/1", cfg.chain_id));
    let files_topic = IdentTopic::new(format!("/palisade/{}/files/1", cfg.chain_id));
    gossip.subscribe(&files_topic).map_err(|e| setup(&e))?;
    gossip.subscribe(&consensus_topic).map_err(|e| setup(&e))?;
    gossip.subscribe(&tx_topic).map_err(|e| setup(&e))?;
    gossip.subscribe(&eth_tx_topic).map_err(|e| setup(&e))?;

    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for p in &cfg.allowed {
        allow.allow_peer(*p);
    }
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(cfg.max_peers.saturating_mul(2)))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(64))
            .with_max_pending_outgoing(Some(64)),
    );
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::default(),
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(cfg.sync_timeout)
            .with_max_concurrent_streams(64),
    );
    let blob = request_response::Behaviour::with_codec(
        BlobCodec::default(),
        [(BLOB_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(cfg.blob_timeout)
            .with_max_concurrent_streams(64),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new("/palisade/1".into(), key.public())
            .with_agent_version(format!("palisade/{}", env!("CARGO_PKG_VERSION"))),
    );
    let behaviour = Behaviour {
        allow,
        limits,
        gossip,
        sync,
        blob,
        identify,
        ping: ping::Behaviour::default(),
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("listen on {addr}: {e}")))?;
    }

    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    let peer_count = Arc::new(AtomicUsize::new(0));
    let handle = NetworkHandle {
        cmd: cmd_tx,
        peer_count: peer_count.clone(),
        local,
    };
    let mut dial_targets: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
    for a in &cfg.peers {
        match a.iter().last() {
            Some(Protocol::P2p(id)) if id != local => {
                dial_targets.entry(id).or_default().push(a.clone())
            }
            Some(Protocol::P2p(_)) => {}
            _ => tracing::warn!(addr = %a, "peer address has no /p2p/<peer id>; ignored"),
        }
    }
    let task = Task {
        swarm,
        consensus_topic,
        tx_topic,
        eth_tx_topic,
        files_topic,
        chain_id: cfg.chain_id,
        allowed: cfg.allowed,
        dial_targets,
        events: ev_tx,
        source,
        blobs,
        pending: HashMap::new(),
        pending_blobs: HashMap::new(),
        scores: HashMap::new(),
        banned: HashMap::new(),
        peer_count,
        nonce: rand::random(),
        to_forward: VecDeque::new(),
        unsent: VecDeque::new(),
        rates: RateLimiter::new(cfg.limits),
        metrics: cfg.metrics,
    };
    let join = tokio::spawn(task.run(cmd_rx));
    Ok((handle, ev_rx, join))
}

struct Task {
    swarm: libp2p::Swarm<Behaviour>,
    consensus_topic: IdentTopic,
    tx_topic: IdentTopic,
    eth_tx_topic: IdentTopic,
    files_topic: IdentTopic,
    chain_id: ChainId,
    allowed: HashSet<PeerId>,
    dial_targets: HashMap<PeerId, Vec<Multiaddr>>,
    events: mpsc::Sender<NetEvent>,
    source: Arc<dyn SyncSource>,
    blobs: Arc<dyn BlobServer>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, NetError>>>,
    pending_blobs: HashMap<OutboundRequestId, oneshot::Sender<Result<BlobResponse, NetError>>>,
    /// Offences per peer (never decays below the count of offences: a peer
    /// that misbehaves again is kept out longer).
    scores: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    peer_count: Arc<AtomicUsize>,
    nonce: u64,
    /// Big consensus messages accepted but not yet forwarded, oldest first
    /// (see [`FORWARD_BIG_AFTER`]).
    to_forward: VecDeque<(tokio::time::Instant, MessageId, PeerId)>,
    /// Transaction batches gossip had no peer for yet, oldest first: sent
    /// when a peer subscribes (a client's transaction accepted by a node
    /// with no mesh yet must still reach the validators).
    unsent: VecDeque<(Instant, IdentTopic, Vec<u8>)>,
    rates: RateLimiter,
    metrics: Arc<dyn NetworkMetrics>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut redial = tokio::time::interval(REDIAL_EVERY);
        let (served_tx, mut served_rx) =
            mpsc::channel::<(ResponseChannel<SyncResponse>, SyncResponse)>(256);
        let (blob_tx, mut blob_rx) =
            mpsc::channel::<(ResponseChannel<BlobResponse>, BlobResponse)>(64);
        let served = Served {
            sync: served_tx,
            blob: blob_tx,
        };
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev, &served),
                c = commands.recv() => match c {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                Some((ch, resp)) = served_rx.recv() => {
                    if self.swarm.behaviour_mut().sync.send_response(ch, resp).is_err() {
                        tracing::debug!("sync peer went away before the answer");
                    }
                }
                Some((ch, resp)) = blob_rx.recv() => {
                    if self.swarm.behaviour_mut().blob.send_response(ch, resp).is_err() {
                        tracing::debug!("blob peer went away before the answer");
                    }
                }
                _ = redial.tick() => {
                    self.redial();
                    self.publish_unsent();
                }
                _ = crate::deadline::sleep_until(self.to_forward.front().map(|(at, _, _)| *at)) => self.forward_due(),
            }
        }
    }

    /// Accepts (so gossipsub forwards) the deferred messages whose wait is over.
    fn forward_due(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some((at, _, _)) = self.to_forward.front() {
            if *at > now {
                break;
            }
            if let Some((_, id, from)) = self.to_forward.pop_front() {
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&id, &from, MessageAcceptance::Accept);
            }
        }
    }

    fn redial(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.banned.remove(&p);
            if self.allowed.contains(&p) {
                self.swarm.behaviour_mut().allow.allow_peer(p);
            }
        }
        let targets: Vec<(PeerId, Vec<Multiaddr>)> = self
            .dial_targets
            .iter()
            .filter(|(p, _)| !self.swarm.is_connected(p) && !self.banned.contains_key(p))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (peer, addrs) in targets {
            let opts = DialOpts::peer_id(peer).addresses(addrs).build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::trace!(%peer, error = %e, "dial");
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Broadcast(m) => {
                self.nonce = self.nonce.wrapping_add(1);
                let data = ConsensusGossip::new(self.nonce, &m).encode();
                self.publish(self.consensus_topic.clone(), data);
            }
            Command::PublishTxs(txs) => {
                let topic = self.tx_topic.clone();
                let items: Vec<SignedTransaction> = txs.iter().map(|t| (**t).clone()).collect();
                self.publish_batched(topic, items, SignedTransaction::encoded_len, |txs| {
                    TxBatch { txs }.encode()
                });
            }
            Command::PublishEthTxs(txs) => {
                let topic = self.eth_tx_topic.clone();
                self.publish_batched(topic, txs, EthTransaction::encoded_len, |txs| {
                    EthTxBatch { txs }.encode()
                });
            }
            Command::Report { id, from, verdict } => {
                let acceptance = match verdict {
                    Verdict::Valid => MessageAcceptance::Accept,
                    Verdict::Invalid => MessageAcceptance::Reject,
                    Verdict::Unchecked => MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&id, &from, acceptance);
                if verdict == Verdict::Invalid {
                    self.penalize(
                        from,
                        "invalid_tx_batch",
                        "sent a transaction batch with a badly signed or foreign transaction",
                    );
                }
            }
            Command::Penalize { peer, reason, why } => self.penalize(peer, reason, &why),
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::BlobRequest {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().blob.send_request(&peer, request);
                self.pending_blobs.insert(id, reply);
            }
            Command::AnnounceFile { root, complete } => {
                let data = wire::FileAnnouncement::new(*self.swarm.local_peer_id(), root, complete)
                    .encode();
                self.publish(self.files_topic.clone(), data);
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::SetAllowed(allowed) => {
                let removed: Vec<PeerId> = self.allowed.difference(&allowed).copied().collect();
                for p in removed {
                    tracing::info!(peer = %p, "peer left the allowlist; disconnecting");
                    self.swarm.behaviour_mut().allow.disallow_peer(p);
                }
                for p in allowed.difference(&self.allowed) {
                    if !self.banned.contains_key(p) {
                        self.swarm.behaviour_mut().allow.allow_peer(*p);
                    }
                }
                self.allowed = allowed;
            }
        }
    }

    /// Publishes `items` on `topic` in batches under the gossip bound.
    fn publish_batched<T>(
        &mut self,
        topic: IdentTopic,
        items: Vec<T>,
        size: impl Fn(&T) -> usize,
        encode: impl Fn(Vec<T>) -> Vec<u8>,
    ) {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        for t in items {
            let n = size(&t);
            if bytes + n > wire::MAX_TX_BATCH_BYTES - 64 && !batch.is_empty() {
                self.publish_or_keep(topic.clone(), encode(std::mem::take(&mut batch)));
                bytes = 0;
            }
            bytes += n;
            batch.push(t);
        }
        if !batch.is_empty() {
            self.publish_or_keep(topic, encode(batch));
        }
    }

    /// Publishes a transaction batch, or keeps it for when a peer takes
    /// the topic.
    fn publish_or_keep(&mut self, topic: IdentTopic, data: Vec<u8>) {
        if let Some((topic, data)) = self.publish_unless_alone(topic, data) {
            if self.unsent.len() >= MAX_UNSENT_BATCHES {
                self.unsent.pop_front();
            }
            self.unsent.push_back((Instant::now(), topic, data));
        }
    }

    /// Tries the kept transaction batches again (dropping stale ones).
    fn publish_unsent(&mut self) {
        self.unsent.retain(|(at, _, _)| at.elapsed() < UNSENT_FOR);
        for _ in 0..self.unsent.len() {
            let Some((at, topic, data)) = self.unsent.pop_front() else {
                break;
            };
            if let Some((topic, data)) = self.publish_unless_alone(topic, data) {
                self.unsent.push_back((at, topic, data));
            }
        }
    }

    /// Publishes `data` on `topic`; hands it back when no peer takes the
    /// topic yet (any other failure is logged and the batch dropped).
    fn publish_unless_alone(
        &mut self,
        topic: IdentTopic,
        data: Vec<u8>,
    ) -> Option<(IdentTopic, Vec<u8>)> {
        match self
            .swarm
            .behaviour_mut()
            .gossip
            .publish(topic.clone(), data.clone())
        {
            Ok(_) => None,
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Some((topic, data)),
            Err(e) => {
                tracing::debug!(error = %e, "gossip publish failed");
                None
            }
        }
    }

    /// A transaction batch from `from`: within its rate, decoded (only
    /// then) into the event for the node, which reports a verdict; a batch
    /// that does not decode is rejected and its peer penalized.
    fn on_tx_batch(
        &mut self,
        from: PeerId,
        id: MessageId,
        bytes: usize,
        decode: impl FnOnce() -> Result<NetEvent, palisade_types::DecodeError>,
        what: &str,
    ) {
        if !self.within_rate(from, &id, Traffic::TxBatch { bytes }) {
            return;
        }
        let decoded = decode();
        let gossip_verdict = |me: &mut Self, acceptance| {
            me.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&id, &from, acceptance);
        };
        match decoded {
            Ok(ev) => {
                if self.events.try_send(ev).is_err() {
                    self.metrics.count_drop("queue_full");
                    gossip_verdict(self, MessageAcceptance::Ignore);
                }
            }
            Err(e) => {
                gossip_verdict(self, MessageAcceptance::Reject);
                self.penalize(from, "undecodable", &format!("undecodable {what}: {e}"));
            }
        }
    }

    fn publish(&mut self, topic: IdentTopic, data: Vec<u8>) {
        match self.swarm.behaviour_mut().gossip.publish(topic, data) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::trace!("no peers to gossip to");
            }
            Err(e) => tracing::debug!(error = %e, "gossip publish failed"),
        }
    }

    /// Disconnects `peer` and keeps it out for a while that doubles with
    /// each offence.
    fn penalize(&mut self, peer: PeerId, reason: &'static str, why: &str) {
        self.metrics.count_penalty(reason);
        let offences = self.scores.entry(peer).or_insert(0);
        *offences = offences.saturating_add(1);
        let ban = FIRST_BAN
            .saturating_mul(1u32 << (*offences - 1).min(16))
            .min(MAX_BAN);
        tracing::warn!(%peer, offences = *offences, ban_s = ban.as_secs(), "peer misbehaved: {why}; disconnecting");
        self.banned.insert(peer, Instant::now() + ban);
        self.swarm.behaviour_mut().allow.disallow_peer(peer);
    }

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>, served: &Served) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer_id = %self.swarm.local_peer_id(), "p2p listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                self.peer_count
                    .store(self.swarm.connected_peers().count(), Ordering::Relaxed);
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "peer connected");
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.peer_count
                    .store(self.swarm.connected_peers().count(), Ordering::Relaxed);
                if num_established == 0 {
                    self.rates.remove(&peer_id);
                    tracing::debug!(peer = %peer_id, "peer disconnected");
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => {
                if is_denied(&error) {
                    tracing::warn!(peer = ?peer_id, addr = %send_back_addr, "refused a connection from a peer not on the allowlist");
                } else {
                    tracing::debug!(addr = %send_back_addr, error = %error, "incoming connection failed");
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::trace!(peer = ?peer_id, error = %error, "dial failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Subscribed {
                ..
            })) if !self.unsent.is_empty() => self.publish_unsent(),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(e, &served.sync),
            SwarmEvent::Behaviour(BehaviourEvent::Blob(e)) => self.on_blob(e, &served.blob),
            _ => {}
        }
    }

    /// Charges a message to the peer that relayed it; one over the peer's
    /// limits is dropped, neither forwarded nor held against it.
    fn within_rate(&mut self, from: PeerId, id: &MessageId, traffic: Traffic) -> bool {
        match self.rates.check(from, traffic, Instant::now()) {
            Ok(()) => true,
            Err(reason) => {
                self.metrics.count_drop(reason);
                tracing::trace!(peer = %from, reason, "dropped: over the peer's rate limit");
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(id, &from, MessageAcceptance::Ignore);
                false
            }
        }
    }

    fn on_gossip(&mut self, from: PeerId, id: MessageId, m: gossipsub::Message) {
        let bytes = m.data.len();
        if m.topic == self.consensus_topic.hash() {
            if !self.within_rate(from, &id, Traffic::Consensus { bytes }) {
                return;
            }
            let verdict = match ConsensusGossip::decode(&m.data) {
                Err(e) => Err(("undecodable", format!("undecodable consensus message: {e}"))),
                Ok(g) => check_consensus(&self.chain_id, g.into_message())
                    .map_err(|why| ("bad_signature", why)),
            };
            let gossip = &mut self.swarm.behaviour_mut().gossip;
            match verdict {
                Ok(msg) => {
                    match self.events.try_send(NetEvent::Consensus(msg)) {
                        Ok(()) if m.data.len() > IDONTWANT_ABOVE => {
                            self.to_forward.push_back((
                                tokio::time::Instant::now() + FORWARD_BIG_AFTER,
                                id,
                                from,
                            ));
                        }
                        Ok(()) => {
                            gossip.report_message_validation_result(
                                &id,
                                &from,
                                MessageAcceptance::Accept,
                            );
                        }
                        Err(_) => {
                            // The node is overloaded: drop, and let peers'
                            // re-broadcasts fill the gap.
                            self.metrics.count_drop("queue_full");
                            gossip.report_message_validation_result(
                                &id,
                                &from,
                                MessageAcceptance::Ignore,
                            );
                        }
                    }
                }
                Err((reason, why)) => {
                    gossip.report_message_validation_result(&id, &from, MessageAcceptance::Reject);
                    self.penalize(from, reason, &why);
                }
            }
        } else if m.topic == self.tx_topic.hash() {
            let event_id = id.clone();
            let decode = || {
                TxBatch::decode(&m.data).map(|b| NetEvent::Txs {
                    from,
                    id: event_id,
                    txs: b.txs,
                })
            };
            self.on_tx_batch(from, id, bytes, decode, "transaction batch");
        } else if m.topic == self.eth_tx_topic.hash() {
            let event_id = id.clone();
            let decode = || {
                EthTxBatch::decode(&m.data).map(|b| NetEvent::EthTxs {
                    from,
                    id: event_id,
                    txs: b.txs,
                })
            };
            self.on_tx_batch(from, id, bytes, decode, "Ethereum transaction batch");
        } else if m.topic == self.files_topic.hash() {
            self.on_file_announcement(from, id, &m.data);
        } else {
            self.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(&id, &from, MessageAcceptance::Ignore);
        }
    }

    /// A holding announcement: forwarded if it decodes and the holder is
    /// on the allowlist (a hint only: a downloader asks the holder).
    fn on_file_announcement(&mut self, from: PeerId, id: MessageId, data: &[u8]) {
        if !self.within_rate(from, &id, Traffic::TxBatch { bytes: data.len() }) {
            return;
        }
        let decoded = wire::FileAnnouncement::decode(data)
            .map_err(|e| e.to_string())
            .and_then(|a| {
                PeerId::from_bytes(&a.holder)
                    .map(|holder| (holder, a))
                    .map_err(|e| format!("holder is not a peer id: {e}"))
            });
        let gossip = &mut self.swarm.behaviour_mut().gossip;
        match decoded {
            Ok((holder, a)) if self.allowed.contains(&holder) => {
                gossip.report_message_validation_result(&id, &from, MessageAcceptance::Accept);
                let ev = NetEvent::FileHeld {
                    holder,
                    root: FileRoot(a.root),
                    complete: a.complete,
                };
                if self.events.try_send(ev).is_err() {
                    self.metrics.count_drop("queue_full");
                }
            }
            Ok(_) => {
                gossip.report_message_validation_result(&id, &from, MessageAcceptance::Ignore);
            }
            Err(why) => {
                gossip.report_message_validation_result(&id, &from, MessageAcceptance::Reject);
                self.penalize(
                    from,
                    "undecodable",
                    &format!("undecodable file announcement: {why}"),
                );
            }
        }
    }

    fn on_blob(
        &mut self,
        e: request_response::Event<BlobRequest, BlobResponse>,
        served: &mpsc::Sender<(ResponseChannel<BlobResponse>, BlobResponse)>,
    ) {
        let (rates, metrics, blobs) = (&mut self.rates, &self.metrics, &self.blobs);
        route(
            e,
            "blob",
            &mut self.pending_blobs,
            |peer, request, channel| {
                if let Err(reason) = rates.check(peer, Traffic::BlobRequest, Instant::now()) {
                    // Dropping the channel fails the peer's request at once.
                    metrics.count_drop(reason);
                    tracing::debug!(%peer, "blob request dropped: over the peer's rate limit");
                    return;
                }
                let answer = blobs.serve(peer, request);
                let out = served.clone();
                tokio::spawn(async move {
                    let resp = answer.await;
                    let _ = out.send((channel, resp)).await;
                });
            },
        );
    }

    fn on_sync(
        &mut self,
        e: request_response::Event<SyncRequest, SyncResponse>,
        served: &mpsc::Sender<(ResponseChannel<SyncResponse>, SyncResponse)>,
    ) {
        let (rates, metrics, source) = (&mut self.rates, &self.metrics, &self.source);
        route(e, "sync", &mut self.pending, |peer, request, channel| {
            if let Err(reason) = rates.check(peer, Traffic::SyncRequest, Instant::now()) {
                // Dropping the channel fails the peer's request at once.
                metrics.count_drop(reason);
                tracing::debug!(%peer, "sync request dropped: over the peer's rate limit");
                return;
            }
            let source = source.clone();
            let out = served.clone();
            tokio::spawn(async move {
                if let Ok(resp) = tokio::task::spawn_blocking(move || source.serve(request)).await {
                    let _ = out.send((channel, resp)).await;
                }
            });
        });
    }
}

/// Routes a request-response event: answers to this node's own requests
/// (or their failures) go to whoever waits in `pending`; a peer's request
/// goes to `serve`.
fn route<Q, R>(
    e: request_response::Event<Q, R>,
    what: &str,
    pending: &mut HashMap<OutboundRequestId, oneshot::Sender<Result<R, NetError>>>,
    serve: impl FnOnce(PeerId, Q, ResponseChannel<R>),
) {
    use request_response::{Event, Message as RrMessage};
    match e {
        Event::Message {
            peer,
            message: RrMessage::Request {
                request, channel, ..
            },
            ..
        } => serve(peer, request, channel),
        Event::Message {
            message:
                RrMessage::Response {
                    request_id,
                    response,
                },
            ..
        } => {
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Ok(response));
            }
        }
        Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Err(NetError::Request {
                    peer,
                    reason: error.to_string(),
                }));
            }
        }
        Event::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, "{what} request from peer failed");
        }
        Event::ResponseSent { .. } => {}
    }
}

/// Where answers computed off the network task come back to it.
struct Served {
    sync: mpsc::Sender<(ResponseChannel<SyncResponse>, SyncResponse)>,
    blob: mpsc::Sender<(ResponseChannel<BlobResponse>, BlobResponse)>,
}

fn is_denied(e: &libp2p::swarm::ListenError) -> bool {
    matches!(e, libp2p::swarm::ListenError::Denied { .. })
}

/// What the network checks before a consensus message goes further, once
/// ([`Verified::check`]): the signature under the key the message names,
/// and for a proposal that the block it carries is the block it names.
/// Whether that key is a validator at that height is consensus's business.
fn check_consensus(chain_id: &ChainId, m: Message) -> Result<Verified<Message>, String> {
    let kind = match &m {
        Message::Vote(_) => "vote",
        Message::Proposal { .. } => "proposal",
    };
    Verified::check(chain_id, m).map_err(|e| match e {
        MessageError::BadSignature(_) => format!("{kind} with a bad signature: {e}"),
        e => format!("{kind} refused: {e}"),
    })
}
