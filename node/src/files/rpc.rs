//! The file service behind the RPC's file methods and `/files/`.

use std::sync::Arc;

use jsonrpsee::core::async_trait;
use palisade_files::wire::Holding;
use palisade_files::{FileRoot, SignedReadPermit};
use palisade_rpc::errors::{FILES_BUSY, FILES_UNAVAILABLE, FILE_REFUSED, FILE_UNKNOWN, INTERNAL};
use palisade_rpc::files::types::{
    CollectedResponse, FileProgress, FileRecordResponse, Holder, LocalFileResponse, Position,
};
use palisade_rpc::files::{FileCallError, FilesBackend};
use palisade_runtime::files::FileRecord;
use palisade_types::Height;
use tokio::sync::broadcast;

use super::{FileService, FilesError};

/// The node's [`FilesBackend`].
#[derive(Debug, Clone)]
pub struct FilesRpc(pub Arc<FileService>);

fn call_err(e: FilesError) -> FileCallError {
    let (code, data) = match &e {
        FilesError::Unknown(_) => (FILE_UNKNOWN, None),
        FilesError::Withdrawn(_) => (FILE_REFUSED, Some("unpublished")),
        FilesError::NotAReader(_) => (FILE_REFUSED, Some("not_a_reader")),
        FilesError::BadPermit(_) => (FILE_REFUSED, Some("bad_permit")),
        FilesError::TooManyDownloads(_) => (FILES_BUSY, None),
        FilesError::Refused(_) | FilesError::NoNetwork => (FILES_UNAVAILABLE, None),
        FilesError::BadUpload(_) => (palisade_rpc::errors::INVALID_PARAMS, None),
        FilesError::File(_) | FilesError::State(_) => (INTERNAL, None),
    };
    FileCallError {
        code,
        message: e.to_string(),
        data,
    }
}

fn record_response(r: FileRecord) -> FileRecordResponse {
    FileRecordResponse {
        root: FileRoot(r.root.0),
        size: r.size,
        name: r.name.to_string(),
        media_type: r.media_type.to_string(),
        readers: r.readers,
        min_replicas: r.min_replicas,
        publisher: r.publisher,
        published: r.published.get(),
        unpublished: r.unpublished.map(Height::get),
    }
}

#[async_trait]
impl FilesBackend for FilesRpc {
    fn list(
        &self,
        before: Option<Position>,
        limit: usize,
    ) -> Result<(Vec<FileRecordResponse>, Option<Position>), FileCallError> {
        let ledger = self.0.app.ledger();
        // One more than asked: whether there is a next page.
        let found = ledger
            .published_files(before.map(|p| (Height(p.height), p.index)), limit + 1)
            .map_err(|e| call_err(FilesError::State(e.to_string())))?;
        let next = (found.len() > limit)
            .then(|| found.get(limit - 1))
            .flatten()
            .map(|((h, i), _)| Position {
                height: h.get(),
                index: *i,
            });
        let mut files = Vec::with_capacity(limit);
        for ((h, _), root) in found.into_iter().take(limit) {
            // A root published again after it was withdrawn is listed at
            // its latest publication only.
            if let Some(r) = self
                .0
                .record(&FileRoot(root.0))
                .map_err(call_err)?
                .filter(|r| r.published == h)
            {
                files.push(record_response(r));
            }
        }
        Ok((files, next))
    }

    fn record(&self, root: &FileRoot) -> Result<Option<FileRecordResponse>, FileCallError> {
        Ok(self.0.record(root).map_err(call_err)?.map(record_response))
    }

    async fn holders(&self, root: &FileRoot) -> Result<Vec<Holder>, FileCallError> {
        let count = self
            .0
            .record(root)
            .map_err(call_err)?
            .map_or(0, |r| palisade_files::piece_count(r.size));
        Ok(self
            .0
            .holders(root)
            .await
            .map_err(call_err)?
            .into_iter()
            .map(|(peer, h)| Holder {
                peer: peer.to_string(),
                complete: matches!(h, Holding::Complete),
                pieces: match h {
                    Holding::Complete => count,
                    Holding::Partial { bits } => {
                        bits.iter().map(|b| u64::from(b.count_ones())).sum()
                    }
                    Holding::Nothing => 0,
                },
            })
            .collect())
    }

    fn fetch(
        &self,
        root: FileRoot,
        permit: SignedReadPermit,
    ) -> Result<FileProgress, FileCallError> {
        self.0.fetch(root, permit).map_err(call_err)
    }

    fn status(&self, root: &FileRoot) -> Result<Option<FileProgress>, FileCallError> {
        self.0.status(root).map_err(call_err)
    }

    fn progress(&self) -> broadcast::Receiver<FileProgress> {
        self.0.subscribe()
    }

    fn local(&self) -> Result<Vec<LocalFileResponse>, FileCallError> {
        Ok(self
            .0
            .local_files()
            .map_err(call_err)?
            .into_iter()
            .map(|f| LocalFileResponse {
                root: f.root,
                complete: f.complete,
                disk_bytes: f.disk_bytes,
                pins: f.pins.iter().map(|p| p.as_str().to_string()).collect(),
            })
            .collect())
    }

    fn pin(&self, root: &FileRoot) -> Result<(), FileCallError> {
        self.0.pin(root).map_err(call_err)
    }

    async fn unpin(&self, root: &FileRoot, force: bool) -> Result<Vec<String>, FileCallError> {
        Ok(self
            .0
            .unpin(root, force)
            .await
            .map_err(call_err)?
            .iter()
            .map(|p| p.as_str().to_string())
            .collect())
    }

    fn gc(&self, dry_run: bool) -> Result<Vec<CollectedResponse>, FileCallError> {
        Ok(self
            .0
            .gc(dry_run)
            .map_err(call_err)?
            .into_iter()
            .map(|c| CollectedResponse {
                root: c.root,
                bytes: c.bytes,
                why: c.why.to_string(),
            })
            .collect())
    }

    fn open_for_reader(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
    ) -> Result<(std::fs::File, u64), FileCallError> {
        self.0.open_for_reader(root, permit).map_err(call_err)
    }

    fn upload_size(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
    ) -> Result<u64, FileCallError> {
        self.0.upload_size(root, permit).map_err(call_err)
    }

    fn accept_upload(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
        body: &mut dyn std::io::Read,
    ) -> Result<u64, FileCallError> {
        self.0.accept_upload(root, permit, body).map_err(call_err)
    }
}
