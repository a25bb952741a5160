//! Deterministic multi-node simulation of the consensus state machine.
//!
//! A seeded discrete-event simulator in the style of commonware's
//! deterministic runtime and simulated p2p: simulated time, per-link latency
//! with jitter, loss, duplication (and so reordering), partitions that heal,
//! crash-restart (a restarted node keeps only its "disk": the persisted
//! signer state and its decided blocks) and Byzantine validators from
//! [`crate::mocks`]. The same seed replays the same run exactly.
//!
//! After every run the [`Report`] lists the violations of the properties
//! Tendermint promises: agreement, validity, no double signing by honest
//! validators, and liveness after the last fault heals.

mod rng;
mod scenario;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use palisade_types::{
    sha256, Block, BlockHeader, BoundedVec, ChainId, CommitCertificate, Hash, Height, Keypair,
    PublicKey, Round, Timestamp, Validator, ValidatorSet,
};

pub use rng::Rng;
pub use scenario::{Crash, Partition, Scenario};

use crate::mocks::{Mock, MockCtx, Send};
use crate::{Config, Consensus, Input, Message, Output, SignerState, Step, StepState, Verified};

/// A property the run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest nodes decided different blocks at one height.
    Fork {
        height: Height,
        a: (usize, Hash),
        b: (usize, Hash),
    },
    /// An honest node decided a block that is not valid on its chain.
    InvalidDecision { node: usize, height: Height },
    /// An honest validator signed two different messages at one position.
    DoubleSign {
        validator: PublicKey,
        height: Height,
        round: Round,
        step: Step,
    },
    /// An honest node did not reach the target height in time.
    NoLiveness {
        node: usize,
        reached: Height,
        deadline_ms: u64,
    },
}

/// Where a node's state machine stands: height, round, step.
pub type Position = (Height, Round, StepState);

/// Outcome of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub violations: Vec<Violation>,
    /// Lowest height decided by every honest node.
    pub min_honest_height: Height,
    pub sim_time_ms: u64,
    pub events: u64,
    pub messages: u64,
    pub max_round: Round,
    pub evidence: u64,
    /// Per node: decided height, and the consensus position at the end
    /// (`None` while crashed).
    pub nodes: Vec<(Height, Option<Position>)>,
    /// Per node: when (simulated ms) it decided each height.
    pub decided_at: Vec<BTreeMap<Height, u64>>,
}

impl Report {
    pub fn forked(&self) -> bool {
        self.violations
            .iter()
            .any(|v| matches!(v, Violation::Fork { .. }))
    }
}

#[derive(Debug)]
enum Kind {
    Deliver { from: usize, msg: Message },
    Input(Input),
    StartHeight(Height),
    SyncRequest(Height),
    Crash,
    Restart,
}

#[derive(Debug)]
struct Event {
    time: u64,
    seq: u64,
    node: usize,
    /// For events tied to one incarnation of the node; `None` survives crashes.
    epoch: Option<u64>,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

#[derive(Debug)]
struct Node {
    key: Keypair,
    mock: Option<Box<dyn Mock>>,
    consensus: Option<Consensus>,
    /// Survives crashes: the persisted signer state and the decided chain.
    disk_signer: SignerState,
    disk_blocks: BTreeMap<Height, Vec<Arc<Block>>>,
    ledger: BTreeMap<Height, (Arc<Block>, CommitCertificate)>,
    decided_at: BTreeMap<Height, u64>,
    epoch: u64,
    sync_pending: bool,
    /// Signatures of messages already relayed (gossip mode).
    relayed: std::collections::BTreeSet<[u8; 64]>,
}

/// Events processed per run at most: bounds every run whatever the scenario.
const MAX_EVENTS: u64 = 3_000_000;
/// Delay between deciding a height and starting the next.
const COMMIT_DELAY_MS: u64 = 10;

/// One simulated network.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    config: Config,
    validators: ValidatorSet,
    genesis_hash: Hash,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<Event>>,
    seq: u64,
    now: u64,
    rng: Rng,
    signed: BTreeMap<(PublicKey, Height, Round, Step), Option<Hash>>,
    violations: Vec<Violation>,
    messages: u64,
    max_round: Round,
    evidence: u64,
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Simulation {
        let chain_id = ChainId::new("palisade-sim").expect("valid chain id");
        let keys: Vec<Keypair> = (0..scenario.validators)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                Keypair::from_seed(seed)
            })
            .collect();
        let validators = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .expect("distinct keys with power 1 form a valid set");
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                mock: scenario.behavior_of(i).map(|b| b.build()),
                consensus: None,
                disk_signer: SignerState::default(),
                disk_blocks: BTreeMap::new(),
                ledger: BTreeMap::new(),
                decided_at: BTreeMap::new(),
                epoch: 0,
                sync_pending: false,
                relayed: std::collections::BTreeSet::new(),
            })
            .collect();
        let config = Config {
            chain_id,
            timeouts: scenario.timeouts,
        };
        Simulation {
            rng: Rng::new(scenario.seed),
            scenario,
            config,
            validators,
            genesis_hash: sha256(b"palisade-sim genesis"),
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            signed: BTreeMap::new(),
            violations: Vec::new(),
            messages: 0,
            max_round: Round::ZERO,
            evidence: 0,
        }
    }

    fn honest(&self, i: usize) -> bool {
        self.nodes[i].mock.is_none()
    }

    fn push(&mut self, delay: u64, node: usize, tied: bool, kind: Kind) {
        self.seq += 1;
        let epoch = tied.then_some(self.nodes[node].epoch);
        self.queue.push(Reverse(Event {
            time: self.now.saturating_add(delay),
            seq: self.seq,
            node,
            epoch,
            kind,
        }));
    }

    /// Runs the scenario to completion and checks every property.
    pub fn run(mut self) -> Report {
        for i in 0..self.nodes.len() {
            let key = self.nodes[i].key.clone();
            self.nodes[i].consensus = Some(Consensus::new(
                self.config.clone(),
                Some(key),
                SignerState::default(),
            ));
            self.push(0, i, true, Kind::StartHeight(Height(1)));
        }
        for c in self.scenario.crashes.clone() {
            self.seq += 1;
            self.queue.push(Reverse(Event {
                time: c.at_ms,
                seq: self.seq,
                node: c.node,
                epoch: None,
                kind: Kind::Crash,
            }));
            self.seq += 1;
            self.queue.push(Reverse(Event {
                time: c.at_ms + c.down_ms,
                seq: self.seq,
                node: c.node,
                epoch: None,
                kind: Kind::Restart,
            }));
        }

        let target = Height(self.scenario.target_height);
        let heal = self.scenario.heal_time_ms();
        let mut events = 0u64;
        while let Some(Reverse(ev)) = self.queue.pop() {
            if ev.time > self.scenario.max_time_ms || events >= MAX_EVENTS {
                break;
            }
            events += 1;
            self.now = ev.time;
            self.dispatch(ev);
            if self.now >= heal && self.all_honest_reached(target) {
                break;
            }
        }
        self.check(target, heal);
        let min_honest_height = (0..self.nodes.len())
            .filter(|&i| self.honest(i))
            .map(|i| self.top(i))
            .min()
            .unwrap_or(Height::GENESIS);
        let nodes = (0..self.nodes.len())
            .map(|i| {
                let pos = self.nodes[i]
                    .consensus
                    .as_ref()
                    .map(|c| (c.height(), c.round(), c.state()));
                (self.top(i), pos)
            })
            .collect();
        let decided_at = self.nodes.iter().map(|n| n.decided_at.clone()).collect();
        Report {
            decided_at,
            nodes,
            seed: self.scenario.seed,
            violations: self.violations,
            min_honest_height,
            sim_time_ms: self.now,
            events,
            messages: self.messages,
            max_round: self.max_round,
            evidence: self.evidence,
        }
    }

    fn top(&self, i: usize) -> Height {
        self.nodes[i]
            .ledger
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Height::GENESIS)
    }

    fn all_honest_reached(&self, target: Height) -> bool {
        (0..self.nodes.len())
            .filter(|&i| self.honest(i))
            .all(|i| self.top(i) >= target)
    }

    fn dispatch(&mut self, ev: Event) {
        let i = ev.node;
        if let Some(epoch) = ev.epoch {
            if epoch != self.nodes[i].epoch {
                return;
            }
        }
        if self.scenario.trace {
            eprintln!("{:>6} n{i} <- {}", self.now, brief_kind(&ev.kind));
        }
        match ev.kind {
            Kind::Crash => self.crash(i),
            Kind::Restart => self.restart(i),
            Kind::StartHeight(h) => self.start_height(i, h),
            Kind::Input(input) => self.feed(i, input),
            Kind::Deliver { from, msg } => self.deliver(i, from, msg),
            Kind::SyncRequest(h) => self.answer_sync(i, h),
        }
    }

    fn crash(&mut self, i: usize) {
        let amnesia = self.scenario.amnesia.contains(&i);
        let n = &mut self.nodes[i];
        if amnesia {
            n.disk_signer = SignerState::default();
        }
        n.consensus = None;
        n.epoch += 1;
        n.sync_pending = false;
    }

    fn restart(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.consensus.is_some() {
            return;
        }
        n.consensus = Some(Consensus::new(
            self.config.clone(),
            Some(n.key.clone()),
            n.disk_signer.clone(),
        ));
        let next = self.top(i).next().unwrap_or(Height(1));
        self.push(0, i, true, Kind::StartHeight(next));
    }

    fn start_height(&mut self, i: usize, h: Height) {
        let validators = self.validators.clone();
        let restored_blocks = self.nodes[i]
            .disk_blocks
            .get(&h)
            .cloned()
            .unwrap_or_default();
        self.feed(
            i,
            Input::StartHeight {
                height: h,
                validators,
                restored_blocks,
            },
        );
    }

    /// A message reaches node `i`: its mock (if Byzantine) sees it, the
    /// network edge checks it, an honest relaying node passes it on, and
    /// the state machine gets it.
    fn deliver(&mut self, i: usize, from: usize, msg: Message) {
        if self.nodes[i].consensus.is_none() {
            return;
        }
        self.messages += 1;
        if let Some(mut mock) = self.nodes[i].mock.take() {
            let extra = {
                let ctx = MockCtx {
                    chain_id: &self.config.chain_id,
                    key: &self.nodes[i].key,
                    me: i,
                    nodes: self.nodes.len(),
                };
                mock.incoming(&ctx, from, &msg)
            };
            self.nodes[i].mock = Some(mock);
            for s in extra {
                self.send_raw(i, s);
            }
        }
        // The node's network edge: a message that does not verify
        // goes no further (not relayed, not fed).
        let Ok(msg) = Verified::check(&self.config.chain_id, msg) else {
            return;
        };
        if self.scenario.relay && self.honest(i) {
            let sig = match &*msg {
                Message::Proposal { proposal, .. } => proposal.signature.0,
                Message::Vote(v) => v.signature.0,
            };
            if self.nodes[i].relayed.insert(sig) {
                self.send_raw(i, Send::All((*msg).clone()));
            }
        }
        self.feed(i, msg.into_input());
    }

    /// Block sync: a random peer that has height `h` sends its block and
    /// commit certificate.
    fn answer_sync(&mut self, i: usize, h: Height) {
        self.nodes[i].sync_pending = false;
        let peers: Vec<usize> = (0..self.nodes.len())
            .filter(|&p| p != i && self.nodes[p].ledger.contains_key(&h))
            .collect();
        if let Some(p) = self.rng.pick(&peers) {
            if let Some((block, commit)) = self.nodes[p].ledger.get(&h).cloned() {
                let delay = 2 * self.latency();
                self.push(delay, i, true, Kind::Input(Input::Commit { block, commit }));
            }
        }
    }

    fn feed(&mut self, i: usize, input: Input) {
        let Some(c) = self.nodes[i].consensus.as_mut() else {
            return;
        };
        let outputs = c.handle(input);
        if c.round() > self.max_round {
            self.max_round = c.round();
        }
        self.apply(i, outputs);
    }

    fn apply(&mut self, i: usize, outputs: Vec<Output>) {
        for o in outputs {
            if self.scenario.trace {
                eprintln!("{:>6} n{i} -> {}", self.now, brief_output(&o));
            }
            match o {
                Output::PersistAndBroadcast {
                    signer_state,
                    message,
                } => {
                    // Save before send.
                    self.nodes[i].disk_signer = signer_state;
                    self.send(i, message);
                }
                Output::Broadcast(message) => self.send(i, message),
                Output::PersistBlock { height, block } => {
                    self.nodes[i]
                        .disk_blocks
                        .entry(height)
                        .or_default()
                        .push(block);
                }
                Output::ScheduleTimeout {
                    timeout,
                    duration_ms,
                } => self.push(duration_ms, i, true, Kind::Input(Input::Timeout(timeout))),
                Output::RequestBlock {
                    height,
                    round,
                    proposer,
                } => {
                    let block = Arc::new(self.build_block(i, height, proposer));
                    self.push(
                        1,
                        i,
                        true,
                        Kind::Input(Input::ProposeBlock {
                            height,
                            round,
                            block,
                        }),
                    );
                }
                Output::ValidateBlock { height, block } => {
                    let valid = self.is_valid(i, &block);
                    self.push(
                        1,
                        i,
                        true,
                        Kind::Input(Input::BlockValidated {
                            height,
                            block_hash: block.hash(),
                            valid,
                        }),
                    );
                }
                Output::Decided {
                    height,
                    block,
                    commit,
                    ..
                } => self.commit(i, height, block, commit),
                Output::Evidence(_) => self.evidence += 1,
                Output::Behind { current, .. } => {
                    if !self.nodes[i].sync_pending {
                        self.nodes[i].sync_pending = true;
                        let delay = self.latency();
                        self.push(delay, i, true, Kind::SyncRequest(current));
                    }
                }
            }
        }
    }

    /// Node `i` decided `block` at `height`: it keeps it, forgets the
    /// blocks it kept for consensus, and starts the next height.
    fn commit(&mut self, i: usize, height: Height, block: Arc<Block>, commit: CommitCertificate) {
        let n = &mut self.nodes[i];
        n.disk_blocks.retain(|h, _| *h > height);
        n.ledger.insert(height, (block, commit));
        n.decided_at.insert(height, self.now);
        if let Ok(next) = height.next() {
            self.push(COMMIT_DELAY_MS, i, true, Kind::StartHeight(next));
        }
    }

    fn latency(&mut self) -> u64 {
        self.rng
            .range(self.scenario.min_latency_ms, self.scenario.max_latency_ms)
    }

    /// Records what an honest validator signed, to catch double signing.
    fn record_signed(&mut self, msg: &Message) {
        let (who, h, r, step, value) = match msg {
            Message::Proposal { proposal, .. } => (
                proposal.proposal.proposer,
                proposal.proposal.height,
                proposal.proposal.round,
                Step::Propose,
                Some(proposal.proposal.block_hash),
            ),
            Message::Vote(v) => (
                v.vote.validator,
                v.vote.height,
                v.vote.round,
                crate::signer::step_of(v.vote.vote_type),
                v.vote.block_hash,
            ),
        };
        match self.signed.get(&(who, h, r, step)) {
            Some(prev) if *prev != value => self.violations.push(Violation::DoubleSign {
                validator: who,
                height: h,
                round: r,
                step,
            }),
            Some(_) => {}
            None => {
                self.signed.insert((who, h, r, step), value);
            }
        }
    }

    fn send(&mut self, i: usize, message: Message) {
        if self.honest(i) {
            self.record_signed(&message);
        }
        let sends = match self.nodes[i].mock.take() {
            Some(mut mock) => {
                let ctx = MockCtx {
                    chain_id: &self.config.chain_id,
                    key: &self.nodes[i].key,
                    me: i,
                    nodes: self.nodes.len(),
                };
                let s = mock.outgoing(&ctx, message);
                self.nodes[i].mock = Some(mock);
                s
            }
            None => vec![Send::All(message)],
        };
        for s in sends {
            self.send_raw(i, s);
        }
    }

    fn send_raw(&mut self, from: usize, s: Send) {
        match s {
            Send::All(m) => {
                for to in 0..self.nodes.len() {
                    if to != from {
                        self.link(from, to, m.clone());
                    }
                }
            }
            Send::To(to, m) => {
                if to != from && to < self.nodes.len() {
                    self.link(from, to, m);
                }
            }
        }
    }

    fn link(&mut self, from: usize, to: usize, msg: Message) {
        let now = self.now;
        if self
            .scenario
            .partitions
            .iter()
            .any(|p| p.blocks(now, from, to))
        {
            return;
        }
        if self.rng.chance(self.scenario.loss_per_mille) {
            return;
        }
        if self.rng.chance(self.scenario.duplicate_per_mille) {
            let d = self.latency();
            self.push(
                d,
                to,
                false,
                Kind::Deliver {
                    from,
                    msg: msg.clone(),
                },
            );
        }
        let d = self.latency();
        self.push(d, to, false, Kind::Deliver { from, msg });
    }

    fn prev_hash(&self, i: usize, height: Height) -> Option<Hash> {
        match height.prev() {
            None => None,
            Some(Height::GENESIS) => Some(self.genesis_hash),
            Some(p) => self.nodes[i].ledger.get(&p).map(|(b, _)| b.hash()),
        }
    }

    fn build_block(&self, i: usize, height: Height, proposer: PublicKey) -> Block {
        let last = height
            .prev()
            .and_then(|p| self.nodes[i].ledger.get(&p))
            .map(|(_, c)| c.clone());
        let set_hash = self.validators.hash();
        Block {
            eth_txs: Default::default(),
            header: BlockHeader {
                chain_id: self.config.chain_id.clone(),
                height,
                time: Timestamp(self.now),
                last_block_hash: self.prev_hash(i, height).unwrap_or(Hash::ZERO),
                tx_root: Block::compute_tx_root(&[], &[]),
                state_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                validators_hash: set_hash,
                next_validators_hash: set_hash,
                proposer,
                last_commit_hash: last.as_ref().map_or(Hash::ZERO, CommitCertificate::hash),
            },
            txs: BoundedVec::default(),
            last_commit: last,
        }
    }

    /// The simulated application's validity rule, as node `i` sees it.
    fn is_valid(&self, i: usize, block: &Block) -> bool {
        let h = &block.header;
        if block.validate_basic().is_err()
            || h.chain_id != self.config.chain_id
            || h.validators_hash != self.validators.hash()
            || h.next_validators_hash != self.validators.hash()
            || Some(h.last_block_hash) != self.prev_hash(i, h.height)
        {
            return false;
        }
        match &block.last_commit {
            Some(c) => c.verify(&self.config.chain_id, &self.validators).is_ok(),
            None => h.height == Height(1),
        }
    }

    fn check(&mut self, target: Height, heal: u64) {
        let honest: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.honest(i)).collect();
        let mut by_height: BTreeMap<Height, (usize, Hash)> = BTreeMap::new();
        for &i in &honest {
            for (h, (block, _)) in &self.nodes[i].ledger {
                let hash = block.hash();
                match by_height.get(h) {
                    Some(&(j, other)) if other != hash => self.violations.push(Violation::Fork {
                        height: *h,
                        a: (j, other),
                        b: (i, hash),
                    }),
                    Some(_) => {}
                    None => {
                        by_height.insert(*h, (i, hash));
                    }
                }
                if !self.is_valid(i, block) {
                    self.violations.push(Violation::InvalidDecision {
                        node: i,
                        height: *h,
                    });
                }
            }
        }
        if self.scenario.check_liveness {
            let deadline_ms = heal + self.scenario.liveness_bound_ms;
            for &i in &honest {
                let on_time = self.nodes[i]
                    .decided_at
                    .get(&target)
                    .is_some_and(|t| *t <= deadline_ms);
                if !on_time {
                    self.violations.push(Violation::NoLiveness {
                        node: i,
                        reached: self.top(i),
                        deadline_ms,
                    });
                }
            }
        }
    }
}

fn brief_msg(m: &Message) -> String {
    match m {
        Message::Proposal { proposal, .. } => {
            let p = &proposal.proposal;
            format!(
                "proposal h{} r{} {:?} pol={:?}",
                p.height, p.round, p.block_hash, p.pol_round
            )
        }
        Message::Vote(v) => {
            let v = &v.vote;
            format!(
                "{:?} h{} r{} {:?} by {:?}",
                v.vote_type, v.height, v.round, v.block_hash, v.validator
            )
        }
    }
}

fn brief_kind(k: &Kind) -> String {
    match k {
        Kind::Deliver { from, msg } => format!("from n{from}: {}", brief_msg(msg)),
        Kind::Input(Input::Timeout(t)) => format!("timeout {t:?}"),
        Kind::Input(Input::BlockValidated {
            block_hash, valid, ..
        }) => {
            format!("validated {block_hash:?} {valid}")
        }
        Kind::Input(Input::ProposeBlock { round, .. }) => format!("own block r{round}"),
        Kind::Input(Input::Commit { commit, .. }) => format!("sync commit h{}", commit.height),
        Kind::Input(other) => format!("{other:?}"),
        Kind::StartHeight(h) => format!("start h{h}"),
        Kind::SyncRequest(h) => format!("sync request h{h}"),
        Kind::Crash => "CRASH".into(),
        Kind::Restart => "RESTART".into(),
    }
}

fn brief_output(o: &Output) -> String {
    match o {
        Output::PersistAndBroadcast { message, .. } => {
            format!("persist+send {}", brief_msg(message))
        }
        Output::Broadcast(m) => format!("resend {}", brief_msg(m)),
        Output::PersistBlock { block, .. } => format!("persist block {:?}", block.hash()),
        Output::ScheduleTimeout {
            timeout,
            duration_ms,
        } => format!("schedule {timeout:?} in {duration_ms}"),
        Output::RequestBlock { height, round, .. } => format!("request block h{height} r{round}"),
        Output::ValidateBlock { block, .. } => format!("validate {:?}", block.hash()),
        Output::Decided {
            height,
            round,
            block,
            ..
        } => format!("DECIDED h{height} r{round} {:?}", block.hash()),
        Output::Evidence(e) => format!("evidence against {:?}", e.offender()),
        Output::Behind { current, seen } => format!("behind: at h{current}, seen h{seen}"),
    }
}
