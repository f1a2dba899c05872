//! `http-hello-p3`: `http-hello` as a WASI 0.3 handler. It exports `wasi:http/handler@0.3.0`
//! (an async `handle` returning the response, whose body it writes after returning), reads
//! with the async `get` of `wasm-secrets:secrets@0.2.0`, and
//! answers `GET /NAME` (`/`: `db-password`) exactly as `http-hello` does: 200 and
//! `hello: read secret 'NAME' (N characters)`, never the value; 400, 403, 404 or 500 and the
//! error otherwise.
//!
//! It also uses keys through the async `keys` (for the tests): `GET /sign/KEY` signs the
//! digest `[7; 32]` with ES256 and verifies it (`signed with key 'KEY': HEX, verified: true`);
//! `GET /wrap/KEY` wraps a 32-byte key with RSA-OAEP-256 and unwraps it
//! (`wrapped with key 'KEY': N bytes, unwrapped: equal`).

mod handler;

use wasip3::http::types::{ErrorCode, Request, Response};

struct Handler;

wasip3::http::service::export!(Handler);

impl wasip3::exports::http::handler::Guest for Handler {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
        if let Some(key) = path.strip_prefix("/sign/") {
            return handler::respond(sign(key).await);
        }
        if let Some(key) = path.strip_prefix("/wrap/") {
            return handler::respond(wrap(key).await);
        }
        // The async `get` (wasm-secrets:secrets@0.2.0): this task waits for the vault alone.
        handler::handle(request, async |name| {
            wasm_secrets_guest::p3::get(name).await
        })
        .await
    }
}

/// Signs and verifies with the key granted as `key`: 200 and the signature in hex, or the
/// error's status and text.
async fn sign(key: &str) -> (u16, String) {
    use wasm_secrets_guest::keys::SignatureAlgorithm::Es256;
    use wasm_secrets_guest::p3::keys;
    let digest = [7u8; 32];
    let signed = match keys::sign(key, Es256, &digest).await {
        Ok(signature) => signature,
        Err(e) => return key_error(&e),
    };
    match keys::verify(key, Es256, &digest, &signed).await {
        Ok(verified) => {
            let hex: String = signed.iter().map(|b| format!("{b:02x}")).collect();
            (
                200,
                format!("signed with key '{key}': {hex}, verified: {verified}\n"),
            )
        }
        Err(e) => key_error(&e),
    }
}

/// Wraps and unwraps a data key with the key granted as `key`.
async fn wrap(key: &str) -> (u16, String) {
    use wasm_secrets_guest::keys::EncryptionAlgorithm::RsaOaep256;
    use wasm_secrets_guest::p3::keys;
    let data_key = [42u8; 32];
    let wrapped = match keys::wrap_key(key, RsaOaep256, &data_key).await {
        Ok(wrapped) => wrapped,
        Err(e) => return key_error(&e),
    };
    match keys::unwrap_key(key, RsaOaep256, &wrapped).await {
        Ok(unwrapped) => {
            let same = if unwrapped == data_key {
                "equal"
            } else {
                "different"
            };
            (
                200,
                format!(
                    "wrapped with key '{key}': {} bytes, unwrapped: {same}\n",
                    wrapped.len()
                ),
            )
        }
        Err(e) => key_error(&e),
    }
}

/// A key error's status and text.
fn key_error(e: &wasm_secrets_guest::keys::KeyError) -> (u16, String) {
    use wasm_secrets_guest::keys::KeyError;
    let status = match e {
        KeyError::InvalidName(_) | KeyError::InvalidArgument(_) => 400,
        KeyError::NotGranted(_) => 403,
        KeyError::NotFound(_) => 404,
        _ => 500,
    };
    (status, format!("{e}\n"))
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `handle`.
fn main() {}
