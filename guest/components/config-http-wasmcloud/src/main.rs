//! `config-http-wasmcloud`: an HTTP handler written for wasmCloud with its component SDK
//! (`wasmcloud-component` 0.2), with no knowledge of wasm-secrets. `GET /KEY` reads `KEY` from
//! `wasi:config/store@0.2.0-draft` and answers `KEY: N characters` (never the value),
//! `KEY: absent`, or `KEY: error: MESSAGE`; `GET /` lists the keys of `get-all`.

use wasmcloud_component::http;
use wasmcloud_component::wasi::config::store;

struct Component;

http::export!(Component);

impl http::Server for Component {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let key = request.uri().path().trim_start_matches('/').to_owned();
        let body = if key.is_empty() {
            match store::get_all() {
                Ok(pairs) => pairs.into_iter().map(|(k, _)| format!("{k}\n")).collect(),
                Err(e) => format!("get-all: error: {}\n", message(&e)),
            }
        } else {
            match store::get(&key) {
                Ok(Some(value)) => format!("{key}: {} characters\n", value.chars().count()),
                Ok(None) => format!("{key}: absent\n"),
                Err(e) => format!("{key}: error: {}\n", message(&e)),
            }
        };
        Ok(http::Response::new(body))
    }
}

fn message(e: &store::Error) -> &str {
    match e {
        store::Error::Upstream(m) | store::Error::Io(m) => m,
    }
}

/// The WASI 0.2 command entry point Rust's standard library exports; hosts serve `handle`.
fn main() {}
