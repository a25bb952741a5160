//! The file methods over a [`FilesBackend`].

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::{async_trait, SubscriptionResult};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use palisade_files::{FileRoot, SignedReadPermit};
use tokio::sync::broadcast;

use super::api::FilesApiServer;
use super::backend::{FileCallError, FilesBackend};
use super::types::{
    CollectedResponse, FileGetResponse, FileListQuery, FileListResponse, FilePhase, FileProgress,
    LocalFileResponse,
};
use crate::api::RpcResult;
use crate::errors::{error, error_with, invalid_params, FILES_UNAVAILABLE, LOCAL_ONLY};
use crate::server::json_message;

const DEFAULT_PAGE: u32 = 25;
const MAX_PAGE: u32 = 100;

/// Where a call came from (set per request by the server), for methods
/// only the node's own machine may call: the connection's address, and
/// whether the request says a proxy forwarded it (`Forwarded`,
/// `X-Forwarded-For`), when that address is the proxy's, not the client's.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr {
    pub addr: SocketAddr,
    pub proxied: bool,
}

pub struct FilesImpl {
    pub backend: Option<Arc<dyn FilesBackend>>,
}

impl std::fmt::Debug for FilesImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilesImpl")
    }
}

pub(crate) fn call_err(e: FileCallError) -> ErrorObjectOwned {
    match e.data {
        Some(d) => error_with(e.code, e.message, d),
        None => error(e.code, e.message),
    }
}

/// A permit from its 0x-hex borsh encoding.
pub(crate) fn parse_permit(hex_permit: &str) -> Result<SignedReadPermit, String> {
    let bytes = palisade_types::parse_hex(hex_permit).map_err(|e| format!("permit: {e}"))?;
    palisade_types::decode_with_limit::<SignedReadPermit>(&bytes, "read permit", 512)
        .map_err(|e| format!("permit: {e}"))
}

impl FilesImpl {
    fn backend(&self) -> RpcResult<&Arc<dyn FilesBackend>> {
        self.backend
            .as_ref()
            .ok_or_else(|| error(FILES_UNAVAILABLE, "this node does not share files"))
    }

    /// Refuses a call from anywhere but this machine.
    fn local_only(ext: &Extensions, method: &str) -> RpcResult<()> {
        match ext.get::<ClientAddr>() {
            Some(c) if c.addr.ip().to_canonical().is_loopback() && !c.proxied => Ok(()),
            _ => Err(error(
                LOCAL_ONLY,
                format!("{method} manages this node's disk: only its own machine (a loopback client, not through a proxy) may call it"),
            )),
        }
    }

    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn FilesBackend) -> Result<T, FileCallError> + Send + 'static,
    ) -> impl std::future::Future<Output = RpcResult<T>> {
        let backend = self.backend().cloned();
        async move {
            let backend = backend?;
            tokio::task::spawn_blocking(move || f(backend.as_ref()))
                .await
                .map_err(|e| crate::errors::internal(format!("file task failed: {e}")))?
                .map_err(call_err)
        }
    }
}

#[async_trait]
impl FilesApiServer for FilesImpl {
    async fn file_list(&self, query: Option<FileListQuery>) -> RpcResult<FileListResponse> {
        let q = query.unwrap_or_default();
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(invalid_params(format!("limit must be 1..={MAX_PAGE}")));
        }
        let (files, next) = self
            .blocking(move |b| b.list(q.before, limit as usize))
            .await?;
        Ok(FileListResponse { files, next })
    }

    async fn file_get(&self, root: FileRoot) -> RpcResult<Option<FileGetResponse>> {
        let Some(record) = self.blocking(move |b| b.record(&root)).await? else {
            return Ok(None);
        };
        let holders = self.backend()?.holders(&root).await.map_err(call_err)?;
        let local = self.blocking(move |b| b.status(&root)).await?;
        Ok(Some(FileGetResponse {
            record,
            holders,
            local,
        }))
    }

    async fn file_status(&self, root: FileRoot) -> RpcResult<Option<FileProgress>> {
        self.blocking(move |b| b.status(&root)).await
    }

    async fn file_fetch(&self, root: FileRoot, permit: String) -> RpcResult<FileProgress> {
        let permit = parse_permit(&permit).map_err(invalid_params)?;
        self.blocking(move |b| b.fetch(root, permit)).await
    }

    async fn file_subscribe_status(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        root: FileRoot,
    ) -> SubscriptionResult {
        let backend = match self.backend() {
            Ok(b) => b.clone(),
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        // Subscribed before the first status is read: no report between
        // the two is lost.
        let mut feed = backend.progress();
        let first = {
            let b = backend.clone();
            tokio::task::spawn_blocking(move || b.status(&root)).await
        };
        let first = match first {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                pending.reject(call_err(e)).await;
                return Ok(());
            }
            Err(e) => {
                pending
                    .reject(crate::errors::internal(format!("file task failed: {e}")))
                    .await;
                return Ok(());
            }
        };
        let sink = crate::subscriptions::accept(pending, ext).await?;
        let done = |p: &FileProgress| p.phase != FilePhase::Downloading;
        if let Some(p) = &first {
            if sink.send(json_message(p)?).await.is_err() || done(p) {
                return Ok(());
            }
        }
        loop {
            tokio::select! {
                _ = sink.closed() => return Ok(()),
                r = feed.recv() => match r {
                    Ok(p) if p.root == root => {
                        if sink.send(json_message(&p)?).await.is_err() || done(&p) {
                            return Ok(());
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Skipped reports are summed up by the next one.
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
    }

    async fn file_local(&self, ext: &Extensions) -> RpcResult<Vec<LocalFileResponse>> {
        Self::local_only(ext, "file_local")?;
        self.blocking(|b| b.local()).await
    }

    async fn file_pin(&self, ext: &Extensions, root: FileRoot) -> RpcResult<bool> {
        Self::local_only(ext, "file_pin")?;
        self.blocking(move |b| b.pin(&root)).await?;
        Ok(true)
    }

    async fn file_unpin(
        &self,
        ext: &Extensions,
        root: FileRoot,
        force: Option<bool>,
    ) -> RpcResult<Vec<String>> {
        Self::local_only(ext, "file_unpin")?;
        self.backend()?
            .unpin(&root, force.unwrap_or(false))
            .await
            .map_err(call_err)
    }

    async fn file_gc(
        &self,
        ext: &Extensions,
        dry_run: Option<bool>,
    ) -> RpcResult<Vec<CollectedResponse>> {
        Self::local_only(ext, "file_gc")?;
        let dry = dry_run.unwrap_or(false);
        self.blocking(move |b| b.gc(dry)).await
    }
}
