//! The policy point for keys, on [`SecretsCtx`]: the name, the grant and the operation it
//! allows, and the input, all checked before any vault call; then the vault does the
//! operation on the version the grant pins (or the latest, looked up through the public-key
//! cache), except verify, which the host does on the cached public key when the key allows
//! it ([`super::verify`]); every request is audited without its input or output.
//!
//! Key names are case-insensitive as secret names are (see [`crate::store`]): folded once here,
//! resolved and cached in that spelling, and audited by the same rule ([`crate::audit`]).

use super::{EncryptionAlgorithm, KeyError, KeyErrorKind, KeyOp, SignatureAlgorithm};
use crate::audit::AuditEvent;
use crate::backend::keys::{KeyAnswer, KeyBackend, KeyRequest, PublicKey};
use crate::grants::Target;
use crate::name::folded;
use crate::{SecretsCtx, is_valid_name};
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

/// The most bytes a guest may hand in for one operation (a digest, a key to wrap, a plaintext,
/// a ciphertext or a signature). The largest RSA key Key Vault has (4096 bits) takes 512.
pub const MAX_KEY_INPUT: usize = 1024;

/// What one key request touched, for the audit log.
struct KeyTrail<'a> {
    op: &'static str,
    name: &'a str,
    algorithm: Option<&'static str>,
    key: Option<Target<'a>>,
    version: Option<Arc<str>>,
    /// The key's name as the vault's answer spells it.
    spelled: Option<Arc<str>>,
    start: Option<Instant>,
}

/// A key this component may use, and the vault that holds it.
struct Granted<'a> {
    name: &'a str,
    key: Target<'a>,
    vault: &'a dyn KeyBackend,
}

impl SecretsCtx {
    /// Signs `digest` with the key granted as `name`.
    pub async fn sign(
        &self,
        name: &str,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let folded = folded(name);
        let mut trail = self.key_trail("sign", name, Some(algorithm.as_str()));
        let result = async {
            let key = self.grant_for(&mut trail, name, &folded, Some(KeyOp::Sign))?;
            check_digest(name, algorithm, digest)?;
            let public = key.public(&mut trail).await?;
            check_signature_algorithm(name, &public, algorithm)?;
            let answer = key
                .operate(&public, KeyOp::Sign, algorithm.as_str(), digest, None)
                .await?;
            Ok(bytes(name, answer)?.to_vec())
        }
        .await;
        self.key_audited(&trail, result)
    }

    /// Whether `signature` is the signature of `digest` by the key granted as `name`.
    pub async fn verify(
        &self,
        name: &str,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<bool, KeyError> {
        let folded = folded(name);
        let mut trail = self.key_trail("verify", name, Some(algorithm.as_str()));
        let result = async {
            let key = self.grant_for(&mut trail, name, &folded, Some(KeyOp::Verify))?;
            check_digest(name, algorithm, digest)?;
            check_input(name, "signature", signature)?;
            let public = key.public(&mut trail).await?;
            check_signature_algorithm(name, &public, algorithm)?;
            // The cached public key answers without a vault call when it can.
            if let Some(verified) = public
                .verifier
                .as_ref()
                .and_then(|v| v.verify(algorithm, digest, signature))
            {
                return Ok(verified);
            }
            match key
                .operate(
                    &public,
                    KeyOp::Verify,
                    algorithm.as_str(),
                    signature,
                    Some(digest),
                )
                .await?
            {
                KeyAnswer::Verified(ok) => Ok(ok),
                KeyAnswer::Bytes(_) => Err(malformed(name)),
            }
        }
        .await;
        self.key_audited(&trail, result)
    }

    /// Wraps `key` with the key granted as `name`.
    pub async fn wrap_key(
        &self,
        name: &str,
        algorithm: EncryptionAlgorithm,
        key: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.crypt(KeyOp::WrapKey, name, algorithm, "key", key)
            .await
            .map(|out| out.to_vec())
    }

    /// Unwraps `wrapped` with the key granted as `name`. The result is wiped on drop.
    pub async fn unwrap_key(
        &self,
        name: &str,
        algorithm: EncryptionAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.crypt(KeyOp::UnwrapKey, name, algorithm, "wrapped key", wrapped)
            .await
    }

    /// Encrypts `plaintext` with the key granted as `name`.
    pub async fn encrypt(
        &self,
        name: &str,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.crypt(KeyOp::Encrypt, name, algorithm, "plaintext", plaintext)
            .await
            .map(|out| out.to_vec())
    }

    /// Decrypts `ciphertext` with the key granted as `name`. The result is wiped on drop.
    pub async fn decrypt(
        &self,
        name: &str,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.crypt(KeyOp::Decrypt, name, algorithm, "ciphertext", ciphertext)
            .await
    }

    /// The public JSON Web Key of the key granted as `name`. Any key grant allows it.
    pub async fn public_key(&self, name: &str) -> Result<String, KeyError> {
        let folded = folded(name);
        let mut trail = self.key_trail("public-key", name, None);
        let result = async {
            let key = self.grant_for(&mut trail, name, &folded, None)?;
            Ok(key.public(&mut trail).await?.jwk.to_string())
        }
        .await;
        self.key_audited(&trail, result)
    }

    async fn crypt(
        &self,
        op: KeyOp,
        name: &str,
        algorithm: EncryptionAlgorithm,
        what: &str,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let folded = folded(name);
        let mut trail = self.key_trail(op.as_str(), name, Some(algorithm.as_str()));
        let result = async {
            let key = self.grant_for(&mut trail, name, &folded, Some(op))?;
            check_input(name, what, input)?;
            let public = key.public(&mut trail).await?;
            if !public.kty.starts_with("RSA") {
                return Err(invalid(format!(
                    "{algorithm} needs an RSA key, and key \"{name}\" is {}",
                    public.kty
                )));
            }
            bytes(
                name,
                key.operate(&public, op, algorithm.as_str(), input, None)
                    .await?,
            )
        }
        .await;
        self.key_audited(&trail, result)
    }

    fn key_trail<'a>(
        &self,
        op: &'static str,
        name: &'a str,
        algorithm: Option<&'static str>,
    ) -> KeyTrail<'a> {
        KeyTrail {
            op,
            name,
            algorithm,
            key: None,
            version: None,
            spelled: None,
            start: self.audit.is_some().then(Instant::now),
        }
    }

    /// Validates `name` and resolves it, folded, through the key grants; `needs` must be
    /// allowed. No vault is touched.
    fn grant_for<'a>(
        &'a self,
        trail: &mut KeyTrail<'a>,
        name: &'a str,
        folded: &'a str,
        needs: Option<KeyOp>,
    ) -> Result<Granted<'a>, KeyError> {
        if !is_valid_name(name) {
            return Err(KeyError::new(
                KeyErrorKind::InvalidName,
                format!(
                    "\"{}\" is not a valid key name: use 1 to 127 characters of 0-9, A-Z, a-z and -",
                    crate::audit::name_for_log(name)
                ),
            ));
        }
        let target = self.grants().keys().resolve(folded).ok_or_else(|| {
            KeyError::new(
                KeyErrorKind::NotGranted,
                format!("this component has no key grant for \"{name}\""),
            )
        })?;
        trail.key = Some(target.key);
        if let Some(op) = needs
            && !target.ops.allows(op)
        {
            return Err(KeyError::new(
                KeyErrorKind::NotGranted,
                format!(
                    "this component's grant for key \"{name}\" does not allow {op} (it allows {})",
                    target.ops
                ),
            ));
        }
        let vault = self
            .vaults
            .get(target.key.vault)
            .and_then(|b| b.keys())
            .ok_or_else(|| {
                KeyError::new(
                    KeyErrorKind::Unavailable,
                    format!(
                        "key \"{name}\" is unavailable: its vault is not a Key Vault configured on this host"
                    ),
                )
            })?;
        Ok(Granted {
            name,
            key: target.key,
            vault,
        })
    }

    /// Records `result` in the audit log and returns it; if the log cannot be written, the
    /// operation's output is not handed out.
    fn key_audited<T>(
        &self,
        trail: &KeyTrail<'_>,
        result: Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let outcome = result.as_ref().err().map_or("ok", |e| e.kind().as_str());
        crate::metrics::global().key_operation(self.component(), trail.op, outcome);
        tracing::debug!(component = %self.component(), op = trail.op, name = %crate::audit::name_for_log(trail.name), outcome, "key request");
        let Some(sink) = &self.audit else {
            return result;
        };
        let (name, name_bytes) = crate::audit::logged_name(trail.name, trail.key.map(|t| t.name));
        let written = sink.record(&AuditEvent {
            time: crate::audit::now_rfc3339(),
            component: self.component(),
            op: trail.op,
            name: &name,
            name_bytes,
            vault: trail.key.map(|t| t.vault),
            secret: None,
            key: trail.spelled.as_deref().or(trail.key.map(|t| t.secret)),
            algorithm: trail.algorithm,
            version: trail
                .version
                .as_deref()
                .or(trail.key.and_then(|t| t.version)),
            outcome,
            cache: None,
            latency_us: trail.start.map_or(0, |t| {
                u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
            }),
            ..Default::default()
        });
        match (written, result) {
            (Ok(()), result) => result,
            (Err(e), result) => {
                tracing::error!(component = %self.component(), error = %e, "cannot write the audit log; refusing the key request");
                Err(result.err().unwrap_or_else(|| {
                    KeyError::new(
                        KeyErrorKind::Unavailable,
                        format!(
                            "the request for key \"{name}\" was refused: the host cannot write its audit log"
                        ),
                    )
                }))
            }
        }
    }
}

impl Granted<'_> {
    /// The public half of the granted version (the pinned one, or the latest).
    async fn public(&self, trail: &mut KeyTrail<'_>) -> Result<PublicKey, KeyError> {
        let public = self
            .vault
            .public_key(self.key.secret, self.key.version)
            .await
            .map_err(|e| self.vault_error(e))?;
        trail.version = Some(public.version.clone());
        trail.spelled = public.name.clone();
        if !public.enabled {
            return Err(KeyError::new(
                KeyErrorKind::Forbidden,
                format!("key \"{}\" is disabled in the vault", self.name),
            ));
        }
        Ok(public)
    }

    async fn operate(
        &self,
        public: &PublicKey,
        op: KeyOp,
        algorithm: &str,
        value: &[u8],
        digest: Option<&[u8]>,
    ) -> Result<KeyAnswer, KeyError> {
        self.vault
            .operate(KeyRequest {
                name: self.key.secret,
                version: &public.version,
                op,
                algorithm,
                value,
                digest,
            })
            .await
            .map_err(|e| self.vault_error(e))
    }

    fn vault_error(&self, e: crate::BackendError) -> KeyError {
        tracing::debug!(vault = self.key.vault, key = self.key.secret, error = %e, "vault refused a key request");
        KeyError::from_backend(self.name, &e)
    }
}

fn invalid(message: String) -> KeyError {
    KeyError::new(KeyErrorKind::InvalidArgument, message)
}

fn malformed(name: &str) -> KeyError {
    KeyError::new(
        KeyErrorKind::Unavailable,
        format!("key \"{name}\" is unavailable: the vault's answer did not fit the operation"),
    )
}

fn bytes(name: &str, answer: KeyAnswer) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match answer {
        KeyAnswer::Bytes(b) => Ok(b),
        KeyAnswer::Verified(_) => Err(malformed(name)),
    }
}

fn check_input(name: &str, what: &str, input: &[u8]) -> Result<(), KeyError> {
    if input.is_empty() {
        return Err(invalid(format!("the {what} for key \"{name}\" is empty")));
    }
    if input.len() > MAX_KEY_INPUT {
        return Err(invalid(format!(
            "the {what} for key \"{name}\" is {} bytes; at most {MAX_KEY_INPUT} are accepted",
            input.len()
        )));
    }
    Ok(())
}

fn check_digest(name: &str, algorithm: SignatureAlgorithm, digest: &[u8]) -> Result<(), KeyError> {
    if digest.len() != algorithm.digest_len() {
        return Err(invalid(format!(
            "{algorithm} signs a {}-byte digest, and the digest for key \"{name}\" is {} bytes: hash the message first",
            algorithm.digest_len(),
            digest.len()
        )));
    }
    Ok(())
}

/// The algorithm must fit the key's type (and an EC key's curve).
fn check_signature_algorithm(
    name: &str,
    public: &PublicKey,
    algorithm: SignatureAlgorithm,
) -> Result<(), KeyError> {
    use SignatureAlgorithm as A;
    let curve = match algorithm {
        A::Es256 => Some("P-256"),
        A::Es384 => Some("P-384"),
        A::Es512 => Some("P-521"),
        A::Es256k => Some("P-256K"),
        _ => None,
    };
    let fits = match curve {
        None => public.kty.starts_with("RSA"),
        Some(curve) => public.kty.starts_with("EC") && public.crv.as_deref() == Some(curve),
    };
    if fits {
        return Ok(());
    }
    let what = match &public.crv {
        Some(crv) => format!("{} {crv}", public.kty),
        None => public.kty.to_string(),
    };
    Err(invalid(format!(
        "{algorithm} does not fit key \"{name}\", which is {what}"
    )))
}
