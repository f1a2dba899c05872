//! Key Vault's keys REST calls: `GET keys/{name}[/{version}]` for the public half, and
//! `POST keys/{name}/{version}/{sign|verify|wrapkey|unwrapkey|encrypt|decrypt}` for the
//! operations, through the same challenge, token, retry and loopback rules as secrets.

use super::KeyVault;
use super::wire::key_id_parts;
use crate::BackendError;
use crate::backend::keys::{KeyAnswer, KeyBackend, KeyRequest, PublicKey, public_jwk};
use crate::keys::KeyOp;
use crate::keys::verify::Verifier;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::{BoxFuture, FutureExt};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

/// `GET /keys/{name}[/{version}]`.
#[derive(Deserialize)]
struct KeyBundle {
    key: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    attributes: super::wire::Attributes,
}

/// The body of an operation.
#[derive(Serialize)]
struct OperationBody<'a> {
    alg: &'a str,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
}

/// The answer of an operation: `value` is base64url bytes, or a bool for verify.
#[derive(Deserialize)]
struct OperationResult {
    value: serde_json::Value,
}

impl KeyBackend for KeyVault {
    fn public_key<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PublicKey, BackendError>> {
        async move {
            let path = match version {
                Some(v) => format!("keys/{name}/{v}"),
                None => format!("keys/{name}"),
            };
            let response = self.get_json(self.endpoint(&path, &[])).await?;
            let bundle: KeyBundle = response.json().map_err(|e| {
                BackendError::Unavailable(format!("Key Vault sent a malformed key: {e}"))
            })?;
            let (answered, version) = bundle
                .key
                .get("kid")
                .and_then(|kid| kid.as_str())
                .and_then(key_id_parts)
                .unzip();
            let version = version
                .flatten()
                .filter(|v| crate::name::is_valid_version(v))
                .ok_or_else(|| {
                    BackendError::Unavailable("Key Vault sent a key without a versioned kid".into())
                })?;
            let member = |m: &str| bundle.key.get(m).and_then(|v| v.as_str()).map(Into::into);
            Ok(PublicKey {
                name: crate::backend::same_name(name, answered).map(Into::into),
                version: version.into(),
                jwk: public_jwk(&bundle.key).into(),
                kty: member("kty").unwrap_or_else(|| "".into()),
                crv: member("crv"),
                verifier: Verifier::from_jwk(&bundle.key).map(Arc::new),
                enabled: bundle.attributes.enabled.unwrap_or(true),
            })
        }
        .boxed()
    }

    fn operate<'a>(
        &'a self,
        request: KeyRequest<'a>,
    ) -> BoxFuture<'a, Result<KeyAnswer, BackendError>> {
        async move {
            let path = format!(
                "keys/{}/{}/{}",
                request.name,
                request.version,
                request.op.wire()
            );
            let body = Zeroizing::new(
                serde_json::to_vec(&OperationBody {
                    alg: request.algorithm,
                    value: URL_SAFE_NO_PAD.encode(request.value),
                    digest: request.digest.map(|d| URL_SAFE_NO_PAD.encode(d)),
                })
                .map_err(|e| {
                    BackendError::Unavailable(format!("cannot encode the request: {e}"))
                })?,
            );
            let response = self
                .call(Method::POST, self.endpoint(&path, &[]), Some(&body))
                .await?;
            let malformed = || {
                BackendError::Unavailable(format!(
                    "Key Vault sent a malformed {} answer",
                    request.op
                ))
            };
            let result: OperationResult = response.json().map_err(|_| malformed())?;
            match (request.op, result.value) {
                (KeyOp::Verify, serde_json::Value::Bool(ok)) => Ok(KeyAnswer::Verified(ok)),
                (KeyOp::Verify, _) => Err(malformed()),
                (_, serde_json::Value::String(value)) => {
                    let value = Zeroizing::new(value);
                    URL_SAFE_NO_PAD
                        .decode(value.trim_end_matches('='))
                        .map(|bytes| KeyAnswer::Bytes(Zeroizing::new(bytes)))
                        .map_err(|_| malformed())
                }
                _ => Err(malformed()),
            }
        }
        .boxed()
    }
}
