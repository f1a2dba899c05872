//! `http-plain-p3`: `http-hello-p3` without the secret call, the WASI 0.3 baseline of the
//! benchmarks: stock `wasmtime serve` can serve it (it imports nothing of ours), and it answers
//! byte for byte as `http-hello-p3` does, with a fixed string of the secret's length.

#[path = "../../http-hello-p3/src/handler.rs"]
mod handler;

use wasip3::http::types::{ErrorCode, Request, Response};

struct Handler;

wasip3::http::service::export!(Handler);

/// Stands in for the emulator's `db-password` (18 characters).
const STAND_IN: &str = "xxxxxxxxxxxxxxxxxx";

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        handler::handle(request, async |_name| Ok(STAND_IN.to_owned())).await
    }
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `handle`.
fn main() {}
