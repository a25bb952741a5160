//! One download: asks peers what they hold, keeps several piece requests
//! in flight across them as the scheduler ([`palisade_files::swarm`])
//! says, verifies and writes each piece as it comes, and reports progress.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use libp2p::PeerId;
use palisade_files::swarm::{Download, Outcome, PeerHolds};
use palisade_files::wire::{BlobRequest, BlobResponse, Holding, Refusal};
use palisade_files::{piece_count, FileError, FileRoot, PartialFile, SignedReadPermit};
use palisade_rpc::files::types::{FilePhase, FileProgress};
use palisade_runtime::files::FileRecord;
use tokio::sync::{broadcast, Notify};

use super::pins::PinReason;
use super::writer::{Writer, Written};
use super::FileService;
use palisade_network::{NetError, NetworkHandle};

/// How often a download asks its peers again what they hold.
const ASK_AGAIN: Duration = Duration::from_secs(3);
/// Longest one piece request may take before its peer is rested and the
/// piece asked of another (the network's own limit is a minute).
const PIECE_TIMEOUT: Duration = Duration::from_secs(20);
/// The window the download rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// A download's progress, as `file_status` and its subscription give it.
pub type Progress = FileProgress;
/// Where a download stands.
pub type Phase = FilePhase;

/// This node's complete copy of a `size`-byte file.
pub fn complete(root: FileRoot, size: u64) -> Progress {
    let pieces = piece_count(size);
    Progress {
        root,
        phase: Phase::Complete,
        size,
        pieces,
        pieces_held: pieces,
        bytes_held: size,
        peers: 0,
        rate: 0,
        elapsed_ms: 0,
        error: None,
    }
}

/// `held` pieces of a file whose download is not running.
pub fn stopped(root: FileRoot, size: u64, held: u64) -> Progress {
    Progress {
        phase: Phase::Stopped,
        pieces_held: held,
        bytes_held: bytes_of(size, held),
        ..complete(root, size)
    }
}

/// Bytes in `held` pieces of a `size`-byte file (the last may be short;
/// counted as full, then capped).
fn bytes_of(size: u64, held: u64) -> u64 {
    held.saturating_mul(palisade_files::PIECE_BYTES).min(size)
}

/// A download's shared state: its progress, and the means to stop it or
/// point it at a new holder.
#[derive(Debug)]
pub struct DownloadState {
    progress: Mutex<Progress>,
    started: Instant,
    running: AtomicBool,
    cancelled: Mutex<Option<String>>,
    hints: Mutex<Vec<PeerId>>,
    wake: Notify,
    feed: broadcast::Sender<FileProgress>,
}

impl DownloadState {
    pub(crate) fn new(
        root: FileRoot,
        size: u64,
        feed: broadcast::Sender<FileProgress>,
    ) -> DownloadState {
        let mut p = stopped(root, size, 0);
        p.phase = Phase::Downloading;
        DownloadState {
            progress: Mutex::new(p),
            started: Instant::now(),
            running: AtomicBool::new(true),
            cancelled: Mutex::new(None),
            hints: Mutex::new(Vec::new()),
            wake: Notify::new(),
            feed,
        }
    }

    pub fn progress(&self) -> Progress {
        let mut p = self
            .progress
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        if self.is_running() {
            p.elapsed_ms = self.elapsed_ms();
        }
        p
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Stops the download at its next step, saying why.
    pub fn cancel(&self, why: &str) {
        if let Ok(mut c) = self.cancelled.lock() {
            *c = Some(why.to_string());
        }
        self.wake.notify_one();
    }

    pub(crate) fn hint(&self, holder: PeerId) {
        if let Ok(mut h) = self.hints.lock() {
            if h.len() < 256 {
                h.push(holder);
            }
        }
        self.wake.notify_one();
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        let elapsed = self.elapsed_ms();
        let snapshot = match self.progress.lock() {
            Ok(mut p) => {
                f(&mut p);
                p.elapsed_ms = elapsed;
                p.clone()
            }
            Err(_) => return,
        };
        let _ = self.feed.send(snapshot);
    }

    fn end(&self, phase: Phase, error: Option<String>) {
        self.update(|p| {
            p.phase = phase;
            p.error = error;
            p.rate = 0;
        });
        self.running.store(false, Ordering::Relaxed);
    }
}

/// A piece request's answer; `Err(())` when it took too long.
type Pending =
    futures::future::BoxFuture<'static, (PeerId, u64, Result<Result<BlobResponse, NetError>, ()>)>;
type HaveAnswer = futures::future::BoxFuture<'static, (PeerId, Result<BlobResponse, NetError>)>;

/// Runs the download of `rec` with `permit` to its end.
pub(crate) async fn run(
    svc: Arc<FileService>,
    state: Arc<DownloadState>,
    rec: FileRecord,
    permit: SignedReadPermit,
) {
    let root = FileRoot(rec.root.0);
    let result = fetch(&svc, &state, &rec, permit).await;
    match result {
        Ok(()) => {
            tracing::info!(%root, size = rec.size, "file downloaded");
            if let Err(e) = svc.pins.add(&root, PinReason::Fetched) {
                tracing::warn!(%root, error = %e, "cannot pin the downloaded file");
            }
            if let Ok(net) = svc.net() {
                let _ = net.announce_file(root, true).await;
            }
            state.end(Phase::Complete, None);
        }
        Err(e) => {
            tracing::warn!(%root, error = %e, "download stopped");
            state.end(Phase::Failed, Some(e));
        }
    }
}

async fn fetch(
    svc: &Arc<FileService>,
    state: &Arc<DownloadState>,
    rec: &FileRecord,
    permit: SignedReadPermit,
) -> Result<(), String> {
    let mut fetch = Fetch::start(svc, state, rec, permit).await?;
    let mut tick = tokio::time::interval(ASK_AGAIN);
    while !fetch.dl.is_complete() {
        if let Some(why) = state.cancelled.lock().ok().and_then(|c| c.clone()) {
            return Err(why);
        }
        fetch.ask_pieces();
        tokio::select! {
            Some((peer, answer)) = fetch.haves.next() => fetch.on_have(peer, answer),
            Some((peer, piece, answer)) = fetch.inflight.next() => {
                fetch.on_piece(peer, piece, answer).await?;
            }
            Some(w) = fetch.writer.done.recv() => fetch.on_written(w?).await?,
            _ = tick.tick() => fetch.on_tick().await?,
            _ = state.wake.notified() => fetch.on_wake(),
        }
    }
    let partial = fetch.writer.close().await?;
    tokio::task::spawn_blocking(move || finish(partial))
        .await
        .map_err(|e| e.to_string())?
}

/// A running download: the scheduler, the writer, the requests in flight
/// and what the peers have said so far.
struct Fetch<'a> {
    svc: &'a Arc<FileService>,
    state: &'a Arc<DownloadState>,
    net: NetworkHandle,
    root: FileRoot,
    size: u64,
    total: u64,
    permit: SignedReadPermit,
    dl: Download<PeerId>,
    writer: Writer,
    inflight: FuturesUnordered<Pending>,
    haves: FuturesUnordered<HaveAnswer>,
    asked_at: HashMap<PeerId, Instant>,
    refusals: HashMap<PeerId, String>,
    recent: VecDeque<(Instant, u64)>,
    announced_partial: bool,
}

impl<'a> Fetch<'a> {
    /// Opens the partial copy of `rec` and reports what it already holds.
    async fn start(
        svc: &'a Arc<FileService>,
        state: &'a Arc<DownloadState>,
        rec: &FileRecord,
        permit: SignedReadPermit,
    ) -> Result<Fetch<'a>, String> {
        let root = FileRoot(rec.root.0);
        let size = rec.size;
        let net = svc.net().map_err(|e| e.to_string())?.clone();
        let partial = {
            let svc = svc.clone();
            tokio::task::spawn_blocking(move || svc.store.partial(root, size))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        };
        let dl: Download<PeerId> = Download::new(size, |i| partial.has(i));
        let writer = Writer::start(partial);
        let total = piece_count(size);
        state.update(|p| {
            p.pieces_held = total - dl.remaining();
            p.bytes_held = bytes_of(size, p.pieces_held);
        });
        Ok(Fetch {
            svc,
            state,
            net,
            root,
            size,
            total,
            permit,
            dl,
            writer,
            inflight: FuturesUnordered::new(),
            haves: FuturesUnordered::new(),
            asked_at: HashMap::new(),
            refusals: HashMap::new(),
            recent: VecDeque::new(),
            announced_partial: false,
        })
    }

    fn ask_have(&self, peer: PeerId) -> HaveAnswer {
        let net = self.net.clone();
        let root = self.root;
        Box::pin(async move {
            (
                peer,
                net.blob_request(peer, BlobRequest::Have { root }).await,
            )
        })
    }

    /// Sends the piece requests the scheduler wants sent now.
    fn ask_pieces(&mut self) {
        let now = Instant::now();
        for ask in self.dl.next_asks(now) {
            let net = self.net.clone();
            let request = BlobRequest::Piece {
                root: self.root,
                piece: ask.piece,
                permit: self.permit.clone(),
            };
            self.inflight.push(Box::pin(async move {
                let answer =
                    tokio::time::timeout(PIECE_TIMEOUT, net.blob_request(ask.peer, request))
                        .await
                        .map_err(|_| ());
                (ask.peer, ask.piece, answer)
            }));
        }
    }

    fn on_have(&mut self, peer: PeerId, answer: Result<BlobResponse, NetError>) {
        let dl = &mut self.dl;
        match answer {
            Ok(BlobResponse::Have {
                holding: Holding::Complete,
            }) => dl.peer_holds(peer, PeerHolds::All),
            Ok(BlobResponse::Have {
                holding: Holding::Partial { bits },
            }) => {
                dl.peer_holds(peer, PeerHolds::Some(bits.into_inner()));
            }
            // It holds nothing (any more): drop what it said before.
            Ok(BlobResponse::Have {
                holding: Holding::Nothing,
            }) => dl.peer_gone(&peer),
            _ => {}
        }
    }

    async fn on_piece(
        &mut self,
        peer: PeerId,
        piece: u64,
        answer: Result<Result<BlobResponse, NetError>, ()>,
    ) -> Result<(), String> {
        let dl = &mut self.dl;
        if !dl.wanted(&peer, piece) {
            // Cancelled (another peer's copy won): dropped unread.
            return Ok(());
        }
        let outcome = match answer {
            Ok(Ok(BlobResponse::Piece { encoded })) => {
                // Stays in flight until the writer has verified it.
                self.writer.submit(peer, piece, encoded).await?;
                return Ok(());
            }
            Ok(Ok(BlobResponse::Refused { reason, message })) => {
                if matches!(
                    reason,
                    Refusal::BadPermit
                        | Refusal::NotAReader
                        | Refusal::Withdrawn
                        | Refusal::Unknown
                ) {
                    self.refusals
                        .insert(peer, format!("{peer} refused: {message}"));
                }
                if reason != Refusal::Busy {
                    // What it said it held is stale, or it will not
                    // serve this reader: forget it until it says
                    // again (it is asked every few seconds).
                    dl.done(peer, piece, Outcome::Failed, Instant::now());
                    dl.peer_gone(&peer);
                    return Ok(());
                }
                Outcome::Failed
            }
            Ok(Ok(BlobResponse::Have { .. })) | Ok(Err(_)) => Outcome::Failed,
            Err(()) => Outcome::TimedOut,
        };
        dl.done(peer, piece, outcome, Instant::now());
        Ok(())
    }

    async fn on_written(&mut self, w: Written) -> Result<(), String> {
        let Written {
            peer,
            piece,
            bytes,
            result,
        } = w;
        let outcome = match result {
            Ok(()) => {
                self.svc.metrics.count_file_download(bytes);
                self.recent.push_back((Instant::now(), bytes));
                Outcome::Verified
            }
            Err(FileError::Io(e)) => return Err(format!("writing piece {piece}: {e}")),
            Err(e) => {
                let root = self.root;
                let _ = self
                    .net
                    .penalize(
                        peer,
                        "bad_file_piece",
                        format!("sent piece {piece} of {root} that does not verify: {e}"),
                    )
                    .await;
                Outcome::Corrupt
            }
        };
        self.dl.done(peer, piece, outcome, Instant::now());
        if outcome == Outcome::Verified && !self.announced_partial {
            self.announced_partial = true;
            let _ = self.net.announce_file(self.root, false).await;
        }
        self.report_held();
        Ok(())
    }

    /// Reports the pieces held and the rate over the last [`RATE_WINDOW`].
    fn report_held(&mut self) {
        let held = self.total - self.dl.remaining();
        let now = Instant::now();
        let recent = &mut self.recent;
        while recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            recent.pop_front();
        }
        let window: u64 = recent.iter().map(|(_, n)| n).sum();
        let size = self.size;
        self.state.update(|p| {
            p.pieces_held = held;
            p.bytes_held = bytes_of(size, held);
            p.rate = window / RATE_WINDOW.as_secs().max(1);
        });
    }

    async fn on_tick(&mut self) -> Result<(), String> {
        let peers = self.net.peers().await.map_err(|e| e.to_string())?;
        let now = Instant::now();
        let connected: HashSet<PeerId> = peers.iter().copied().collect();
        for p in peers {
            if self
                .asked_at
                .get(&p)
                .is_none_or(|t| now.duration_since(*t) >= ASK_AGAIN)
            {
                self.asked_at.insert(p, now);
                self.haves.push(self.ask_have(p));
            }
        }
        self.asked_at.retain(|p, _| connected.contains(p));
        // Peers gone from the network take their holdings along.
        for p in self.dl.peer_ids() {
            if !connected.contains(&p) {
                self.dl.peer_gone(&p);
            }
        }
        // Counted here, not per piece: it looks at every missing piece.
        let useful = self.dl.useful_peers();
        if useful == 0 && self.dl.in_flight() == 0 && !self.refusals.is_empty() {
            let mut why: Vec<String> = self.refusals.values().cloned().collect();
            why.sort();
            return Err(why.join("; "));
        }
        self.state.update(|p| p.peers = useful);
        Ok(())
    }

    fn on_wake(&mut self) {
        let hinted: Vec<PeerId> = self
            .state
            .hints
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        for p in hinted {
            self.asked_at.insert(p, Instant::now());
            self.haves.push(self.ask_have(p));
        }
    }
}

fn finish(p: PartialFile) -> Result<(), String> {
    p.finish().map(|_| ()).map_err(|e| e.to_string())
}
