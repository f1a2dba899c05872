//! Verification on the cached public key: a signature check needs no private key, so the host
//! does it itself (RustCrypto's `rsa`, `p256`, `p384`, `p521` and `k256`), sparing the vault a
//! round trip per verify. Only keys whose `key_ops` allow `verify` (or that name none) are
//! checked here; any other key, and any JWK this module cannot read, goes to the vault, which
//! stays the authority.

use super::SignatureAlgorithm;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use std::fmt;

/// A public key ready to verify signatures.
pub enum Verifier {
    /// An RSA key.
    Rsa(RsaPublicKey),
    /// P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// P-384.
    P384(p384::ecdsa::VerifyingKey),
    /// P-521.
    P521(p521::ecdsa::VerifyingKey),
    /// secp256k1.
    K256(k256::ecdsa::VerifyingKey),
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa(_) => "Verifier(RSA)",
            Self::P256(_) => "Verifier(P-256)",
            Self::P384(_) => "Verifier(P-384)",
            Self::P521(_) => "Verifier(P-521)",
            Self::K256(_) => "Verifier(P-256K)",
        })
    }
}

impl Verifier {
    /// The verifier for `jwk`, if its `key_ops` allow verify and it is a public key this
    /// module reads.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Option<Self> {
        if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array)
            && !ops.iter().any(|op| op == "verify")
        {
            return None;
        }
        let part = |m: &str| {
            jwk.get(m)
                .and_then(Value::as_str)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        };
        let kty = jwk.get("kty").and_then(Value::as_str)?;
        if kty.starts_with("RSA") {
            let n = BigUint::from_bytes_be(&part("n")?);
            let e = BigUint::from_bytes_be(&part("e")?);
            return RsaPublicKey::new(n, e).ok().map(Self::Rsa);
        }
        if !kty.starts_with("EC") {
            return None;
        }
        let (x, y) = (part("x")?, part("y")?);
        let mut sec1 = Vec::with_capacity(1 + x.len() + y.len());
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        match jwk.get("crv").and_then(Value::as_str)? {
            "P-256" => p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .ok()
                .map(Self::P256),
            "P-384" => p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .ok()
                .map(Self::P384),
            "P-521" => p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .ok()
                .map(Self::P521),
            "P-256K" => k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .ok()
                .map(Self::K256),
            _ => None,
        }
    }

    /// Whether `signature` is this key's `algorithm` signature of `digest`, or `None` when the
    /// algorithm does not fit the key (the vault then decides).
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        use SignatureAlgorithm as A;
        Some(match (self, algorithm) {
            (Self::Rsa(k), A::Rs256) => k
                .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
                .is_ok(),
            (Self::Rsa(k), A::Rs384) => k
                .verify(Pkcs1v15Sign::new::<Sha384>(), digest, signature)
                .is_ok(),
            (Self::Rsa(k), A::Rs512) => k
                .verify(Pkcs1v15Sign::new::<Sha512>(), digest, signature)
                .is_ok(),
            (Self::Rsa(k), A::Ps256) => k.verify(Pss::new::<Sha256>(), digest, signature).is_ok(),
            (Self::Rsa(k), A::Ps384) => k.verify(Pss::new::<Sha384>(), digest, signature).is_ok(),
            (Self::Rsa(k), A::Ps512) => k.verify(Pss::new::<Sha512>(), digest, signature).is_ok(),
            (Self::P256(k), A::Es256) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            (Self::P384(k), A::Es384) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            (Self::P521(k), A::Es512) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            (Self::K256(k), A::Es256k) => k256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use serde_json::json;

    /// A P-256 key pair (fixed, for tests) and its public JWK with `key_ops`, if any.
    fn p256_jwk(key_ops: Option<&[&str]>) -> (p256::ecdsa::SigningKey, Map<String, Value>) {
        let signer = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = signer.verifying_key().to_encoded_point(false);
        let mut jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        });
        if let Some(ops) = key_ops {
            jwk["key_ops"] = json!(ops);
        }
        (signer, jwk.as_object().unwrap().clone())
    }

    /// A key whose `key_ops` allow verify, or that names none, is verified here: a good
    /// signature passes, a changed one or another digest fails.
    #[test]
    fn a_key_that_allows_verify_or_names_no_ops_is_verified_here() {
        for ops in [None, Some(&["sign", "verify"][..]), Some(&["verify"][..])] {
            let (signer, jwk) = p256_jwk(ops);
            let digest = [1u8; 32];
            let signature: p256::ecdsa::Signature = signer.sign_prehash(&digest).unwrap();
            let signature = signature.to_bytes();
            let verifier = Verifier::from_jwk(&jwk).expect("a verifier");
            let alg = SignatureAlgorithm::Es256;
            assert_eq!(verifier.verify(alg, &digest, &signature), Some(true));
            let mut changed = signature.to_vec();
            changed[3] ^= 1;
            assert_eq!(verifier.verify(alg, &digest, &changed), Some(false));
            assert_eq!(verifier.verify(alg, &[2u8; 32], &signature), Some(false));
            // An algorithm that does not fit the key is the vault's to answer.
            assert_eq!(
                verifier.verify(SignatureAlgorithm::Es384, &digest, &signature),
                None
            );
        }
    }

    /// A key whose `key_ops` leave out verify is not verified here, even with a signature
    /// that would pass: the vault, which enforces `key_ops`, decides.
    #[test]
    fn a_key_whose_ops_leave_out_verify_goes_to_the_vault() {
        for ops in [&["sign"][..], &[][..], &["encrypt", "decrypt"][..]] {
            let (_, jwk) = p256_jwk(Some(ops));
            assert!(Verifier::from_jwk(&jwk).is_none(), "key_ops {ops:?}");
        }
    }

    /// A JWK this module cannot read (unknown curve or key type, missing coordinates) goes
    /// to the vault too.
    #[test]
    fn a_jwk_this_module_cannot_read_goes_to_the_vault() {
        let (_, good) = p256_jwk(None);
        let mut unknown_curve = good.clone();
        unknown_curve.insert("crv".into(), json!("P-999"));
        let mut oct = good.clone();
        oct.insert("kty".into(), json!("oct"));
        let mut no_y = good.clone();
        no_y.remove("y");
        for jwk in [unknown_curve, oct, no_y] {
            assert!(Verifier::from_jwk(&jwk).is_none(), "{jwk:?}");
        }
    }
}
