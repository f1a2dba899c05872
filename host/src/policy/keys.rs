//! Keys that never leave the vault (design section 14): the guest names a key it was granted
//! and an operation; the policy point ([`super::point`]) checks the name, the grant and the
//! operation it allows, this module the input, all before any vault call; then the vault does
//! the operation on the version the grant pins (or the latest, looked up through the
//! public-key cache), except verify, which the host does on the cached public key when the key
//! allows it ([`crate::keys::verify`]). Every request is audited without its input or output.

use super::error::{Error, ErrorKind};
use super::grants::{ObjectKind, Target};
use super::point::{Op, Policy, Trail};
use super::vaults::Vault;
use crate::backend::keys::{KeyAnswer, KeyBackend, KeyRequest, PublicKey};
use crate::cache::Call;
use crate::keys::{EncryptionAlgorithm, KeyOp, SignatureAlgorithm};
use crate::name::fold_valid;
use zeroize::Zeroizing;

/// The most bytes a guest may hand in for one operation (a digest, a key to wrap, a plaintext,
/// a ciphertext or a signature). The largest RSA key Key Vault has (4096 bits) takes 512.
const MAX_KEY_INPUT: usize = 1024;

/// One component's keys: the operations its key grants allow, under the policy it shares with
/// its [`SecretsCtx`](crate::SecretsCtx) (from [`SecretsCtx::keys`](crate::SecretsCtx::keys)).
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    policy: &'a Policy,
}

/// A key this component may use, and the vault that holds it.
struct Granted<'a> {
    name: &'a str,
    key: Target<'a>,
    /// The vault, for its cached public keys.
    source: &'a Vault,
    /// Its keys, for operations.
    vault: &'a dyn KeyBackend,
}

impl<'p> Keys<'p> {
    pub(super) fn new(policy: &'p Policy) -> Self {
        Self { policy }
    }

    /// Signs `digest` with the key granted as `name`.
    pub async fn sign(
        &self,
        name: &str,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let folded = fold_valid(name);
        let mut trail = self
            .policy
            .trail(Op::Key(KeyOp::Sign), name, Some(algorithm.as_str()));
        let result = async {
            let key = self.granted(&mut trail, folded.as_deref())?;
            check_digest(name, algorithm, digest)?;
            let public = key.public(&mut trail).await?;
            check_signature_algorithm(name, &public, algorithm)?;
            let answer = key
                .operate(
                    &trail,
                    &public,
                    KeyOp::Sign,
                    algorithm.as_str(),
                    digest,
                    None,
                )
                .await?;
            Ok(bytes(name, answer)?.to_vec())
        }
        .await;
        self.policy.audited(&trail, result)
    }

    /// Whether `signature` is the signature of `digest` by the key granted as `name`.
    pub async fn verify(
        &self,
        name: &str,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<bool, Error> {
        let folded = fold_valid(name);
        let mut trail = self
            .policy
            .trail(Op::Key(KeyOp::Verify), name, Some(algorithm.as_str()));
        let result = async {
            let key = self.granted(&mut trail, folded.as_deref())?;
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
                    &trail,
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
        self.policy.audited(&trail, result)
    }

    /// Wraps `key` with the key granted as `name`.
    pub async fn wrap_key(
        &self,
        name: &str,
        algorithm: EncryptionAlgorithm,
        key: &[u8],
    ) -> Result<Vec<u8>, Error> {
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
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.crypt(KeyOp::UnwrapKey, name, algorithm, "wrapped key", wrapped)
            .await
    }

    /// Encrypts `plaintext` with the key granted as `name`.
    pub async fn encrypt(
        &self,
        name: &str,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
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
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.crypt(KeyOp::Decrypt, name, algorithm, "ciphertext", ciphertext)
            .await
    }

    /// The public JSON Web Key of the key granted as `name`. Any key grant allows it.
    pub async fn public_key(&self, name: &str) -> Result<String, Error> {
        let folded = fold_valid(name);
        let mut trail = self.policy.trail(Op::PublicKey, name, None);
        let result = async {
            let key = self.granted(&mut trail, folded.as_deref())?;
            Ok(key.public(&mut trail).await?.jwk.to_string())
        }
        .await;
        self.policy.audited(&trail, result)
    }

    async fn crypt(
        &self,
        op: KeyOp,
        name: &str,
        algorithm: EncryptionAlgorithm,
        what: &str,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let folded = fold_valid(name);
        let mut trail = self
            .policy
            .trail(Op::Key(op), name, Some(algorithm.as_str()));
        let result = async {
            let key = self.granted(&mut trail, folded.as_deref())?;
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
                key.operate(&trail, &public, op, algorithm.as_str(), input, None)
                    .await?,
            )
        }
        .await;
        self.policy.audited(&trail, result)
    }

    /// The policy point's checks for the request on `trail` (whose name is `folded` when
    /// valid); the grant's vault must hold keys. No vault is called.
    fn granted<'a>(
        &self,
        trail: &mut Trail<'a>,
        folded: Option<&'a str>,
    ) -> Result<Granted<'a>, Error>
    where
        'p: 'a,
    {
        let (key, source) = self.policy.authorize(trail, folded)?;
        let vault = source
            .backend()
            .keys()
            .ok_or_else(|| Error::no_vault(ObjectKind::Key, trail.name))?;
        Ok(Granted {
            name: trail.name,
            key,
            source,
            vault,
        })
    }
}

impl Granted<'_> {
    /// The public half of the granted version (the pinned one, or the latest).
    async fn public(&self, trail: &mut Trail<'_>) -> Result<PublicKey, Error> {
        let (public, cache) = self
            .source
            .read_public_key(self.key.object, self.key.version, trail.admit())
            .await
            .map_err(|e| trail.vault_error(e))?;
        if trail.op_is_public_key() {
            trail.cache = Some(cache);
        }
        trail.served = Some(public.version.clone());
        trail.spelled = public.name.clone();
        if !public.enabled {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!("key \"{}\" is disabled in the vault", self.name),
            ));
        }
        Ok(public)
    }

    async fn operate(
        &self,
        trail: &Trail<'_>,
        public: &PublicKey,
        op: KeyOp,
        algorithm: &str,
        value: &[u8],
        digest: Option<&[u8]>,
    ) -> Result<KeyAnswer, Error> {
        // Every operation is a vault call: it takes from the budgets first.
        if !trail.admit().admit(Call::Miss) {
            return Err(trail.vault_error(crate::cache::refused()));
        }
        self.vault
            .operate(KeyRequest {
                name: self.key.object,
                version: &public.version,
                op,
                algorithm,
                value,
                digest,
            })
            .await
            .map_err(|e| trail.vault_error(e))
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

fn malformed(name: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("key \"{name}\" is unavailable: the vault's answer did not fit the operation"),
    )
}

fn bytes(name: &str, answer: KeyAnswer) -> Result<Zeroizing<Vec<u8>>, Error> {
    match answer {
        KeyAnswer::Bytes(b) => Ok(b),
        KeyAnswer::Verified(_) => Err(malformed(name)),
    }
}

fn check_input(name: &str, what: &str, input: &[u8]) -> Result<(), Error> {
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

fn check_digest(name: &str, algorithm: SignatureAlgorithm, digest: &[u8]) -> Result<(), Error> {
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
) -> Result<(), Error> {
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
