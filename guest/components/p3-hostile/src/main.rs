//! `p3-hostile`: a WASI 0.3 handler that tries to outlive its request, for the tests of limits.
//!
//! - `GET /endless-body`: answers 200 at once, then writes its body forever;
//! - `GET /tasks?n=N`: starts N tasks that each wait an hour on the host's clock, then waits
//!   for them all;
//! - anything else: 200 `ok`.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

struct Handler;

wasip3::http::service::export!(Handler);

const HOUR_NS: u64 = 3_600_000_000_000;

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
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
