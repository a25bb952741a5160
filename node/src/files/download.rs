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
use palisade_network::NetError;

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
    let mut dl: Download<PeerId> = Download::new(size, |i| partial.has(i));
    let mut writer = Writer::start(partial);
    let total = piece_count(size);
    state.update(|p| {
        p.pieces_held = total - dl.remaining();
        p.bytes_held = bytes_of(size, p.pieces_held);
    });

    let mut inflight: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut haves: FuturesUnordered<HaveAnswer> = FuturesUnordered::new();
    let mut asked_at: HashMap<PeerId, Instant> = HashMap::new();
    let mut refusals: HashMap<PeerId, String> = HashMap::new();
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut announced_partial = false;
    let mut tick = tokio::time::interval(ASK_AGAIN);
    let ask_have = |peer: PeerId| -> HaveAnswer {
        let net = net.clone();
        Box::pin(async move {
            (
                peer,
                net.blob_request(peer, BlobRequest::Have { root }).await,
            )
        })
    };

    while !dl.is_complete() {
        if let Some(why) = state.cancelled.lock().ok().and_then(|c| c.clone()) {
            return Err(why);
        }
        let now = Instant::now();
        for ask in dl.next_asks(now) {
            let net = net.clone();
            let request = BlobRequest::Piece {
                root,
                piece: ask.piece,
                permit: permit.clone(),
            };
            inflight.push(Box::pin(async move {
                let answer =
                    tokio::time::timeout(PIECE_TIMEOUT, net.blob_request(ask.peer, request))
                        .await
                        .map_err(|_| ());
                (ask.peer, ask.piece, answer)
            }));
        }
        tokio::select! {
            Some((peer, answer)) = haves.next() => {
                match answer {
                    Ok(BlobResponse::Have { holding: Holding::Complete }) => dl.peer_holds(peer, PeerHolds::All),
                    Ok(BlobResponse::Have { holding: Holding::Partial { bits } }) => {
                        dl.peer_holds(peer, PeerHolds::Some(bits.into_inner()));
                    }
                    // It holds nothing (any more): drop what it said before.
                    Ok(BlobResponse::Have { holding: Holding::Nothing }) => dl.peer_gone(&peer),
                    _ => {}
                }
            }
            Some((peer, piece, answer)) = inflight.next() => {
                if !dl.wanted(&peer, piece) {
                    // Cancelled (another peer's copy won): dropped unread.
                    continue;
                }
                let outcome = match answer {
                    Ok(Ok(BlobResponse::Piece { encoded })) => {
                        // Stays in flight until the writer has verified it.
                        writer.submit(peer, piece, encoded).await?;
                        continue;
                    }
                    Ok(Ok(BlobResponse::Refused { reason, message })) => {
                        if matches!(reason, Refusal::BadPermit | Refusal::NotAReader | Refusal::Withdrawn | Refusal::Unknown) {
                            refusals.insert(peer, format!("{peer} refused: {message}"));
                        }
                        if reason != Refusal::Busy {
                            // What it said it held is stale, or it will not
                            // serve this reader: forget it until it says
                            // again (it is asked every few seconds).
                            dl.done(peer, piece, Outcome::Failed, Instant::now());
                            dl.peer_gone(&peer);
                            continue;
                        }
                        Outcome::Failed
                    }
                    Ok(Ok(BlobResponse::Have { .. })) | Ok(Err(_)) => Outcome::Failed,
                    Err(()) => Outcome::TimedOut,
                };
                dl.done(peer, piece, outcome, Instant::now());
            }
            Some(w) = writer.done.recv() => {
                let Written { peer, piece, bytes, result } = w?;
                let outcome = match result {
                    Ok(()) => {
                        svc.metrics.count_file_download(bytes);
                        recent.push_back((Instant::now(), bytes));
                        Outcome::Verified
                    }
                    Err(FileError::Io(e)) => return Err(format!("writing piece {piece}: {e}")),
                    Err(e) => {
                        let _ = net
                            .penalize(peer, "bad_file_piece", format!("sent piece {piece} of {root} that does not verify: {e}"))
                            .await;
                        Outcome::Corrupt
                    }
                };
                dl.done(peer, piece, outcome, Instant::now());
                if outcome == Outcome::Verified && !announced_partial {
                    announced_partial = true;
                    let _ = net.announce_file(root, false).await;
                }
                let held = total - dl.remaining();
                let now = Instant::now();
                while recent.front().is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW) {
                    recent.pop_front();
                }
                let window: u64 = recent.iter().map(|(_, n)| n).sum();
                state.update(|p| {
                    p.pieces_held = held;
                    p.bytes_held = bytes_of(size, held);
                    p.rate = window / RATE_WINDOW.as_secs().max(1);
                });
            }
            _ = tick.tick() => {
                let peers = net.peers().await.map_err(|e| e.to_string())?;
                let now = Instant::now();
                let connected: HashSet<PeerId> = peers.iter().copied().collect();
                for p in peers {
                    if asked_at.get(&p).is_none_or(|t| now.duration_since(*t) >= ASK_AGAIN) {
                        asked_at.insert(p, now);
                        haves.push(ask_have(p));
                    }
                }
                asked_at.retain(|p, _| connected.contains(p));
                // Peers gone from the network take their holdings along.
                for p in dl.peer_ids() {
                    if !connected.contains(&p) {
                        dl.peer_gone(&p);
                    }
                }
                // Counted here, not per piece: it looks at every missing piece.
                let useful = dl.useful_peers();
                if useful == 0 && dl.in_flight() == 0 && !refusals.is_empty() {
                    let mut why: Vec<String> = refusals.values().cloned().collect();
                    why.sort();
                    return Err(why.join("; "));
                }
                state.update(|p| p.peers = useful);
            }
            _ = state.wake.notified() => {
                let hinted: Vec<PeerId> = state.hints.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
                for p in hinted {
                    asked_at.insert(p, Instant::now());
                    haves.push(ask_have(p));
                }
            }
        }
    }
    let partial = writer.close().await?;
    tokio::task::spawn_blocking(move || finish(partial))
        .await
        .map_err(|e| e.to_string())?
}

fn finish(p: PartialFile) -> Result<(), String> {
    p.finish().map(|_| ()).map_err(|e| e.to_string())
}
