//! Key Vault keys over real sockets: public JWKs, real signatures and encryption, versions, refusals
//! (400/403/404) in Key Vault's shapes, RBAC, import, and fault injection on the keys endpoints.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384, Sha512};
use wasm_secrets_emulator::{Emulator, Endpoint, Fault};

const API: &str = "api-version=7.5";
const JWT_V1: &str = "1e5a0000000000000000000000000001";
const JWT_V2: &str = "1e5a0000000000000000000000000002";
const PRIVATE: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64url")
}

/// A client plus tokens for a reader-only identity (system) and a reader+writer (user-assigned).
struct Kv {
    http: reqwest::Client,
    url: String,
    reader: String,
    writer: String,
}

impl Kv {
    fn new(emu: &Emulator) -> Kv {
        let c = emu.config();
        let i = &c.identities;
        Kv {
            http: client(emu),
            url: emu.default_vault_url(),
            reader: emu.mint_token(VAULT, &i.system.client_id, &i.system.object_id),
            writer: emu.mint_token(
                VAULT,
                &i.user_assigned[0].client_id,
                &i.user_assigned[0].object_id,
            ),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}?{API}", self.url))
            .bearer_auth(&self.reader)
            .send()
            .await
            .expect("send");
        json_of(r).await
    }

    async fn post_as(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}?{API}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("send");
        json_of(r).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_as(&self.reader, path, body).await
    }

    async fn sign(&self, key: &str, alg: &str, digest: &[u8]) -> Vec<u8> {
        let (s, v) = self
            .post(
                &format!("/keys/{key}//sign"),
                json!({"alg": alg, "value": b64(digest)}),
            )
            .await;
        assert_eq!(s, 200, "{key} {alg}: {v}");
        assert!(
            v["kid"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/keys/{key}/", self.url))
        );
        unb64(&v["value"])
    }

    async fn verify(&self, path: &str, alg: &str, digest: &[u8], sig: &[u8]) -> bool {
        let (s, v) = self
            .post(
                path,
                json!({"alg": alg, "digest": b64(digest), "value": b64(sig)}),
            )
            .await;
        assert_eq!(s, 200, "{path} {alg}: {v}");
        v["value"].as_bool().expect("bool")
    }

    async fn create(&self, name: &str, body: Value) -> Value {
        let (s, v) = self
            .post_as(&self.writer, &format!("/keys/{name}/create"), body)
            .await;
        assert_eq!(s, 200, "create {name}: {v}");
        v
    }
}

fn digest(alg: &str, msg: &[u8]) -> Vec<u8> {
    if alg.ends_with("384") {
        Sha384::digest(msg).to_vec()
    } else if alg.ends_with("512") {
        Sha512::digest(msg).to_vec()
    } else {
        Sha256::digest(msg).to_vec()
    }
}

fn assert_error(s: u16, v: &Value, status: u16, code: &str) {
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_keys_show_public_parts_only() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    for (name, kty, ops) in [
        ("jwt-signing-key", "EC", vec!["sign", "verify"]),
        ("rsa-signing-key", "RSA", vec!["sign", "verify"]),
        (
            "data-kek",
            "RSA",
            vec!["wrapKey", "unwrapKey", "encrypt", "decrypt"],
        ),
        ("verify-only-key", "EC", vec!["verify"]),
        ("disabled-key", "EC", vec!["sign", "verify"]),
    ] {
        let (s, v) = kv.get(&format!("/keys/{name}")).await;
        assert_eq!(s, 200, "{name}: {v}");
        let k = &v["key"];
        for p in PRIVATE {
            assert!(k.get(p).is_none(), "{name} leaks {p}");
        }
        assert_eq!(k["kty"], kty);
        assert_eq!(k["key_ops"], json!(ops), "{name}");
        let kid = k["kid"].as_str().unwrap();
        assert!(
            kid.starts_with(&format!("{}/keys/{name}/", kv.url)),
            "{kid}"
        );
        let version = kid.rsplit('/').next().unwrap();
        assert_eq!(
            emu.key_versions("main", name).last().map(String::as_str),
            Some(version)
        );
        if kty == "RSA" {
            assert_eq!(unb64(&k["n"]).len(), 256, "{name}");
            assert_eq!(unb64(&k["e"]), vec![1, 0, 1]);
        } else {
            assert_eq!(k["crv"], "P-256");
            assert_eq!(unb64(&k["x"]).len(), 32);
            assert_eq!(unb64(&k["y"]).len(), 32);
        }
        let a = &v["attributes"];
        assert_eq!(a["enabled"], name != "disabled-key", "{name}");
        assert_eq!(a["recoveryLevel"], "Recoverable+Purgeable");
        assert!(a["created"].as_u64().unwrap() > 0);
        assert!(v["tags"].is_object());
        // The Rust API answers the same JWK.
        assert_eq!(
            emu.public_key_jwk("main", name, None).as_ref(),
            Some(k),
            "{name}"
        );
    }
    let (_, v) = kv.get("/keys/jwt-signing-key").await;
    assert_eq!(v["tags"]["purpose"], "jwt");
    assert!(
        v["key"]["kid"].as_str().unwrap().ends_with(JWT_V2),
        "latest is the last version"
    );
    let (s, v) = kv.get(&format!("/keys/jwt-signing-key/{JWT_V1}")).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["key"]["kid"].as_str().unwrap().ends_with(JWT_V1));
    assert_ne!(
        v["key"]["x"],
        emu.public_key_jwk("main", "jwt-signing-key", None).unwrap()["x"],
        "each version has its own key"
    );
    // A trailing slash (what the Python SDK sends for "latest") is the latest.
    let (s, v) = kv.get("/keys/jwt-signing-key/").await;
    assert_eq!(s, 200);
    assert!(v["key"]["kid"].as_str().unwrap().ends_with(JWT_V2));

    // Listings.
    let (s, v) = kv.get("/keys").await;
    assert_eq!(s, 200, "{v}");
    let kids: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&format!("{}/keys/data-kek", kv.url).as_str()),
        "{kids:?}"
    );
    let (s, v) = kv.get("/keys/jwt-signing-key/versions").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["value"].as_array().unwrap().len(), 2);

    // Unknown key and version: 404 KeyNotFound; the restricted key: RBAC 403.
    let (s, v) = kv.get("/keys/no-such-key").await;
    assert_error(s, &v, 404, "KeyNotFound");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("A key with (name/id) no-such-key was not found")
    );
    let (s, v) = kv
        .get("/keys/jwt-signing-key/00000000000000000000000000000000")
        .await;
    assert_error(s, &v, 404, "KeyNotFound");
    let (s, v) = kv.get("/keys/restricted-key").await;
    assert_error(s, &v, 403, "Forbidden");
    assert_eq!(v["error"]["innererror"]["code"], "ForbiddenByRbac");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Action: 'Microsoft.KeyVault/vaults/keys/read'"),
        "{v}"
    );
    assert!(emu.public_key_jwk("main", "no-such-key", None).is_none());

    // The 401 challenge applies to keys too.
    let r = kv
        .http
        .get(format!("{}/keys/data-kek?{API}", kv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_round_trip_and_verify_independently() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    let p384 = kv
        .create("ec-384", json!({"kty": "EC", "crv": "P-384"}))
        .await;
    assert_eq!(p384["key"]["crv"], "P-384");
    assert_eq!(p384["key"]["key_ops"], json!(["sign", "verify"]));
    kv.create("ec-521", json!({"kty": "EC", "crv": "P-521"}))
        .await;
    let k = kv
        .create(
            "ec-256k",
            json!({"kty": "EC", "crv": "P-256K", "key_ops": ["sign", "verify"], "tags": {"t": "1"}}),
        )
        .await;
    assert_eq!(k["tags"]["t"], "1");
    for p in PRIVATE {
        assert!(k["key"].get(p).is_none());
    }

    let msg = b"the message";
    for (key, alg, sig_len) in [
        ("rsa-signing-key", "RS256", 256),
        ("rsa-signing-key", "RS384", 256),
        ("rsa-signing-key", "RS512", 256),
        ("rsa-signing-key", "PS256", 256),
        ("rsa-signing-key", "PS384", 256),
        ("rsa-signing-key", "PS512", 256),
        ("jwt-signing-key", "ES256", 64),
        ("ec-384", "ES384", 96),
        ("ec-521", "ES512", 132),
        ("ec-256k", "ES256K", 64),
    ] {
        let d = digest(alg, msg);
        let sig = kv.sign(key, alg, &d).await;
        assert_eq!(
            sig.len(),
            sig_len,
            "{alg}: raw r||s or a modulus-sized signature"
        );
        assert!(
            kv.verify(&format!("/keys/{key}//verify"), alg, &d, &sig)
                .await,
            "{alg}"
        );
        let mut tampered = d.clone();
        tampered[0] ^= 1;
        assert!(
            !kv.verify(&format!("/keys/{key}/verify"), alg, &tampered, &sig)
                .await,
            "{alg}: a tampered digest must not verify"
        );
    }

    // Independent checks with RustCrypto on the public JWK, not the emulator's verify.
    let d = digest("ES256", msg);
    let sig = kv.sign("jwt-signing-key", "ES256", &d).await;
    let jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();
    let vk = p256_key(&jwk);
    let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    assert!(vk.verify_prehash(&d, &s).is_ok());
    assert!(vk.verify_prehash(&digest("ES256", b"other"), &s).is_err());

    let jwk = emu.public_key_jwk("main", "rsa-signing-key", None).unwrap();
    let pk = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&unb64(&jwk["n"])),
        rsa::BigUint::from_bytes_be(&unb64(&jwk["e"])),
    )
    .unwrap();
    let d = digest("RS256", msg);
    let sig = kv.sign("rsa-signing-key", "RS256", &d).await;
    pk.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &d, &sig)
        .expect("RS256 verifies under the JWK");
    let sig = kv.sign("rsa-signing-key", "PS256", &d).await;
    pk.verify(rsa::Pss::new::<Sha256>(), &d, &sig)
        .expect("PS256 verifies under the JWK");
}

fn p256_key(jwk: &Value) -> p256::ecdsa::VerifyingKey {
    let mut sec1 = vec![4u8];
    sec1.extend(unb64(&jwk["x"]));
    sec1.extend(unb64(&jwk["y"]));
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).expect("P-256 point")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_and_wrapping_round_trip() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    let data = b"a 32-byte data encryption key!!!";
    for alg in ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"] {
        for (there, back) in [("encrypt", "decrypt"), ("wrapkey", "unwrapkey")] {
            let (s, v) = kv
                .post(
                    &format!("/keys/data-kek//{there}"),
                    json!({"alg": alg, "value": b64(data)}),
                )
                .await;
            assert_eq!(s, 200, "{alg} {there}: {v}");
            let ct = unb64(&v["value"]);
            assert_eq!(ct.len(), 256);
            assert_ne!(&ct[..data.len()], data);
            let (s, v) = kv
                .post(
                    &format!("/keys/data-kek/{back}"),
                    json!({"alg": alg, "value": b64(&ct)}),
                )
                .await;
            assert_eq!(s, 200, "{alg} {back}: {v}");
            assert_eq!(unb64(&v["value"]), data, "{alg} {back}");
        }
    }
    // Encrypted locally under the public JWK, decrypted by the emulator.
    let jwk = emu.public_key_jwk("main", "data-kek", None).unwrap();
    let pk = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&unb64(&jwk["n"])),
        rsa::BigUint::from_bytes_be(&unb64(&jwk["e"])),
    )
    .unwrap();
    let ct = pk
        .encrypt(&mut rsa::rand_core::OsRng, rsa::Oaep::new::<Sha256>(), data)
        .unwrap();
    let (s, v) = kv
        .post(
            "/keys/data-kek//unwrapkey",
            json!({"alg": "RSA-OAEP-256", "value": b64(&ct)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(unb64(&v["value"]), data);
    // A ciphertext that does not decrypt, and the wrong algorithm: 400.
    let (s, v) = kv
        .post(
            "/keys/data-kek//decrypt",
            json!({"alg": "RSA-OAEP", "value": b64(&[7u8; 256])}),
        )
        .await;
    assert_error(s, &v, 400, "BadParameter");
    let (s, v) = kv
        .post(
            "/keys/data-kek//decrypt",
            json!({"alg": "RS256", "value": b64(&ct)}),
        )
        .await;
    assert_error(s, &v, 400, "BadParameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_key_vault_shapes() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    let d32 = digest("ES256", b"m");
    let sign = |key: &str| format!("/keys/{key}//sign");

    // Digest length wrong for the algorithm.
    let (s, v) = kv
        .post(
            &sign("jwt-signing-key"),
            json!({"alg": "ES256", "value": b64(&d32[..20])}),
        )
        .await;
    assert_error(s, &v, 400, "BadParameter");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("digest"),
        "{v}"
    );
    let (s, v) = kv
        .post(
            &sign("rsa-signing-key"),
            json!({"alg": "RS512", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 400, "BadParameter");
    // Algorithm wrong for the key type or curve; unknown algorithm; bad base64; empty value.
    for (key, body) in [
        (
            "jwt-signing-key",
            json!({"alg": "RS256", "value": b64(&d32)}),
        ),
        (
            "jwt-signing-key",
            json!({"alg": "ES256K", "value": b64(&d32)}),
        ),
        (
            "rsa-signing-key",
            json!({"alg": "ES256", "value": b64(&d32)}),
        ),
        (
            "jwt-signing-key",
            json!({"alg": "HS256", "value": b64(&d32)}),
        ),
        ("jwt-signing-key", json!({"alg": "ES256", "value": "***"})),
        ("jwt-signing-key", json!({"alg": "ES256", "value": ""})),
        ("jwt-signing-key", json!({"alg": "ES256"})),
        ("jwt-signing-key", json!("not an object")),
    ] {
        let (s, v) = kv.post(&sign(key), body.clone()).await;
        assert_error(s, &v, 400, "BadParameter");
        let _ = body;
    }

    // An operation the key's key_ops do not permit.
    let (s, v) = kv
        .post(
            &sign("verify-only-key"),
            json!({"alg": "ES256", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 403, "Forbidden");
    assert_eq!(
        v["error"]["message"],
        "Operation sign is not permitted on this key."
    );
    let (s, v) = kv
        .post(
            "/keys/rsa-signing-key//encrypt",
            json!({"alg": "RSA-OAEP", "value": b64(b"x")}),
        )
        .await;
    assert_error(s, &v, 403, "Forbidden");
    assert_eq!(
        v["error"]["message"],
        "Operation encrypt is not permitted on this key."
    );

    // A disabled key refuses sign (private) but still verifies (public), as Key Vault does.
    let (s, v) = kv
        .post(
            &sign("disabled-key"),
            json!({"alg": "ES256", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 403, "Forbidden");
    assert_eq!(
        v["error"]["message"],
        "Operation sign is not allowed on a disabled key."
    );
    assert_eq!(v["error"]["innererror"]["code"], "KeyDisabled");
    assert!(
        !kv.verify("/keys/disabled-key//verify", "ES256", &d32, &[1u8; 64])
            .await
    );

    // RBAC: nobody may use restricted-key.
    let (s, v) = kv
        .post(
            &sign("restricted-key"),
            json!({"alg": "ES256", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 403, "Forbidden");
    assert_eq!(v["error"]["innererror"]["code"], "ForbiddenByRbac");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Action: 'Microsoft.KeyVault/vaults/keys/sign/action'"),
        "{v}"
    );
    // The system identity reads but does not write: create and import are refused.
    let (s, v) = kv
        .post("/keys/new-key/create", json!({"kty": "EC", "crv": "P-256"}))
        .await;
    assert_error(s, &v, 403, "Forbidden");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keys/create/action")
    );

    // Unknown key, unknown version, malformed version.
    let (s, v) = kv
        .post(
            &sign("no-such-key"),
            json!({"alg": "ES256", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 404, "KeyNotFound");
    let (s, v) = kv
        .post(
            "/keys/jwt-signing-key/0123456789abcdef0123456789abcdef/sign",
            json!({"alg": "ES256", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 404, "KeyNotFound");
    let (s, v) = kv
        .post(
            "/keys/jwt-signing-key/NOTHEX/sign",
            json!({"alg": "ES256", "value": b64(&d32)}),
        )
        .await;
    assert_error(s, &v, 400, "BadParameter");
    // Create with bad parameters.
    for body in [
        json!({"kty": "RSA", "key_size": 1024}),
        json!({"kty": "EC", "crv": "P-999"}),
        json!({"kty": "EC", "key_ops": ["encrypt"]}),
        json!({"kty": "oct"}),
    ] {
        let (s, v) = kv
            .post_as(&kv.writer, "/keys/bad-key/create", body.clone())
            .await;
        assert_error(s, &v, 400, "BadParameter");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_older_version_signs_with_its_own_key() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    assert_eq!(
        emu.key_versions("main", "jwt-signing-key"),
        vec![JWT_V1.to_string(), JWT_V2.to_string()]
    );
    let d = digest("ES256", b"pinned");
    let (s, v) = kv
        .post(
            &format!("/keys/jwt-signing-key/{JWT_V1}/sign"),
            json!({"alg": "ES256", "value": b64(&d)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["kid"].as_str().unwrap().ends_with(JWT_V1));
    let sig = unb64(&v["value"]);
    assert!(
        kv.verify(
            &format!("/keys/jwt-signing-key/{JWT_V1}/verify"),
            "ES256",
            &d,
            &sig
        )
        .await
    );
    assert!(
        !kv.verify("/keys/jwt-signing-key//verify", "ES256", &d, &sig)
            .await,
        "the latest version's key must not verify the older version's signature"
    );
    let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    let v1 = p256_key(
        &emu.public_key_jwk("main", "jwt-signing-key", Some(JWT_V1))
            .unwrap(),
    );
    let v2 = p256_key(
        &emu.public_key_jwk("main", "jwt-signing-key", Some(JWT_V2))
            .unwrap(),
    );
    assert!(v1.verify_prehash(&d, &s).is_ok());
    assert!(v2.verify_prehash(&d, &s).is_err());

    // A created version becomes the latest; the pinned one keeps its key.
    let k = kv
        .create("jwt-signing-key", json!({"kty": "EC", "crv": "P-256"}))
        .await;
    let new_kid = k["key"]["kid"].as_str().unwrap();
    assert_eq!(emu.key_versions("main", "jwt-signing-key").len(), 3);
    assert!(new_kid.ends_with(emu.key_versions("main", "jwt-signing-key")[2].as_str()));
    let sig = kv.sign("jwt-signing-key", "ES256", &d).await;
    let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    assert!(p256_key(&k["key"]).verify_prehash(&d, &s).is_ok());
    assert!(v1.verify_prehash(&d, &s).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_key_verifies_local_signatures() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    let local = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
    let point = local.verifying_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "key_ops": ["sign", "verify"],
        "d": b64(&local.to_bytes()),
        "x": b64(point.x().unwrap()),
        "y": b64(point.y().unwrap()),
    });
    let r = kv
        .http
        .put(format!("{}/keys/imported?{API}", kv.url))
        .bearer_auth(&kv.writer)
        .json(&json!({"key": jwk}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["key"]["x"], jwk["x"]);
    assert!(v["key"].get("d").is_none(), "import must not echo d");

    let d = digest("ES256", b"signed locally");
    let sig: p256::ecdsa::Signature = local.sign_prehash(&d).unwrap();
    assert!(
        kv.verify("/keys/imported//verify", "ES256", &d, &sig.to_bytes())
            .await
    );
    let remote = kv.sign("imported", "ES256", &d).await;
    let s = p256::ecdsa::Signature::from_slice(&remote).unwrap();
    assert!(local.verifying_key().verify_prehash(&d, &s).is_ok());

    // x/y that do not match d, and a JWK without private parts: 400, without echoing material.
    let mut wrong = jwk.clone();
    wrong["x"] = json!(b64(&[1u8; 32]));
    let secret_d = jwk["d"].as_str().unwrap().to_string();
    for body in [
        json!({"key": wrong}),
        json!({"key": {"kty": "EC", "crv": "P-256"}}),
    ] {
        let r = kv
            .http
            .put(format!("{}/keys/imported?{API}", kv.url))
            .bearer_auth(&kv.writer)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (s, v) = json_of(r).await;
        assert_error(s, &v, 400, "BadParameter");
        assert!(!v.to_string().contains(&secret_d));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_key_vault_endpoint_hit_keys() {
    let emu = start().await;
    let kv = Kv::new(&emu);
    emu.reset_counters();
    emu.set_faults(
        Endpoint::KeyVault,
        vec![
            Fault::Status {
                status: 503,
                retry_after: Some(3),
                body: None,
            },
            Fault::MalformedBody,
        ],
    );
    let d = digest("ES256", b"faulty");
    let body = json!({"alg": "ES256", "value": b64(&d)});
    let (s, _) = kv.post("/keys/jwt-signing-key//sign", body.clone()).await;
    assert_eq!(s, 503);
    let r = kv
        .http
        .get(format!("{}/keys/jwt-signing-key?{API}", kv.url))
        .bearer_auth(&kv.reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    let (s, _) = kv.post("/keys/jwt-signing-key//sign", body).await;
    assert_eq!(s, 200, "faults consumed, normal behaviour again");
    assert_eq!(emu.count(Endpoint::KeyVault), 3);
    assert_eq!(emu.vault_count("main"), 3);
}
