//! A JWS checker for the tests, written from RFC 7515/7518 on the RustCrypto primitives, so
//! that a token the guests assemble is judged by code that shares nothing with ours but the
//! curve and RSA arithmetic: the compact form, the header's `alg`, the signing input, and the
//! signature (ES256 as raw `r || s`, RS256 as PKCS#1 v1.5, PS256 as PSS with SHA-256).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::signature::Verifier as _;
use serde_json::Value;

/// The algorithms the tests sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    ES256,
    RS256,
    PS256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
        }
    }
}

fn part(token: &str, i: usize) -> Vec<u8> {
    let p = token
        .split('.')
        .nth(i)
        .unwrap_or_else(|| panic!("not a compact JWS: {token}"));
    B64.decode(p)
        .unwrap_or_else(|e| panic!("part {i} is not base64url: {e}: {token}"))
}

/// The decoded header of `token`.
pub fn header(token: &str) -> Value {
    serde_json::from_slice(&part(token, 0)).expect("the header is JSON")
}

fn jwk_bytes(jwk: &Value, field: &str) -> Vec<u8> {
    B64.decode(
        jwk[field]
            .as_str()
            .unwrap_or_else(|| panic!("jwk has no {field}")),
    )
    .unwrap()
}

/// Checks `token` is a compact JWS signed with `alg` by the key `jwk`; returns its claims.
pub fn verified_claims(token: &str, jwk: &Value, alg: Alg) -> Value {
    assert_eq!(token.split('.').count(), 3, "three parts: {token}");
    assert_eq!(
        header(token)["alg"],
        alg.name(),
        "the header's alg: {token}"
    );
    let (input, _) = token.rsplit_once('.').unwrap();
    let signature = part(token, 2);
    let verified = match alg {
        Alg::ES256 => {
            let point = p256::EncodedPoint::from_affine_coordinates(
                jwk_bytes(jwk, "x").as_slice().into(),
                jwk_bytes(jwk, "y").as_slice().into(),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(&signature).expect("r || s, 64 bytes");
            key.verify(input.as_bytes(), &sig).is_ok()
        }
        Alg::RS256 | Alg::PS256 => {
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&jwk_bytes(jwk, "n")),
                rsa::BigUint::from_bytes_be(&jwk_bytes(jwk, "e")),
            )
            .unwrap();
            if alg == Alg::RS256 {
                let sig = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                    .verify(input.as_bytes(), &sig)
                    .is_ok()
            } else {
                let sig = rsa::pss::Signature::try_from(signature.as_slice()).unwrap();
                rsa::pss::VerifyingKey::<sha2::Sha256>::new(key)
                    .verify(input.as_bytes(), &sig)
                    .is_ok()
            }
        }
    };
    assert!(verified, "the token does not verify: {token}");
    serde_json::from_slice(&part(token, 1)).expect("the claims are JSON")
}

#[test]
fn a_token_signed_by_another_key_or_altered_is_refused() {
    use p256::ecdsa::{SigningKey, signature::Signer as _};
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256",
        "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap()),
    });
    let input = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"ES256"}"#),
        B64.encode(r#"{"sub":"alice"}"#)
    );
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    let token = format!("{input}.{}", B64.encode(sig.to_bytes()));
    assert_eq!(verified_claims(&token, &jwk, Alg::ES256)["sub"], "alice");
    let altered = token.replacen(
        &B64.encode(r#"{"sub":"alice"}"#),
        &B64.encode(r#"{"sub":"admin"}"#),
        1,
    );
    let refused = std::panic::catch_unwind(|| verified_claims(&altered, &jwk, Alg::ES256));
    assert!(refused.is_err(), "an altered token must not verify");
}
