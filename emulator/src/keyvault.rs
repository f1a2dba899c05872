//! Key Vault secrets over HTTPS: the 401 challenge, token checks, rights, versions, paging, throttling.
//! Requests under `/keys` are routed to [`crate::keys`] after the same checks.
//!
//! Names are case-insensitive, as in Key Vault: secrets are held by their lowercase name, a `PUT`
//! of `DB-Password` adds a version to `db-password`, any spelling finds it, and every answer
//! (ids, listings) carries the name as the secret was first created. Version ids in requests
//! match in any case too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{valid_secret_name, valid_version_in_request};
use crate::http::{Body, Req, json, with_header};
use crate::kv_answer::{bad_parameter, kv_error, page, rbac_forbidden};
use crate::state::State;
use crate::token::{TokenError, VAULT_AUDIENCE};
use crate::vault::{PutAttributes, StoredVersion, Vault};

/// Numbered api-versions accepted (dated ones from 2025-07-01 on are accepted too).
pub const API_VERSIONS: &[&str] = &["7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6"];

/// Whether Key Vault accepts this api-version: 7.0-7.6, or a date `YYYY-MM-DD[-preview]` from 2025-07-01 on.
pub fn api_version_ok(v: &str) -> bool {
    if API_VERSIONS.contains(&v) {
        return true;
    }
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && date >= "2025-07-01"
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutBody {
    value: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    attributes: Option<PutAttributes>,
}

fn unauthorized(state: &State, message: &str) -> Response<Body> {
    let r = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None);
    let challenge = format!(
        "Bearer authorization=\"{}/{}\", resource=\"{VAULT_AUDIENCE}\"",
        state.authority_host, state.config.tenant_id
    );
    with_header(r, "www-authenticate", &challenge)
}

fn forbidden(oid: &str, action: &str, scope: &str) -> Response<Body> {
    rbac_forbidden(oid, &format!("secrets/{action}"), scope)
}

fn not_found(name: &str) -> Response<Body> {
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        &format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

fn attributes(v: &StoredVersion) -> Value {
    let mut a = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    });
    if let Some(n) = v.nbf {
        a["nbf"] = json!(n);
    }
    if let Some(e) = v.exp {
        a["exp"] = json!(e);
    }
    a
}

/// A SecretItem (no value). `id` is the secret id, with the version when `versioned`.
fn item(base: &str, name: &str, v: &StoredVersion, versioned: bool) -> Value {
    let id = if versioned {
        format!("{base}/secrets/{name}/{}", v.id)
    } else {
        format!("{base}/secrets/{name}")
    };
    let mut o = json!({"id": id, "attributes": attributes(v)});
    if let Some(ct) = &v.content_type {
        o["contentType"] = json!(ct);
    }
    if !v.tags.is_empty() {
        o["tags"] = json!(v.tags);
    }
    o
}

/// A SecretBundle.
fn bundle(base: &str, name: &str, v: &StoredVersion) -> Value {
    let mut o = item(base, name, v, true);
    o["value"] = json!(v.value);
    o
}

fn throttled(state: &State, vault: &Vault) -> Option<Response<Body>> {
    let cfg = state.throttle.lock().ok()?.clone();
    if !cfg.enabled {
        return None;
    }
    let mut w = vault.window.lock().ok()?;
    if w.0.elapsed() >= Duration::from_millis(cfg.window_ms) {
        *w = (Instant::now(), 0);
    }
    w.1 += 1;
    if w.1 <= cfg.max_requests {
        return None;
    }
    let r = kv_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttled",
        &format!(
            "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached. Limit: {} requests per {} ms.",
            cfg.max_requests, cfg.window_ms
        ),
        None,
    );
    Some(match cfg.retry_after_secs {
        Some(s) => with_header(r, "retry-after", &s.to_string()),
        None => r,
    })
}

/// Handle one request to vault `name`.
pub async fn handle(state: &State, name: &str, r: &Req) -> Response<Body> {
    let Some(vault) = state.vaults.get(name) else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "No such vault.",
            None,
        );
    };
    if let Some(t) = throttled(state, vault) {
        return t;
    }
    let latency = vault.latency.lock().map(|l| *l).unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    respond(state, vault, r).await
}

async fn respond(state: &State, vault: &Vault, r: &Req) -> Response<Body> {
    let Some(api) = r.q("api-version") else {
        return bad_parameter(
            "The 'api-version' query parameter is missing. Specify it, e.g. api-version=7.5.",
        );
    };
    if !api_version_ok(api) {
        return bad_parameter(&format!(
            "The specified version ({api}) is not recognized. Consider using the latest supported version (2025-07-01)."
        ));
    }
    let Some(auth) = r.header("authorization") else {
        return unauthorized(state, "AKV10000: Request is missing a Bearer or PoP token.");
    };
    let Some(token) = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
    else {
        return unauthorized(state, "AKV10000: Request is missing a Bearer or PoP token.");
    };
    let claims = match state.tokens.check(token.trim()) {
        Ok(c) => c,
        Err(TokenError::Invalid) => {
            return unauthorized(
                state,
                "AKV10012: Token validation failed: the signature is invalid or the token is malformed.",
            );
        }
        Err(TokenError::Audience(a)) => {
            return unauthorized(
                state,
                &format!("AKV10022: Invalid audience. Expected {VAULT_AUDIENCE}, found: {a}."),
            );
        }
        Err(TokenError::Issuer(i)) => {
            return unauthorized(
                state,
                &format!(
                    "AKV10032: Invalid issuer. Expected one of {}, found {i}.",
                    state.tokens.issuer()
                ),
            );
        }
        Err(TokenError::Expired) => {
            return unauthorized(
                state,
                "AKV10013: Token validation failed: the token is expired.",
            );
        }
    };
    let oid = claims.oid.as_str();
    let path = r.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let base = r.base.as_str();
    match (&r.method, segs.as_slice()) {
        (&Method::GET, ["secrets"]) => {
            if !vault.readers.iter().any(|x| x == oid) {
                return forbidden(oid, "readMetadata/action", "/secrets");
            }
            let items: Vec<Value> = match vault.secrets.lock() {
                Ok(s) => s
                    .values()
                    .filter_map(|s| s.versions.last().map(|v| item(base, &s.name, v, false)))
                    .collect(),
                Err(_) => Vec::new(),
            };
            page(state, r, items, &format!("{base}/secrets"))
        }
        (&Method::GET, ["secrets", n, "versions"]) => {
            if !valid_secret_name(n) {
                return bad_parameter("Invalid secret name.");
            }
            if !can_read(vault, n, oid) {
                return forbidden(oid, "readMetadata/action", &format!("/secrets/{n}"));
            }
            let items: Vec<Value> = match vault.secrets.lock() {
                Ok(s) => match s.get(&n.to_ascii_lowercase()) {
                    Some(sec) => sec
                        .versions
                        .iter()
                        .map(|v| item(base, &sec.name, v, true))
                        .collect(),
                    None => return not_found(n),
                },
                Err(_) => Vec::new(),
            };
            page(state, r, items, &format!("{base}/secrets/{n}/versions"))
        }
        (&Method::GET, ["secrets", n]) => get(vault, base, n, None, oid),
        (&Method::GET, ["secrets", n, v]) => get(vault, base, n, Some(v), oid),
        (&Method::PUT, ["secrets", n]) => put(vault, base, n, r, oid),
        (_, ["keys", rest @ ..]) => crate::keys::respond(state, vault, r, oid, rest).await,
        (_, ["secrets", ..]) => kv_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadParameter",
            &format!(
                "The method {} is not supported here by the emulator.",
                r.method
            ),
            None,
        ),
        _ => kv_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested path was not found.",
            None,
        ),
    }
}

fn can_read(vault: &Vault, name: &str, oid: &str) -> bool {
    let narrowed = vault.secrets.lock().ok().and_then(|s| {
        s.get(&name.to_ascii_lowercase())
            .and_then(|s| s.readers.clone())
    });
    match narrowed {
        Some(readers) => readers.iter().any(|x| x == oid),
        None => vault.readers.iter().any(|x| x == oid),
    }
}

fn get(vault: &Vault, base: &str, name: &str, version: Option<&str>, oid: &str) -> Response<Body> {
    if !valid_secret_name(name) {
        return bad_parameter("Invalid secret name: use 1-127 letters, digits and '-'.");
    }
    if let Some(v) = version
        && !valid_version_in_request(v)
    {
        return bad_parameter("Invalid secret version: expected 32 hexadecimal characters.");
    }
    if !can_read(vault, name, oid) {
        return forbidden(oid, "getSecret/action", &format!("/secrets/{name}"));
    }
    let found = vault.secrets.lock().ok().and_then(|s| {
        let sec = s.get(&name.to_ascii_lowercase())?;
        let v = match version {
            None => sec.versions.last().cloned(),
            Some(v) => sec
                .versions
                .iter()
                .find(|x| x.id.eq_ignore_ascii_case(v))
                .cloned(),
        }?;
        Some((sec.name.clone(), v))
    });
    match found {
        None => not_found(&match version {
            Some(v) => format!("{name}/{v}"),
            None => name.to_string(),
        }),
        Some((_, v)) if !v.enabled => kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        ),
        Some((spelled, v)) => json(StatusCode::OK, &bundle(base, &spelled, &v)),
    }
}

fn put(vault: &Vault, base: &str, name: &str, r: &Req, oid: &str) -> Response<Body> {
    if !valid_secret_name(name) {
        return bad_parameter("Invalid secret name: use 1-127 letters, digits and '-'.");
    }
    if !vault.writers.iter().any(|x| x == oid) {
        return forbidden(oid, "setSecret/action", &format!("/secrets/{name}"));
    }
    let body: PutBody = match serde_json::from_slice(&r.body) {
        Ok(b) => b,
        Err(e) => {
            return bad_parameter(&format!(
                "The request body is not a valid SecretSetParameters object: {e}"
            ));
        }
    };
    let attrs = body.attributes.unwrap_or_default();
    match vault.put(
        name,
        &body.value,
        body.content_type,
        body.tags.unwrap_or_default(),
        &attrs,
    ) {
        Some(v) => json(StatusCode::OK, &bundle(base, &vault.spelling(name), &v)),
        None => kv_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Internal error.",
            None,
        ),
    }
}
