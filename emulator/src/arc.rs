//! Azure Arc: a 401 challenge naming a freshly written `.key` file, then `Authorization: Basic <contents>`.

use std::path::PathBuf;

use http::{Response, StatusCode};

use crate::http::{Body, Req, with_header};
use crate::imds::{common_checks, error, token_answer};
use crate::state::State;
use crate::token::random_hex;

/// How many issued keys stay valid (older key files are deleted).
const KEPT_KEYS: usize = 32;

/// Write a new key file and answer 401 with its path in `WWW-Authenticate`.
fn challenge(state: &State, message: &str) -> Response<Body> {
    let key = random_hex(32);
    let path: PathBuf = state.arc_dir.join(format!("{}.key", random_hex(8)));
    if let Err(e) = write_key(&path, &key) {
        tracing::warn!(
            "cannot write Arc key file in {}: {e}",
            state.arc_dir.display()
        );
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Cannot write the key file.",
        );
    }
    if let Ok(mut keys) = state.arc_keys.lock() {
        keys.push((key, path.clone()));
        while keys.len() > KEPT_KEYS {
            let (_, old) = keys.remove(0);
            let _ = std::fs::remove_file(old);
        }
    }
    let r = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    with_header(
        r,
        "www-authenticate",
        &format!("Basic realm={}", path.display()),
    )
}

fn write_key(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(key.as_bytes())
}

/// Handle one Arc request.
pub fn handle(state: &State, r: &Req) -> Response<Body> {
    let resource = match common_checks(r) {
        Ok(res) => res,
        Err(resp) => return *resp,
    };
    if ["client_id", "object_id", "msi_res_id", "mi_res_id"]
        .iter()
        .any(|k| r.q(k).is_some())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "User-assigned identities are not supported by Azure Arc; only the system-assigned identity is.",
        );
    }
    let Some(auth) = r.header("authorization") else {
        return challenge(
            state,
            "Authorization header is missing; read the key file named in WWW-Authenticate.",
        );
    };
    let presented = auth
        .strip_prefix("Basic ")
        .or_else(|| auth.strip_prefix("basic "))
        .unwrap_or("")
        .trim();
    let valid = state
        .arc_keys
        .lock()
        .map(|keys| keys.iter().any(|(k, _)| k == presented))
        .unwrap_or(false);
    if presented.is_empty() || !valid {
        return challenge(
            state,
            "The key presented in the Authorization header is not valid.",
        );
    }
    let ids = &state.config.identities;
    token_answer(
        state,
        &resource,
        &ids.system.client_id,
        &ids.system.object_id,
    )
}
