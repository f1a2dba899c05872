//! `http-hello`: a `wasi:http/proxy` handler that reads a secret on every request.
//!
//! `GET /<name>` reads the secret `<name>` through the `wasm-secrets-guest` SDK (`GET /` reads
//! `db-password`) and answers with its length, never its value:
//!
//! ```text
//! $ wasm-secrets serve --grant db-password http-hello.wasm
//! $ curl http://127.0.0.1:8080/db-password
//! hello: read secret 'db-password' (18 characters)
//! $ curl -i http://127.0.0.1:8080/other
//! HTTP/1.1 403 Forbidden
//! not-granted: ...
//! ```
//!
//! A secrets error answers `<kind>: <message>` with status 400 (`invalid-name`), 403
//! (`not-granted`), 404 (`not-found`) or 500 (`forbidden`, `unavailable`).
//!
//! `GET /jwt?sub=<SUBJECT>` answers an ES256 JWT `{"sub": SUBJECT}` signed by the vault with
//! the key this component calls `signer` (a `key:signer=...:sign` grant), or 500 and the error.
//!
//! `GET /egress?url=<URL>` (the URL percent-encoded or not) makes an outgoing `GET <URL>` through
//! `wasi:http/outgoing-handler`, with its own `Authorization: Bearer guest-supplied-token`
//! header, and answers with the upstream status and the first 200 bytes of the upstream body, or
//! `502` and the error. Host tests use it to check the egress rules and that the host replaces the
//! guest's `Authorization` header. (So this handler cannot read a secret named `egress`.)

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct Handler;

wasi::http::proxy::export!(Handler);

impl Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        http_hello::handle(request, response_out, &wasm_secrets_guest::get, Some(&jwt));
    }
}

/// A JWT `{"sub": sub}`, ES256, signed by the vault with the key this component calls `signer`.
fn jwt(sub: &str) -> Result<String, String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::Digest;
    use wasm_secrets_guest::keys::{self, SignatureAlgorithm};
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT" });
    let claims = serde_json::json!({ "sub": sub });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let digest = sha2::Sha256::digest(input.as_bytes());
    let signature =
        keys::sign("signer", SignatureAlgorithm::Es256, &digest).map_err(|e| e.to_string())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Unused: the component is a `wasi:http` handler; cargo builds a binary only so that the
/// artifact is named `http-hello.wasm`.
fn main() {}
