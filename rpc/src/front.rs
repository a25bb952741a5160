//! What the server does before jsonrpsee dispatches a call: `GET /health`
//! with an HTTP status that says whether the node is healthy, and the
//! JSON-RPC 2.0 checks jsonrpsee 0.26 gets wrong.
//!
//! jsonrpsee answers a body that is JSON but not a request object with
//! -32700 (parse error) whenever it cannot find a usable `id` in it:
//! `{"jsonrpc":"2.0","method":1,"params":"bar"}`, `{"foo":"boo"}`, `1`.
//! The specification (section 5.1, and the examples of section 7) says
//! -32700 is for invalid JSON only and such a body is -32600 (invalid
//! request). [`RequestCheckLayer`] answers those bodies itself, over HTTP;
//! everything else, valid or not, goes on to jsonrpsee unchanged, which
//! already answers invalid JSON, empty and invalid batches and batch
//! entries as the specification says. jsonrpsee handles WebSocket messages
//! without a hook in between, so there a non-request object still gets
//! -32700 (`docs/rpc.md` says so).
//!
//! It also keeps jsonrpsee from answering notifications over HTTP: it
//! sends the body `null`, where the specification says nothing is
//! returned (HTTP 204 here).
//!
//! [`StructuredParamsLayer`] is an RPC middleware, so it sees every call
//! on both transports, batched or not: `params` that is a string, number
//! or boolean is -32600 (the specification requires an array or an
//! object; `null` is taken as no parameters), where jsonrpsee would have
//! passed it to the method.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, BatchEntryErr, MethodResponse, Notification as RpcNotification, RpcServiceT,
};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::{ErrorObject, Id, InvalidRequest, Notification, Request};
use serde_json::value::RawValue;

use crate::backend::NodeBackend;
use crate::errors::INVALID_REQUEST;
use crate::origin::text_response;

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers `GET /health` from [`NodeBackend::health`]: 200 and the
/// `system_health` JSON when the node is healthy, 503 and the same JSON
/// (with its reasons) when it is not, so a load balancer or orchestrator
/// needs only the status code.
#[derive(Clone)]
pub struct HealthLayer {
    backend: Arc<dyn NodeBackend>,
}

impl std::fmt::Debug for HealthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthLayer")
    }
}

impl HealthLayer {
    pub fn new(backend: Arc<dyn NodeBackend>) -> HealthLayer {
        HealthLayer { backend }
    }
}

impl<S> tower::Layer<S> for HealthLayer {
    type Service = HealthEndpoint<S>;

    fn layer(&self, inner: S) -> HealthEndpoint<S> {
        HealthEndpoint {
            inner,
            backend: self.backend.clone(),
        }
    }
}

#[derive(Clone)]
pub struct HealthEndpoint<S> {
    inner: S,
    backend: Arc<dyn NodeBackend>,
}

impl<S> std::fmt::Debug for HealthEndpoint<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthEndpoint")
    }
}

/// The `GET /health` answer for `backend` now.
pub fn health_response(backend: &dyn NodeBackend) -> HttpResponse {
    backend.count_request("system_health");
    let health = backend.health();
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let Ok(json) = serde_json::to_string(&health) else {
        return text_response(StatusCode::INTERNAL_SERVER_ERROR, "health\n".into());
    };
    let mut r = HttpResponse::new(HttpBody::from(json));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

impl<S, B> tower::Service<HttpRequest<B>> for HealthEndpoint<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if req.method() == Method::GET && req.uri().path() == "/health" {
            let backend = self.backend.clone();
            // Reads the ledger: off the async workers.
            return Box::pin(async move {
                Ok(
                    tokio::task::spawn_blocking(move || health_response(backend.as_ref()))
                        .await
                        .unwrap_or_else(|e| {
                            text_response(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("health check failed: {e}\n"),
                            )
                        }),
                )
            });
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// Answers JSON bodies that are not JSON-RPC request objects with -32600,
/// as the specification says, instead of jsonrpsee's -32700 (see the
/// module documentation). Bodies are read up to `max_request_bytes`, the
/// same limit jsonrpsee applies (HTTP 413 beyond it).
#[derive(Debug, Clone, Copy)]
pub struct RequestCheckLayer {
    max_request_bytes: u32,
}

impl RequestCheckLayer {
    pub fn new(max_request_bytes: u32) -> RequestCheckLayer {
        RequestCheckLayer { max_request_bytes }
    }
}

impl<S> tower::Layer<S> for RequestCheckLayer {
    type Service = RequestCheck<S>;

    fn layer(&self, inner: S) -> RequestCheck<S> {
        RequestCheck {
            inner,
            max_request_bytes: self.max_request_bytes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestCheck<S> {
    inner: S,
    max_request_bytes: u32,
}

fn is_json(req: &HttpRequest<impl Sized>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim_start().to_ascii_lowercase();
            v.starts_with("application/json")
        })
}

/// The answer to a body that is JSON but no request object, if `body` is
/// one that jsonrpsee would answer wrongly; `None` for everything else.
pub fn check_body(body: &[u8]) -> Option<HttpResponse> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    match first {
        // jsonrpsee answers batches (empty, invalid, mixed) as the
        // specification says.
        b'[' => return None,
        b'{' => {
            if serde_json::from_slice::<Request>(body).is_ok() {
                return None;
            }
            /// Whether the object has a (non-null) `id`.
            #[derive(serde::Deserialize)]
            struct Probe<'a> {
                #[serde(borrow, default)]
                id: Option<&'a RawValue>,
            }
            match serde_json::from_slice::<Probe>(body) {
                // Without an id: a notification (no answer) if jsonrpsee
                // can read it as one.
                Ok(Probe { id: None }) => {
                    if serde_json::from_slice::<Notification<Option<&RawValue>>>(body).is_ok() {
                        return None;
                    }
                }
                // With an id jsonrpsee can read: it answers -32600 with
                // that id itself. With one it cannot (an object, say), it
                // would take the object for a notification and answer
                // nothing.
                Ok(Probe { id: Some(_) }) => {
                    if serde_json::from_slice::<InvalidRequest>(body).is_ok() {
                        return None;
                    }
                }
                Err(_) => {}
            }
        }
        _ => {}
    }
    // Not JSON at all: jsonrpsee's -32700 is right.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    let rp = MethodResponse::error(Id::Null, invalid_request("not a JSON-RPC request object"));
    Some(jsonrpsee::server::http::response::from_method_response(rp))
}

fn invalid_request(why: &str) -> ErrorObject<'static> {
    ErrorObject::owned(
        INVALID_REQUEST,
        format!("Invalid request: {why}"),
        None::<()>,
    )
}

impl<S, B> tower::Service<HttpRequest<B>> for RequestCheck<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if req.method() != Method::POST || !is_json(&req) {
            let fut = self.inner.call(req.map(HttpBody::new));
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let max = self.max_request_bytes;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match Limited::new(body, max as usize).collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Ok(jsonrpsee::server::http::response::too_large(max))
                }
                Err(e) => return Err(e),
            };
            if let Some(answer) = check_body(&bytes) {
                return Ok(answer);
            }
            let req = HttpRequest::from_parts(parts, HttpBody::new(Full::new(bytes)));
            let answer = inner.call(req).await.map_err(Into::into)?;
            no_reply_to_notifications(answer).await
        })
    }
}

/// jsonrpsee answers a notification, or a batch of only notifications,
/// over HTTP with the body `null`; the specification says the server does
/// not reply at all. `null` is never a JSON-RPC response otherwise, so
/// that answer becomes 204 No Content.
async fn no_reply_to_notifications(answer: HttpResponse) -> Result<HttpResponse, BoxError> {
    use http_body::Body as _;
    if answer.status() != StatusCode::OK || answer.body().size_hint().exact() != Some(4) {
        return Ok(answer);
    }
    let (mut parts, body) = answer.into_parts();
    let bytes = body.collect().await?.to_bytes();
    if &bytes[..] != b"null" {
        return Ok(HttpResponse::from_parts(
            parts,
            HttpBody::new(Full::new(bytes)),
        ));
    }
    parts.status = StatusCode::NO_CONTENT;
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(HttpResponse::from_parts(parts, HttpBody::empty()))
}

/// The RPC middleware that refuses calls whose `params` is neither an
/// array, an object nor null (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct StructuredParamsLayer;

impl<S> tower::Layer<S> for StructuredParamsLayer {
    type Service = StructuredParams<S>;

    fn layer(&self, inner: S) -> StructuredParams<S> {
        StructuredParams { inner }
    }
}

#[derive(Debug, Clone)]
pub struct StructuredParams<S> {
    inner: S,
}

fn unstructured(params: Option<&RawValue>) -> bool {
    params.is_some_and(|p| {
        !matches!(
            p.get().trim_start().as_bytes().first(),
            Some(b'[' | b'{' | b'n')
        )
    })
}

const PARAMS: &str = "params must be an array or an object";

impl<S> RpcServiceT for StructuredParams<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        async move {
            if unstructured(req.params.as_deref()) {
                return MethodResponse::error(req.id, invalid_request(PARAMS));
            }
            inner.call(req).await
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let id = match entry {
                Ok(BatchEntry::Call(req)) if unstructured(req.params.as_deref()) => req.id.clone(),
                _ => continue,
            };
            *entry = Err(BatchEntryErr::new(id, invalid_request(PARAMS)));
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: RpcNotification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
