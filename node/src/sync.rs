//! Block sync: how a node that is behind (restarted, wiped, new, or cut
//! off for a while) catches up.
//!
//! Every few seconds, at once when consensus reports messages from a
//! later height, and again whenever it has caught up, the syncer asks each
//! peer for its latest height. When the best is two or more blocks ahead,
//! or one block for longer than consensus needs to finish a height
//! ([`SyncConfig::behind_grace`]), it fetches the missing blocks with their
//! commit certificates in ranges from several peers in parallel and hands
//! them to the consensus driver in height order. The driver verifies each
//! certificate against that height's validator set before anything
//! changes, and only then feeds the block to consensus as a commit for its
//! current height — a peer cannot make us commit anything that +2/3 of
//! the validators did not sign. A block whose certificate does not verify
//! comes back ([`Rejected`]): the peer that served it is penalized and the
//! height fetched from another.
//!
//! What a peer sends is held to what was asked of it: an answer to a
//! block request holds at most the blocks asked for, at exactly the
//! heights asked for (else the peer is penalized and the answer dropped),
//! and fetched blocks waiting for the driver are bounded in bytes
//! ([`MAX_READY_BYTES`]) as well as by the window.
//!
//! The ledger answers the peers' requests ([`LedgerSource`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use palisade_types::{encode, Height};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

use crate::driver::Rejected;
use palisade_ledger::Ledger;
use palisade_network::wire::{
    CommittedBlock, SyncRequest, SyncResponse, MAX_SET_CHANGES, MAX_SYNC_BLOCKS,
    SYNC_SOFT_LIMIT_BYTES,
};
use palisade_network::{NetworkHandle, SyncSource};

/// Serves sync requests: blocks from the ledger, snapshots from the
/// node's `data/snapshots/`.
#[derive(Debug)]
pub struct LedgerSource {
    pub ledger: Arc<Ledger>,
    pub snapshots: Arc<palisade_statesync::shelf::Shelf>,
}

impl SyncSource for LedgerSource {
    fn serve(&self, request: SyncRequest) -> SyncResponse {
        let ledger = &self.ledger;
        let latest = ledger.latest_height().unwrap_or(Height::GENESIS);
        match request {
            SyncRequest::Status => SyncResponse::Status { height: latest },
            SyncRequest::Snapshots => {
                // A snapshot whose next block this node has pruned would
                // strand whoever took it.
                let earliest = ledger.earliest_block().unwrap_or(Height(1));
                SyncResponse::Snapshots {
                    manifests: self
                        .snapshots
                        .manifests(Height(earliest.get().saturating_sub(1))),
                }
            }
            SyncRequest::Chunk { height, index } => SyncResponse::Chunk {
                chunk: self.snapshots.chunk(height, index),
            },
            SyncRequest::SetChanges { after } => SyncResponse::SetChanges {
                changes: ledger
                    .set_changes_after(after, MAX_SET_CHANGES, SYNC_SOFT_LIMIT_BYTES)
                    .unwrap_or_default(),
            },
            SyncRequest::Blocks { from, count } => {
                let earliest = ledger.earliest_block().unwrap_or(Height(1));
                if from < earliest {
                    return SyncResponse::Pruned { latest, earliest };
                }
                let mut blocks = Vec::new();
                let mut bytes = 0usize;
                let mut h = from;
                let count = count.min(MAX_SYNC_BLOCKS);
                while blocks.len() < count as usize && h <= latest && h > Height::GENESIS {
                    let (Ok(Some(block)), Ok(Some(commit))) = (ledger.block(h), ledger.commit(h))
                    else {
                        break;
                    };
                    let item = CommittedBlock { block, commit };
                    bytes += encode(&item).len();
                    blocks.push(item);
                    if bytes >= SYNC_SOFT_LIMIT_BYTES {
                        break;
                    }
                    match h.next() {
                        Ok(n) => h = n,
                        Err(_) => break,
                    }
                }
                // Pruned meanwhile: say so rather than send nothing.
                let earliest = ledger.earliest_block().unwrap_or(Height(1));
                if blocks.is_empty() && from < earliest {
                    return SyncResponse::Pruned { latest, earliest };
                }
                SyncResponse::Blocks { latest, blocks }
            }
        }
    }
}

/// How often peers are asked for their height while none has answered.
const EARLY_POLL: Duration = Duration::from_millis(200);
/// Fetched blocks waiting for the driver, in bytes: no new range is asked
/// for while this much is waiting.
pub const MAX_READY_BYTES: usize = 256 * 1024 * 1024;

/// Settings of the syncer.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// How often peers are asked for their height.
    pub poll_interval: Duration,
    /// Blocks per request.
    pub batch: u32,
    /// Requests in flight at once (spread over peers).
    pub parallel: usize,
    /// How far past the last committed height blocks are fetched ahead.
    pub window: u64,
    /// How long being one block behind is left to consensus before the
    /// block is fetched. One block behind is normal while the last
    /// precommits are in flight; but a node that missed a height's messages
    /// (it was restarting or fetching other blocks while they went by) gets
    /// them no other way, and if it is the next proposer every peer waits
    /// out a propose timeout for it. So this is well below the propose
    /// timeout.
    pub behind_grace: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            poll_interval: Duration::from_secs(2),
            batch: 64,
            parallel: 8,
            window: 1_024,
            behind_grace: Duration::from_millis(300),
        }
    }
}

/// What the syncer shares with the rest of the node.
#[derive(Debug, Default)]
pub struct SyncStatus {
    /// Highest height a peer reported.
    pub target: AtomicU64,
    /// Whether we are fetching blocks now.
    pub syncing: AtomicBool,
}

/// Fetches missing blocks and sends them, in height order, to the driver.
#[derive(Debug)]
pub struct Syncer {
    pub cfg: SyncConfig,
    pub net: NetworkHandle,
    /// Last height the driver committed.
    pub committed: Arc<AtomicU64>,
    pub status: Arc<SyncStatus>,
    /// Poked by the driver when consensus sees a later height.
    pub wake: Arc<Notify>,
    pub out: mpsc::Sender<CommittedBlock>,
    /// Told the next height this node needs when every peer has pruned it
    /// (a catch-up by state sync then takes over); without it, that is
    /// only logged.
    pub pruned_past: Option<mpsc::Sender<Height>>,
}

type Fetch = (PeerId, Height, u32, Result<SyncResponse, String>);

/// What block sync knows while it runs: what the peers said they have,
/// what it asked for, and what it fetched and not yet handed over.
#[derive(Default)]
struct Fetching {
    /// Heights each peer claims to have.
    peer_heights: HashMap<PeerId, u64>,
    /// The first block each peer keeps, once it said (it prunes).
    peer_earliest: HashMap<PeerId, u64>,
    /// Fetched but not yet handed to the driver, with their size.
    ready: BTreeMap<u64, (CommittedBlock, usize)>,
    ready_bytes: usize,
    /// Who served each height fetched and not yet committed.
    sources: BTreeMap<u64, PeerId>,
    /// Ranges asked for: start -> (peer, end).
    asked: BTreeMap<u64, (PeerId, u64)>,
    /// Round-robin position over the peers.
    next_peer: usize,
    warned_pruned: bool,
}

/// How long this node has been behind its peers, and when being one
/// block behind has had its grace.
#[derive(Default)]
struct Behind {
    since: Option<Instant>,
    grace_ends: Option<tokio::time::Instant>,
}

impl Behind {
    /// Notes `committed` against the peers' `target`; whether to fetch
    /// blocks now.
    fn update(&mut self, committed: u64, target: u64, grace: Duration) -> bool {
        if target <= committed {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        let behind_for = self.since.map(|t| t.elapsed());
        let syncing = should_fetch(committed, target, behind_for, grace);
        self.grace_ends = match self.since {
            Some(t) if !syncing => Some((t + grace).into()),
            _ => None,
        };
        syncing
    }
}

impl Fetching {
    /// Notes a peer's answer to "what is your height" (`None`: it gave
    /// none).
    fn heard_height(&mut self, peer: PeerId, height: Option<u64>) {
        match height {
            Some(h) => {
                self.peer_heights.insert(peer, h);
            }
            None => {
                self.peer_heights.remove(&peer);
            }
        }
    }

    /// Takes a peer's answer to "blocks `start`.. (at most `count`)"; `Err`
    /// says how the answer is not one an honest peer sends.
    fn answered(
        &mut self,
        peer: PeerId,
        start: Height,
        count: u32,
        result: Result<SyncResponse, String>,
    ) -> Result<(), String> {
        self.asked.remove(&start.get());
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "sync request failed");
                self.peer_heights.remove(&peer);
                return Ok(());
            }
        };
        if let Err(why) = check_blocks_answer(start, count, &resp) {
            self.peer_heights.remove(&peer);
            return Err(why);
        }
        match resp {
            SyncResponse::Pruned { latest, earliest } => {
                self.peer_heights.insert(peer, latest.get());
                self.peer_earliest.insert(peer, earliest.get());
            }
            SyncResponse::Blocks { latest, blocks } => {
                self.peer_heights.insert(peer, latest.get());
                for (h, b) in (start.get()..).zip(blocks) {
                    let size = palisade_types::encoded_len(&b);
                    self.ready_bytes += size;
                    self.sources.insert(h, peer);
                    if let Some((_, old)) = self.ready.insert(h, (b, size)) {
                        self.ready_bytes -= old;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Forgets everything the peer that served `height` served (it may all
    /// be bad: the heights are asked for again elsewhere); that peer.
    fn forget_source_of(&mut self, height: Height) -> Option<PeerId> {
        let peer = self.sources.get(&height.get()).copied()?;
        self.peer_heights.remove(&peer);
        let theirs: Vec<u64> = self
            .sources
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(h, _)| *h)
            .collect();
        for h in theirs {
            self.sources.remove(&h);
            if let Some((_, size)) = self.ready.remove(&h) {
                self.ready_bytes -= size;
            }
        }
        self.asked.retain(|_, (p, _)| *p != peer);
        Some(peer)
    }

    /// Drops what the driver already has.
    fn drop_committed(&mut self, committed: u64) {
        while let Some((&h, _)) = self.ready.first_key_value() {
            if h > committed {
                break;
            }
            if let Some((_, (_, size))) = self.ready.pop_first() {
                self.ready_bytes -= size;
            }
        }
        self.sources.retain(|h, _| *h > committed);
    }

    /// Whether every peer that has height `from` at all has pruned it (a
    /// peer behind this node is not asked, so it says nothing).
    fn pruned_everywhere(&self, peers: &[(PeerId, u64)], from: u64) -> bool {
        let ahead: Vec<&PeerId> = peers
            .iter()
            .filter(|(_, h)| *h >= from)
            .map(|(p, _)| p)
            .collect();
        !ahead.is_empty()
            && ahead
                .iter()
                .all(|p| self.peer_earliest.get(*p).is_some_and(|e| *e > from))
    }
}

/// Checks an answer to "blocks `start`.. (at most `count`)" from a peer:
/// `Err` says how it is not one an honest peer sends.
pub fn check_blocks_answer(
    start: Height,
    count: u32,
    response: &SyncResponse,
) -> Result<(), String> {
    let (latest, blocks) = match response {
        SyncResponse::Blocks { latest, blocks } => (latest, blocks),
        SyncResponse::Pruned { latest, earliest } => {
            // Honest when it keeps less than was asked, and no more than
            // it has.
            if *earliest <= start || earliest.get() > latest.get() + 1 {
                return Err(format!(
                    "claims to keep blocks from {earliest} (latest {latest}) but not {start}"
                ));
            }
            return Ok(());
        }
        _ => return Err("answered a block request with something else".into()),
    };
    if blocks.len() > count as usize {
        return Err(format!(
            "sent {} blocks for a request of {count}",
            blocks.len()
        ));
    }
    for (h, b) in (start.get()..).zip(blocks) {
        if b.block.header.height.get() != h || b.commit.height.get() != h {
            return Err(format!(
                "sent block {} / certificate {} where {h} was asked for",
                b.block.header.height, b.commit.height
            ));
        }
    }
    if blocks.is_empty() && *latest >= start {
        return Err(format!(
            "claims height {latest} but sent no block from {start}"
        ));
    }
    Ok(())
}

impl Syncer {
    /// Every peer has pruned `height`, which this node needs next: the
    /// catch-up hears of it (it may already be at work: then this is
    /// dropped), or the operator does, once.
    fn report_pruned(&self, height: Height, warned: &mut bool) {
        match &self.pruned_past {
            Some(tx) => {
                if !*warned {
                    *warned = true;
                    tracing::warn!(%height, "every peer has pruned the blocks this node needs next: catching up from a snapshot");
                }
                let _ = tx.try_send(height);
            }
            None if !*warned => {
                *warned = true;
                tracing::warn!(
                    %height,
                    "every peer has pruned the blocks this node needs next, and this archive node keeps its history rather than replace it by a snapshot: wait for a peer that keeps these blocks, or set statesync.enable = true to have it catch up from a snapshot by itself (dropping its old blocks)"
                );
            }
            None => {}
        }
    }

    /// Runs until `shutdown`; blocks the driver refused come in on `rejected`.
    pub async fn run(
        self,
        mut rejected: mpsc::Receiver<Rejected>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut poll = tokio::time::interval(self.cfg.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut f = Fetching::default();
        let mut fetches: JoinSet<Fetch> = JoinSet::new();
        let mut statuses: JoinSet<(PeerId, Option<u64>)> = JoinSet::new();
        let mut behind = Behind::default();
        let mut progress = Progress::new(self.committed.load(Ordering::Relaxed));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = poll.tick() => self.ask_status(&mut statuses).await,
                // Until some peer has told us its height (just started, or
                // every peer gone), ask often: a restarted or wiped node
                // should not idle a whole poll interval before catching up.
                _ = tokio::time::sleep(EARLY_POLL), if f.peer_heights.is_empty() && statuses.is_empty() => {
                    self.ask_status(&mut statuses).await
                }
                _ = self.wake.notified() => self.ask_status(&mut statuses).await,
                // One block behind for the grace: the check below now
                // fetches (the peer's height is known; no need to ask again).
                _ = crate::deadline::sleep_until(behind.grace_ends) => {}
                Some(r) = statuses.join_next() => {
                    if let Ok((peer, h)) = r {
                        f.heard_height(peer, h);
                    }
                }
                Some(r) = fetches.join_next() => {
                    let Ok((peer, start, count, result)) = r else { continue };
                    if let Err(why) = f.answered(peer, start, count, result) {
                        let _ = self.net.penalize(peer, "sync_bad_response", why).await;
                    }
                }
                Some(Rejected { height, why }) = rejected.recv() => {
                    if let Some(peer) = f.forget_source_of(height) {
                        let why = format!("served block {height} with a bad certificate: {why}");
                        let _ = self.net.penalize(peer, "sync_bad_certificate", why).await;
                    }
                }
                // While fetching, look again soon: the driver commits what
                // was handed over without telling us, and catching up is
                // when the peers are asked again.
                _ = tokio::time::sleep(Duration::from_millis(50)),
                    if !f.ready.is_empty() || self.status.syncing.load(Ordering::Relaxed) => {}
            }

            let committed = self.committed.load(Ordering::Relaxed);
            let target = f.peer_heights.values().copied().max().unwrap_or(0);
            self.status
                .target
                .store(target.max(committed), Ordering::Relaxed);
            f.drop_committed(committed);
            let Some(next) = self.hand_over(&mut f, committed) else {
                return;
            };

            let syncing = behind.update(committed, target, self.cfg.behind_grace);
            self.set_syncing(syncing, committed, target, &mut statuses)
                .await;
            if !syncing {
                continue;
            }
            progress.report(committed, target);
            let limit = target.min(committed + self.cfg.window);
            self.ask_ranges(&mut f, &mut fetches, next.max(committed + 1), limit);
        }
    }

    /// Publishes whether block sync runs, and logs when that changes.
    async fn set_syncing(
        &self,
        syncing: bool,
        committed: u64,
        target: u64,
        statuses: &mut JoinSet<(PeerId, Option<u64>)>,
    ) {
        if syncing != self.status.syncing.swap(syncing, Ordering::Relaxed) {
            if syncing {
                tracing::info!(
                    height = committed,
                    target,
                    "behind peers; block sync started"
                );
            } else {
                tracing::info!(height = committed, "block sync caught up");
                // The peers went on while we fetched: if they are a
                // block or more ahead again, waiting for the next poll
                // would leave us out of their heights meanwhile.
                self.ask_status(statuses).await;
            }
        }
    }

    /// Hands the driver what is next in line after `committed`, without
    /// blocking on a full driver; the first height not handed over, or
    /// `None` when the driver is gone.
    fn hand_over(&self, f: &mut Fetching, committed: u64) -> Option<u64> {
        let mut next = committed + 1;
        while let Some((b, size)) = f.ready.remove(&next) {
            match self.out.try_send(b) {
                Ok(()) => {
                    f.ready_bytes -= size;
                    next += 1;
                }
                Err(mpsc::error::TrySendError::Full(b)) => {
                    f.ready.insert(next, (b, size));
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return None,
            }
        }
        Some(next)
    }

    /// Asks peers for the ranges from `from` to `limit` not yet fetched or
    /// asked for, round-robin over the peers that have them, within the
    /// parallel and memory bounds.
    fn ask_ranges(
        &self,
        f: &mut Fetching,
        fetches: &mut JoinSet<Fetch>,
        mut from: u64,
        limit: u64,
    ) {
        let mut peers: Vec<(PeerId, u64)> = f.peer_heights.iter().map(|(p, h)| (*p, *h)).collect();
        peers.sort();
        while fetches.len() < self.cfg.parallel
            && from <= limit
            && !peers.is_empty()
            && f.ready_bytes < MAX_READY_BYTES
        {
            if f.ready.contains_key(&from) {
                from += 1;
                continue;
            }
            if let Some((_, &(_, end))) = f.asked.range(..=from).next_back() {
                if end >= from {
                    from = end + 1;
                    continue;
                }
            }
            let end = (from + u64::from(self.cfg.batch) - 1).min(limit);
            let candidates: Vec<PeerId> = peers
                .iter()
                .filter(|(p, h)| *h >= end && f.peer_earliest.get(p).is_none_or(|e| *e <= from))
                .map(|(p, _)| *p)
                .collect();
            let Some(&peer) = candidates.get(f.next_peer % candidates.len().max(1)) else {
                if f.pruned_everywhere(&peers, from) {
                    self.report_pruned(Height(from), &mut f.warned_pruned);
                }
                break;
            };
            f.next_peer = f.next_peer.wrapping_add(1);
            let count = u32::try_from(end - from + 1).unwrap_or(self.cfg.batch);
            f.asked.insert(from, (peer, end));
            let net = self.net.clone();
            let start = Height(from);
            fetches.spawn(async move {
                let r = net
                    .request(peer, SyncRequest::Blocks { from: start, count })
                    .await
                    .map_err(|e| e.to_string());
                (peer, start, count, r)
            });
            from = end + 1;
        }
    }

    async fn ask_status(&self, statuses: &mut JoinSet<(PeerId, Option<u64>)>) {
        if !statuses.is_empty() {
            return;
        }
        let Ok(peers) = self.net.peers().await else {
            return;
        };
        for peer in peers {
            let net = self.net.clone();
            statuses.spawn(async move {
                match net.request(peer, SyncRequest::Status).await {
                    Ok(SyncResponse::Status { height }) => (peer, Some(height.get())),
                    Ok(_) => {
                        let why = "answered a status request with something else".to_string();
                        let _ = net.penalize(peer, "sync_bad_response", why).await;
                        (peer, None)
                    }
                    Err(_) => (peer, None),
                }
            });
        }
    }
}

/// Whether a node that has committed `committed`, with a peer at `target`,
/// should fetch blocks rather than wait for consensus: at once when two or
/// more blocks behind (consensus cannot decide a height whose messages
/// went by), after `grace` when one behind.
pub fn should_fetch(
    committed: u64,
    target: u64,
    behind_for: Option<Duration>,
    grace: Duration,
) -> bool {
    target > committed.saturating_add(1)
        || (target > committed && behind_for.is_some_and(|d| d >= grace))
}

/// Logs sync progress at most every few seconds.
struct Progress {
    last: Instant,
    last_height: u64,
}

impl Progress {
    fn new(height: u64) -> Progress {
        Progress {
            last: Instant::now(),
            last_height: height,
        }
    }

    fn report(&mut self, height: u64, target: u64) {
        let dt = self.last.elapsed();
        if dt < Duration::from_secs(3) {
            return;
        }
        let rate = height.saturating_sub(self.last_height) as f64 / dt.as_secs_f64();
        tracing::info!(
            height,
            target,
            blocks_per_s = format!("{rate:.1}"),
            "syncing"
        );
        self.last = Instant::now();
        self.last_height = height;
    }
}
