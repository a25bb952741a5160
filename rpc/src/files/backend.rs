//! What the file methods need from the node.

use jsonrpsee::core::async_trait;
use palisade_files::{FileRoot, SignedReadPermit};
use tokio::sync::broadcast;

use super::types::{
    CollectedResponse, FileProgress, FileRecordResponse, Holder, LocalFileResponse, Position,
};

/// A refused or failed file call: its JSON-RPC code (see
/// [`crate::errors`]), message and optional reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCallError {
    pub code: i32,
    pub message: String,
    pub data: Option<&'static str>,
}

#[async_trait]
pub trait FilesBackend: Send + Sync + 'static {
    /// Published files, newest first, before `before`.
    fn list(
        &self,
        before: Option<Position>,
        limit: usize,
    ) -> Result<(Vec<FileRecordResponse>, Option<Position>), FileCallError>;
    fn record(&self, root: &FileRoot) -> Result<Option<FileRecordResponse>, FileCallError>;
    /// Connected peers holding some of `root`, asked now.
    async fn holders(&self, root: &FileRoot) -> Result<Vec<Holder>, FileCallError>;
    /// Starts fetching `root` with `permit`; returns at once.
    fn fetch(
        &self,
        root: FileRoot,
        permit: SignedReadPermit,
    ) -> Result<FileProgress, FileCallError>;
    fn status(&self, root: &FileRoot) -> Result<Option<FileProgress>, FileCallError>;
    /// Every download's progress reports, as they happen.
    fn progress(&self) -> broadcast::Receiver<FileProgress>;
    fn local(&self) -> Result<Vec<LocalFileResponse>, FileCallError>;
    fn pin(&self, root: &FileRoot) -> Result<(), FileCallError>;
    async fn unpin(&self, root: &FileRoot, force: bool) -> Result<Vec<String>, FileCallError>;
    fn gc(&self, dry_run: bool) -> Result<Vec<CollectedResponse>, FileCallError>;
    /// The complete file `root` for a reader whose permit names this node:
    /// the open file and its size.
    fn open_for_reader(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
    ) -> Result<(std::fs::File, u64), FileCallError>;
    /// The size the record gives `root`, for an upload by its publisher
    /// (checked before a byte is read).
    fn upload_size(&self, root: &FileRoot, permit: &SignedReadPermit)
        -> Result<u64, FileCallError>;
    /// Takes an upload's bytes (blocking IO: called off the async threads).
    fn accept_upload(
        &self,
        root: &FileRoot,
        permit: &SignedReadPermit,
        body: &mut dyn std::io::Read,
    ) -> Result<u64, FileCallError>;
}
