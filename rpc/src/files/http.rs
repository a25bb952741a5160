//! File bytes over plain HTTP on the RPC port, with a read permit in the
//! `x-palisade-permit` header (borsh, 0x-hex, naming this node):
//!
//! - `GET /files/0x<root>`: the whole file, if this node holds it and the
//!   permit's account may read it. Always `application/octet-stream` as
//!   an attachment, sandboxed: a file is never run as a page of the
//!   node's origin, whatever its media type says.
//! - `PUT /files/0x<root>`: its publisher hands this node the bytes of a
//!   file published on chain (the permit must be the publisher's). The
//!   body must be exactly the record's size and hash to its root, or
//!   nothing is kept; the node then serves it to the network.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use palisade_files::FileRoot;

use super::backend::{FileCallError, FilesBackend};
use super::server::parse_permit;
use crate::errors;
use crate::origin::text_response;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The path files are under.
pub const PATH: &str = "/files/";
/// The header a permit travels in.
pub const PERMIT_HEADER: &str = "x-palisade-permit";
/// Bytes read from disk or the network at a time.
const CHUNK: usize = 256 * 1024;

/// The status a refused call maps to.
fn status_of(e: &FileCallError) -> StatusCode {
    match e.code {
        errors::FILE_UNKNOWN => StatusCode::NOT_FOUND,
        errors::FILE_REFUSED => StatusCode::FORBIDDEN,
        errors::FILES_BUSY => StatusCode::SERVICE_UNAVAILABLE,
        errors::INVALID_PARAMS => StatusCode::BAD_REQUEST,
        errors::FILES_UNAVAILABLE => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refused(e: FileCallError) -> HttpResponse {
    text_response(status_of(&e), format!("{}\n", e.message))
}

/// The root and permit a request names, or the answer refusing it.
fn parse<B>(
    req: &HttpRequest<B>,
) -> Result<(FileRoot, palisade_files::SignedReadPermit), Box<HttpResponse>> {
    let name = req.uri().path().strip_prefix(PATH).unwrap_or("");
    let root: FileRoot = name.parse().map_err(|e: palisade_files::FileError| {
        Box::new(text_response(StatusCode::BAD_REQUEST, format!("{e}\n")))
    })?;
    let permit = req
        .headers()
        .get(PERMIT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Box::new(text_response(
                StatusCode::UNAUTHORIZED,
                format!("a read permit is needed in the {PERMIT_HEADER} header (palisade file get signs one)\n"),
            ))
        })?;
    let permit = parse_permit(permit)
        .map_err(|e| Box::new(text_response(StatusCode::BAD_REQUEST, format!("{e}\n"))))?;
    Ok((root, permit))
}

async fn get(
    backend: Arc<dyn FilesBackend>,
    root: FileRoot,
    permit: palisade_files::SignedReadPermit,
) -> HttpResponse {
    let opened = {
        let b = backend.clone();
        tokio::task::spawn_blocking(move || b.open_for_reader(&root, &permit)).await
    };
    let (file, size) = match opened {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return refused(e),
        Err(_) => return text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into()),
    };
    let file = tokio::fs::File::from_std(file);
    let stream = futures::stream::unfold((file, size), |(mut file, left)| async move {
        use tokio::io::AsyncReadExt;
        if left == 0 {
            return None;
        }
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0u8; want];
        match file.read_exact(&mut buf).await {
            Ok(_) => Some((
                Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(buf))),
                (file, left - want as u64),
            )),
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut r = HttpResponse::new(HttpBody::new(http_body_util::StreamBody::new(stream)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", hex::encode(root.0)))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    r
}

/// A blocking reader over the chunks an async task feeds it.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

async fn put<B>(
    backend: Arc<dyn FilesBackend>,
    root: FileRoot,
    permit: palisade_files::SignedReadPermit,
    req: HttpRequest<B>,
) -> HttpResponse
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError> + Send,
{
    let size = {
        let (b, p) = (backend.clone(), permit.clone());
        match tokio::task::spawn_blocking(move || b.upload_size(&root, &p)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return refused(e),
            Err(_) => {
                return text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
            }
        }
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared != Some(size) {
        return text_response(
            StatusCode::BAD_REQUEST,
            format!("the record says {size} bytes: send exactly that, with Content-Length\n"),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let taker = {
        let b = backend.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = ChunkReader {
                rx,
                cur: Bytes::new(),
            };
            b.accept_upload(&root, &permit, &mut reader)
        })
    };
    let mut body = req.into_body();
    let mut sent: u64 = 0;
    let mut failed = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    sent += data.len() as u64;
                    if sent > size {
                        failed = Some(format!("more than the record's {size} bytes\n"));
                        break;
                    }
                    if tx.send(data).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                failed = Some(format!("the upload broke off: {}\n", e.into()));
                break;
            }
        }
    }
    drop(tx);
    let taken = taker.await;
    if let Some(why) = failed {
        return text_response(StatusCode::BAD_REQUEST, why);
    }
    match taken {
        Ok(Ok(n)) => text_response(
            StatusCode::OK,
            format!("{{\"root\":\"{root}\",\"size\":{n}}}\n"),
        ),
        Ok(Err(e)) => refused(e),
        Err(_) => text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into()),
    }
}

/// Serves `/files/` ahead of the JSON-RPC service.
#[derive(Clone)]
pub struct FilesLayer {
    pub backend: Option<Arc<dyn FilesBackend>>,
}

impl<S> tower::Layer<S> for FilesLayer {
    type Service = FilesHttp<S>;

    fn layer(&self, inner: S) -> FilesHttp<S> {
        FilesHttp {
            inner,
            backend: self.backend.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FilesHttp<S> {
    inner: S,
    backend: Option<Arc<dyn FilesBackend>>,
}

impl std::fmt::Debug for FilesLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilesLayer")
    }
}

impl<S> std::fmt::Debug for FilesHttp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilesHttp")
    }
}

impl<S, B> tower::Service<HttpRequest<B>> for FilesHttp<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError> + Send,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if !req.uri().path().starts_with(PATH) {
            let fut = self.inner.call(req);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let Some(backend) = self.backend.clone() else {
            return Box::pin(async {
                Ok(text_response(
                    StatusCode::NOT_FOUND,
                    "this node does not share files\n".into(),
                ))
            });
        };
        let (root, permit) = match parse(&req) {
            Ok(p) => p,
            Err(r) => return Box::pin(async move { Ok(*r) }),
        };
        match *req.method() {
            Method::GET => Box::pin(async move { Ok(get(backend, root, permit).await) }),
            Method::PUT => Box::pin(async move { Ok(put(backend, root, permit, req).await) }),
            _ => Box::pin(async {
                Ok(text_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "GET or PUT\n".into(),
                ))
            }),
        }
    }
}
