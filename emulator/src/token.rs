//! Minting and checking access tokens.
//!
//! Tokens are JWT-shaped (`header.payload.signature`, base64url) and signed with HMAC-SHA256 under a key
//! generated at start. The signature segment starts with the configured canary, literally, so a leak
//! can be found with a plain `grep`.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The audience Key Vault accepts.
pub const VAULT_AUDIENCE: &str = "https://vault.azure.net";

/// Claims carried by a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Audience (the resource).
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (epoch seconds).
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expiry.
    pub exp: u64,
    /// Client id.
    pub appid: String,
    /// Object id of the caller.
    pub oid: String,
    /// Subject (= oid).
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// The canary.
    pub canary: String,
}

/// A minted token and its timestamps.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The token string.
    pub token: String,
    /// Not before (epoch seconds).
    pub not_before: u64,
    /// Expiry (epoch seconds).
    pub expires_on: u64,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token we minted (bad shape or signature).
    Invalid,
    /// Audience is not Key Vault.
    Audience(String),
    /// Issuer is not our tenant.
    Issuer(String),
    /// Expired.
    Expired,
}

/// Mints and checks tokens.
pub struct TokenAuthority {
    key: [u8; 32],
    tenant: String,
    canary: String,
    lifetime: AtomicU64,
    /// The last tokens minted, so leak tests can look for every piece of them.
    minted: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// How many minted tokens [`TokenAuthority::minted`] remembers.
const REMEMBERED: usize = 1000;

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenAuthority {
    /// A new authority with a random key.
    pub fn new(tenant: &str, canary: &str, lifetime_secs: u64) -> Self {
        TokenAuthority {
            key: rand::random(),
            tenant: tenant.to_string(),
            canary: canary.to_string(),
            lifetime: AtomicU64::new(lifetime_secs),
            minted: Default::default(),
        }
    }

    /// The tokens minted so far (the last thousand), oldest first.
    pub fn minted(&self) -> Vec<String> {
        self.minted
            .lock()
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The issuer of our tokens.
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant)
    }

    /// Change the lifetime of tokens minted from now on.
    pub fn set_lifetime(&self, secs: u64) {
        self.lifetime.store(secs, Ordering::Relaxed);
    }

    /// Mint a token for `resource` (audience) on behalf of (client id, object id).
    pub fn mint(&self, resource: &str, client_id: &str, object_id: &str) -> Minted {
        self.mint_with_issuer(resource, client_id, object_id, &self.issuer())
    }

    /// Mint a token with an explicit issuer (tests of the issuer check).
    pub fn mint_with_issuer(
        &self,
        resource: &str,
        client_id: &str,
        object_id: &str,
        issuer: &str,
    ) -> Minted {
        let iat = now();
        let life = self.lifetime.load(Ordering::Relaxed);
        let claims = Claims {
            aud: resource.to_string(),
            iss: issuer.to_string(),
            iat,
            nbf: iat.saturating_sub(300),
            exp: iat + life,
            appid: client_id.to_string(),
            oid: object_id.to_string(),
            sub: object_id.to_string(),
            tid: self.tenant.clone(),
            canary: self.canary.clone(),
        };
        let header =
            URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256","kid":"wasm-secrets-emulator"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed = format!("{header}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, signed.as_bytes()));
        let token = format!("{signed}.{}{sig}", self.canary);
        if let Ok(mut m) = self.minted.lock() {
            if m.len() == REMEMBERED {
                m.pop_front();
            }
            m.push_back(token.clone());
        }
        Minted {
            token,
            not_before: claims.nbf,
            expires_on: claims.exp,
            expires_in: life,
        }
    }

    /// Check a token for Key Vault; on success return its claims.
    pub fn check(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let sig = s
            .strip_prefix(self.canary.as_str())
            .ok_or(TokenError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Invalid)?;
        let expected = hmac_sha256(&self.key, format!("{h}.{p}").as_bytes());
        if !ct_eq(&sig, &expected) {
            return Err(TokenError::Invalid);
        }
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        if claims.iss != self.issuer() {
            return Err(TokenError::Issuer(claims.iss));
        }
        if claims.aud.trim_end_matches('/') != VAULT_AUDIENCE {
            return Err(TokenError::Audience(claims.aud));
        }
        if claims.exp <= now() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Random lowercase hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_and_check() {
        let a = TokenAuthority::new("t", "CANARY", 60);
        let m = a.mint("https://vault.azure.net/", "c", "o");
        assert!(m.token.contains("CANARY"));
        assert_eq!(a.check(&m.token).unwrap().oid, "o");
        let b = TokenAuthority::new("t", "CANARY", 60);
        assert_eq!(b.check(&m.token), Err(TokenError::Invalid));
        let m = a.mint("https://storage.azure.com", "c", "o");
        assert!(matches!(a.check(&m.token), Err(TokenError::Audience(_))));
        a.set_lifetime(0);
        let m = a.mint(VAULT_AUDIENCE, "c", "o");
        assert_eq!(a.check(&m.token), Err(TokenError::Expired));
        assert_eq!(a.check("a.b"), Err(TokenError::Invalid));
    }
}
