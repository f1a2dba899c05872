//! `http-hello-p3`: `http-hello` as a WASI 0.3 handler. It exports `wasi:http/handler@0.3.0`
//! (an async `handle` returning the response, whose body it writes after returning), reads
//! with the async `get` of `wasm-secrets:secrets@0.2.0`, and
//! answers `GET /NAME` (`/`: `db-password`) exactly as `http-hello` does: 200 and
//! `hello: read secret 'NAME' (N characters)`, never the value; 400, 403, 404 or 500 and the
//! error otherwise.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

struct Handler;

wasip3::http::service::export!(Handler);

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path_with_query = request.get_path_with_query().unwrap_or_default();
        let path = path_with_query
            .split_once('?')
            .map_or(path_with_query.as_str(), |(path, _)| path);
        let name = match path.trim_start_matches('/').split('/').next() {
            None | Some("") => http_hello::DEFAULT_SECRET,
            Some(name) => name,
        };
        // The async `get` (wasm-secrets:secrets@0.2.0): this task waits for the vault alone.
        let (status, body) = http_hello::describe(name, wasm_secrets_guest::p3::get(name).await);

        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
        drop(trailers_tx);
        response
            .set_status_code(status)
            .map_err(|()| ErrorCode::InternalError(None))?;
        wit_bindgen::spawn(async move {
            let _unsent = body_tx.write_all(body.into_bytes()).await;
        });
        Ok(response)
    }
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `handle`.
fn main() {}
