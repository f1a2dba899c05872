//! Key Vault secrets over HTTPS: the 401 challenge, token checks, rights, versions, paging, throttling.
//! Requests under `/keys` are routed to [`crate::keys`] after the same checks.
//!
//! Names are case-insensitive, as in Key Vault: secrets are held by their lowercase name, a `PUT`
//! of `DB-Password` adds a version to `db-password`, any spelling finds it, and every answer
//! (ids, listings) carries the name as the secret was first created. Version ids in requests
//! match in any case too.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{VaultConfig, valid_secret_name, valid_version_in_request};
use crate::keys::KeyStore;
use crate::server::{Body, Req, json, with_header};
use crate::state::State;
use crate::token::{TokenError, VAULT_AUDIENCE, now, random_hex};

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

/// One stored version of a secret.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// 32 lowercase hex characters.
    pub id: String,
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Enabled.
    pub enabled: bool,
    /// Not before (epoch seconds).
    pub nbf: Option<u64>,
    /// Expiry (epoch seconds).
    pub exp: Option<u64>,
    /// Created (epoch seconds).
    pub created: u64,
    /// Updated (epoch seconds).
    pub updated: u64,
}

/// A secret: versions oldest first, and optional narrowed readers.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// The name as the secret was first created (the map holds it by its lowercase name).
    pub name: String,
    /// Versions, oldest first (the last is the latest).
    pub versions: Vec<StoredVersion>,
    /// When set, only these object ids may read it.
    pub readers: Option<Vec<String>>,
}

/// One vault's state.
#[derive(Debug)]
pub struct Vault {
    /// Secrets by lowercase name (see [`StoredSecret::name`] for the spelling).
    pub secrets: Mutex<BTreeMap<String, StoredSecret>>,
    /// Keys by name.
    pub keys: KeyStore,
    /// Object ids with read (and list) rights on the whole vault.
    pub readers: Vec<String>,
    /// Object ids with write rights.
    pub writers: Vec<String>,
    /// Delay added to every answer.
    pub latency: Mutex<Duration>,
    /// When set, key answers (`GET /keys/...`) carry private JWK members, as a misbehaving
    /// vault might (see [`crate::Emulator::set_key_answers_with_private_members`]).
    pub private_key_members: AtomicBool,
    /// Throttle window: (start, requests in it).
    pub window: Mutex<(Instant, u64)>,
}

impl Vault {
    /// Build a vault from its config.
    pub fn from_config(c: &VaultConfig) -> Vault {
        let t = now();
        let mut secrets = BTreeMap::new();
        for s in &c.secrets {
            let mk = |value: &str, enabled: bool, id: Option<&String>| StoredVersion {
                id: id.cloned().unwrap_or_else(|| random_hex(16)),
                value: value.to_string(),
                content_type: s.content_type.clone(),
                tags: s.tags.clone(),
                enabled,
                nbf: None,
                exp: None,
                created: t,
                updated: t,
            };
            let versions = match &s.value {
                Some(v) => vec![mk(v, s.enabled.unwrap_or(true), None)],
                None => s
                    .versions
                    .iter()
                    .map(|v| StoredVersion {
                        content_type: v.content_type.clone().or_else(|| s.content_type.clone()),
                        tags: v.tags.clone().unwrap_or_else(|| s.tags.clone()),
                        ..mk(&v.value, v.enabled, v.id.as_ref())
                    })
                    .collect(),
            };
            secrets.insert(
                s.name.to_ascii_lowercase(),
                StoredSecret {
                    name: s.name.clone(),
                    versions,
                    readers: s.readers.clone(),
                },
            );
        }
        Vault {
            secrets: Mutex::new(secrets),
            keys: KeyStore::from_config(&c.keys),
            readers: c.readers.clone(),
            writers: c.writers.clone(),
            latency: Mutex::new(Duration::ZERO),
            private_key_members: AtomicBool::new(false),
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Add a version (creating the secret if needed); returns the version id.
    pub fn put(
        &self,
        name: &str,
        value: &str,
        content_type: Option<String>,
        tags: BTreeMap<String, String>,
        attrs: &PutAttributes,
    ) -> Option<StoredVersion> {
        let t = now();
        let v = StoredVersion {
            id: random_hex(16),
            value: value.to_string(),
            content_type,
            tags,
            enabled: attrs.enabled.unwrap_or(true),
            nbf: attrs.nbf,
            exp: attrs.exp,
            created: t,
            updated: t,
        };
        let mut s = self.secrets.lock().ok()?;
        s.entry(name.to_ascii_lowercase())
            .or_insert_with(|| StoredSecret {
                name: name.to_string(),
                versions: Vec::new(),
                readers: None,
            })
            .versions
            .push(v.clone());
        Some(v)
    }

    /// The name of secret `name` as it was first created; `name` itself if there is none.
    pub fn spelling(&self, name: &str) -> String {
        self.secrets
            .lock()
            .ok()
            .and_then(|s| s.get(&name.to_ascii_lowercase()).map(|s| s.name.clone()))
            .unwrap_or_else(|| name.to_string())
    }

    /// Enable or disable a secret's latest version.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> bool {
        let Ok(mut s) = self.secrets.lock() else {
            return false;
        };
        match s
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|s| s.versions.last_mut())
        {
            Some(v) => {
                v.enabled = enabled;
                v.updated = now();
                true
            }
            None => false,
        }
    }
}

/// Attributes accepted in a PUT body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutAttributes {
    /// Enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Expiry.
    #[serde(default)]
    pub exp: Option<u64>,
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

/// A Key Vault error body `{"error":{"code","message"[,"innererror"]}}`.
pub fn kv_error(
    status: StatusCode,
    code: &str,
    message: &str,
    inner: Option<&str>,
) -> Response<Body> {
    let mut e = json!({"code": code, "message": message});
    if let Some(i) = inner {
        e["innererror"] = json!({"code": i});
    }
    json(status, &json!({"error": e}))
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

/// The RBAC 403 for `Microsoft.KeyVault/vaults/{action}` (e.g. `keys/sign/action`) on `scope`.
pub(crate) fn rbac_forbidden(oid: &str, action: &str, scope: &str) -> Response<Body> {
    kv_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: oid={oid}\r\nAction: 'Microsoft.KeyVault/vaults/{action}'\r\nResource: '{scope}'\r\nAssignment: (not found)\r\nVault: emulator;location=local\r\n"
        ),
        Some("ForbiddenByRbac"),
    )
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

/// A 400 BadParameter.
pub(crate) fn bad_parameter(message: &str) -> Response<Body> {
    kv_error(StatusCode::BAD_REQUEST, "BadParameter", message, None)
}

/// A 500 InternalError.
pub(crate) fn internal_error(message: &str) -> Response<Body> {
    kv_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        message,
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

/// One page of a listing: `maxresults` (1..=25), `$skiptoken` = offset (suffix `e`: an empty page first).
pub(crate) fn page(state: &State, r: &Req, items: Vec<Value>, list_url: &str) -> Response<Body> {
    let max = match r.q("maxresults") {
        None => 25,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n,
            _ => {
                return bad_parameter("Invalid value for maxresults: it must be between 1 and 25.");
            }
        },
    };
    let api = r.q("api-version").unwrap_or("7.5");
    let token = r.q("$skiptoken").unwrap_or("");
    let (empty_now, offset) = match token.strip_suffix('e') {
        Some(o) => (true, o),
        None => (false, token),
    };
    let offset = if offset.is_empty() {
        0
    } else {
        match offset.parse::<usize>() {
            Ok(o) => o,
            Err(_) => return bad_parameter("Invalid $skiptoken."),
        }
    };
    let link =
        |tok: String| format!("{list_url}?api-version={api}&$skiptoken={tok}&maxresults={max}");
    if empty_now {
        return json(
            StatusCode::OK,
            &json!({"value": [], "nextLink": link(offset.to_string())}),
        );
    }
    let end = (offset + max).min(items.len());
    let value: Vec<Value> = items
        .get(offset..end)
        .map(|s| s.to_vec())
        .unwrap_or_default();
    let next = if end < items.len() {
        // Insert the empty page after the first page, as Azure sometimes does.
        let tok = if state.config.empty_page && offset == 0 {
            format!("{end}e")
        } else {
            end.to_string()
        };
        Value::String(link(tok))
    } else {
        Value::Null
    };
    json(StatusCode::OK, &json!({"value": value, "nextLink": next}))
}
