//! Serving the blob protocol: what this node holds, and pieces to peers
//! whose permits check out, within the upload limits.

use std::sync::Arc;

use futures::future::BoxFuture;
use libp2p::PeerId;
use palisade_files::wire::{BlobRequest, BlobResponse, Holding, Refusal};
use palisade_files::{FileError, FileRoot};

use super::{FileService, FilesError};
use palisade_network::BlobServer;

/// The refusal a peer gets for `e`.
fn refusal(e: &FilesError) -> Refusal {
    match e {
        FilesError::Unknown(_) => Refusal::Unknown,
        FilesError::Withdrawn(_) => Refusal::Withdrawn,
        FilesError::NotAReader(_) => Refusal::NotAReader,
        FilesError::BadPermit(_) => Refusal::BadPermit,
        _ => Refusal::NotHeld,
    }
}

/// Most pieces one peer may have being served at once: a peer that asks
/// for more (past what an honest downloader keeps in flight) is told busy.
const PER_PEER_SERVING: usize = 8;

/// One of a peer's [`PER_PEER_SERVING`] slots, while it lives.
struct PeerSlot<'a> {
    svc: &'a FileService,
    peer: PeerId,
}

impl<'a> PeerSlot<'a> {
    fn take(svc: &'a FileService, peer: PeerId) -> Option<PeerSlot<'a>> {
        let mut m = svc.serving_peers.lock().ok()?;
        let n = m.entry(peer).or_insert(0);
        if *n >= PER_PEER_SERVING {
            return None;
        }
        *n += 1;
        Some(PeerSlot { svc, peer })
    }
}

impl Drop for PeerSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.svc.serving_peers.lock() {
            if let Some(n) = m.get_mut(&self.peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.peer);
                }
            }
        }
    }
}

/// Counts a piece being served for GC's sake while it lives.
struct Serving<'a> {
    svc: &'a FileService,
    root: FileRoot,
}

impl<'a> Serving<'a> {
    fn start(svc: &'a FileService, root: FileRoot) -> Serving<'a> {
        if let Ok(mut m) = svc.serving_now.lock() {
            *m.entry(root).or_insert(0) += 1;
        }
        Serving { svc, root }
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.svc.serving_now.lock() {
            if let Some(n) = m.get_mut(&self.root) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.root);
                }
            }
        }
    }
}

impl FileService {
    /// The piece `piece` of `root`, encoded, for `peer` with `permit`.
    fn piece_for(
        &self,
        peer: &PeerId,
        root: &FileRoot,
        piece: u64,
        permit: &palisade_files::SignedReadPermit,
    ) -> Result<Vec<u8>, FilesError> {
        let (rec, _) = self.check_permit(permit, palisade_files::Purpose::Fetch, root, peer)?;
        let mut out = Vec::with_capacity(palisade_files::MAX_ENCODED_PIECE_BYTES);
        match self.store.encode_piece(root, rec.size, piece, &mut out) {
            Ok(()) => {
                if self.corrupt.load(std::sync::atomic::Ordering::Relaxed) {
                    let mid = out.len() / 2;
                    if let Some(b) = out.get_mut(mid) {
                        *b ^= 0x40;
                    }
                }
                Ok(out)
            }
            Err(e @ FileError::Corrupt { .. }) => {
                // Our own copy rotted: say we do not hold it, and say so
                // loudly here (the operator should remove it).
                tracing::error!(%root, piece, error = %e, "a stored file does not verify; not serving it");
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn answer(self: Arc<Self>, peer: PeerId, request: BlobRequest) -> BlobResponse {
        match request {
            BlobRequest::Have { root } => {
                let svc = self.clone();
                match tokio::task::spawn_blocking(move || svc.holding(&root)).await {
                    Ok(Ok(holding)) => {
                        // A big file's piece bits count against the upload
                        // limits like pieces do.
                        if let Holding::Partial { bits } = &holding {
                            self.limiter.acquire(peer, bits.len() as u64).await;
                        }
                        BlobResponse::Have { holding }
                    }
                    Ok(Err(e)) => BlobResponse::refused(Refusal::NotHeld, &e.to_string()),
                    Err(_) => BlobResponse::refused(Refusal::Busy, "the node is shutting down"),
                }
            }
            BlobRequest::Piece {
                root,
                piece,
                permit,
            } => {
                let Some(_peer_slot) = PeerSlot::take(&self, peer) else {
                    self.metrics.count_file_refusal("busy");
                    return BlobResponse::refused(
                        Refusal::Busy,
                        "this peer has as many pieces on the way as it may",
                    );
                };
                // Paid for before a serving slot is taken: a peer over its
                // bandwidth waits without holding one of the slots others
                // are served from.
                self.limiter
                    .acquire(peer, palisade_files::PIECE_BYTES)
                    .await;
                let Ok(_slot) = self.serving.try_acquire() else {
                    self.metrics.count_file_refusal("busy");
                    return BlobResponse::refused(Refusal::Busy, "serving all it may now");
                };
                let _serving = Serving::start(&self, root);
                let svc = self.clone();
                let encoded = tokio::task::spawn_blocking(move || {
                    svc.piece_for(&peer, &root, piece, &permit)
                })
                .await;
                let encoded = match encoded {
                    Ok(Ok(e)) => e,
                    Ok(Err(e)) => {
                        let r = refusal(&e);
                        self.metrics.count_file_refusal(refusal_name(r));
                        tracing::debug!(%peer, %root, piece, error = %e, "piece refused");
                        return BlobResponse::refused(r, &e.to_string());
                    }
                    Err(_) => {
                        return BlobResponse::refused(Refusal::Busy, "the node is shutting down")
                    }
                };
                self.metrics.count_file_upload(encoded.len() as u64);
                match palisade_types::BoundedBytes::new(encoded) {
                    Ok(encoded) => BlobResponse::Piece { encoded },
                    Err(_) => BlobResponse::refused(Refusal::NotHeld, "piece too large"),
                }
            }
        }
    }
}

pub(crate) fn refusal_name(r: Refusal) -> &'static str {
    match r {
        Refusal::Unknown => "unknown",
        Refusal::Withdrawn => "withdrawn",
        Refusal::NotAReader => "not_a_reader",
        Refusal::BadPermit => "bad_permit",
        Refusal::NotHeld => "not_held",
        Refusal::Busy => "busy",
    }
}

/// The node's [`BlobServer`]: its file service.
#[derive(Debug, Clone)]
pub struct Blobs(pub Arc<FileService>);

impl BlobServer for Blobs {
    fn serve(&self, peer: PeerId, request: BlobRequest) -> BoxFuture<'static, BlobResponse> {
        Box::pin(self.0.clone().answer(peer, request))
    }
}
