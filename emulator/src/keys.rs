//! Key Vault keys over REST (the store they read is [`crate::key_store`]): `GET /keys[/{name}[/{version}|/versions]]`, `POST /keys/{name}/create`, `PUT /keys/{name}`
//! (import) and `POST /keys/{name}[/{version}]/{sign|verify|encrypt|decrypt|wrapkey|unwrapkey}`.
//!
//! The 401 challenge, token checks, throttling, latency, faults and counters happen before these
//! handlers, exactly as for secrets (see [`crate::keyvault`]).
//!
//! Key names are case-insensitive like secret names: held by their lowercase name, found in any
//! spelling, and answered (`kid`s, listings) as first created; version ids match in any case.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{valid_secret_name, valid_version_in_request};
use crate::crypto::{
    CryptoError, Curve, EncAlg, KeyMaterial, KeyOp, KeySpec, KeyType, SignAlg, b64, b64_decode,
};
use crate::http::{Body, Req, json};
use crate::key_store::KeyVersion;
use crate::kv_answer::{bad_parameter, internal_error, kv_error, page, rbac_forbidden};
use crate::state::State;
use crate::token::random_hex;
use crate::vault::Vault;

/// Attributes accepted in create and import bodies (other members are ignored, as Key Vault does).
#[derive(Debug, Default, Deserialize)]
struct Attrs {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    exp: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    kty: KeyType,
    #[serde(default)]
    key_size: Option<usize>,
    #[serde(default)]
    crv: Option<Curve>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<Attrs>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct ImportBody {
    key: Value,
    #[serde(default)]
    attributes: Option<Attrs>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct OpBody {
    alg: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

fn not_found(name: &str) -> Response<Body> {
    kv_error(
        StatusCode::NOT_FOUND,
        "KeyNotFound",
        &format!(
            "A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

fn forbidden(oid: &str, action: &str, name: &str) -> Response<Body> {
    let scope = if name.is_empty() {
        "/keys".to_string()
    } else {
        format!("/keys/{name}")
    };
    rbac_forbidden(oid, &format!("keys/{action}"), &scope)
}

fn attributes(v: &KeyVersion) -> Value {
    let mut a = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
        "exportable": false,
    });
    if let Some(n) = v.nbf {
        a["nbf"] = json!(n);
    }
    if let Some(e) = v.exp {
        a["exp"] = json!(e);
    }
    a
}

fn item(base: &str, name: &str, v: &KeyVersion, versioned: bool) -> Value {
    let kid = if versioned {
        format!("{base}/keys/{name}/{}", v.id)
    } else {
        format!("{base}/keys/{name}")
    };
    let mut o = json!({"kid": kid, "attributes": attributes(v)});
    if !v.tags.is_empty() {
        o["tags"] = json!(v.tags);
    }
    o
}

/// Make sure a version's material exists, generating it off the async threads when needed.
async fn ready(v: &Arc<KeyVersion>) -> Result<(), CryptoError> {
    if let Some(r) = v.made() {
        return r.as_ref().map(|_| ()).map_err(Clone::clone);
    }
    let v = v.clone();
    match tokio::task::spawn_blocking(move || v.material().map(|_| ())).await {
        Ok(r) => r,
        Err(_) => Err(CryptoError("Key generation was interrupted.".into())),
    }
}

/// The private members a JWK can hold (RSA's `d`, `p`, `q`, `dp`, `dq`, `qi`, EC's `d`, and a
/// symmetric key's `k`), each with the value `PRIVATE-<member>`: what a vault that leaked
/// private parts would add (see [`crate::Emulator::set_key_answers_with_private_members`]).
pub const PRIVATE_JWK_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// A KeyBundle: the public JWK, attributes and tags; with private members too if the vault is
/// set to send them.
async fn bundle(vault: &Vault, base: &str, name: &str, v: &Arc<KeyVersion>) -> Response<Body> {
    if let Err(e) = ready(v).await {
        return internal_error(&e.0);
    }
    let leak = vault
        .private_key_members
        .load(std::sync::atomic::Ordering::Relaxed);
    match v.public_jwk(base, name) {
        Ok(mut jwk) => {
            if leak {
                for m in PRIVATE_JWK_MEMBERS {
                    jwk[m] = json!(format!("PRIVATE-{m}"));
                }
            }
            json(
                StatusCode::OK,
                &json!({"key": jwk, "attributes": attributes(v), "tags": v.tags}),
            )
        }
        Err(e) => internal_error(&e.0),
    }
}

/// Handle a request under `/keys` (`rest` is the path after `keys`, trailing slash removed).
pub async fn respond(
    state: &State,
    vault: &Vault,
    r: &Req,
    oid: &str,
    rest: &[&str],
) -> Response<Body> {
    let base = r.base.as_str();
    let store = &vault.keys;
    if let Some(n) = rest.first()
        && !valid_secret_name(n)
    {
        return bad_parameter("Invalid key name: use 1-127 letters, digits and '-'.");
    }
    // Whatever spelling was asked for, answer with the key's own (a new key keeps the asked one).
    let spelled = rest.first().map(|n| store.spelling(n));
    let mut segments = rest.to_vec();
    if let (Some(first), Some(spelled)) = (segments.first_mut(), spelled.as_deref()) {
        *first = spelled;
    }
    match (&r.method, segments.as_slice()) {
        (&Method::GET, []) => {
            if !vault.readers.iter().any(|x| x == oid) {
                return forbidden(oid, "read", "");
            }
            let items = store
                .latest()
                .iter()
                .map(|(n, v)| item(base, n, v, false))
                .collect();
            page(state, r, items, &format!("{base}/keys"))
        }
        (&Method::GET, [n, "versions"]) => {
            if !store.can_use(&vault.readers, n, oid) {
                return forbidden(oid, "read", n);
            }
            match store.versions(n) {
                Some(vs) => {
                    let items = vs.iter().map(|v| item(base, n, v, true)).collect();
                    page(state, r, items, &format!("{base}/keys/{n}/versions"))
                }
                None => not_found(n),
            }
        }
        (&Method::GET, [n]) => get(vault, base, n, None, oid).await,
        (&Method::GET, [n, v]) => get(vault, base, n, Some(v), oid).await,
        (&Method::POST, [n, "create"]) => create(vault, base, n, r, oid).await,
        (&Method::PUT, [n]) => import(vault, base, n, r, oid).await,
        (&Method::POST, [n, op]) => operation(vault, base, n, None, op, r, oid).await,
        (&Method::POST, [n, v, op]) => operation(vault, base, n, Some(v), op, r, oid).await,
        _ => kv_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadParameter",
            &format!(
                "The method {} is not supported here by the emulator.",
                r.method
            ),
            None,
        ),
    }
}

fn check_version(version: Option<&str>) -> Option<Response<Body>> {
    match version {
        Some(v) if !v.is_empty() && !valid_version_in_request(v) => Some(bad_parameter(
            "Invalid key version: expected 32 hexadecimal characters.",
        )),
        _ => None,
    }
}

async fn get(
    vault: &Vault,
    base: &str,
    name: &str,
    version: Option<&str>,
    oid: &str,
) -> Response<Body> {
    if let Some(e) = check_version(version) {
        return e;
    }
    if !vault.keys.can_use(&vault.readers, name, oid) {
        return forbidden(oid, "read", name);
    }
    match vault.keys.find(name, version) {
        Some(v) => bundle(vault, base, name, &v).await,
        None => not_found(&match version.filter(|v| !v.is_empty()) {
            Some(v) => format!("{name}/{v}"),
            None => name.to_string(),
        }),
    }
}

/// Parse `key_ops` names (default: all that fit); the error is a BadParameter message.
fn parse_ops(ops: Option<&[String]>, kty: KeyType) -> Result<Vec<KeyOp>, CryptoError> {
    let Some(ops) = ops else {
        return Ok(KeyOp::all_for(kty));
    };
    let mut out = Vec::new();
    for o in ops {
        match KeyOp::parse(o) {
            Some(op) if op.fits(kty) => out.push(op),
            Some(op) => {
                return Err(CryptoError(format!(
                    "Operation {} is not supported by {} keys.",
                    op.name(),
                    if kty == KeyType::Ec { "EC" } else { "RSA" }
                )));
            }
            None => {
                return Err(CryptoError(format!(
                    "Invalid key operation {o:?}: use sign, verify, encrypt, decrypt, wrapKey or unwrapKey."
                )));
            }
        }
    }
    Ok(out)
}

fn finish(v: &mut KeyVersion, attrs: Option<Attrs>, tags: Option<BTreeMap<String, String>>) {
    let a = attrs.unwrap_or_default();
    v.enabled = a.enabled.unwrap_or(true);
    v.nbf = a.nbf;
    v.exp = a.exp;
    v.tags = tags.unwrap_or_default();
}

async fn create(vault: &Vault, base: &str, name: &str, r: &Req, oid: &str) -> Response<Body> {
    if !vault.writers.iter().any(|x| x == oid) {
        return forbidden(oid, "create/action", name);
    }
    let b: CreateBody = match serde_json::from_slice(&r.body) {
        Ok(b) => b,
        Err(e) => {
            return bad_parameter(&format!(
                "The request body is not a valid KeyCreateParameters object: {e}"
            ));
        }
    };
    let spec = match b.kty {
        KeyType::Rsa => {
            if b.crv.is_some() {
                return bad_parameter("crv is for EC keys only.");
            }
            KeySpec::Rsa(b.key_size.unwrap_or(2048))
        }
        KeyType::Ec => {
            if b.key_size.is_some() {
                return bad_parameter("key_size is for RSA keys only.");
            }
            KeySpec::Ec(b.crv.unwrap_or(Curve::P256))
        }
    };
    let ops = match parse_ops(b.key_ops.as_deref(), b.kty) {
        Ok(o) => o,
        Err(e) => return bad_parameter(&e.0),
    };
    let material = match tokio::task::spawn_blocking(move || KeyMaterial::generate(spec)).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return bad_parameter(&e.0),
        Err(_) => return internal_error("Key generation was interrupted."),
    };
    store_new(vault, base, name, spec, ops, material, b.attributes, b.tags).await
}

#[allow(clippy::too_many_arguments)]
async fn store_new(
    vault: &Vault,
    base: &str,
    name: &str,
    spec: KeySpec,
    ops: Vec<KeyOp>,
    material: KeyMaterial,
    attrs: Option<Attrs>,
    tags: Option<BTreeMap<String, String>>,
) -> Response<Body> {
    let mut v = KeyVersion::new(random_hex(16), spec, ops, true);
    finish(&mut v, attrs, tags);
    if !v.set_material(material) {
        return internal_error("Key material was set twice.");
    }
    match vault.keys.add(name, v) {
        Some(v) => bundle(vault, base, &vault.keys.spelling(name), &v).await,
        None => internal_error("Internal error."),
    }
}

async fn import(vault: &Vault, base: &str, name: &str, r: &Req, oid: &str) -> Response<Body> {
    if !vault.writers.iter().any(|x| x == oid) {
        return forbidden(oid, "import/action", name);
    }
    let b: ImportBody = match serde_json::from_slice(&r.body) {
        Ok(b) => b,
        // The serde error could quote key material: say only where it went wrong.
        Err(e) => {
            return bad_parameter(&format!(
                "The request body is not a valid KeyImportParameters object (line {}, column {}).",
                e.line(),
                e.column()
            ));
        }
    };
    let material = match tokio::task::spawn_blocking(move || {
        KeyMaterial::from_jwk(&b.key).map(|m| (m, b.key))
    })
    .await
    {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return bad_parameter(&e.0),
        Err(_) => return internal_error("Key import was interrupted."),
    };
    let (material, jwk) = material;
    let spec = material.spec();
    let ops: Option<Vec<String>> = jwk
        .get("key_ops")
        .and_then(|o| serde_json::from_value(o.clone()).ok());
    let ops = match parse_ops(ops.as_deref(), spec.kty()) {
        Ok(o) => o,
        Err(e) => return bad_parameter(&e.0),
    };
    store_new(vault, base, name, spec, ops, material, b.attributes, b.tags).await
}

/// The URL's operation segment (`sign`, `wrapkey`, ...), case-insensitive.
fn op_of(segment: &str) -> Option<KeyOp> {
    let s = segment.to_ascii_lowercase();
    KeyOp::ALL
        .into_iter()
        .find(|o| o.name().eq_ignore_ascii_case(&s))
}

/// RBAC data action of an operation.
fn action(op: KeyOp) -> &'static str {
    match op {
        KeyOp::Sign => "sign/action",
        KeyOp::Verify => "verify/action",
        KeyOp::Encrypt => "encrypt/action",
        KeyOp::Decrypt => "decrypt/action",
        KeyOp::WrapKey => "wrap/action",
        KeyOp::UnwrapKey => "unwrap/action",
    }
}

/// Decode a base64url body member; the error is a BadParameter message.
fn decode(field: &str, s: Option<&str>) -> Result<Vec<u8>, CryptoError> {
    match s.map(b64_decode) {
        None => Err(CryptoError(format!("The '{field}' parameter is required."))),
        Some(None) => Err(CryptoError(format!(
            "The '{field}' parameter is not valid base64url."
        ))),
        Some(Some(b)) if b.is_empty() => {
            Err(CryptoError(format!("The '{field}' parameter is empty.")))
        }
        Some(Some(b)) => Ok(b),
    }
}

async fn operation(
    vault: &Vault,
    base: &str,
    name: &str,
    version: Option<&str>,
    op: &str,
    r: &Req,
    oid: &str,
) -> Response<Body> {
    let Some(op) = op_of(op) else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested path was not found.",
            None,
        );
    };
    if let Some(e) = check_version(version) {
        return e;
    }
    if !vault.keys.can_use(&vault.readers, name, oid) {
        return forbidden(oid, action(op), name);
    }
    let Some(v) = vault.keys.find(name, version) else {
        return not_found(&match version.filter(|v| !v.is_empty()) {
            Some(v) => format!("{name}/{v}"),
            None => name.to_string(),
        });
    };
    // Key Vault refuses the private-key operations on a disabled key; the public ones still work.
    if !v.enabled && matches!(op, KeyOp::Sign | KeyOp::Decrypt | KeyOp::UnwrapKey) {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("Operation {} is not allowed on a disabled key.", op.name()),
            Some("KeyDisabled"),
        );
    }
    if !v.key_ops.contains(&op) {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("Operation {} is not permitted on this key.", op.name()),
            Some("KeyOperationForbidden"),
        );
    }
    let b: OpBody = match serde_json::from_slice(&r.body) {
        Ok(b) => b,
        Err(e) => {
            return bad_parameter(&format!(
                "The request body is not a valid key operation parameters object (line {}, column {}).",
                e.line(),
                e.column()
            ));
        }
    };
    if let Err(e) = ready(&v).await {
        return internal_error(&e.0);
    }
    let m = match v.material() {
        Ok(m) => m,
        Err(e) => return internal_error(&e.0),
    };
    let kid = format!("{base}/keys/{name}/{}", v.id);
    let result = match op {
        KeyOp::Sign | KeyOp::Verify => {
            let Some(alg) = SignAlg::parse(&b.alg) else {
                return bad_parameter(&format!(
                    "Invalid algorithm {:?}: use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or ES256K.",
                    b.alg
                ));
            };
            if op == KeyOp::Sign {
                let digest = match decode("value", b.value.as_deref()) {
                    Ok(d) => d,
                    Err(e) => return bad_parameter(&e.0),
                };
                m.sign(alg, &digest)
                    .map(|s| json!({"kid": kid, "value": b64(&s)}))
            } else {
                let digest = match decode("digest", b.digest.as_deref()) {
                    Ok(d) => d,
                    Err(e) => return bad_parameter(&e.0),
                };
                let sig = match decode("value", b.value.as_deref()) {
                    Ok(d) => d,
                    Err(e) => return bad_parameter(&e.0),
                };
                m.verify(alg, &digest, &sig).map(|ok| json!({"value": ok}))
            }
        }
        _ => {
            let Some(alg) = EncAlg::parse(&b.alg) else {
                return bad_parameter(&format!(
                    "Invalid algorithm {:?}: use RSA-OAEP, RSA-OAEP-256 or RSA1_5.",
                    b.alg
                ));
            };
            let data = match decode("value", b.value.as_deref()) {
                Ok(d) => d,
                Err(e) => return bad_parameter(&e.0),
            };
            match op {
                KeyOp::Encrypt | KeyOp::WrapKey => m.encrypt(alg, &data),
                _ => m.decrypt(alg, &data),
            }
            .map(|out| json!({"kid": kid, "value": b64(&out)}))
        }
    };
    match result {
        Ok(body) => json(StatusCode::OK, &body),
        Err(e) => bad_parameter(&e.0),
    }
}
