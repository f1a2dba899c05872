//! The one HTTP client every Azure call goes through.
//!
//! It is reqwest over rustls (ring) with the webpki roots, plus an optional extra PEM CA file
//! (for the emulator). On top of reqwest it adds:
//!
//! - a timeout on every request, covering the body too;
//! - a cap on response bodies, read incrementally, so a huge answer is refused without being
//!   buffered;
//! - the destination rules: plain `http` only to loopback hosts (and to the IMDS address
//!   `169.254.169.254`, unless the loopback guard is on);
//! - the loopback guard (design section 8): with `WASM_SECRETS_LOOPBACK_ONLY=1`, or
//!   [`HttpClientBuilder::loopback_only`], every destination outside `127.0.0.0/8` and `::1` is
//!   refused before connecting. Literal IPs are checked in the URL; names other than
//!   `localhost` and `*.localhost` are refused without a DNS query, so no answer from DNS
//!   can lead anywhere. (`localhost` names always resolve to `127.0.0.1` and `::1` without
//!   DNS; with the guard off, other names go to the system resolver unfiltered.)
//!
//! Redirects are not followed and proxies from the environment are ignored, so a request
//! goes where its URL says or nowhere. Errors carry a status and a short reason, never a body.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::{Host, Url};
use zeroize::Zeroizing;

mod answer;
pub use answer::is_code;

/// The environment variable that turns the loopback guard on when set to `1`.
pub const LOOPBACK_ONLY_ENV: &str = "WASM_SECRETS_LOOPBACK_ONLY";

/// The address of the instance metadata service, the one non-loopback plain-http destination.
pub const IMDS_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// Default cap on a response body: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Default timeout of one request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an HTTP exchange failed. Messages never hold a body, a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The destination is not allowed (loopback guard, plain http to a remote host, bad URL).
    #[error("refused destination: {0}")]
    Refused(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The body was larger than the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// Could not connect, TLS failed, or the connection broke.
    #[error("transport error: {0}")]
    Transport(String),
    /// The body was not what we expected (bad JSON, missing field).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The client could not be built (bad CA file, TLS setup).
    #[error("http client setup: {0}")]
    Setup(String),
}

/// An HTTP response with its whole (capped) body in zeroizing memory. `Debug` omits the body.
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body; wiped on drop.
    pub body: Zeroizing<Vec<u8>>,
}

impl HttpResponse {
    /// Parses the body as JSON. Errors give only the category and position, never body text.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Malformed(json_error(&e)))
    }

    /// A header value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field(
                "body",
                &format_args!("<redacted, {} bytes>", self.body.len()),
            )
            .finish_non_exhaustive()
    }
}

/// Describes a JSON error without quoting the input (serde may quote values it saw).
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "i/o error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Builds an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct HttpClientBuilder {
    timeout: Duration,
    connect_timeout: Duration,
    max_body: usize,
    loopback_only: bool,
    extra_ca: Option<PathBuf>,
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClientBuilder {
    /// Defaults: 10 s timeout, 1 MiB body cap, no extra CA; the loopback guard is on when
    /// `WASM_SECRETS_LOOPBACK_ONLY=1` in the process environment.
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            max_body: DEFAULT_MAX_BODY,
            loopback_only: loopback_only_from_env(),
            extra_ca: None,
        }
    }

    /// The timeout of one request, body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout for establishing a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Turns the loopback guard on. It cannot be turned off when the environment asks for it.
    pub fn loopback_only(mut self, on: bool) -> Self {
        self.loopback_only = on || loopback_only_from_env();
        self
    }

    /// Also trusts the certificates in this PEM file.
    pub fn extra_ca(mut self, pem: impl Into<PathBuf>) -> Self {
        self.extra_ca = Some(pem.into());
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        let tls = tls_config(self.extra_ca.as_deref())?;
        let resolver = GuardedResolver {
            loopback_only: self.loopback_only,
        };
        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(resolver)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .build()
            .map_err(|e| HttpError::Setup(error_chain(&e)))?;
        Ok(HttpClient {
            inner,
            timeout: self.timeout,
            max_body: self.max_body,
            loopback_only: self.loopback_only,
        })
    }
}

/// Whether `WASM_SECRETS_LOOPBACK_ONLY=1` is set in the process environment.
pub fn loopback_only_from_env() -> bool {
    std::env::var(LOOPBACK_ONLY_ENV).is_ok_and(|v| v.trim() == "1")
}

/// The one TLS setup: rustls (ring) with the webpki roots, plus `extra_ca` if given.
pub(crate) fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, HttpError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path)
            .map_err(|e| HttpError::Setup(format!("reading CA file {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| HttpError::Setup(format!("CA file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| HttpError::Setup(format!("CA file {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(HttpError::Setup(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTP client for every Azure call. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    timeout: Duration,
    max_body: usize,
    loopback_only: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .field("loopback_only", &self.loopback_only)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A builder with the defaults of [`HttpClientBuilder::new`].
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::new()
    }

    /// A client with the defaults.
    pub fn new() -> Result<Self, HttpError> {
        HttpClientBuilder::new().build()
    }

    /// Whether the loopback guard is on.
    pub fn loopback_only(&self) -> bool {
        self.loopback_only
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks `url` against the destination rules without sending anything.
    pub fn check_url(&self, url: &Url) -> Result<(), HttpError> {
        check_destination(url, self.loopback_only)
    }

    /// Starts a request. Send it with [`HttpClient::send`], which applies the rules.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends a request built with [`HttpClient::request`] and reads the whole (capped) body.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpResponse, HttpError> {
        let request = request
            .build()
            .map_err(|e| HttpError::Refused(error_chain(&e.without_url())))?;
        self.execute(request).await
    }

    /// Sends `request` and reads the whole (capped) body, all within the timeout.
    pub async fn execute(&self, request: reqwest::Request) -> Result<HttpResponse, HttpError> {
        self.check_url(request.url())?;
        let timeout = request.timeout().copied().unwrap_or(self.timeout);
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout(timeout)),
        }
    }

    async fn exchange(&self, request: reqwest::Request) -> Result<HttpResponse, HttpError> {
        let response = self.inner.execute(request).await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(HttpError::TooLarge(self.max_body));
        }
        let mut response = response;
        let hint = response.content_length().unwrap_or(8 * 1024) as usize;
        let mut body = Zeroizing::new(Vec::with_capacity(hint.min(self.max_body)));
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let need = body.len() + chunk.len();
            if need > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            if need > body.capacity() {
                // Grow by hand so the old buffer is wiped, not just freed.
                let cap = need.max(body.capacity() * 2).min(self.max_body);
                let mut bigger = Zeroizing::new(Vec::with_capacity(cap));
                bigger.extend_from_slice(&body);
                body = bigger;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn transport(e: reqwest::Error) -> HttpError {
    let e = e.without_url();
    if e.is_timeout() {
        return HttpError::Transport("timed out".into());
    }
    let chain = error_chain(&e);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("handshake") || lower.contains("tls") {
        // Say so plainly: an untrusted root or a certificate for another name is a TLS
        // refusal, not a network outage.
        HttpError::Transport(format!("TLS refused the server: {chain}"))
    } else {
        HttpError::Transport(chain)
    }
}

/// The error and its sources, joined. reqwest errors hold no bodies.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether `ip` is in `127.0.0.0/8` or is `::1` (or an IPv4-mapped loopback address).
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether `name` is `localhost` or ends in `.localhost` (RFC 6761: always loopback).
pub fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether the URL's host is loopback: a loopback IP or a `localhost` name.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => is_loopback_ip(ip.into()),
        Some(Host::Ipv6(ip)) => is_loopback_ip(ip.into()),
        Some(Host::Domain(d)) => is_localhost_name(d),
        None => false,
    }
}

/// The destination rules, applied before anything is sent.
pub fn check_destination(url: &Url, loopback_only: bool) -> Result<(), HttpError> {
    let host = url
        .host()
        .ok_or_else(|| HttpError::Refused(format!("{} has no host", redact_url(url))))?;
    let loopback = is_loopback_url(url);
    if loopback_only && !loopback {
        return Err(HttpError::Refused(format!(
            "{} is not a loopback address and {LOOPBACK_ONLY_ENV}=1 allows only 127.0.0.0/8, ::1 and localhost",
            host
        )));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" if url.host() == Some(Host::Ipv4(IMDS_ADDR)) => Ok(()),
        "http" => Err(HttpError::Refused(format!(
            "plain http to {host} is refused: http is allowed only to loopback hosts and IMDS"
        ))),
        other => Err(HttpError::Refused(format!("unsupported scheme {other:?}"))),
    }
}

/// The URL without query and fragment, for messages.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    u.to_string()
}

/// DNS for the client: with the guard on, only `localhost` names, answered without a query.
#[derive(Debug, Clone)]
struct GuardedResolver {
    loopback_only: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let loopback_only = self.loopback_only;
        Box::pin(async move {
            if is_localhost_name(&host) {
                let addrs = vec![
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
                ];
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            if loopback_only {
                return Err(format!("{host} refused: {LOOPBACK_ONLY_ENV}=1").into());
            }
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
