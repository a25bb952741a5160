//! JSON shapes of the file methods.

use palisade_files::FileRoot;
use palisade_types::{Address, FileReaders};
use serde::{Deserialize, Serialize};

pub use crate::explore::types::Position;

/// A file's record on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecordResponse {
    pub root: FileRoot,
    pub size: u64,
    pub name: String,
    pub media_type: String,
    pub readers: FileReaders,
    pub min_replicas: u16,
    pub publisher: Address,
    /// The height of the block that published it.
    pub published: u64,
    /// The height of the block that withdrew it (null while published).
    pub unpublished: Option<u64>,
}

/// `file_list` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileListQuery {
    /// At most this many (default 25, at most 100).
    pub limit: Option<u32>,
    /// Only files published before this position (the previous page's `next`).
    pub before: Option<Position>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileListResponse {
    /// Newest first.
    pub files: Vec<FileRecordResponse>,
    /// Pass as `before` for the next (older) page; null on the last.
    pub next: Option<Position>,
}

/// A peer that holds some or all of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub peer: String,
    pub complete: bool,
    /// Pieces it holds.
    pub pieces: u64,
}

/// `file_get`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileGetResponse {
    pub record: FileRecordResponse,
    /// Connected peers holding some of it, as they answer now.
    pub holders: Vec<Holder>,
    /// This node's own copy or download, if any.
    pub local: Option<FileProgress>,
}

/// Where a download (or this node's copy) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilePhase {
    Downloading,
    Complete,
    /// Stopped with an error (`error` says why); fetching again resumes.
    Failed,
    /// Not running; some pieces held (a download a restart interrupted).
    Stopped,
}

impl FilePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            FilePhase::Downloading => "downloading",
            FilePhase::Complete => "complete",
            FilePhase::Failed => "failed",
            FilePhase::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for FilePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A download's progress, or this node's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileProgress {
    pub root: FileRoot,
    pub phase: FilePhase,
    pub size: u64,
    pub pieces: u64,
    pub pieces_held: u64,
    pub bytes_held: u64,
    /// Peers holding pieces still needed.
    pub peers: usize,
    /// Bytes a second over the last seconds.
    pub rate: u64,
    /// How long the download has run, or ran, in milliseconds (0 for a
    /// copy this node did not download since it started).
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// A file this node holds (`file_local`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalFileResponse {
    pub root: FileRoot,
    pub complete: bool,
    pub disk_bytes: u64,
    /// Why it is kept: `published`, `fetched`, `operator`; empty: garbage
    /// collection may remove it.
    pub pins: Vec<String>,
}

/// A file garbage collection removed (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectedResponse {
    pub root: FileRoot,
    pub bytes: u64,
    /// `unpinned`, `unpublished` or `not_on_record`.
    pub why: String,
}
