//! `http-plain`: a `wasi:http/proxy` handler that answers every request with `200 hello`.
//!
//! It is `http-hello` without the secret call, the baseline the `serve` benchmark compares
//! `http-hello` with (design budget: the handler that reads a secret reaches at least 90% of this
//! one's requests per second).
//!
//! ```text
//! $ wasm-secrets serve http-plain.wasm
//! $ curl http://127.0.0.1:8080/
//! hello
//! ```

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Handler;

wasi::http::proxy::export!(Handler);

impl Guest for Handler {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        // The response is already sent; if the client went away there is no one to tell.
        let _ = stream.blocking_write_and_flush(b"hello\n");
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}

/// Unused: the component is a `wasi:http` handler; cargo builds a binary only so that the
/// artifact is named `http-plain.wasm`.
fn main() {}
