//! `http-hello`: a `wasi:http/proxy` handler that reads a secret on every request.
//!
//! `GET /<name>` reads the secret `<name>` through the `wasm-secrets-guest` SDK (`GET /` reads
//! `db-password`) and answers with its length, never its value:
//!
//! ```text
//! $ wasm-secrets serve --grant db-password http-hello.wasm
//! $ curl http://127.0.0.1:8080/db-password
//! hello: read secret 'db-password' (18 characters)
//! $ curl -i http://127.0.0.1:8080/other
//! HTTP/1.1 403 Forbidden
//! not-granted: ...
//! ```
//!
//! A secrets error answers `<kind>: <message>` with status 400 (`invalid-name`), 403
//! (`not-granted`), 404 (`not-found`) or 500 (`forbidden`, `unavailable`).
//!
//! `GET /egress?url=<URL>` (the URL percent-encoded or not) makes an outgoing `GET <URL>` through
//! `wasi:http/outgoing-handler`, with its own `Authorization: Bearer guest-supplied-token`
//! header, and answers with the upstream status and the first 200 bytes of the upstream body, or
//! `502` and the error. Host tests use it to check the egress rules and that the host replaces the
//! guest's `Authorization` header. (So this handler cannot read a secret named `egress`.)

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct Handler;

wasi::http::proxy::export!(Handler);

impl Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        http_hello::handle(request, response_out, &wasm_secrets_guest::get);
    }
}

/// Unused: the component is a `wasi:http` handler; cargo builds a binary only so that the
/// artifact is named `http-hello.wasm`.
fn main() {}
