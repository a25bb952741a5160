//! The JSON-RPC server: HTTP and WebSocket on one port, `GET /health`, and
//! hard limits on request and response size, batch length, open
//! connections and subscriptions per connection. Malformed requests get JSON-RPC
//! errors with the codes of [`crate::errors`]; browser pages only from
//! `rpc.allowed_origins` ([`crate::origin`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::{async_trait, RegisterMethodError, SubscriptionResult};
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{
    serve_with_graceful_shutdown, stop_channel, BatchRequestConfig, Methods,
    PendingSubscriptionSink, Server, ServerConfig, ServerHandle, SubscriptionMessage,
};
use jsonrpsee::Extensions;
use palisade_types::{decode, Address, Hash, Height, SignedTransaction};
use tokio::sync::{broadcast, Semaphore};

use crate::api::{PalisadeApiServer, RpcResult};
use crate::backend::{NodeBackend, SubmitError, TxLocation};
use crate::errors::{self, backend_err, error, error_with, internal, invalid_params};
use crate::front::{HealthLayer, RequestCheckLayer, StructuredParamsLayer};
use crate::origin::{AllowedOrigins, OriginLayer};
use crate::types::{
    AccountResponse, BlockId, BlockResponse, BlockTxHashesResponse, CommitResponse, HeadResponse,
    Health, HexBytes, MempoolStatus, MethodsResponse, NodeStatus, ReceiptResponse, StateQuery,
    StateResponse, SubmitFailure, SubmitOutcome, SubmitResponse, TxResponse, TxStatus,
    ValidatorResponse, ValidatorSetResponse,
};

/// Limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimits {
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_connections: u32,
    pub max_batch: u32,
    pub max_subscriptions_per_connection: u32,
}

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits {
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_batch: 64,
            max_subscriptions_per_connection: 64,
        }
    }
}

/// Most transactions in one `tx_submitBatch` (the 1 MiB body limit allows
/// about 2,500 transfers).
pub const MAX_SUBMIT_BATCH: usize = 1_000;
/// Longest `tx_submitAndWait`, and longest and default `tx_subscribeStatus`.
pub const MAX_WAIT_MS: u64 = 60_000;
const DEFAULT_WAIT_MS: u64 = 10_000;

/// Answer to a connection over the limit: it is closed without being read.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 62\r\nconnection: close\r\nretry-after: 1\r\n\r\ntoo many open connections to this node's RPC; try again later\n";

/// A started server.
#[derive(Debug)]
pub struct RpcServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Stops it.
    pub handle: ServerHandle,
    /// The accept loop: it ends only when the server is stopped, so its
    /// end at any other time (a panic) means the server is gone.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the server on `addr` with the Palisade API ([`methods`]),
/// serving browser pages only from `origins`.
pub async fn start(
    addr: SocketAddr,
    limits: RpcLimits,
    origins: AllowedOrigins,
    backend: Arc<dyn NodeBackend>,
) -> std::io::Result<RpcServer> {
    let methods = methods(backend.clone()).map_err(|e| std::io::Error::other(e.to_string()))?;
    serve(addr, limits, origins, backend, methods).await
}

/// The Palisade API as jsonrpsee methods over `backend` (what [`start`]
/// serves; in-process callers and tests can call them directly).
pub fn methods(backend: Arc<dyn NodeBackend>) -> Result<Methods, RegisterMethodError> {
    let mut module = RpcImpl {
        backend: backend.clone(),
    }
    .into_rpc();
    module.merge(crate::eth::EthApiServer::into_rpc(crate::eth::EthImpl {
        backend: backend.clone(),
    }))?;
    module.merge(crate::files::api::FilesApiServer::into_rpc(
        crate::files::FilesImpl {
            backend: backend.files(),
        },
    ))?;
    module.merge(crate::explore::api::ExploreApiServer::into_rpc(
        crate::explore::ExploreImpl { backend },
    ))?;
    let mut names: Vec<String> = module.method_names().map(str::to_string).collect();
    names.sort();
    // rpc_methods answers with the full list, itself included.
    module.remove_method("rpc_methods");
    module.register_method("rpc_methods", move |_, _, _| {
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(MethodsResponse {
            methods: names.clone(),
        })
    })?;
    Ok(module.into())
}

/// Serves `methods` on `addr` the way [`start`] does: the same limits,
/// origin check, `GET /health` (from `backend`) and request checks.
///
/// The accept loop is ours rather than jsonrpsee's: jsonrpsee's connection
/// limit counts requests being served, not open sockets, so clients that
/// open connections and send nothing would each hold a socket (and a file
/// descriptor the node's database and peers also need) until its 30 s
/// first-request timeout. Here at most `max_connections` sockets are open
/// at once; one more is answered 503 and closed straight away.
///
/// One function, past a screen: the accept loop needs the layered service
/// builder, whose type (jsonrpsee's, generic over every middleware layer)
/// cannot be written out to hand it to a helper.
pub async fn serve(
    addr: SocketAddr,
    limits: RpcLimits,
    origins: AllowedOrigins,
    backend: Arc<dyn NodeBackend>,
    methods: Methods,
) -> std::io::Result<RpcServer> {
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .set_id_provider(crate::subscription_id::HexIdProvider)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .build();
    // Outermost first: serve the explorer's pages (when the node serves its
    // own pages), refuse other sites' pages, answer GET /health, then
    // bodies jsonrpsee would misclassify; RPC middleware: every call's
    // params, batched or not, HTTP or WebSocket; unsubscribes that come
    // while their subscription is still being opened.
    let explorer = origins.own_pages();
    let http = tower::ServiceBuilder::new()
        // The explorer's files are public and need no origin check (a
        // browser sends `Origin` for module scripts): opened at a name the
        // node does not allow, the page still loads and says its calls are
        // refused, instead of staying blank.
        .option_layer(explorer.then_some(crate::explorer::ExplorerLayer))
        .layer(OriginLayer::new(origins))
        .layer(crate::files::http::FilesLayer {
            backend: backend.files(),
        })
        .layer(HealthLayer::new(backend))
        .layer(RequestCheckLayer::new(limits.max_request_bytes));
    let services = Server::builder()
        .set_config(config)
        .set_http_middleware(http)
        .set_rpc_middleware(
            RpcServiceBuilder::new()
                .layer(StructuredParamsLayer)
                .layer(crate::subscriptions::UnsubscribeAfterAcceptLayer)
                .layer(crate::batch::SubmissionsTogetherLayer {
                    max_response_bytes: limits.max_response_bytes,
                }),
        )
        .to_service_builder();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop, handle) = stop_channel();
    let open = Arc::new(Semaphore::new(limits.max_connections as usize));
    let task = tokio::spawn(async move {
        let shutdown = stop.clone().shutdown();
        tokio::pin!(shutdown);
        loop {
            let (socket, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, or the peer gave up: wait a
                        // little instead of spinning.
                        tracing::debug!(error = %e, "rpc accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "rpc connection refused: too many open");
                // A fresh socket's send buffer takes the short answer at
                // once; no task or descriptor outlives this line.
                let _ = socket.try_write(TOO_MANY_CONNECTIONS);
                drop(socket);
                continue;
            };
            let _ = socket.set_nodelay(true);
            let service = WithClientAddr {
                inner: services.clone().build(methods.clone(), stop.clone()),
                addr: peer,
            };
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                // Held while the connection lives.
                let _permit = permit;
                if let Err(e) = serve_with_graceful_shutdown(socket, service, stopped).await {
                    tracing::debug!(%peer, error = %e, "rpc connection ended");
                }
            });
        }
    });
    Ok(RpcServer {
        addr: local,
        handle,
        task,
    })
}

/// Tags each request with the address of the client that sent it
/// ([`crate::files::ClientAddr`]), for methods only the node's own
/// machine may call.
#[derive(Clone)]
struct WithClientAddr<S> {
    inner: S,
    addr: SocketAddr,
}

impl<S, B> tower::Service<http::Request<B>> for WithClientAddr<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let proxied = req.headers().contains_key("forwarded")
            || req.headers().contains_key("x-forwarded-for")
            || req.headers().contains_key("x-real-ip");
        req.extensions_mut().insert(crate::files::ClientAddr {
            addr: self.addr,
            proxied,
        });
        self.inner.call(req)
    }
}

struct RpcImpl {
    backend: Arc<dyn NodeBackend>,
}

impl RpcImpl {
    /// The block `id` names, if this node has it.
    fn block_by_id(&self, id: BlockId) -> RpcResult<Option<palisade_types::Block>> {
        let height = match id {
            BlockId::Height(h) => Some(Height(h)),
            BlockId::Hash(hash) => self.backend.height_of_block(&hash).map_err(backend_err)?,
        };
        match height {
            Some(h) => {
                self.retained()?.block(h)?;
                self.backend.block(h).map_err(backend_err)
            }
            None => Ok(None),
        }
    }

    fn retained(&self) -> RpcResult<crate::backend::Retained> {
        self.backend.retained().map_err(backend_err)
    }

    fn receipt_response(&self, hash: &Hash) -> RpcResult<Option<ReceiptResponse>> {
        let found = self.backend.receipt(hash).map_err(backend_err)?;
        if let Some((_, loc)) = &found {
            self.retained()?.block(loc.height)?;
        }
        Ok(
            found.map(|(r, TxLocation { height, index })| ReceiptResponse {
                tx_hash: r.tx_hash,
                height: height.get(),
                index,
                success: r.code == 0,
                code: r.code,
                error: r.error,
                events: r.events,
                evm: r.evm,
            }),
        )
    }

    fn tx_status(&self, hash: &Hash) -> RpcResult<TxStatus> {
        if let Some(receipt) = self.receipt_response(hash)? {
            return Ok(TxStatus::Committed { receipt });
        }
        Ok(if self.backend.in_mempool(hash) {
            TxStatus::Pending
        } else {
            TxStatus::Unknown
        })
    }

    /// The backend must check the signature and wait for the mempool lock
    /// off the async workers, which also serve the node's peers and
    /// consensus ([`NodeBackend::submit`]).
    async fn submit(&self, tx: &HexBytes) -> RpcResult<Hash> {
        let tx = decode_tx(tx)?;
        self.backend.submit(tx).await.map_err(submit_error)
    }
}

fn decode_tx(tx: &HexBytes) -> RpcResult<SignedTransaction> {
    decode(&tx.0).map_err(|e| {
        error(
            errors::TX_MALFORMED,
            format!("transaction does not decode: {e}"),
        )
    })
}

fn submit_error(e: SubmitError) -> jsonrpsee::types::ErrorObjectOwned {
    match e {
        SubmitError::Duplicate => error(errors::TX_DUPLICATE, e.to_string()),
        SubmitError::Full(_) => error(errors::MEMPOOL_FULL, e.to_string()),
        SubmitError::Rejected { code, ref message } => error_with(
            errors::TX_REJECTED,
            format!("transaction rejected: {message}"),
            code,
        ),
        SubmitError::Internal(m) => internal(m),
    }
}

fn outcome(r: RpcResult<Hash>) -> SubmitOutcome {
    match r {
        Ok(hash) => SubmitOutcome {
            hash: Some(hash),
            error: None,
        },
        Err(e) => SubmitOutcome {
            hash: None,
            error: Some(SubmitFailure {
                code: e.code(),
                message: e.message().to_string(),
                data: e
                    .data()
                    .and_then(|d| serde_json::from_str::<String>(d.get()).ok()),
            }),
        },
    }
}

pub(crate) fn json_message<T: serde::Serialize>(
    v: &T,
) -> Result<SubscriptionMessage, serde_json::Error> {
    serde_json::value::to_raw_value(v).map(SubscriptionMessage::from)
}

/// The next committed height for a subscription, or `None` once its sink
/// is closed or the node stops. A subscriber too slow to keep up skips
/// heights rather than holding the node up.
pub(crate) async fn next_commit(
    commits: &mut broadcast::Receiver<Height>,
    sink: &jsonrpsee::SubscriptionSink,
    what: &str,
) -> Option<Height> {
    loop {
        tokio::select! {
            _ = sink.closed() => return None,
            h = commits.recv() => match h {
                Ok(h) => return Some(h),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, subscription = what, "subscriber fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
        }
    }
}

#[async_trait]
impl PalisadeApiServer for RpcImpl {
    async fn system_health(&self) -> RpcResult<Health> {
        self.backend.count_request("system_health");
        let backend = self.backend.clone();
        // Reads the ledger: off the async workers.
        tokio::task::spawn_blocking(move || backend.health())
            .await
            .map_err(|e| internal(format!("health check failed: {e}")))
    }

    async fn system_status(&self) -> RpcResult<NodeStatus> {
        self.backend.count_request("system_status");
        self.backend.status().map_err(backend_err)
    }

    async fn rpc_methods(&self) -> RpcResult<MethodsResponse> {
        // Replaced at start-up by the registered list.
        Ok(MethodsResponse {
            methods: Vec::new(),
        })
    }

    async fn chain_get_height(&self) -> RpcResult<u64> {
        self.backend.count_request("chain_getHeight");
        Ok(self.backend.latest_height().map_err(backend_err)?.get())
    }

    async fn chain_get_block(&self, id: BlockId) -> RpcResult<Option<BlockResponse>> {
        self.backend.count_request("chain_getBlock");
        Ok(self.block_by_id(id)?.map(|block| BlockResponse {
            hash: block.hash(),
            block,
        }))
    }

    async fn chain_get_block_tx_hashes(
        &self,
        id: BlockId,
    ) -> RpcResult<Option<BlockTxHashesResponse>> {
        self.backend.count_request("chain_getBlockTxHashes");
        let Some(block) = self.block_by_id(id)? else {
            return Ok(None);
        };
        let refused = self.backend.refused(block.height()).map_err(backend_err)?;
        Ok(Some(BlockTxHashesResponse {
            hash: block.hash(),
            height: block.header.height.get(),
            tx_hashes: block.tx_hashes(),
            refused,
        }))
    }

    async fn chain_get_commit(&self, height: u64) -> RpcResult<Option<CommitResponse>> {
        self.backend.count_request("chain_getCommit");
        self.retained()?.block(Height(height))?;
        Ok(self
            .backend
            .commit(Height(height))
            .map_err(backend_err)?
            .map(|commit| CommitResponse { height, commit }))
    }

    async fn chain_get_genesis(&self) -> RpcResult<serde_json::Value> {
        self.backend.count_request("chain_getGenesis");
        Ok(self.backend.genesis())
    }

    async fn chain_subscribe_new_heads(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
    ) -> SubscriptionResult {
        self.backend.count_request("chain_subscribeNewHeads");
        let mut commits = self.backend.subscribe_commits();
        let sink = crate::subscriptions::accept(pending, ext).await?;
        // The last height sent: any gap before the next is reported with it.
        let mut sent: Option<u64> = None;
        // The next head says how many were skipped.
        while let Some(height) = next_commit(&mut commits, &sink, "chain_subscribeNewHeads").await {
            let Some(block) = self.backend.block(height).map_err(|e| e.to_string())? else {
                continue;
            };
            let h = block.header.height.get();
            let refused = self.backend.refused(height).map_err(|e| e.to_string())?;
            let head = HeadResponse {
                hash: block.hash(),
                tx_count: block.tx_count(),
                refused: refused.len() as u64,
                header: block.header,
                missed: sent.map_or(0, |s| h.saturating_sub(s.saturating_add(1))),
            };
            if sink.send(json_message(&head)?).await.is_err() {
                return Ok(());
            }
            sent = Some(h);
        }
        Ok(())
    }

    async fn tx_submit(&self, tx: HexBytes) -> RpcResult<SubmitResponse> {
        self.backend.count_request("tx_submit");
        Ok(SubmitResponse {
            hash: self.submit(&tx).await?,
        })
    }

    async fn tx_submit_batch(&self, txs: Vec<HexBytes>) -> RpcResult<Vec<SubmitOutcome>> {
        self.backend.count_request("tx_submitBatch");
        if txs.is_empty() || txs.len() > MAX_SUBMIT_BATCH {
            return Err(invalid_params(format!(
                "tx_submitBatch takes 1 to {MAX_SUBMIT_BATCH} transactions, got {}",
                txs.len()
            )));
        }
        let decoded: Vec<RpcResult<SignedTransaction>> = txs.iter().map(decode_tx).collect();
        let good: Vec<SignedTransaction> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().cloned())
            .collect();
        // Checking up to a thousand signatures takes milliseconds: off the
        // async workers, which also serve the node's peers and consensus.
        let backend = self.backend.clone();
        let mut admitted = tokio::task::spawn_blocking(move || backend.submit_batch(good))
            .await
            .map_err(|e| internal(format!("submission task failed: {e}")))?
            .into_iter();
        Ok(decoded
            .into_iter()
            .map(|d| {
                outcome(d.and_then(|_| {
                    admitted
                        .next()
                        .unwrap_or_else(|| Err(SubmitError::Internal("no result".into())))
                        .map_err(submit_error)
                }))
            })
            .collect())
    }

    async fn tx_submit_and_wait(
        &self,
        tx: HexBytes,
        timeout_ms: Option<u64>,
    ) -> RpcResult<ReceiptResponse> {
        self.backend.count_request("tx_submitAndWait");
        let wait = timeout_ms.unwrap_or(DEFAULT_WAIT_MS);
        if wait == 0 || wait > MAX_WAIT_MS {
            return Err(invalid_params(format!(
                "timeout_ms must be between 1 and {MAX_WAIT_MS}"
            )));
        }
        // Subscribe before submitting so the commit cannot slip past us.
        let mut commits = self.backend.subscribe_commits();
        let hash = self.submit(&tx).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
        loop {
            if let Some(r) = self.receipt_response(&hash)? {
                return Ok(r);
            }
            match tokio::time::timeout_at(deadline, commits.recv()).await {
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(internal("node is shutting down"))
                }
                Err(_) => {
                    return Err(error_with(
                        errors::TIMEOUT,
                        format!("transaction {hash} not committed within {wait} ms"),
                        &hash.to_string(),
                    ))
                }
            }
        }
    }

    async fn tx_get(&self, hash: Hash) -> RpcResult<Option<TxResponse>> {
        self.backend.count_request("tx_get");
        let found = self.backend.tx(&hash).map_err(backend_err)?;
        if let Some((_, Some(loc))) = &found {
            self.retained()?.block(loc.height)?;
        }
        Ok(found.map(|(tx, loc)| TxResponse {
            hash,
            height: loc.as_ref().map(|l| l.height.get()),
            index: loc.map(|l| l.index),
            tx,
        }))
    }

    async fn tx_get_receipt(&self, hash: Hash) -> RpcResult<Option<ReceiptResponse>> {
        self.backend.count_request("tx_getReceipt");
        self.receipt_response(&hash)
    }

    async fn tx_subscribe_status(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        hash: Hash,
        timeout_ms: Option<u64>,
    ) -> SubscriptionResult {
        self.backend.count_request("tx_subscribeStatus");
        let wait = timeout_ms.unwrap_or(MAX_WAIT_MS);
        if wait == 0 || wait > MAX_WAIT_MS {
            pending
                .reject(invalid_params(format!(
                    "timeout_ms must be between 1 and {MAX_WAIT_MS}"
                )))
                .await;
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
        let mut commits = self.backend.subscribe_commits();
        let sink = crate::subscriptions::accept(pending, ext).await?;
        let mut last = None;
        loop {
            let status = self.tx_status(&hash).map_err(|e| e.message().to_string())?;
            if last.as_ref() != Some(&status) {
                if sink.send(json_message(&status)?).await.is_err() {
                    return Ok(());
                }
                if matches!(status, TxStatus::Committed { .. }) {
                    return Ok(());
                }
                last = Some(status);
            }
            tokio::select! {
                _ = sink.closed() => return Ok(()),
                // Bounded: a subscription must not hold one of the
                // connection's slots forever for a transaction that never
                // commits. The last notification says so.
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = sink.send(json_message(&TxStatus::TimedOut { after_ms: wait })?).await;
                    return Ok(());
                }
                r = commits.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = r {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn state_get_account(&self, address: Address) -> RpcResult<AccountResponse> {
        self.backend.count_request("state_getAccount");
        let acct = self.backend.account(&address).map_err(backend_err)?;
        let evm_address = palisade_runtime::evm::evm_address(&address);
        Ok(match acct {
            Some(a) => AccountResponse {
                address,
                balance: a.balance,
                nonce: a.nonce,
                roles: a.role_list(),
                exists: true,
                evm_address,
            },
            None => AccountResponse {
                address,
                balance: 0,
                nonce: 0,
                roles: Vec::new(),
                exists: false,
                evm_address,
            },
        })
    }

    async fn state_get(
        &self,
        key: HexBytes,
        query: Option<StateQuery>,
    ) -> RpcResult<StateResponse> {
        self.backend.count_request("state_get");
        let query = query.unwrap_or_default();
        if key.0.is_empty() || key.0.len() > 1024 {
            return Err(invalid_params("key must be 1 to 1024 bytes"));
        }
        let read = self
            .backend
            .state_get(&key.0, query.prove)
            .map_err(backend_err)?;
        let latest = read.height;
        if let Some(h) = query.height {
            if h != latest.get() {
                return Err(error(
                    errors::HEIGHT_UNAVAILABLE,
                    format!(
                        "state is kept at the latest height ({latest}) only; \
                         the state root after each block is in the next block's header"
                    ),
                ));
            }
        }
        Ok(StateResponse {
            key,
            value: read.value.map(HexBytes),
            height: latest.get(),
            state_root: read.root,
            proof: read.proof,
        })
    }

    async fn validator_get_set(&self, height: Option<u64>) -> RpcResult<ValidatorSetResponse> {
        self.backend.count_request("validator_getSet");
        let latest = self.backend.latest_height().map_err(backend_err)?;
        let h = match height {
            Some(h) => Height(h),
            None => Height(latest.get().saturating_add(1)),
        };
        self.retained()?.block(h)?;
        let set = self
            .backend
            .validators(h)
            .map_err(backend_err)?
            .ok_or_else(|| {
                error(
                    errors::HEIGHT_UNAVAILABLE,
                    format!("no validator set for height {h} (latest is {latest})"),
                )
            })?;
        Ok(ValidatorSetResponse {
            height: h.get(),
            hash: set.hash(),
            total_power: set.total_power(),
            validators: set
                .validators()
                .iter()
                .map(|v| ValidatorResponse {
                    public_key: v.public_key,
                    power: v.power,
                })
                .collect(),
        })
    }

    async fn mempool_status(&self) -> RpcResult<MempoolStatus> {
        self.backend.count_request("mempool_status");
        Ok(self.backend.mempool())
    }
}
