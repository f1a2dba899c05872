//! `http-get-p3 [-H 'NAME: VALUE']... [--full] URL...`: `http-get` as a WASI 0.3 command. For
//! each `http://HOST[:PORT]/PATH` it sends `GET` through `wasi:http/client@0.3.0` with the
//! `-H` headers (and, unless one of them is `Authorization`, an `Authorization` header of its
//! own, which a host must not pass on) and prints one line, as `http-get` does (`--full`: the
//! whole body, not its first 200 bytes):
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
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        let mut full = false;
        let mut args = std::env::args().skip(1);
        let mut urls = Vec::new();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-H" => {
                    let Some((name, value)) = args.next().and_then(|h| {
                        h.split_once(':').map(|(n, v)| {
                            (n.trim().to_ascii_lowercase(), v.trim().as_bytes().to_vec())
                        })
                    }) else {
                        eprintln!("-H takes 'NAME: VALUE'");
                        return Err(());
                    };
                    headers.push((name, value));
                }
                "--full" => full = true,
                _ => urls.push(arg),
            }
        }
        if !headers.iter().any(|(n, _)| n == "authorization") {
            headers.push((
                "authorization".to_string(),
                b"Bearer guest-supplied-token".to_vec(),
            ));
        }
        let excerpt = if full { usize::MAX } else { EXCERPT_BYTES };
        for url in urls {
            match get(&url, &headers, excerpt).await {
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

/// `GET url` with `headers`: the status and the first `excerpt` bytes of the body.
async fn get(
    url: &str,
    headers: &[(String, Vec<u8>)],
    excerpt: usize,
) -> Result<(u16, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = Fields::from_list(headers).map_err(|e| format!("{e:?}"))?;
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
    body.truncate(excerpt);
    Ok((status, body))
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `run`.
fn main() {}
