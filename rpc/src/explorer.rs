//! The block explorer's pages under `/explorer/` (`rpc.explorer`): the
//! front end in `explorer/` (TypeScript, built with npm from its lockfile),
//! whose built assets (`explorer/dist`, committed) are compiled into the
//! binary, so serving them needs no files, no npm and no internet.
//!
//! Every response carries a strict Content-Security-Policy: scripts and
//! styles only from the node itself, no inline script, no frames, no
//! forms; the page may connect to any JSON-RPC endpoint (another node,
//! when the user points it there). Chain data is untrusted and the page
//! renders it as text; the policy is the second line of defence.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use include_dir::{include_dir, Dir};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

use crate::origin::text_response;

static DIST: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../explorer/dist");

/// Where the explorer is served.
pub const PATH: &str = "/explorer/";

/// The Content-Security-Policy of every explorer response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self' http: https: ws: wss:; \
    manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The file at `path` under `/explorer/`, with its content type.
fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    let rel = match path.strip_prefix(PATH)? {
        "" => "index.html",
        rel => rel,
    };
    // include_dir paths never hold `..`; refuse one anyway, and anything odd.
    if rel.split('/').any(|part| part.is_empty() || part == "..") {
        return None;
    }
    let file = DIST.get_file(rel)?;
    let ext = rel.rsplit_once('.').map_or("", |(_, e)| e);
    let kind = match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    Some((file.contents(), kind))
}

/// Whether the explorer was built into this binary.
pub fn built() -> bool {
    DIST.get_file("index.html").is_some()
}

fn secure(r: &mut HttpResponse) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The answer to a `GET` or `HEAD` of `path`, if it is the explorer's.
pub fn response(method: &Method, path: &str) -> Option<HttpResponse> {
    if path == "/explorer" {
        let mut r = HttpResponse::new(HttpBody::empty());
        *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static(PATH));
        return Some(r);
    }
    if !path.starts_with(PATH) {
        return None;
    }
    let mut r = if !built() {
        text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the explorer was not built into this binary: run `npm ci && npm run build` in \
             explorer/, then build the node again\n"
                .into(),
        )
    } else {
        match asset(path) {
            None => text_response(StatusCode::NOT_FOUND, format!("no such page: {path}\n")),
            Some((bytes, kind)) => {
                let body = if *method == Method::HEAD {
                    HttpBody::empty()
                } else {
                    HttpBody::new(http_body_util::Full::new(bytes::Bytes::from_static(bytes)))
                };
                let mut r = HttpResponse::new(body);
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                // Vite names assets by their content's hash.
                let cache = if path.starts_with("/explorer/assets/") {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                };
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
                r
            }
        }
    };
    secure(&mut r);
    Some(r)
}

/// Serves the explorer's pages; everything else goes on to JSON-RPC.
#[derive(Debug, Clone, Copy)]
pub struct ExplorerLayer;

impl<S> tower::Layer<S> for ExplorerLayer {
    type Service = ExplorerPages<S>;

    fn layer(&self, inner: S) -> ExplorerPages<S> {
        ExplorerPages { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ExplorerPages<S> {
    inner: S,
}

impl<S, B> tower::Service<HttpRequest<B>> for ExplorerPages<S>
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
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            if let Some(r) = response(req.method(), req.uri().path()) {
                return Box::pin(async move { Ok(r) });
            }
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_assets_are_not_found() {
        for bad in [
            "/explorer/../Cargo.toml",
            "/explorer//index.html",
            "/explorer/assets/",
            "/explorer/nothing.js",
            "/explorerx/index.html",
        ] {
            assert!(asset(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_index_is_served_with_the_policy() {
        let r = response(&Method::GET, "/explorer/").expect("explorer path");
        let csp = r.headers().get(header::CONTENT_SECURITY_POLICY).unwrap();
        assert_eq!(csp, CSP);
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe"));
        if built() {
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(
                r.headers().get(header::CONTENT_TYPE).unwrap(),
                "text/html; charset=utf-8"
            );
        } else {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        let moved = response(&Method::GET, "/explorer").unwrap();
        assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
        assert!(response(&Method::GET, "/health").is_none());
    }
}
