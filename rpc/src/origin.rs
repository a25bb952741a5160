//! Which web pages may use the node's JSON-RPC (`rpc.allowed_origins`).
//!
//! A browser tells the server which site a request comes from in the
//! `Origin` header; it sends one with every WebSocket handshake and every
//! `POST`, and a page cannot forge or leave it out. Without this check any
//! page the node's operator opens could open `ws://127.0.0.1:8545` and
//! submit transactions (WebSocket has no same-origin protection of its
//! own), or read the node through DNS rebinding. So:
//!
//! - a request **without** `Origin` is not from a browser page (curl, the
//!   `palisade` CLI, SDKs) and is served;
//! - a request whose `Origin` is in the list is served, and allowed
//!   cross-origin reads (CORS headers, preflight answered);
//! - any other request carrying `Origin` is refused with HTTP 403 before
//!   jsonrpsee sees it: HTTP calls, WebSocket upgrades and `GET /health`
//!   alike.
//!
//! An entry is `*` (every origin: only for a node that holds nothing worth
//! protecting) or `scheme://host[:port]`, where `port` may be `*` for any
//! port (and none). Scheme and host compare case-insensitively, the
//! default port of `http` (80) and `https` (443) may be written or left
//! out, and nothing else is a wildcard: `http://localhost:*` allows
//! `http://localhost:3000` but not `https://localhost:3000`,
//! `http://localhost.evil.com` or `http://127.0.0.1:3000`. An origin has
//! no path, so an entry with one (even a trailing `/`) is a configuration
//! error rather than silently never matching. The `null` origin
//! (sandboxed frames, `file://` pages) is allowed only by `*`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

/// `palisade dev`'s list: pages served from this machine, on any port.
pub const LOCAL_DEV_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// A malformed `rpc.allowed_origins` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rpc.allowed_origins: {entry:?}: {why}")]
pub struct OriginError {
    pub entry: String,
    pub why: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `:*`: any port, or none.
    Any,
    /// This port; `None` is the scheme's default.
    Is(Option<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    host: String,
    port: Port,
}

/// The parsed `rpc.allowed_origins`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    patterns: Vec<Pattern>,
    own_pages: bool,
}

impl AllowedOrigins {
    /// No origin allowed: browser pages cannot use the node (the default).
    pub fn none() -> AllowedOrigins {
        AllowedOrigins::default()
    }

    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedOrigins, OriginError> {
        let mut out = AllowedOrigins::default();
        for e in entries {
            let e = e.as_ref();
            if e.trim() == "*" {
                out.any = true;
                continue;
            }
            let (scheme, host, port) = split(e, true).map_err(|why| OriginError {
                entry: e.to_string(),
                why,
            })?;
            out.patterns.push(Pattern { scheme, host, port });
        }
        Ok(out)
    }

    /// Also allows the node's own pages (the explorer it serves): a request
    /// whose `Origin` is the very address it was sent to (`Host`), when that
    /// address is an IP address or `localhost`. A host *name* is not enough:
    /// a site that points its name at this node (DNS rebinding) would be
    /// "same origin" with it; such names go in `rpc.allowed_origins`.
    pub fn with_own_pages(mut self) -> AllowedOrigins {
        self.own_pages = true;
        self
    }

    /// Whether the node serves its own pages (see [`Self::with_own_pages`]).
    pub fn own_pages(&self) -> bool {
        self.own_pages
    }

    /// Whether a request carrying `Origin: origin`, sent to `Host: host`,
    /// may be served.
    pub fn allows_from(&self, origin: &str, host: Option<&str>) -> bool {
        self.allows(origin) || (self.own_pages && host.is_some_and(|h| is_own_page(origin, h)))
    }

    /// Whether a request carrying `Origin: origin` may be served.
    pub fn allows(&self, origin: &str) -> bool {
        if self.any {
            return true;
        }
        let Ok((scheme, host, Port::Is(port))) = split(origin, false) else {
            return false;
        };
        self.patterns.iter().any(|p| {
            p.scheme == scheme
                && p.host == host
                && match p.port {
                    Port::Any => true,
                    Port::Is(q) => q == port,
                }
        })
    }
}

/// `origin` is `http(s)://` + `host` exactly, and `host` is an IP address
/// or `localhost` (with or without a port).
fn is_own_page(origin: &str, host: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    if !rest.eq_ignore_ascii_case(host) {
        return false;
    }
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(v6) => match v6.split_once(']') {
            Some((addr, port)) if port.is_empty() || port.starts_with(':') => {
                return addr.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// `scheme://host[:port]` into its normalized parts; `:*` only in a
/// pattern.
fn split(s: &str, pattern: bool) -> Result<(String, String, Port), &'static str> {
    let s = s.trim();
    let (scheme, rest) = s
        .split_once("://")
        .ok_or("an origin is scheme://host[:port], e.g. http://localhost:3000")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err("the scheme is not valid");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or fragment (not even a trailing /)");
    }
    if rest.contains('@') || rest.contains(char::is_whitespace) {
        return Err("the host is not valid");
    }
    // An IPv6 host is bracketed: the port follows the `]`.
    let (host, port) = if rest.starts_with('[') {
        let end = rest.find(']').ok_or("unclosed [ in an IPv6 host")?;
        let (h, tail) = rest.split_at(end + 1);
        match tail {
            "" => (h, None),
            t => (
                h,
                Some(t.strip_prefix(':').ok_or("junk after the IPv6 host")?),
            ),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return Err("the host is not valid");
    }
    let default = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    let port = match port {
        None => Port::Is(None),
        Some("*") if pattern => Port::Any,
        Some(p) => {
            let n: u16 = p.parse().map_err(|_| "the port is not a number")?;
            Port::Is(if Some(n) == default { None } else { Some(n) })
        }
    };
    Ok((scheme, host.to_ascii_lowercase(), port))
}

/// The tower layer that applies [`AllowedOrigins`] to every HTTP request
/// and WebSocket handshake.
#[derive(Debug, Clone)]
pub struct OriginLayer {
    allowed: Arc<AllowedOrigins>,
}

impl OriginLayer {
    pub fn new(allowed: AllowedOrigins) -> OriginLayer {
        OriginLayer {
            allowed: Arc::new(allowed),
        }
    }
}

impl<S> tower::Layer<S> for OriginLayer {
    type Service = OriginCheck<S>;

    fn layer(&self, inner: S) -> OriginCheck<S> {
        OriginCheck {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OriginCheck<S> {
    inner: S,
    allowed: Arc<AllowedOrigins>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pub(crate) fn text_response(status: StatusCode, text: String) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl<S, B> tower::Service<HttpRequest<B>> for OriginCheck<S>
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
        let mut origins = req.headers().get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            // Not from a browser page.
            (None, _) => {
                let fut = self.inner.call(req);
                return Box::pin(async move { fut.await.map_err(Into::into) });
            }
            (Some(o), None) => o.clone(),
            // Browsers send one; two is not a browser we can reason about.
            (Some(_), Some(_)) => {
                return Box::pin(async {
                    Ok(text_response(
                        StatusCode::FORBIDDEN,
                        "more than one Origin header\n".into(),
                    ))
                })
            }
        };
        let text = origin.to_str().unwrap_or("");
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if !self.allowed.allows_from(text, host) {
            tracing::debug!(origin = %text, "rpc request refused: origin not in rpc.allowed_origins");
            let body = format!(
                "origin {text:?} may not use this node's JSON-RPC (it is not in the node's rpc.allowed_origins)\n"
            );
            return Box::pin(async move { Ok(text_response(StatusCode::FORBIDDEN, body)) });
        }
        // An allowed page's preflight: say what it may send.
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let mut r = HttpResponse::new(HttpBody::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, GET, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            h.insert(header::VARY, HeaderValue::from_static("origin"));
            return Box::pin(async move { Ok(r) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut r = fut.await.map_err(Into::into)?;
            r.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            r.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("origin"));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_allowed_by_default() {
        let none = AllowedOrigins::none();
        assert!(!none.allows("http://localhost:3000"));
        assert!(!none.allows("null"));
        assert!(!none.allows(""));
    }

    #[test]
    fn exact_entries_match_exactly() {
        let a =
            AllowedOrigins::parse(&["https://App.Example.com", "http://10.0.0.5:8080"]).unwrap();
        assert!(a.allows("https://app.example.com"));
        assert!(a.allows("https://app.example.com:443"));
        assert!(a.allows("HTTPS://APP.EXAMPLE.COM"));
        assert!(!a.allows("http://app.example.com"));
        assert!(!a.allows("https://app.example.com:8443"));
        assert!(!a.allows("https://evil.app.example.com"));
        assert!(!a.allows("https://app.example.com.evil.net"));
        assert!(a.allows("http://10.0.0.5:8080"));
        assert!(!a.allows("http://10.0.0.5"));
        assert!(!a.allows("http://10.0.0.50:8080"));
        assert!(!a.allows("null"));
    }

    #[test]
    fn any_port_entries() {
        let a = AllowedOrigins::parse(LOCAL_DEV_ORIGINS).unwrap();
        for ok in [
            "http://localhost:3000",
            "http://localhost",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
            "https://localhost:8443",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for refused in [
            "http://localhost.evil.com",
            "http://evil.com",
            "http://127.0.0.2:3000",
            "http://[::2]:80",
            "ws://localhost:3000",
            "null",
            "http://localhost:3000/",
            "http://localhost:abc",
            "http://user@localhost:3000",
        ] {
            assert!(!a.allows(refused), "{refused}");
        }
    }

    #[test]
    fn own_pages_are_same_origin_on_an_address_only() {
        let plain = AllowedOrigins::none();
        assert!(!plain.allows_from("http://127.0.0.1:8545", Some("127.0.0.1:8545")));
        let a = AllowedOrigins::none().with_own_pages();
        for (origin, host) in [
            ("http://127.0.0.1:8545", "127.0.0.1:8545"),
            ("http://localhost:8545", "localhost:8545"),
            ("http://LOCALHOST:8545", "localhost:8545"),
            ("http://[::1]:8545", "[::1]:8545"),
            ("http://10.1.2.3", "10.1.2.3"),
            ("https://192.168.1.9:443", "192.168.1.9:443"),
        ] {
            assert!(a.allows_from(origin, Some(host)), "{origin} to {host}");
        }
        for (origin, host, why) in [
            ("http://127.0.0.1:3000", "127.0.0.1:8545", "another port"),
            (
                "http://evil.com:8545",
                "evil.com:8545",
                "a name (DNS rebinding)",
            ),
            ("http://node.example:8545", "node.example:8545", "a name"),
            ("http://127.0.0.1:8545", "localhost:8545", "another host"),
            (
                "ws://127.0.0.1:8545",
                "127.0.0.1:8545",
                "not a page's scheme",
            ),
            ("null", "127.0.0.1:8545", "opaque origin"),
            ("http://[::1]x:8545", "[::1]x:8545", "malformed"),
        ] {
            assert!(
                !a.allows_from(origin, Some(host)),
                "{why}: {origin} to {host}"
            );
        }
        assert!(!a.allows_from("http://127.0.0.1:8545", None), "no Host");
    }

    #[test]
    fn star_allows_everything() {
        let a = AllowedOrigins::parse(&["*"]).unwrap();
        assert!(a.allows("https://anything.example"));
        assert!(a.allows("null"));
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            "localhost:3000",
            "http://localhost:3000/",
            "http://localhost/app",
            "http://",
            "http://local host",
            "http://[::1",
            "http://localhost:port",
            "http://localhost:99999",
            "1http://x",
        ] {
            assert!(AllowedOrigins::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
