//! Shared files in the node: serving the pieces it holds to permitted
//! readers, downloads from many peers at once, uploads from publishers,
//! pins and garbage collection. The pieces, store and scheduler are the
//! `palisade-files` crate's; the chain's records are the runtime's
//! (`palisade_runtime::files`); this module joins them to the network and
//! the RPC.

mod download;
pub mod limiter;
pub mod pins;
mod rpc;
mod serve;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use palisade_files::wire::{BlobRequest, BlobResponse, Holding};
use palisade_files::{BlobStore, FileError, FileRoot, Held, Purpose, SignedReadPermit};
use palisade_runtime::files::FileRecord;
use palisade_runtime::state::Overlay;
use palisade_runtime::StateStore;
use palisade_types::{Address, ChainId, Hash};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Semaphore};

use crate::app::App;
use crate::metrics::Metrics;
pub use download::{DownloadState, Phase, Progress};
use limiter::UploadLimiter;
use palisade_network::NetworkHandle;
use pins::{PinReason, Pins};
pub use rpc::FilesRpc;
pub use serve::Blobs;

/// `[files]` in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSettings {
    /// Most bytes a second this node sends file pieces at, to all peers
    /// together (0: no limit).
    pub upload_bytes_per_s: u64,
    /// Most bytes a second it sends file pieces to any one peer (0: no
    /// limit).
    pub peer_upload_bytes_per_s: u64,
    /// Most pieces it serves at once; past it, a request is answered busy.
    pub max_serving: u32,
    /// Most downloads it runs at once.
    pub max_downloads: u32,
}

impl Default for FilesSettings {
    fn default() -> Self {
        FilesSettings {
            upload_bytes_per_s: 256 << 20,
            peer_upload_bytes_per_s: 128 << 20,
            max_serving: 32,
            max_downloads: 8,
        }
    }
}

/// Why a file operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("no file with root {0} is on record")]
    Unknown(FileRoot),
    #[error("file {0} was unpublished")]
    Withdrawn(FileRoot),
    #[error("account {0} may not read this file")]
    NotAReader(Address),
    #[error("the permit is void: {0}")]
    BadPermit(String),
    #[error("this node runs {0} downloads already")]
    TooManyDownloads(u32),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    BadUpload(String),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("state: {0}")]
    State(String),
    #[error("the network is not running")]
    NoNetwork,
}

/// One file as this node holds it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalFile {
    pub root: FileRoot,
    pub complete: bool,
    pub disk_bytes: u64,
    pub pins: Vec<PinReason>,
}

/// What garbage collection removed (or would remove, dry).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collected {
    pub root: FileRoot,
    pub bytes: u64,
    /// `unpinned`, `unpublished` or `not_on_record`.
    pub why: &'static str,
}

/// The node's files: its store, what it serves and what it fetches.
pub struct FileService {
    store: BlobStore,
    pins: Pins,
    chain_id: ChainId,
    app: Arc<App>,
    net: OnceLock<NetworkHandle>,
    metrics: Arc<Metrics>,
    limiter: UploadLimiter,
    serving: Semaphore,
    /// Pieces being served now, by file (GC leaves these alone).
    serving_now: Mutex<HashMap<FileRoot, usize>>,
    /// Pieces being served now, by peer.
    serving_peers: Mutex<HashMap<PeerId, usize>>,
    downloads: Mutex<HashMap<FileRoot, Arc<DownloadState>>>,
    max_downloads: u32,
    progress: broadcast::Sender<palisade_rpc::files::types::FileProgress>,
    /// TEST ONLY: flip a byte of every piece served.
    corrupt: std::sync::atomic::AtomicBool,
    /// Held by garbage collection, the start of a download and an upload's
    /// import and pin, so collection never removes a file one of them has
    /// just decided to keep.
    keep: Mutex<()>,
}

impl std::fmt::Debug for FileService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileService")
            .field("dir", &self.store.dir())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hash_of(root: &FileRoot) -> Hash {
    Hash(root.0)
}

impl FileService {
    pub fn open(
        blobs: &Path,
        settings: &FilesSettings,
        chain_id: ChainId,
        app: Arc<App>,
        metrics: Arc<Metrics>,
    ) -> Result<FileService, FilesError> {
        let store = BlobStore::open(blobs)?;
        let pins = Pins::open(blobs)?;
        Ok(FileService {
            store,
            pins,
            chain_id,
            app,
            net: OnceLock::new(),
            metrics,
            limiter: UploadLimiter::new(
                settings.upload_bytes_per_s,
                settings.peer_upload_bytes_per_s,
                2 * palisade_files::PIECE_BYTES,
            ),
            serving: Semaphore::new(settings.max_serving.max(1) as usize),
            serving_now: Mutex::new(HashMap::new()),
            serving_peers: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            max_downloads: settings.max_downloads.max(1),
            progress: broadcast::channel(256).0,
            corrupt: std::sync::atomic::AtomicBool::new(false),
            keep: Mutex::new(()),
        })
    }

    /// TEST ONLY: from now on, serve every piece with a byte flipped.
    pub fn corrupt_pieces(&self) {
        self.corrupt
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Joins the service to the running network (downloads need it).
    pub fn attach(&self, net: NetworkHandle) {
        let _ = self.net.set(net);
    }

    fn net(&self) -> Result<&NetworkHandle, FilesError> {
        self.net.get().ok_or(FilesError::NoNetwork)
    }

    /// This node's libp2p peer id (what a read permit for it names).
    pub fn peer_id(&self) -> Option<PeerId> {
        self.net.get().map(NetworkHandle::local_peer_id)
    }

    /// The chain's record of `root` at the latest committed height.
    pub fn record(&self, root: &FileRoot) -> Result<Option<FileRecord>, FilesError> {
        let store: &dyn StateStore = self.app.ledger().as_ref();
        palisade_runtime::files::record(&Overlay::new(store), &hash_of(root))
            .map_err(|e| FilesError::State(e.to_string()))
    }

    /// The record of `root` if it may be served: on record, not withdrawn.
    fn live_record(&self, root: &FileRoot) -> Result<FileRecord, FilesError> {
        let rec = self.record(root)?.ok_or(FilesError::Unknown(*root))?;
        if rec.unpublished.is_some() {
            return Err(FilesError::Withdrawn(*root));
        }
        Ok(rec)
    }

    /// Checks `permit` for a request for `root` from `peer` now, and that
    /// its reader may read the file at the latest height; the record.
    pub fn check_permit(
        &self,
        permit: &SignedReadPermit,
        purpose: Purpose,
        root: &FileRoot,
        peer: &PeerId,
    ) -> Result<(FileRecord, Address), FilesError> {
        let reader = permit
            .check(&self.chain_id, purpose, root, &peer.to_bytes(), now_ms())
            .map_err(|e| FilesError::BadPermit(e.to_string()))?;
        let rec = self.live_record(root)?;
        let store: &dyn StateStore = self.app.ledger().as_ref();
        let account = Overlay::new(store)
            .account(&reader)
            .map_err(|e| FilesError::State(e.to_string()))?;
        if !rec.may_read(&reader, account.as_ref()) {
            return Err(FilesError::NotAReader(reader));
        }
        Ok((rec, reader))
    }

    /// What this node holds of `root`, as the blob protocol says it.
    pub fn holding(&self, root: &FileRoot) -> Result<Holding, FilesError> {
        let Some(rec) = self.record(root)? else {
            return Ok(Holding::Nothing);
        };
        if rec.unpublished.is_some() {
            return Ok(Holding::Nothing);
        }
        Ok(match self.store.held(root, rec.size)? {
            Held::Nothing => Holding::Nothing,
            Held::Complete => Holding::Complete,
            Held::Partial { bits, pieces } if pieces > 0 => Holding::Partial {
                bits: palisade_types::BoundedBytes::new(bits).unwrap_or_default(),
            },
            Held::Partial { .. } => Holding::Nothing,
        })
    }

    /// Every file held here, with its pins.
    pub fn local_files(&self) -> Result<Vec<LocalFile>, FilesError> {
        self.store
            .list()?
            .into_iter()
            .map(|s| {
                Ok(LocalFile {
                    root: s.root,
                    complete: s.complete,
                    disk_bytes: s.disk_bytes,
                    pins: self.pins.reasons(&s.root)?.into_iter().collect(),
                })
            })
            .collect()
    }

    pub fn pin(&self, root: &FileRoot) -> Result<(), FilesError> {
        self.live_record(root)?;
        Ok(self.pins.add(root, PinReason::Operator)?)
    }

    /// Drops this node's pins of `root`. A file published here keeps its
    /// pin until `min_replicas` peers hold complete copies (`force`
    /// drops it anyway).
    pub async fn unpin(&self, root: &FileRoot, force: bool) -> Result<Vec<PinReason>, FilesError> {
        let reasons = self.pins.reasons(root)?;
        if reasons.contains(&PinReason::Published) && !force {
            if let Some(rec) = self.record(root)?.filter(|r| r.unpublished.is_none()) {
                let complete = self
                    .holders(root)
                    .await?
                    .iter()
                    .filter(|(_, h)| matches!(h, Holding::Complete))
                    .count();
                if complete < usize::from(rec.min_replicas) {
                    return Err(FilesError::Refused(format!(
                        "{complete} peers hold a complete copy, the record asks for {}: this node keeps serving it (--force to unpin anyway)",
                        rec.min_replicas
                    )));
                }
            }
        }
        self.pins.clear(root)?;
        Ok(reasons.into_iter().collect())
    }

    /// Asks every connected peer what it holds of `root` (each answer
    /// within a few seconds).
    pub async fn holders(&self, root: &FileRoot) -> Result<Vec<(PeerId, Holding)>, FilesError> {
        let net = self.net()?.clone();
        let peers = net.peers().await.map_err(|_| FilesError::NoNetwork)?;
        let asks = peers.into_iter().map(|peer| {
            let net = net.clone();
            let root = *root;
            async move {
                let answer = tokio::time::timeout(
                    Duration::from_secs(5),
                    net.blob_request(peer, BlobRequest::Have { root }),
                )
                .await;
                match answer {
                    Ok(Ok(BlobResponse::Have { holding })) => Some((peer, holding)),
                    _ => None,
                }
            }
        });
        Ok(futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .filter(|(_, h)| !matches!(h, Holding::Nothing))
            .collect())
    }

    /// Removes what no pin holds, never a file being downloaded or
    /// served; files withdrawn on chain go whatever their pins.
    pub fn gc(&self, dry_run: bool) -> Result<Vec<Collected>, FilesError> {
        let _keep = self.keep.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for s in self.store.list()? {
            let busy = self.is_downloading(&s.root)
                || self
                    .serving_now
                    .lock()
                    .map(|m| m.get(&s.root).copied().unwrap_or(0) > 0)
                    .unwrap_or(true);
            if busy {
                continue;
            }
            let why = match self.record(&s.root)? {
                None => "not_on_record",
                Some(r) if r.unpublished.is_some() => "unpublished",
                Some(_) if self.pins.reasons(&s.root)?.is_empty() => "unpinned",
                Some(_) => continue,
            };
            let bytes = if dry_run {
                s.disk_bytes
            } else {
                self.forget_download(&s.root);
                self.pins.clear(&s.root)?;
                self.store.remove(&s.root)?
            };
            out.push(Collected {
                root: s.root,
                bytes,
                why,
            });
        }
        Ok(out)
    }

    /// Deletes files unpublished on chain (no honest node keeps serving
    /// them) and stops their downloads; announces complete files.
    pub(crate) async fn maintain(self: &Arc<Self>, announced: &mut HashMap<FileRoot, u64>) {
        let svc = self.clone();
        let listed = tokio::task::spawn_blocking(move || -> Result<Vec<(FileRoot, bool)>, FilesError> {
            let mut live = Vec::new();
            for s in svc.store.list()? {
                match svc.record(&s.root)? {
                    Some(r) if r.unpublished.is_some() => {
                        if let Some(d) = svc.download(&s.root) {
                            d.cancel("the file was unpublished");
                        }
                        svc.forget_download(&s.root);
                        svc.pins.clear(&s.root)?;
                        let freed = svc.store.remove(&s.root)?;
                        tracing::info!(root = %s.root, freed, "file unpublished on chain: deleted");
                    }
                    Some(_) => live.push((s.root, s.complete)),
                    None => {}
                }
            }
            Ok(live)
        })
        .await;
        let live = match listed {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "file maintenance failed");
                return;
            }
            Err(_) => return,
        };
        let Ok(net) = self.net() else { return };
        let now = now_ms();
        for (root, complete) in live {
            // Complete files are announced now and then so that peers that
            // connected since hear of them.
            let due = announced
                .get(&root)
                .is_none_or(|at| now.saturating_sub(*at) > 60_000);
            if complete && due {
                announced.insert(root, now);
                let _ = net.announce_file(root, true).await;
            }
        }
    }

    pub fn download(&self, root: &FileRoot) -> Option<Arc<DownloadState>> {
        self.downloads.lock().ok()?.get(root).cloned()
    }

    /// Drops a finished download's state (its file is gone).
    fn forget_download(&self, root: &FileRoot) {
        if let Ok(mut d) = self.downloads.lock() {
            if d.get(root).is_some_and(|d| !d.is_running()) {
                d.remove(root);
            }
        }
    }

    fn is_downloading(&self, root: &FileRoot) -> bool {
        self.download(root).is_some_and(|d| d.is_running())
    }

    /// Progress reports of every download, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<palisade_rpc::files::types::FileProgress> {
        self.progress.subscribe()
    }

    /// A peer said it holds `root`: a running download asks it.
    pub fn on_held(&self, holder: PeerId, root: FileRoot) {
        if let Some(d) = self.download(&root) {
            d.hint(holder);
        }
    }

    /// Starts fetching `root` for the reader whose `permit` (naming this
    /// node) comes with it; returns at once. A file held complete already
    /// needs no download.
    pub fn fetch(
        self: &Arc<Self>,
        root: FileRoot,
        permit: SignedReadPermit,
    ) -> Result<Progress, FilesError> {
        let me = self.peer_id().ok_or(FilesError::NoNetwork)?;
        let (rec, _) = self.check_permit(&permit, Purpose::Fetch, &root, &me)?;
        let _keep = self.keep.lock().unwrap_or_else(|p| p.into_inner());
        if self.store.held(&root, rec.size)? == Held::Complete {
            self.pins.add(&root, PinReason::Fetched)?;
            return Ok(download::complete(root, rec.size));
        }
        let mut downloads = self
            .downloads
            .lock()
            .map_err(|_| FilesError::State("downloads lock poisoned".into()))?;
        if let Some(d) = downloads.get(&root) {
            if d.is_running() {
                return Ok(d.progress());
            }
        }
        let running = downloads.values().filter(|d| d.is_running()).count();
        if running >= self.max_downloads as usize {
            return Err(FilesError::TooManyDownloads(self.max_downloads));
        }
        let state = Arc::new(DownloadState::new(root, rec.size, self.progress.clone()));
        downloads.insert(root, state.clone());
        drop(downloads);
        let svc = self.clone();
        tokio::spawn(download::run(svc, state.clone(), rec, permit));
        Ok(state.progress())
    }

    /// Local progress of `root`: a download's, or complete if held.
    pub fn status(&self, root: &FileRoot) -> Result<Option<Progress>, FilesError> {
        // A running or failed download says where it stands; a finished
        // one only while its file is still here (it may have been
        // collected since).
        let download = self.download(root).map(|d| d.progress());
        if let Some(p) = download.as_ref().filter(|p| p.phase != Phase::Complete) {
            return Ok(Some(p.clone()));
        }
        let Some(rec) = self.record(root)? else {
            return Ok(None);
        };
        Ok(match self.store.held(root, rec.size)? {
            Held::Complete => Some(download.unwrap_or_else(|| download::complete(*root, rec.size))),
            Held::Partial { pieces, .. } => Some(download::stopped(*root, rec.size, pieces)),
            Held::Nothing => None,
        })
    }

    /// The record's size of `root`, if `permit` is its publisher's for
    /// this node (an upload may start).
    pub fn upload_size(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
    ) -> Result<u64, FilesError> {
        let me = self.peer_id().ok_or(FilesError::NoNetwork)?;
        let (rec, reader) = self.check_permit(permit, Purpose::Access, root, &me)?;
        if reader != rec.publisher {
            return Err(FilesError::BadPermit(
                "only the file's publisher may upload it".into(),
            ));
        }
        Ok(rec.size)
    }

    /// Accepts the bytes of a file its publisher (whose permit this is)
    /// uploads to this node: written to the store only if they hash to
    /// the record's root and size; then pinned as published and served.
    pub fn accept_upload(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
        from: &mut dyn std::io::Read,
    ) -> Result<u64, FilesError> {
        let size = self.upload_size(root, permit)?;
        // Hashing a big upload holds collection off meanwhile: it would
        // otherwise find the file imported and not yet pinned.
        let _keep = self.keep.lock().unwrap_or_else(|p| p.into_inner());
        if self.store.held(root, size)? != Held::Complete {
            let (got, _) = self.store.import_from(from, size, root)?;
            if got != *root {
                return Err(FilesError::BadUpload(format!(
                    "the bytes sent hash to {got}, the record says {root}"
                )));
            }
        }
        self.pins.add(root, PinReason::Published)?;
        Ok(size)
    }

    /// Opens the complete file `root` for a reader whose permit names this
    /// node (the RPC's `GET /files/`).
    pub fn open_for_reader(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
    ) -> Result<(std::fs::File, u64), FilesError> {
        let me = self.peer_id().ok_or(FilesError::NoNetwork)?;
        let (rec, _) = self.check_permit(permit, Purpose::Access, root, &me)?;
        let path = self.store.complete_path(root).ok_or_else(|| {
            FilesError::Refused("this node does not hold the whole file (yet)".into())
        })?;
        let file = std::fs::File::open(path).map_err(FileError::Io)?;
        Ok((file, rec.size))
    }
}
