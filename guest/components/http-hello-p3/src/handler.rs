//! The handler of `http-hello-p3` with the secret's reading left to the caller, so that
//! `http-plain-p3` answers byte for byte alike without reading one.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

/// Answers `GET /NAME` (`/`: `db-password`) as `http-hello` does, reading the secret with
/// `read`; the body is written after the response is returned.
pub async fn handle(
    request: Request,
    read: impl AsyncFnOnce(&str) -> Result<String, wasm_secrets_guest::Error>,
) -> Result<Response, ErrorCode> {
    let path_with_query = request.get_path_with_query().unwrap_or_default();
    let path = path_with_query
        .split_once('?')
        .map_or(path_with_query.as_str(), |(path, _)| path);
    let name = match path.trim_start_matches('/').split('/').next() {
        None | Some("") => http_hello::DEFAULT_SECRET,
        Some(name) => name,
    };
    respond(http_hello::describe(name, read(name).await))
}

/// A response with `status` and `body`, the body written after the response is returned.
pub fn respond((status, body): (u16, String)) -> Result<Response, ErrorCode> {
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
