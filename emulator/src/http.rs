//! What every handler speaks: the request as read ([`Req`]) and the response helpers.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

/// Response body type.
pub type Body = Full<Bytes>;

/// A request with its body read, as handlers see it.
#[derive(Debug)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Path, percent-encoded as received.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// `scheme://host[:port]` as the client addressed us (Host header, else the local address).
    pub base: String,
}

impl Req {
    /// First query value for `k`.
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text, if present and valid.
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
}

/// A JSON response.
pub fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    raw(
        status,
        "application/json; charset=utf-8",
        v.to_string().into_bytes(),
    )
}

/// A response with a body of the given content type.
pub fn raw(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Set a header (ignoring values that are not valid header text).
pub fn with_header(mut r: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// Random UUID-shaped id (for correlation ids).
pub fn uuid() -> String {
    let h = crate::token::random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
