//! `http-get-p3 URL...`: `http-get` as a WASI 0.3 command. For each `http://HOST[:PORT]/PATH`
//! it sends `GET` through `wasi:http/client@0.3.0` (with an `Authorization` header of its own,
//! which a host must not pass on) and prints one line, as `http-get` does:
//!
//! ```text
//! URL: 200: <the first 200 bytes of the body>
//! URL: error: <why the request failed, e.g. ErrorCode::HttpRequestDenied>
//! ```
//!
//! A refused request is an error value inside the guest; the command goes on to the next URL
//! and fails (exit 1) at the end.

use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
use wasip3::wit_future;

/// How much of the body a line shows.
const EXCERPT_BYTES: usize = 200;

struct Command;

wasip3::cli::command::export!(Command);

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        let mut all_ok = true;
        for url in std::env::args().skip(1) {
            match get(&url).await {
                Ok((status, body)) => {
                    let text = String::from_utf8_lossy(&body);
                    println!("{url}: {status}: {}", text.trim_end());
                }
                Err(why) => {
                    all_ok = false;
                    println!("{url}: error: {why}");
                }
            }
        }
        if all_ok { Ok(()) } else { Err(()) }
    }
}

/// `GET url`: the status and the first [`EXCERPT_BYTES`] of the body.
async fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = Fields::from_list(&[(
        "authorization".to_string(),
        b"Bearer guest-supplied-token".to_vec(),
    )])
    .map_err(|e| format!("{e:?}"))?;
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (request, _sent) = Request::new(headers, None, trailers_rx, None);
    let set = |ok: Result<(), ()>| ok.map_err(|()| "bad request".to_string());
    set(request.set_method(&Method::Get))?;
    set(request.set_scheme(Some(&Scheme::Http)))?;
    set(request.set_authority(Some(authority)))?;
    set(request.set_path_with_query(Some(path)))?;
    let response = wasip3::http::client::send(request)
        .await
        .map_err(|e: ErrorCode| format!("{e:?}"))?;
    let status = response.get_status_code();
    let (result_tx, result_rx) = wit_future::new(|| Ok(()));
    drop(result_tx);
    let (body, _trailers) = Response::consume_body(response, result_rx);
    let mut body = body.collect().await;
    body.truncate(EXCERPT_BYTES);
    Ok((status, body))
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `run`.
fn main() {}
