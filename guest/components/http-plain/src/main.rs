//! `http-plain`: `http-hello` without the secret call, the baseline the `serve` benchmark
//! compares `http-hello` with (design budget: the handler that reads a secret reaches at least
//! 90% of this one's requests per second).
//!
//! It runs the very same handler code; where `http-hello` calls the secrets interface, this one
//! uses a fixed string of the same length, so the two answer byte for byte alike.
//!
//! ```text
//! $ wasm-secrets serve http-plain.wasm
//! $ curl http://127.0.0.1:8080/
//! hello: read secret 'db-password' (18 characters)
//! ```

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct Handler;

wasi::http::proxy::export!(Handler);

/// Stands in for the emulator's `db-password` (18 characters).
const STAND_IN: &str = "xxxxxxxxxxxxxxxxxx";

impl Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        http_hello::handle(
            request,
            response_out,
            &|_name| Ok(STAND_IN.to_string()),
            None,
        );
    }
}

/// Unused: the component is a `wasi:http` handler; cargo builds a binary only so that the
/// artifact is named `http-plain.wasm`.
fn main() {}
