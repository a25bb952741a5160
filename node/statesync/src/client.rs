//! State sync, the joining side: a node with no blocks asks its peers
//! which snapshots they offer, takes the newest one it can trust, fetches
//! its chunks from every peer that offers it at once, checks each against
//! the manifest's hash of it (a peer that sends a bad one is penalized and
//! the chunk fetched elsewhere) and, in order, against the certified state
//! root, then makes the snapshot's block its latest height. Block sync
//! takes over from there. No offer within the discovery time, or no peer
//! left that can finish it: the node block-syncs from genesis instead.
//!
//! A snapshot decided by validators other than those the node trusts
//! (genesis's, say) becomes trusted by walking the validator-set changes
//! in between: each change's certificate is checked against the set known
//! before it ([`Trust::walk`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use palisade_types::{decode, sha256, ChainId, Hash, Height, SetChange};
use tokio::task::JoinSet;

use super::chunks::{Counts, Verifier};
use super::manifest::{Manifest, ManifestError, Trust};
use super::SnapshotError;
use palisade_ledger::{Ledger, SnapshotBase};
use palisade_network::wire::{SyncRequest, SyncResponse, MAX_SET_CHANGES};
use palisade_network::NetworkHandle;

/// Most requests for validator-set changes in one walk: 1,024 changes.
const MAX_WALK_REQUESTS: usize = 64;

/// How the joining side paces itself.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// How long to look for offers before giving up on state sync.
    pub discovery: Duration,
    /// Once a first offer is in, how much longer to wait for more peers
    /// (more peers to fetch from, and maybe a newer snapshot).
    pub gather: Duration,
    /// Chunk requests in flight at once, over all peers.
    pub parallel: usize,
    /// Snapshots tried before giving up (each failing one is dropped).
    pub attempts: usize,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            discovery: Duration::from_secs(15),
            gather: Duration::from_secs(1),
            parallel: 8,
            attempts: 5,
        }
    }
}

/// The node's side of state sync.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub net: NetworkHandle,
    pub ledger: Arc<Ledger>,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub trust: Trust,
    pub cfg: JoinConfig,
}

/// A snapshot on offer, and who offers it.
#[derive(Debug)]
struct Offer {
    manifest: Manifest,
    peers: Vec<PeerId>,
}

/// What became of one snapshot.
enum Attempt {
    Done(Counts),
    /// Give this snapshot up (its peers left, or it does not verify).
    Drop(String),
}

impl Joiner {
    /// Restores the state from a peer's snapshot: `Some(height)` on
    /// success, `None` when no usable snapshot was found (block sync from
    /// genesis then). Errors are the ledger's own.
    pub async fn run(&self) -> Result<Option<Height>, SnapshotError> {
        let mut refused: HashSet<Hash> = HashSet::new();
        // Grows as validator-set changes are walked; what is walked stays
        // true whichever snapshot is taken.
        let mut trust = self.trust.clone();
        for _ in 0..self.cfg.attempts {
            let Some(offer) = self.discover(&refused, &mut trust).await else {
                return Ok(None);
            };
            let id = offer.manifest.id();
            let height = offer.manifest.height();
            tracing::info!(
                %height,
                chunks = offer.manifest.chunks.len(),
                bytes = offer.manifest.state_bytes(),
                peers = offer.peers.len(),
                "state sync: fetching the snapshot"
            );
            let started = std::time::Instant::now();
            let walked = trust.walked_below(height);
            match self.fetch(offer, walked).await? {
                Attempt::Done(counts) => {
                    tracing::info!(
                        %height,
                        pages = counts.pages,
                        values = counts.values,
                        secs = started.elapsed().as_secs_f64(),
                        "state sync: state restored; block sync continues from here"
                    );
                    return Ok(Some(height));
                }
                Attempt::Drop(why) => {
                    tracing::warn!(%height, %why, "state sync: snapshot given up");
                    refused.insert(id);
                }
            }
        }
        Ok(None)
    }

    /// Asks every peer for its offers until the discovery time is up or,
    /// once something is offered, the gather time; the newest trusted
    /// snapshot (the most widely offered of equal height) wins.
    async fn discover(&self, refused: &HashSet<Hash>, trust: &mut Trust) -> Option<Offer> {
        let deadline = tokio::time::Instant::now() + self.cfg.discovery;
        let mut offers: HashMap<Hash, Offer> = HashMap::new();
        let mut asked: HashSet<PeerId> = HashSet::new();
        let mut gather_until: Option<tokio::time::Instant> = None;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline || gather_until.is_some_and(|g| now >= g) {
                break;
            }
            let peers = self.net.peers().await.unwrap_or_default();
            let mut answers = JoinSet::new();
            for peer in peers.into_iter().filter(|p| !asked.contains(p)) {
                let net = self.net.clone();
                answers
                    .spawn(async move { (peer, net.request(peer, SyncRequest::Snapshots).await) });
            }
            while let Some(Ok((peer, answer))) = answers.join_next().await {
                asked.insert(peer);
                let Ok(SyncResponse::Snapshots { manifests }) = answer else {
                    continue;
                };
                for raw in manifests {
                    self.consider(peer, &raw, refused, trust, &mut offers).await;
                }
            }
            if !offers.is_empty() && gather_until.is_none() {
                gather_until = Some(tokio::time::Instant::now() + self.cfg.gather);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Offered by two peers or more first: one peer alone can pair a
        // real certificate with a made-up chunk list.
        offers
            .into_values()
            .max_by_key(|o| (o.peers.len() >= 2, o.manifest.height(), o.peers.len()))
    }

    /// Checks one offered manifest and files it under its id. One
    /// decided by a set this node does not know yet makes it walk the
    /// validator-set changes the peer knows of first.
    async fn consider(
        &self,
        peer: PeerId,
        raw: &[u8],
        refused: &HashSet<Hash>,
        trust: &mut Trust,
        offers: &mut HashMap<Hash, Offer>,
    ) {
        let checked = match decode::<Manifest>(raw) {
            Err(e) => Err(Some(e.to_string())),
            Ok(m) => {
                let mut verdict = m.check(&self.chain_id, self.genesis_hash, trust);
                // Decided by a set not known yet: walk the changes, then
                // look again.
                if trust.block().is_none()
                    && matches!(verdict, Err(ManifestError::Untrusted { .. }))
                {
                    self.walk_to(peer, trust, &m).await;
                    verdict = m.check(&self.chain_id, self.genesis_hash, trust);
                }
                match verdict {
                    Ok(()) => Ok(m),
                    // Not the peer's fault: its snapshot is of a block this
                    // node cannot trust on its own, or of another format.
                    Err(
                        ManifestError::Untrusted { .. }
                        | ManifestError::TrustHeight { .. }
                        | ManifestError::TrustMismatch { .. }
                        | ManifestError::TooOld { .. }
                        | ManifestError::Format(_),
                    ) => Err(None),
                    Err(e) => Err(Some(e.to_string())),
                }
            }
        };
        let manifest = match checked {
            Ok(m) => m,
            Err(why) => {
                if let Some(why) = why {
                    let _ = self.net.penalize(peer, "bad_snapshot_manifest", why).await;
                }
                return;
            }
        };
        let id = manifest.id();
        if refused.contains(&id) {
            return;
        }
        let offer = offers.entry(id).or_insert_with(|| Offer {
            manifest,
            peers: Vec::new(),
        });
        if !offer.peers.contains(&peer) {
            offer.peers.push(peer);
        }
    }

    /// Walks validator-set changes until the set `m` names is the one
    /// trusted at its height: from `offerer` first, then from each other
    /// peer (one may know of changes another lacks, a node that started
    /// from a snapshot, say).
    async fn walk_to(&self, offerer: PeerId, trust: &mut Trust, m: &Manifest) {
        let target = m.validators.hash();
        let mut peers = vec![offerer];
        peers.extend(
            self.net
                .peers()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|p| *p != offerer),
        );
        for peer in peers {
            if trust.set_at(m.height()).hash() == target {
                return;
            }
            self.walk(peer, trust, m.height()).await;
        }
    }

    /// Asks `peer` for the validator-set changes after the last one
    /// walked, and walks those below `height`, until the peer knows of no
    /// more or they reach `height`. A change that is false whatever this
    /// node trusts gets the peer penalized; one it cannot place (the peer
    /// knows of fewer changes, or others) ends the walk.
    async fn walk(&self, peer: PeerId, trust: &mut Trust, height: Height) {
        for _ in 0..MAX_WALK_REQUESTS {
            let after = trust.walked_to();
            if after >= height {
                return;
            }
            let Ok(SyncResponse::SetChanges { changes }) = self
                .net
                .request(peer, SyncRequest::SetChanges { after })
                .await
            else {
                return;
            };
            let full = changes.len() >= MAX_SET_CHANGES;
            for change in changes {
                if change.height() >= height {
                    return;
                }
                let at = change.height();
                if let Err(e) = trust.walk(&self.chain_id, change) {
                    tracing::warn!(%peer, height = %at, error = %e, "state sync: a validator-set change does not verify");
                    if e.is_forged() {
                        let why = format!("validator-set change at {at}: {e}");
                        let _ = self.net.penalize(peer, "bad_set_change", why).await;
                    }
                    return;
                }
                tracing::info!(height = %at, "state sync: validator-set change verified");
            }
            if !full {
                return;
            }
        }
    }

    /// Fetches, checks and stores every chunk of `offer`, then makes its
    /// block the ledger's latest (with the validator-set changes walked
    /// below it, so that this node can pass them on).
    async fn fetch(&self, offer: Offer, walked: Vec<SetChange>) -> Result<Attempt, SnapshotError> {
        let mut chunks = ChunkFetch::new(self, offer);
        while chunks.next_to_check < chunks.total {
            chunks.request_more();
            let Some(joined) = chunks.inflight.join_next().await else {
                return Ok(Attempt::Drop("no peer offering it is left".into()));
            };
            let Ok((index, peer, answer)) = joined else {
                continue;
            };
            chunks.take_answer(index, peer, answer).await;
            if let Some(dropped) = chunks.check_ready().await? {
                return Ok(dropped);
            }
        }
        if !chunks.verifier.is_complete() {
            return Ok(Attempt::Drop(
                "its chunks end before its state tree does".into(),
            ));
        }
        self.finish_import(chunks.manifest, walked).await?;
        Ok(Attempt::Done(chunks.counts))
    }

    /// Stores the validator-set changes walked below the snapshot and
    /// makes its block the ledger's latest.
    async fn finish_import(
        &self,
        manifest: Manifest,
        walked: Vec<SetChange>,
    ) -> Result<(), SnapshotError> {
        let height = manifest.height();
        let ledger = self.ledger.clone();
        let chain_id = self.chain_id.clone();
        let genesis_hash = self.genesis_hash;
        tokio::task::spawn_blocking(move || {
            ledger.put_set_changes(&walked)?;
            ledger.finish_import(SnapshotBase {
                chain_id: &chain_id,
                genesis_hash,
                header: &manifest.header,
                commit: &manifest.commit,
                validators: &manifest.validators,
                next_validators: &manifest.next_validators,
                state_root: manifest.state_root(),
                receipts_root: manifest.receipts_root(),
            })
        })
        .await
        .map_err(|e| SnapshotError::Unavailable {
            height,
            why: format!("finishing the import stopped: {e}"),
        })??;
        Ok(())
    }
}

/// A chunk request's answer: the chunk's index, who was asked, and what
/// it said.
type ChunkAnswer = (usize, PeerId, Result<SyncResponse, String>);

/// One snapshot's chunks being fetched: what is still to ask for, what
/// is in flight, and what came in ahead of its turn to be checked.
struct ChunkFetch<'a> {
    joiner: &'a Joiner,
    manifest: Manifest,
    peers: Vec<PeerId>,
    height: Height,
    total: usize,
    verifier: Verifier,
    counts: Counts,
    todo: VecDeque<usize>,
    ready: BTreeMap<usize, Vec<u8>>,
    next_to_check: usize,
    turn: usize,
    inflight: JoinSet<ChunkAnswer>,
    shown: usize,
    /// Chunks are held until their turn to be checked: at most this far
    /// ahead of it, whatever a slow peer holds up.
    window: usize,
    /// Requests that failed, per peer: a second one drops the peer.
    failures: HashMap<PeerId, u32>,
}

impl<'a> ChunkFetch<'a> {
    fn new(joiner: &'a Joiner, offer: Offer) -> ChunkFetch<'a> {
        let Offer { manifest, peers } = offer;
        let height = manifest.height();
        let total = manifest.chunks.len();
        ChunkFetch {
            joiner,
            verifier: Verifier::new(manifest.state_root()),
            manifest,
            peers,
            height,
            total,
            counts: Counts::default(),
            todo: (0..total).collect(),
            ready: BTreeMap::new(),
            next_to_check: 0,
            turn: 0,
            inflight: JoinSet::new(),
            shown: 0,
            window: 2 * joiner.cfg.parallel,
            failures: HashMap::new(),
        }
    }

    /// Asks the peers, in turn, for chunks up to the window's end, as
    /// many at once as the config allows.
    fn request_more(&mut self) {
        while self.inflight.len() < self.joiner.cfg.parallel && !self.peers.is_empty() {
            if self
                .todo
                .front()
                .is_none_or(|i| *i >= self.next_to_check + self.window)
            {
                break;
            }
            let Some(index) = self.todo.pop_front() else {
                break;
            };
            let peer = self.peers[self.turn % self.peers.len()];
            self.turn = self.turn.wrapping_add(1);
            let net = self.joiner.net.clone();
            let request = SyncRequest::Chunk {
                height: self.height,
                index: index as u32,
            };
            self.inflight.spawn(async move {
                let r = net.request(peer, request).await.map_err(|e| e.to_string());
                (index, peer, r)
            });
        }
    }

    /// Keeps a chunk that matches its hash for its turn; otherwise asks
    /// for it again, from others where `peer` is at fault.
    async fn take_answer(
        &mut self,
        index: usize,
        peer: PeerId,
        answer: Result<SyncResponse, String>,
    ) {
        let height = self.height;
        let peers = &mut self.peers;
        let todo = &mut self.todo;
        let info = self.manifest.chunks[index];
        match answer {
            Ok(SyncResponse::Chunk { chunk: Some(bytes) })
                if bytes.len() == info.bytes as usize && sha256(&bytes) == info.hash =>
            {
                self.ready.insert(index, bytes);
            }
            Ok(SyncResponse::Chunk { chunk: Some(_) }) => {
                let why =
                    format!("chunk {index} of the snapshot of {height} does not match its hash");
                tracing::warn!(%peer, %why, "state sync: bad chunk");
                let _ = self
                    .joiner
                    .net
                    .penalize(peer, "bad_snapshot_chunk", why)
                    .await;
                peers.retain(|p| *p != peer);
                todo.push_front(index);
            }
            // No longer offered there: ask the others.
            Ok(SyncResponse::Chunk { chunk: None }) | Ok(_) => {
                peers.retain(|p| *p != peer);
                todo.push_front(index);
            }
            // The request failed (timed out, disconnected): once may
            // be bad luck.
            Err(_) => {
                let n = self.failures.entry(peer).or_default();
                *n += 1;
                if *n >= 2 {
                    peers.retain(|p| *p != peer);
                }
                todo.push_front(index);
            }
        }
    }

    /// Checks and stores the chunks whose turn has come, in order;
    /// `Some` when one shows the snapshot false.
    async fn check_ready(&mut self) -> Result<Option<Attempt>, SnapshotError> {
        let height = self.height;
        let total = self.total;
        while let Some(bytes) = self.ready.remove(&self.next_to_check) {
            let next_to_check = self.next_to_check;
            let proven = match self.verifier.feed(&bytes) {
                Ok(p) => p,
                Err(e) => {
                    // It matched the hash its manifest gave: the
                    // manifest itself is false, and so is everyone who
                    // offered it.
                    for p in &self.peers {
                        let why = format!("offered a snapshot of {height} whose chunk {next_to_check} does not verify: {e}");
                        let _ = self.joiner.net.penalize(*p, "bad_snapshot", why).await;
                    }
                    return Ok(Some(Attempt::Drop(format!("chunk {next_to_check}: {e}"))));
                }
            };
            self.counts.pages += proven.pages.len() as u64;
            self.counts.values += proven.values.len() as u64;
            let ledger = self.joiner.ledger.clone();
            tokio::task::spawn_blocking(move || {
                ledger.put_proven_state(height, &proven.pages, &proven.values)
            })
            .await
            .map_err(|e| SnapshotError::Unavailable {
                height,
                why: format!("writing the state stopped: {e}"),
            })??;
            self.next_to_check += 1;
            let next_to_check = self.next_to_check;
            if next_to_check * 10 / total.max(1) > self.shown {
                self.shown = next_to_check * 10 / total.max(1);
                tracing::info!(%height, chunks = next_to_check, of = total, "state sync: chunks checked");
            }
        }
        Ok(None)
    }
}
