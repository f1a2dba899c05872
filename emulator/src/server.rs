//! HTTP plumbing: listeners, connections (plain or TLS), body limits, fault application, dispatch.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::faults::{Endpoint, Fault};
use crate::http::{Body, Req, json, raw, with_header};
use crate::state::State;

/// How long a stalled request is held before its connection is dropped.
const STALL: Duration = Duration::from_secs(300);

/// Largest request body accepted (larger gives 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// What a listener serves.
#[derive(Debug, Clone)]
pub enum Service {
    /// IMDS.
    Imds,
    /// App Service 2019-08-01.
    AppService,
    /// App Service 2017-09-01.
    AppServiceLegacy,
    /// Azure Arc.
    Arc,
    /// Entra token endpoint.
    Entra,
    /// One vault.
    Vault(String),
    /// The admin endpoint.
    Admin,
}

impl Service {
    fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Service::Imds => Endpoint::Imds,
            Service::AppService => Endpoint::AppService,
            Service::AppServiceLegacy => Endpoint::AppServiceLegacy,
            Service::Arc => Endpoint::Arc,
            Service::Entra => Endpoint::Entra,
            Service::Vault(_) => Endpoint::KeyVault,
            Service::Admin => return None,
        })
    }
}

/// The error that makes hyper close the connection without answering.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Bind a loopback listener (port 0 = any).
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:{port}: {e}"))
}

/// Accept connections until shutdown.
pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    svc: Service,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (tls, svc, state, shutdown) =
            (tls.clone(), svc.clone(), state.clone(), shutdown.clone());
        tokio::spawn(connection(stream, tls, svc, state, shutdown));
    }
}

/// A connection that ends with a TCP reset instead of a close once `reset` is set (the
/// [`Fault::Reset`] fault): the socket lingers for zero seconds when dropped.
struct Resettable {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl tokio::io::AsyncRead for Resettable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Resettable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.reset.load(Ordering::Relaxed) {
            // No orderly close: the reset happens on drop.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    svc: Service,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let fallback = format!(
        "{scheme}://{}",
        local
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1".into())
    );
    let reset = Arc::new(AtomicBool::new(false));
    let stream = Resettable {
        stream,
        reset: reset.clone(),
    };
    let service = service_fn(move |req| {
        let (svc, state, fallback, reset) =
            (svc.clone(), state.clone(), fallback.clone(), reset.clone());
        async move { handle(req, svc, state, scheme, fallback, &reset).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    match tls {
        Some(acceptor) => {
            let tls_stream = tokio::select! {
                s = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => match s {
                    Ok(Ok(s)) => s,
                    _ => return,
                },
                _ = shutdown.changed() => return,
            };
            let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
            tokio::select! { _ = conn => {}, _ = shutdown.changed() => {} }
        }
        None => {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! { _ = conn => {}, _ = shutdown.changed() => {} }
        }
    }
}

async fn handle(
    req: http::Request<Incoming>,
    svc: Service,
    state: Arc<State>,
    scheme: &'static str,
    fallback: String,
    reset: &AtomicBool,
) -> Result<Response<Body>, Dropped> {
    let vault = match &svc {
        Service::Vault(v) => Some(v.as_str()),
        _ => None,
    };
    if let Some(e) = svc.endpoint() {
        state.faults.hit(e, vault);
        if let Some(f) = state.faults.next(e) {
            tracing::info!(endpoint = e.name(), fault = ?fault_name(&f), "injecting fault");
            match f {
                Fault::Status {
                    status,
                    retry_after,
                    body,
                } => {
                    let status =
                        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let body = body.unwrap_or_else(|| {
                        serde_json::json!({"error":{"code":"InjectedFault","message":"Fault injected by the emulator."}})
                            .to_string()
                    });
                    let mut r = raw(status, "application/json; charset=utf-8", body.into_bytes());
                    if let Some(s) = retry_after {
                        r = with_header(r, "retry-after", &s.to_string());
                    }
                    return Ok(r);
                }
                Fault::Delay(d) => tokio::time::sleep(d).await,
                Fault::MalformedBody => {
                    return Ok(raw(
                        StatusCode::OK,
                        "application/json",
                        br#"{"access_token":"eyJ0eX"#.to_vec(),
                    ));
                }
                Fault::OversizedBody(n) => {
                    return Ok(raw(StatusCode::OK, "application/json", oversized(n)));
                }
                Fault::DropConnection => return Err(Dropped),
                Fault::Reset => {
                    reset.store(true, Ordering::Relaxed);
                    return Err(Dropped);
                }
                Fault::Stall => {
                    tokio::time::sleep(STALL).await;
                    return Err(Dropped);
                }
                Fault::Challenge(resource) => {
                    let challenge = format!(
                        "Bearer authorization=\"{}/{}\", resource=\"{resource}\"",
                        state.authority_host, state.config.tenant_id
                    );
                    let body = serde_json::json!({"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}});
                    return Ok(with_header(
                        json(StatusCode::UNAUTHORIZED, &body),
                        "www-authenticate",
                        &challenge,
                    ));
                }
            }
        }
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let status = if e.downcast_ref::<LengthLimitError>().is_some() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok(json(
                status,
                &serde_json::json!({"error":{"code":"BadRequest","message":"Request body too large or unreadable."}}),
            ));
        }
    };
    let base = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(|h| format!("{scheme}://{h}"))
        .unwrap_or(fallback);
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let r = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        body,
        base,
    };
    let resp = match &svc {
        Service::Imds => crate::imds::handle(&state, &r),
        Service::AppService => crate::app_service::handle(&state, &r, false),
        Service::AppServiceLegacy => crate::app_service::handle(&state, &r, true),
        Service::Arc => crate::arc::handle(&state, &r),
        Service::Entra => crate::entra::handle(&state, &r),
        Service::Vault(v) => crate::keyvault::handle(&state, v, &r).await,
        Service::Admin => crate::admin::handle(&state, &r),
    };
    tracing::debug!(service = ?svc, method = %r.method, path = %r.path, status = resp.status().as_u16(), "request");
    Ok(resp)
}

fn fault_name(f: &Fault) -> &'static str {
    match f {
        Fault::Status { .. } => "status",
        Fault::Delay(_) => "delay",
        Fault::MalformedBody => "malformed",
        Fault::OversizedBody(_) => "oversized",
        Fault::DropConnection => "drop",
        Fault::Reset => "reset",
        Fault::Stall => "stall",
        Fault::Challenge(_) => "challenge",
    }
}

/// A valid JSON object of exactly `n` bytes (or `n` spaces when too small for one).
fn oversized(n: usize) -> Vec<u8> {
    let frame = br#"{"padding":""}"#.len();
    if n < frame {
        return vec![b' '; n];
    }
    let mut v = Vec::with_capacity(n);
    v.extend_from_slice(br#"{"padding":""#);
    v.resize(n - 2, b'x');
    v.extend_from_slice(br#""}"#);
    v
}
