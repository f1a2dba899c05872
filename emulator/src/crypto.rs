//! The cryptography behind Key Vault keys: RSA (2048/3072/4096) and EC (P-256, P-384, P-521,
//! secp256k1) key material, JWK import and export, and the sign, verify, encrypt, decrypt, wrap and
//! unwrap operations with Key Vault's algorithm names, all with RustCrypto crates.
//!
//! Private key material never leaves this module except through [`KeyMaterial`], whose `Debug` is
//! redacted; errors name the problem, never a key, digest or plaintext.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rsa::rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Sha256, Sha384, Sha512};

/// A key type, as Key Vault names it (`RSA`, `EC`; the `-HSM` forms are accepted on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    /// RSA.
    #[serde(rename = "RSA", alias = "RSA-HSM")]
    Rsa,
    /// Elliptic curve.
    #[serde(rename = "EC", alias = "EC-HSM")]
    Ec,
}

/// An elliptic curve, as Key Vault names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Curve {
    /// NIST P-256 (ES256).
    #[serde(rename = "P-256")]
    P256,
    /// NIST P-384 (ES384).
    #[serde(rename = "P-384")]
    P384,
    /// NIST P-521 (ES512).
    #[serde(rename = "P-521")]
    P521,
    /// secp256k1 (ES256K).
    #[serde(rename = "P-256K", alias = "SECP256K1")]
    P256K,
}

impl Curve {
    /// Key Vault's name of the curve.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::P256K => "P-256K",
        }
    }

    /// Parse Key Vault's name of a curve.
    pub fn parse(s: &str) -> Option<Curve> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

/// A key operation, as Key Vault names it in `key_ops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyOp {
    /// sign.
    Sign,
    /// verify.
    Verify,
    /// encrypt.
    Encrypt,
    /// decrypt.
    Decrypt,
    /// wrapKey.
    WrapKey,
    /// unwrapKey.
    UnwrapKey,
}

impl KeyOp {
    /// Every operation.
    pub const ALL: [KeyOp; 6] = [
        KeyOp::Encrypt,
        KeyOp::Decrypt,
        KeyOp::Sign,
        KeyOp::Verify,
        KeyOp::WrapKey,
        KeyOp::UnwrapKey,
    ];

    /// Key Vault's name (`wrapKey`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyOp::Sign => "sign",
            KeyOp::Verify => "verify",
            KeyOp::Encrypt => "encrypt",
            KeyOp::Decrypt => "decrypt",
            KeyOp::WrapKey => "wrapKey",
            KeyOp::UnwrapKey => "unwrapKey",
        }
    }

    /// Parse Key Vault's name of an operation.
    pub fn parse(s: &str) -> Option<KeyOp> {
        KeyOp::ALL.into_iter().find(|o| o.name() == s)
    }

    /// Whether a key of this type can do this operation (EC keys only sign and verify).
    pub fn fits(self, kty: KeyType) -> bool {
        kty == KeyType::Rsa || matches!(self, KeyOp::Sign | KeyOp::Verify)
    }

    /// The operations a key type can do, in Key Vault's order.
    pub fn all_for(kty: KeyType) -> Vec<KeyOp> {
        KeyOp::ALL.into_iter().filter(|o| o.fits(kty)).collect()
    }
}

/// What key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with this modulus size in bits (2048, 3072 or 4096).
    Rsa(usize),
    /// EC on this curve.
    Ec(Curve),
}

impl KeySpec {
    /// The key type.
    pub fn kty(self) -> KeyType {
        match self {
            KeySpec::Rsa(_) => KeyType::Rsa,
            KeySpec::Ec(_) => KeyType::Ec,
        }
    }
}

/// RSA sizes Key Vault creates.
pub const RSA_SIZES: [usize; 3] = [2048, 3072, 4096];

/// A refused operation: Key Vault answers these with 400 BadParameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError(pub String);

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CryptoError {}

fn err<T>(m: impl Into<String>) -> Result<T, CryptoError> {
    Err(CryptoError(m.into()))
}

/// A signature algorithm: RS256..RS512, PS256..PS512, ES256, ES384, ES512, ES256K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignAlg {
    /// RSASSA-PKCS1-v1_5 over a digest of this many bytes.
    Rs(usize),
    /// RSASSA-PSS (salt length = digest length) over a digest of this many bytes.
    Ps(usize),
    /// ECDSA on this curve.
    Es(Curve),
}

impl SignAlg {
    /// Parse Key Vault's name.
    pub fn parse(s: &str) -> Option<SignAlg> {
        Some(match s {
            "RS256" => SignAlg::Rs(32),
            "RS384" => SignAlg::Rs(48),
            "RS512" => SignAlg::Rs(64),
            "PS256" => SignAlg::Ps(32),
            "PS384" => SignAlg::Ps(48),
            "PS512" => SignAlg::Ps(64),
            "ES256" => SignAlg::Es(Curve::P256),
            "ES384" => SignAlg::Es(Curve::P384),
            "ES512" => SignAlg::Es(Curve::P521),
            "ES256K" => SignAlg::Es(Curve::P256K),
            _ => return None,
        })
    }

    /// The digest length the algorithm signs, in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            SignAlg::Rs(n) | SignAlg::Ps(n) => n,
            SignAlg::Es(Curve::P256 | Curve::P256K) => 32,
            SignAlg::Es(Curve::P384) => 48,
            SignAlg::Es(Curve::P521) => 64,
        }
    }
}

/// An RSA encryption algorithm: RSA-OAEP (SHA-1), RSA-OAEP-256, RSA1_5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncAlg {
    /// OAEP with SHA-1 and MGF1-SHA-1.
    Oaep,
    /// OAEP with SHA-256 and MGF1-SHA-256.
    Oaep256,
    /// RSAES-PKCS1-v1_5.
    Rsa15,
}

impl EncAlg {
    /// Parse Key Vault's name.
    pub fn parse(s: &str) -> Option<EncAlg> {
        Some(match s {
            "RSA-OAEP" => EncAlg::Oaep,
            "RSA-OAEP-256" => EncAlg::Oaep256,
            "RSA1_5" => EncAlg::Rsa15,
            _ => return None,
        })
    }
}

/// Private key material. `Debug` never prints it.
pub enum KeyMaterial {
    /// RSA.
    Rsa(Box<RsaPrivateKey>),
    /// P-256.
    P256(p256::ecdsa::SigningKey),
    /// P-384.
    P384(p384::ecdsa::SigningKey),
    /// P-521.
    P521(p521::ecdsa::SigningKey),
    /// secp256k1.
    P256K(k256::ecdsa::SigningKey),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({:?}, <redacted>)", self.spec())
    }
}

/// Decode base64url (padding and the standard alphabet tolerated).
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let t: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(t).ok()
}

/// Encode base64url without padding, as Key Vault does.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl KeyMaterial {
    /// Generate a new key with the operating system's randomness (RSA takes a while in debug builds).
    pub fn generate(spec: KeySpec) -> Result<KeyMaterial, CryptoError> {
        Ok(match spec {
            KeySpec::Rsa(bits) => {
                if !RSA_SIZES.contains(&bits) {
                    return err(format!(
                        "RSA key size {bits} is not supported: use 2048, 3072 or 4096."
                    ));
                }
                match RsaPrivateKey::new(&mut OsRng, bits) {
                    Ok(k) => KeyMaterial::Rsa(Box::new(k)),
                    Err(e) => return err(format!("RSA key generation failed: {e}")),
                }
            }
            KeySpec::Ec(Curve::P256) => {
                KeyMaterial::P256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
            KeySpec::Ec(Curve::P384) => {
                KeyMaterial::P384(p384::ecdsa::SigningKey::random(&mut OsRng))
            }
            KeySpec::Ec(Curve::P521) => {
                KeyMaterial::P521(p521::ecdsa::SigningKey::random(&mut OsRng))
            }
            KeySpec::Ec(Curve::P256K) => {
                KeyMaterial::P256K(k256::ecdsa::SigningKey::random(&mut OsRng))
            }
        })
    }

    /// Import a JWK with its private parts (RSA: n, e, d, p, q; EC: crv, d and optionally x, y,
    /// which must then match d).
    pub fn from_jwk(jwk: &Value) -> Result<KeyMaterial, CryptoError> {
        let part = |name: &str| -> Result<Vec<u8>, CryptoError> {
            match jwk.get(name).and_then(Value::as_str) {
                None => err(format!("The JWK is missing '{name}'.")),
                Some(s) => match b64_decode(s) {
                    Some(b) if !b.is_empty() => Ok(b),
                    _ => err(format!("The JWK's '{name}' is not valid base64url.")),
                },
            }
        };
        let kty: KeyType = match jwk.get("kty").cloned().map(serde_json::from_value) {
            Some(Ok(k)) => k,
            _ => return err("The JWK's 'kty' must be RSA or EC."),
        };
        let m = match kty {
            KeyType::Rsa => {
                let big = |n: &str| part(n).map(|b| BigUint::from_bytes_be(&b));
                let k = RsaPrivateKey::from_components(
                    big("n")?,
                    big("e")?,
                    big("d")?,
                    vec![big("p")?, big("q")?],
                )
                .and_then(|k| k.validate().map(|_| k));
                match k {
                    Ok(k) if RSA_SIZES.contains(&(k.size() * 8)) => KeyMaterial::Rsa(Box::new(k)),
                    Ok(k) => {
                        return err(format!(
                            "RSA key size {} is not supported: use 2048, 3072 or 4096.",
                            k.size() * 8
                        ));
                    }
                    Err(_) => return err("The JWK is not a valid RSA private key."),
                }
            }
            KeyType::Ec => {
                let crv = jwk
                    .get("crv")
                    .and_then(Value::as_str)
                    .and_then(Curve::parse);
                let d = part("d")?;
                let bad = || CryptoError("The JWK's 'd' is not a valid private scalar.".into());
                let m = match crv {
                    Some(Curve::P256) => KeyMaterial::P256(
                        p256::ecdsa::SigningKey::from_slice(&d).map_err(|_| bad())?,
                    ),
                    Some(Curve::P384) => KeyMaterial::P384(
                        p384::ecdsa::SigningKey::from_slice(&d).map_err(|_| bad())?,
                    ),
                    Some(Curve::P521) => KeyMaterial::P521(
                        p521::ecdsa::SigningKey::from_slice(&d).map_err(|_| bad())?,
                    ),
                    Some(Curve::P256K) => KeyMaterial::P256K(
                        k256::ecdsa::SigningKey::from_slice(&d).map_err(|_| bad())?,
                    ),
                    None => return err("The JWK's 'crv' must be P-256, P-384, P-521 or P-256K."),
                };
                if jwk.get("x").is_some() || jwk.get("y").is_some() {
                    let public = m.public_jwk();
                    if public.get("x") != jwk.get("x") || public.get("y") != jwk.get("y") {
                        return err("The JWK's 'x' and 'y' do not match its 'd'.");
                    }
                }
                m
            }
        };
        Ok(m)
    }

    /// What kind of key this is.
    pub fn spec(&self) -> KeySpec {
        match self {
            KeyMaterial::Rsa(k) => KeySpec::Rsa(k.size() * 8),
            KeyMaterial::P256(_) => KeySpec::Ec(Curve::P256),
            KeyMaterial::P384(_) => KeySpec::Ec(Curve::P384),
            KeyMaterial::P521(_) => KeySpec::Ec(Curve::P521),
            KeyMaterial::P256K(_) => KeySpec::Ec(Curve::P256K),
        }
    }

    /// The public JWK members: `kty` and `n`, `e` (RSA) or `crv`, `x`, `y` (EC). Never private parts.
    pub fn public_jwk(&self) -> Map<String, Value> {
        let ec = |crv: Curve, x: &[u8], y: &[u8]| json!({"kty": "EC", "crv": crv.name(), "x": b64(x), "y": b64(y)});
        let v = match self {
            KeyMaterial::Rsa(k) => json!({
                "kty": "RSA",
                "n": b64(&k.n().to_bytes_be()),
                "e": b64(&k.e().to_bytes_be()),
            }),
            KeyMaterial::P256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec(
                    Curve::P256,
                    p.x().map_or(&[][..], |x| x),
                    p.y().map_or(&[][..], |y| y),
                )
            }
            KeyMaterial::P384(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec(
                    Curve::P384,
                    p.x().map_or(&[][..], |x| x),
                    p.y().map_or(&[][..], |y| y),
                )
            }
            KeyMaterial::P521(k) => {
                let p = p521::ecdsa::VerifyingKey::from(k).to_encoded_point(false);
                ec(
                    Curve::P521,
                    p.x().map_or(&[][..], |x| x),
                    p.y().map_or(&[][..], |y| y),
                )
            }
            KeyMaterial::P256K(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec(
                    Curve::P256K,
                    p.x().map_or(&[][..], |x| x),
                    p.y().map_or(&[][..], |y| y),
                )
            }
        };
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn check_alg(&self, alg: SignAlg, digest: &[u8]) -> Result<(), CryptoError> {
        match (alg, self.spec()) {
            (SignAlg::Rs(_) | SignAlg::Ps(_), KeySpec::Rsa(_)) => {}
            (SignAlg::Es(c), KeySpec::Ec(k)) if c == k => {}
            _ => return err("The algorithm does not fit this key's type or curve."),
        }
        if digest.len() != alg.digest_len() {
            return err(format!(
                "Invalid digest length {}: the algorithm needs a {}-byte digest.",
                digest.len(),
                alg.digest_len()
            ));
        }
        Ok(())
    }

    /// Sign a digest. EC signatures are Key Vault's raw `r || s`, fixed width per curve.
    pub fn sign(&self, alg: SignAlg, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.check_alg(alg, digest)?;
        fn failed<E>(_: E) -> CryptoError {
            CryptoError("The signing operation failed.".into())
        }
        match (self, alg) {
            (KeyMaterial::P256(k), _) => {
                PrehashSigner::<p256::ecdsa::Signature>::sign_prehash(k, digest)
                    .map(|s| s.to_bytes().to_vec())
                    .map_err(failed)
            }
            (KeyMaterial::P384(k), _) => {
                PrehashSigner::<p384::ecdsa::Signature>::sign_prehash(k, digest)
                    .map(|s| s.to_bytes().to_vec())
                    .map_err(failed)
            }
            (KeyMaterial::P521(k), _) => {
                PrehashSigner::<p521::ecdsa::Signature>::sign_prehash(k, digest)
                    .map(|s| s.to_bytes().to_vec())
                    .map_err(failed)
            }
            (KeyMaterial::P256K(k), _) => {
                PrehashSigner::<k256::ecdsa::Signature>::sign_prehash(k, digest)
                    .map(|s| s.to_bytes().to_vec())
                    .map_err(failed)
            }
            (KeyMaterial::Rsa(k), SignAlg::Rs(n)) => {
                k.sign(pkcs1(n), digest).map_err(|_| failed(()))
            }
            (KeyMaterial::Rsa(k), SignAlg::Ps(n)) => match n {
                32 => k.sign_with_rng(&mut OsRng, Pss::new::<Sha256>(), digest),
                48 => k.sign_with_rng(&mut OsRng, Pss::new::<Sha384>(), digest),
                _ => k.sign_with_rng(&mut OsRng, Pss::new::<Sha512>(), digest),
            }
            .map_err(|_| failed(())),
            (KeyMaterial::Rsa(_), SignAlg::Es(_)) => {
                err("The algorithm does not fit this key's type.")
            }
        }
    }

    /// Verify a signature over a digest; a malformed signature is simply not valid.
    pub fn verify(&self, alg: SignAlg, digest: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
        self.check_alg(alg, digest)?;
        Ok(match self {
            KeyMaterial::P256(k) => p256::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| k.verifying_key().verify_prehash(digest, &s).is_ok()),
            KeyMaterial::P384(k) => p384::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| k.verifying_key().verify_prehash(digest, &s).is_ok()),
            KeyMaterial::P521(k) => p521::ecdsa::Signature::from_slice(sig).is_ok_and(|s| {
                p521::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(digest, &s)
                    .is_ok()
            }),
            KeyMaterial::P256K(k) => k256::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| k.verifying_key().verify_prehash(digest, &s).is_ok()),
            KeyMaterial::Rsa(k) => {
                let p = RsaPublicKey::from(k.as_ref());
                match alg {
                    SignAlg::Rs(n) => p.verify(pkcs1(n), digest, sig).is_ok(),
                    SignAlg::Ps(32) => p.verify(Pss::new::<Sha256>(), digest, sig).is_ok(),
                    SignAlg::Ps(48) => p.verify(Pss::new::<Sha384>(), digest, sig).is_ok(),
                    SignAlg::Ps(_) => p.verify(Pss::new::<Sha512>(), digest, sig).is_ok(),
                    SignAlg::Es(_) => false,
                }
            }
        })
    }

    fn rsa(&self) -> Result<&RsaPrivateKey, CryptoError> {
        match self {
            KeyMaterial::Rsa(k) => Ok(k),
            _ => err("The algorithm does not fit this key's type: encryption needs an RSA key."),
        }
    }

    /// Encrypt (or wrap) with the public key.
    pub fn encrypt(&self, alg: EncAlg, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let p = RsaPublicKey::from(self.rsa()?);
        if data.is_empty() {
            return err("The value to encrypt is empty.");
        }
        let r = match alg {
            EncAlg::Oaep => p.encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), data),
            EncAlg::Oaep256 => p.encrypt(&mut OsRng, Oaep::new::<Sha256>(), data),
            EncAlg::Rsa15 => p.encrypt(&mut OsRng, Pkcs1v15Encrypt, data),
        };
        r.or_else(|_| err("The value is too long for this key and algorithm."))
    }

    /// Decrypt (or unwrap) with the private key.
    pub fn decrypt(&self, alg: EncAlg, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let k = self.rsa()?;
        let r = match alg {
            EncAlg::Oaep => k.decrypt(Oaep::new::<sha1::Sha1>(), data),
            EncAlg::Oaep256 => k.decrypt(Oaep::new::<Sha256>(), data),
            EncAlg::Rsa15 => k.decrypt(Pkcs1v15Encrypt, data),
        };
        r.or_else(|_| err("Decryption failed: the ciphertext does not fit this key and algorithm."))
    }
}

fn pkcs1(n: usize) -> Pkcs1v15Sign {
    match n {
        32 => Pkcs1v15Sign::new::<Sha256>(),
        48 => Pkcs1v15Sign::new::<Sha384>(),
        _ => Pkcs1v15Sign::new::<Sha512>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_public_jwk_never_show_private_parts() {
        let m = KeyMaterial::generate(KeySpec::Ec(Curve::P256)).unwrap();
        let d = match &m {
            KeyMaterial::P256(k) => b64(&k.to_bytes()),
            _ => unreachable!(),
        };
        let dbg = format!("{m:?}");
        assert!(dbg.contains("redacted") && !dbg.contains(&d), "{dbg}");
        let jwk = Value::Object(m.public_jwk());
        assert!(jwk.get("d").is_none() && !jwk.to_string().contains(&d));
    }

    #[test]
    fn algorithm_names_and_digest_lengths() {
        for (name, len) in [("RS256", 32), ("PS384", 48), ("ES512", 64), ("ES256K", 32)] {
            assert_eq!(SignAlg::parse(name).unwrap().digest_len(), len, "{name}");
        }
        assert!(SignAlg::parse("HS256").is_none());
        assert_eq!(EncAlg::parse("RSA-OAEP-256"), Some(EncAlg::Oaep256));
        assert_eq!(KeyOp::parse("wrapKey"), Some(KeyOp::WrapKey));
        assert!(!KeyOp::Encrypt.fits(KeyType::Ec));
    }

    #[test]
    fn ec_import_round_trips_and_rejects_mismatched_points() {
        let m = KeyMaterial::generate(KeySpec::Ec(Curve::P384)).unwrap();
        let KeyMaterial::P384(k) = &m else {
            unreachable!()
        };
        let mut jwk = Value::Object(m.public_jwk());
        jwk["d"] = json!(b64(&k.to_bytes()));
        let back = KeyMaterial::from_jwk(&jwk).unwrap();
        assert_eq!(back.public_jwk(), m.public_jwk());
        jwk["x"] = json!(b64(&[1u8; 48]));
        assert!(KeyMaterial::from_jwk(&jwk).is_err());
    }
}
