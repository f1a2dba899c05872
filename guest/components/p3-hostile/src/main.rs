//! `p3-hostile`: a WASI 0.3 handler that tries to outlive its request, and shows how its
//! instance is reused, for the tests of limits and reuse.
//!
//! - `GET /endless-body`: answers 200 at once, then writes its body forever;
//! - `GET /tasks?n=N`: starts N tasks that each wait an hour on the host's clock, then waits
//!   for them all;
//! - `GET /count`: `count: N`, the requests this instance has been asked so far (its memory
//!   lives across the requests it serves);
//! - `GET /trap`: traps;
//! - `GET /spin`: runs wasm forever, never waiting;
//! - `GET /get/NAME`: reads NAME with the async `get`, then answers
//!   `instance=ID most-at-once=M outcome=ok|ERROR-KIND` (ID: random, drawn by the instance's
//!   first request; M: the most requests this instance has had in flight at once);
//! - anything else: 200 `ok`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

/// Requests this instance was asked.
static REQUESTS: AtomicUsize = AtomicUsize::new(0);
/// Requests in flight in this instance now, and the most at once so far.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST_AT_ONCE: AtomicUsize = AtomicUsize::new(0);
/// This instance's random name (0 until its first request).
static INSTANCE: AtomicU64 = AtomicU64::new(0);

struct Handler;

wasip3::http::service::export!(Handler);

const HOUR_NS: u64 = 3_600_000_000_000;

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
        let count = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        if INSTANCE.load(Ordering::Relaxed) == 0 {
            INSTANCE.store(
                wasip3::random::random::get_random_u64() | 1,
                Ordering::Relaxed,
            );
        }
        let text = match path.as_str() {
            "/count" => Some(format!("count: {count}\n")),
            "/trap" => std::process::abort(),
            "/spin" => loop {
                std::hint::spin_loop();
            },
            _ => match path.strip_prefix("/get/") {
                Some(name) => Some(get(name).await),
                None => None,
            },
        };
        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
        drop(trailers_tx);
        if path == "/endless-body" {
            wit_bindgen::spawn(async move {
                loop {
                    let unsent = body_tx.write_all(vec![b'x'; 1024]).await;
                    if !unsent.is_empty() {
                        return;
                    }
                }
            });
            return Ok(response);
        }
        if let Some(text) = text {
            wit_bindgen::spawn(async move {
                let _unsent = body_tx.write_all(text.into_bytes()).await;
            });
            return Ok(response);
        }
        if let Some(n) = path.strip_prefix("/tasks?n=") {
            let n: usize = n.parse().unwrap_or(0);
            let waits = (0..n).map(|_| wasip3::clocks::monotonic_clock::wait_for(HOUR_NS));
            futures_join_all(waits).await;
        }
        wit_bindgen::spawn(async move {
            let _unsent = body_tx.write_all(b"ok\n".to_vec()).await;
        });
        Ok(response)
    }
}

/// Reads `name` while counting the requests in flight in this instance.
async fn get(name: &str) -> String {
    let now = IN_FLIGHT.fetch_add(1, Ordering::Relaxed) + 1;
    MOST_AT_ONCE.fetch_max(now, Ordering::Relaxed);
    let outcome = match wasm_secrets_guest::p3::get(name).await {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.kind().to_owned(),
    };
    IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    format!(
        "instance={:x} most-at-once={} outcome={outcome}\n",
        INSTANCE.load(Ordering::Relaxed),
        MOST_AT_ONCE.load(Ordering::Relaxed)
    )
}

/// Waits for every future in `futures`, all at once.
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `handle`.
fn main() {}
