//! The file method set, defined once for server and client.

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use palisade_files::FileRoot;

use super::types::{
    CollectedResponse, FileGetResponse, FileListQuery, FileListResponse, FileProgress,
    LocalFileResponse,
};
use crate::api::RpcResult;

#[rpc(server, client)]
pub trait FilesApi {
    /// Files published on chain, newest first, in pages.
    #[method(name = "file_list")]
    async fn file_list(&self, query: Option<FileListQuery>) -> RpcResult<FileListResponse>;

    /// A file's record, which connected peers hold it, and this node's copy.
    #[method(name = "file_get")]
    async fn file_get(&self, root: FileRoot) -> RpcResult<Option<FileGetResponse>>;

    /// This node's copy or download of a file (null: none).
    #[method(name = "file_status")]
    async fn file_status(&self, root: FileRoot) -> RpcResult<Option<FileProgress>>;

    /// Starts fetching a file onto this node for the reader whose permit
    /// (borsh, 0x-hex, naming this node's peer id) comes with it; returns
    /// at once with its progress.
    #[method(name = "file_fetch")]
    async fn file_fetch(&self, root: FileRoot, permit: String) -> RpcResult<FileProgress>;

    /// A file's progress on this node, now and as it changes, until it is
    /// complete or failed.
    #[subscription(name = "file_subscribeStatus" => "file_progress", unsubscribe = "file_unsubscribeStatus", item = FileProgress, with_extensions)]
    async fn file_subscribe_status(&self, root: FileRoot) -> SubscriptionResult;

    /// The files this node holds, with why it keeps each (its own
    /// machine only).
    #[method(name = "file_local", with_extensions)]
    async fn file_local(&self) -> RpcResult<Vec<LocalFileResponse>>;

    /// Keeps a file here whatever garbage collection does (its own machine
    /// only).
    #[method(name = "file_pin", with_extensions)]
    async fn file_pin(&self, root: FileRoot) -> RpcResult<bool>;

    /// Drops this node's pins of a file; a file published here keeps its
    /// pin until `min_replicas` peers hold it, unless `force` (its own
    /// machine only). Returns the pins dropped.
    #[method(name = "file_unpin", with_extensions)]
    async fn file_unpin(&self, root: FileRoot, force: Option<bool>) -> RpcResult<Vec<String>>;

    /// Deletes files no pin holds (and files unpublished on chain), never
    /// one being downloaded or served; `dryRun` only lists them (its own
    /// machine only).
    #[method(name = "file_gc", with_extensions)]
    async fn file_gc(&self, dry_run: Option<bool>) -> RpcResult<Vec<CollectedResponse>>;
}
