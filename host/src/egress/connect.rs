//! Sends one guest request to addresses egress has already checked: no lookup of its own, so
//! what was checked is exactly what is connected to (the DNS-rebinding hole of resolving
//! twice is closed by construction).
//!
//! One HTTP/1.1 connection per request, TLS with the webpki roots for `https`, and the
//! request's own timeouts (connect, first byte, between bytes), as wasi:http specifies them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// A response, and the connection's I/O to drive while its body is read.
pub type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// What wasi:http waits for when the guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// TLS for guest requests: the host's one TLS setup with the public web's roots only (never
/// the host's extra CA), over HTTP/1.1.
static TLS: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let mut config =
        crate::http::tls_config(None).expect("the webpki roots and ring's defaults always load");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
});

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends `request` to the first of `addrs` that accepts a connection. `host` is the URL's
/// host, for TLS.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    host: &str,
    addrs: &[SocketAddr],
) -> Sent {
    let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
    };
    let connect_timeout = timeout(|o| o.connect_timeout);
    let first_byte_timeout = timeout(|o| o.first_byte_timeout);
    let between_bytes_timeout = timeout(|o| o.between_bytes_timeout).max(Duration::from_nanos(1));
    let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);

    let tcp = tokio::time::timeout(connect_timeout, connect_first(addrs))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = if https {
        let name = server_name(host)?;
        let tls = tokio_rustls::TlsConnector::from(TLS.clone());
        let connecting = tls.connect(name, tcp);
        let stream = tokio::time::timeout(connect_timeout, connecting)
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // On the wire the request line holds the path only (scheme and authority are for proxies).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

    // The response arrives only while the connection is driven: drive both until it does.
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = async {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    };
    tokio::pin!(response);
    let response = loop {
        tokio::select! {
            r = &mut response => break r?,
            c = &mut conn, if !conn_done => {
                conn_done = true;
                c?;
            }
        }
    };
    let io: Box<dyn Future<Output = Result<(), Error>> + Send> = if conn_done {
        Box::new(async { Ok(()) })
    } else {
        Box::new(async move {
            conn.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::from(e)
                }
            })
        })
    };
    let response = response.map(|incoming| {
        TimedBody {
            incoming,
            idle: Box::pin(tokio::time::sleep(between_bytes_timeout)),
            between_bytes: between_bytes_timeout,
            ended: false,
        }
        .boxed_unsync()
    });
    Ok((response, io))
}

/// Connects to the first address that accepts, in order; the last error if none does.
async fn connect_first(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, |e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            Error::ConnectionRefused
        } else {
            Error::Connect(e)
        }
    }))
}

/// The name TLS verifies: the URL's host, an IP literal as an IP.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.to_owned()).map_err(|_| Error::HttpRequestUriInvalid)
}

/// A response body that fails when the upstream goes quiet longer than `between_bytes`, and
/// ends as soon as its last byte is read: a body whose length is known is not polled again
/// for an end the connection's task would signal later.
struct TimedBody<B = hyper::body::Incoming> {
    incoming: B,
    idle: Pin<Box<tokio::time::Sleep>>,
    between_bytes: Duration,
    ended: bool,
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if self.incoming.is_end_stream() {
                    self.ended = true;
                } else {
                    let next = tokio::time::Instant::now() + self.between_bytes;
                    self.idle.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            return SizeHint::with_exact(0);
        }
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One data frame, then the end as `is_end_stream` says it; polled again, it never
    /// answers (as a connection whose task has not yet signalled the end).
    struct Once(Option<Bytes>);

    impl Body for Once {
        type Data = Bytes;
        type Error = hyper::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
            match self.0.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_none()
        }
    }

    #[tokio::test]
    async fn a_body_ends_at_its_last_byte_without_waiting_for_the_connection() {
        use futures::FutureExt;
        let mut body = TimedBody {
            incoming: Once(Some(Bytes::from_static(b"ok\n"))),
            idle: Box::pin(tokio::time::sleep(Duration::from_secs(60))),
            between_bytes: Duration::from_secs(60),
            ended: false,
        };
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "ok\n");
        assert!(body.is_end_stream());
        assert!(
            body.frame()
                .now_or_never()
                .expect("ended at once")
                .is_none(),
            "no more frames"
        );
    }

    #[test]
    fn tls_verifies_the_urls_host() {
        assert_eq!(
            server_name("api.example.com").unwrap(),
            ServerName::try_from("api.example.com").unwrap()
        );
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
    }
}
