//! What a vault offers for keys: the public half, and operations done with the private half
//! inside the vault. Only Key Vault has keys; the file backend has none.

use crate::BackendError;
use crate::keys::KeyOp;
use futures::future::BoxFuture;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A key's public half, as the vault describes it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The key's name as the vault spells it (from the key id), if it said. For the audit log.
    pub name: Option<Arc<str>>,
    /// The version this is (the last segment of the key id).
    pub version: Arc<str>,
    /// The public JSON Web Key: only `kid`, `kty`, `key_ops`, `n`, `e`, `crv`, `x` and `y`
    /// are kept, whatever else the vault sent.
    pub jwk: Arc<str>,
    /// The key type (`RSA`, `EC`, `RSA-HSM`, `EC-HSM`).
    pub kty: Arc<str>,
    /// The curve of an EC key (`P-256`, `P-384`, `P-521`, `P-256K`).
    pub crv: Option<Arc<str>>,
    /// Whether the key is enabled.
    pub enabled: bool,
    /// The key, parsed for local verification, if its `key_ops` allow verify.
    pub verifier: Option<Arc<crate::keys::verify::Verifier>>,
}

/// One operation for the vault to do with a key.
#[derive(Debug, Clone, Copy)]
pub struct KeyRequest<'a> {
    /// The key's name in the vault.
    pub name: &'a str,
    /// The version to use (always named: the latest is looked up first).
    pub version: &'a str,
    /// The operation.
    pub op: KeyOp,
    /// Key Vault's algorithm name, such as `ES256` or `RSA-OAEP-256`.
    pub algorithm: &'a str,
    /// The input: a digest (sign), a key (wrap), a plaintext or a ciphertext; for verify,
    /// the signature.
    pub value: &'a [u8],
    /// For verify, the digest.
    pub digest: Option<&'a [u8]>,
}

/// What the vault answered.
#[derive(Debug)]
pub enum KeyAnswer {
    /// The output bytes (a signature, a wrapped or unwrapped key, a ciphertext or plaintext),
    /// wiped on drop.
    Bytes(Zeroizing<Vec<u8>>),
    /// The answer of a verify.
    Verified(bool),
}

/// A vault that can use keys. Implementations never put key material, an input or an output
/// in an error.
pub trait KeyBackend: Send + Sync {
    /// The public half of key `name` (the latest version, or `version`).
    fn public_key<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PublicKey, BackendError>>;

    /// Has the vault do `request`.
    fn operate<'a>(
        &'a self,
        request: KeyRequest<'a>,
    ) -> BoxFuture<'a, Result<KeyAnswer, BackendError>>;
}

/// The public members of a JWK: everything else (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`, ...)
/// is dropped.
const PUBLIC_JWK_MEMBERS: [&str; 8] = ["kid", "kty", "key_ops", "n", "e", "crv", "x", "y"];

/// The public part of `jwk` as compact JSON, members in a fixed order.
pub fn public_jwk(jwk: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = serde_json::Map::new();
    for member in PUBLIC_JWK_MEMBERS {
        if let Some(v) = jwk.get(member) {
            out.insert(member.to_owned(), v.clone());
        }
    }
    serde_json::Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_members_never_survive() {
        let jwk = serde_json::json!({
            "kid": "https://v/keys/k/1", "kty": "RSA", "n": "AQAB", "e": "AQAB",
            "d": "PRIVATE", "p": "PRIVATE", "q": "PRIVATE", "dp": "PRIVATE", "dq": "PRIVATE",
            "qi": "PRIVATE", "k": "PRIVATE", "key_hsm": "PRIVATE"
        });
        let public = public_jwk(jwk.as_object().unwrap());
        assert!(!public.contains("PRIVATE"), "{public}");
        assert!(public.contains("\"n\":\"AQAB\""), "{public}");
    }
}
