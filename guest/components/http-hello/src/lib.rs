//! The `http-hello` handler, shared with `http-plain` (the same handler without the secret
//! call, for the serve benchmark). See `main.rs` for what it answers.

use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasi::io::streams::StreamError;

/// The secret read by `GET /`.
pub const DEFAULT_SECRET: &str = "db-password";
/// The `Authorization` header this guest puts on its outgoing requests; a host with an
/// `azure-http` egress grant must replace it with its own token.
const GUEST_AUTHORIZATION: &str = "Bearer guest-supplied-token";
/// What a hostile guest sends along: its own `Authorization`, and the headers that
/// authenticate a caller to the identity endpoints (IMDS's `Metadata`, App Service's and Arc's
/// `X-IDENTITY-HEADER`, the legacy MSI endpoint's `Secret`). The host removes every one.
pub const GUEST_CREDENTIALS: [(&str, &str); 4] = [
    ("authorization", GUEST_AUTHORIZATION),
    ("metadata", "true"),
    ("x-identity-header", "guest-supplied-identity-header"),
    ("secret", "guest-supplied-msi-secret"),
];
/// How much of the upstream body `/egress` echoes.
const EXCERPT_BYTES: usize = 200;

/// Secret reads, as the handler sees them: `wasm_secrets_guest::get` in `http-hello`.
pub type ReadSecret<'a> = &'a dyn Fn(&str) -> Result<String, wasm_secrets_guest::Error>;

/// Signing a JWT for a subject, as the handler sees it: the vault signs with the key `signer`
/// in `http-hello`; `None` in `http-plain`, which imports no keys.
pub type SignJwt<'a> = Option<&'a dyn Fn(&str) -> Result<String, String>>;

/// Handles one request: `GET /<name>` reads a secret through `read`, `GET /egress?url=` makes
/// an outgoing request, `GET /jwt?sub=` answers a JWT signed through `sign`.
pub fn handle(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    read: ReadSecret<'_>,
    sign: SignJwt<'_>,
) {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((&path_with_query, ""));
    let first_segment = path.trim_start_matches('/').split('/').next().unwrap_or("");

    let (status, body) = match (first_segment, sign) {
        ("egress", _) => egress(query),
        ("jwt", Some(sign)) => jwt(query, sign),
        ("", _) => read_secret(DEFAULT_SECRET, read),
        (name, _) => read_secret(name, read),
    };
    respond(response_out, status, body.as_bytes());
}

/// Reads the secret `name` and describes it without its value.
pub fn read_secret(name: &str, read: ReadSecret<'_>) -> (u16, String) {
    describe(name, read(name))
}

/// The answer for a read of the secret `name` that gave `read`: its length, never its value;
/// or the error's status and text.
pub fn describe(name: &str, read: Result<String, wasm_secrets_guest::Error>) -> (u16, String) {
    match read {
        Ok(value) => {
            let chars = value.chars().count();
            (
                200,
                format!("hello: read secret '{name}' ({chars} characters)\n"),
            )
        }
        Err(err) => {
            let status = match err {
                wasm_secrets_guest::Error::InvalidName(_) => 400,
                wasm_secrets_guest::Error::NotGranted(_) => 403,
                wasm_secrets_guest::Error::NotFound(_) => 404,
                _ => 500,
            };
            (status, format!("{}: {}\n", err.kind(), err.message()))
        }
    }
}

/// A JWT for the `sub` query parameter, or 500 and the signing error.
fn jwt(query: &str, sign: &dyn Fn(&str) -> Result<String, String>) -> (u16, String) {
    let sub = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sub="))
        .map(percent_decode)
        .unwrap_or_default();
    match sign(&sub) {
        Ok(token) => (200, format!("{token}\n")),
        Err(err) => (500, format!("{err}\n")),
    }
}

/// `GET` of the `url` query parameter; the upstream status and the start of its body.
fn egress(query: &str) -> (u16, String) {
    let url = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("url="))
        .map(percent_decode);
    let Some(url) = url else {
        return (400, "usage: GET /egress?url=<URL>\n".to_string());
    };
    match fetch(&url) {
        Ok((status, excerpt)) => (status, String::from_utf8_lossy(&excerpt).into_owned()),
        Err(err) => (502, format!("egress to {url} failed: {err}\n")),
    }
}

/// Sends `GET url` through `wasi:http/outgoing-handler` (with [`GUEST_CREDENTIALS`], which a
/// host must never pass on); returns the status and at most
/// [`EXCERPT_BYTES`] of the body.
pub fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let (authority, path_with_query) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };

    let headers = Fields::from_list(
        &GUEST_CREDENTIALS
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let set = request.set_method(&Method::Get).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(&path_with_query)).is_ok();
    if !set {
        return Err(format!("invalid URL: {url}"));
    }
    let body = request
        .body()
        .map_err(|()| "request body taken".to_string())?;
    let future = outgoing_handler::handle(request, None).map_err(|e| e.to_string())?;
    OutgoingBody::finish(body, None).map_err(|e| e.to_string())?;

    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(e.to_string()),
        Some(Err(())) | None => return Err("no response".to_string()),
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| "response body taken".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|()| "response stream taken".to_string())?;
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match stream.blocking_read((EXCERPT_BYTES - excerpt.len()) as u64) {
            Ok(chunk) => excerpt.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
    // Children before parents: the stream, then the body, then the response.
    drop(stream);
    drop(incoming);
    drop(response);
    Ok((status, excerpt))
}

/// Decodes `%XX` escapes and `+` (as a space) in a query parameter value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a `text/plain` response with `status` and `body`.
fn respond(response_out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .expect("valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let stream = outgoing.write().expect("the stream is taken once");
    // The response head is already sent: if the client went away there is no one to tell.
    // `blocking_write_and_flush` takes at most 4096 bytes at a time.
    for chunk in body.chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            break;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}
