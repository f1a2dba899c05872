//! Keys that never leave the vault, end to end against the emulator's Key Vault: the policy
//! (key grants apart from secret grants, operations decided before any vault call, input
//! checks), each operation's round trip, the vault's refusals, pinned versions, the audit
//! record, and `jwt-sign` through the CLI as the done criterion, its token verified
//! independently as a compact JWS (tests/it/jws.rs) on the public JWK.

use crate::emulator::*;
use crate::harness::{cli, guest, run_cli, runtime};
use crate::jws::{Alg as Algorithm, verified_claims};
use crate::languages::Lang;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;
use wasm_secrets::ErrorKind;
use wasm_secrets::keys::{EncryptionAlgorithm as Enc, SignatureAlgorithm as Sig};
use wasm_secrets::runtime::{CommandOptions, Outcome};
use wasm_secrets_emulator::Endpoint;

/// The older of `jwt-signing-key`'s two versions in the emulator's default config.
const OLD_JWT_KEY: &str = "1e5a0000000000000000000000000001";

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// Verifies an ES256 signature (raw r||s) with p256 on the emulator's public JWK: an
/// independent check, not the vault's verify.
pub fn es256_verifies(jwk: &serde_json::Value, digest: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let coord = |m: &str| URL_SAFE_NO_PAD.decode(jwk[m].as_str().unwrap()).unwrap();
    let point = p256::EncodedPoint::from_affine_coordinates(
        coord("x").as_slice().into(),
        coord("y").as_slice().into(),
        false,
    );
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
    let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_prehash(digest, &sig).is_ok()
}

#[tokio::test]
async fn each_operation_round_trips_through_the_vault() {
    let emu = start().await;
    let secrets = ctx(
        &[
            "key:signer=jwt-signing-key:sign,verify",
            "key:rsa-signing-key:sign,verify",
            "key:kek=data-kek:wrap-key,unwrap-key,encrypt,decrypt",
        ],
        imds_vaults(&emu),
    );
    // ES256, checked by the vault and independently on the public JWK.
    let digest = sha256(b"header.payload");
    let sig = secrets
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    assert_eq!(sig.len(), 64, "raw r||s");
    assert!(
        secrets
            .keys()
            .verify("signer", Sig::Es256, &digest, &sig)
            .await
            .unwrap()
    );
    let jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();
    assert!(es256_verifies(&jwk, &digest, &sig));
    let other = sha256(b"something else");
    assert!(
        !secrets
            .keys()
            .verify("signer", Sig::Es256, &other, &sig)
            .await
            .unwrap()
    );
    assert!(!es256_verifies(&jwk, &other, &sig));

    for alg in [Sig::Rs256, Sig::Ps256, Sig::Rs512, Sig::Ps384] {
        let digest = vec![7u8; alg.digest_len()];
        let sig = secrets
            .keys()
            .sign("rsa-signing-key", alg, &digest)
            .await
            .unwrap();
        assert_eq!(sig.len(), 256, "{alg}");
        assert!(
            secrets
                .keys()
                .verify("rsa-signing-key", alg, &digest, &sig)
                .await
                .unwrap(),
            "{alg}"
        );
    }

    for alg in [Enc::RsaOaep, Enc::RsaOaep256, Enc::Rsa1_5] {
        let data_key = [42u8; 32];
        let wrapped = secrets
            .keys()
            .wrap_key("kek", alg, &data_key)
            .await
            .unwrap();
        assert_ne!(wrapped, data_key);
        let unwrapped = secrets
            .keys()
            .unwrap_key("kek", alg, &wrapped)
            .await
            .unwrap();
        assert_eq!(unwrapped.as_slice(), data_key, "{alg}");
        let ciphertext = secrets
            .keys()
            .encrypt("kek", alg, b"hello vault")
            .await
            .unwrap();
        let plaintext = secrets
            .keys()
            .decrypt("kek", alg, &ciphertext)
            .await
            .unwrap();
        assert_eq!(plaintext.as_slice(), b"hello vault", "{alg}");
    }

    // The public key is the public JWK, never a private member.
    let public: serde_json::Value =
        serde_json::from_str(&secrets.keys().public_key("kek").await.unwrap()).unwrap();
    assert_eq!(public["kty"], "RSA");
    assert!(public["n"].is_string() && public["e"].is_string());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(public.get(private).is_none(), "{private} in {public}");
    }
}

/// SECURITY.md: `public-key` hands a guest only a key's public members, whatever the vault
/// sends. The emulator's vault is set to add every private JWK member (`d`, `p`, `q`, `dp`,
/// `dq`, `qi`, `k`) to its key answers; through the real Key Vault client and the call behind
/// the guest's `public-key`, none of them comes out, for an EC and an RSA key.
#[tokio::test]
async fn public_key_drops_private_members_the_vault_sends() {
    use wasm_secrets_emulator::keys::PRIVATE_JWK_MEMBERS;
    let emu = start().await;
    emu.set_key_answers_with_private_members("main", true);

    // The premise: the vault's own answer does carry them.
    let system = &emu.config().identities.system;
    let token = emu.mint_token(VAULT_RESOURCE, &system.client_id, &system.object_id);
    let url = format!(
        "{}/keys/jwt-signing-key?api-version=2025-07-01",
        emu.default_vault_url().trim_end_matches('/')
    );
    let client = http(&emu);
    let raw = client
        .send(
            client
                .request(reqwest::Method::GET, url.parse().unwrap())
                .bearer_auth(token),
        )
        .await
        .unwrap();
    let raw: serde_json::Value = raw.json().unwrap();
    for private in PRIVATE_JWK_MEMBERS {
        assert!(
            raw["key"].get(private).is_some(),
            "{private} not sent: {raw}"
        );
    }

    let secrets = ctx(
        &[
            "key:signer=jwt-signing-key:sign",
            "key:kek=data-kek:wrap-key",
        ],
        imds_vaults(&emu),
    );
    for (name, kty) in [("signer", "EC"), ("kek", "RSA")] {
        let text = secrets.keys().public_key(name).await.unwrap();
        assert!(!text.contains("PRIVATE"), "{name}: {text}");
        let public: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(public["kty"], kty, "{name}: {public}");
        for private in PRIVATE_JWK_MEMBERS {
            assert!(
                public.get(private).is_none(),
                "{name}: {private} in {public}"
            );
        }
    }
}

#[tokio::test]
async fn what_the_grant_does_not_allow_is_refused_before_any_vault_call() {
    let emu = start().await;
    let secrets = ctx(
        &["db-password", "key:signer=jwt-signing-key:sign"],
        imds_vaults(&emu),
    );
    emu.reset_counters();
    let digest = sha256(b"x");
    let refused = [
        // The grant allows sign only.
        secrets
            .keys()
            .verify("signer", Sig::Es256, &digest, &[1; 64])
            .await
            .unwrap_err(),
        secrets
            .keys()
            .encrypt("signer", Enc::RsaOaep256, b"x")
            .await
            .unwrap_err(),
        // A key grant under another name, or the key's vault name, grants nothing.
        secrets
            .keys()
            .sign("jwt-signing-key", Sig::Es256, &digest)
            .await
            .unwrap_err(),
        // A secret grant allows no key operation.
        secrets
            .keys()
            .sign("db-password", Sig::Es256, &digest)
            .await
            .unwrap_err(),
        secrets.keys().public_key("db-password").await.unwrap_err(),
    ];
    for e in &refused {
        assert_eq!(e.kind(), ErrorKind::NotGranted, "{e}");
    }
    assert!(
        refused[0].message().contains("does not allow verify"),
        "{}",
        refused[0]
    );
    // Nor does a key grant read a secret.
    let e = secrets.get("signer").await.unwrap_err();
    assert_eq!(e.kind().as_str(), "not-granted");
    // Bad names and bad inputs are refused before the vault too.
    let e = secrets
        .keys()
        .sign("../etc", Sig::Es256, &digest)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidName);
    for bad in [vec![], vec![0u8; 31], vec![0u8; 48]] {
        let e = secrets
            .keys()
            .sign("signer", Sig::Es256, &bad)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.message().contains("32-byte digest"), "{e}");
    }
    assert_eq!(
        emu.count(Endpoint::KeyVault),
        0,
        "no request reached the vault"
    );
    assert_eq!(emu.count(Endpoint::Imds), 0, "no token was even asked for");
}

#[tokio::test]
async fn the_vaults_refusals_keep_their_kinds() {
    let emu = start().await;
    let secrets = ctx(
        &[
            "key:verify-only-key:sign,verify",
            "key:disabled-key:sign",
            "key:restricted-key:sign",
            "key:missing-key:sign",
            "key:rsa-signing-key:sign",
        ],
        imds_vaults(&emu),
    );
    let digest = sha256(b"x");
    let kind = |r: Result<Vec<u8>, wasm_secrets::Error>| r.unwrap_err().kind();
    // The key's own key_ops exclude sign: the vault refuses, the grant did not.
    assert_eq!(
        kind(
            secrets
                .keys()
                .sign("verify-only-key", Sig::Es256, &digest)
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            secrets
                .keys()
                .sign("disabled-key", Sig::Es256, &digest)
                .await
        ),
        ErrorKind::Forbidden
    );
    // RBAC: the host's identity may not use this key.
    assert_eq!(
        kind(
            secrets
                .keys()
                .sign("restricted-key", Sig::Es256, &digest)
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            secrets
                .keys()
                .sign("missing-key", Sig::Es256, &digest)
                .await
        ),
        ErrorKind::NotFound
    );
    // An algorithm that does not fit the key is the caller's mistake.
    let e = secrets
        .keys()
        .sign("rsa-signing-key", Sig::Es256, &digest)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.message().contains("RSA"), "{e}");
}

#[tokio::test]
async fn a_pinned_grant_signs_with_that_version_only() {
    let emu = start().await;
    let secrets = ctx(
        &[
            &format!("key:old=jwt-signing-key@{OLD_JWT_KEY}:sign"),
            "key:new=jwt-signing-key:sign",
        ],
        imds_vaults(&emu),
    );
    let digest = sha256(b"pinned");
    let old_jwk = emu
        .public_key_jwk("main", "jwt-signing-key", Some(OLD_JWT_KEY))
        .unwrap();
    let new_jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();
    assert_ne!(old_jwk["x"], new_jwk["x"], "two versions, two keys");
    let old = secrets
        .keys()
        .sign("old", Sig::Es256, &digest)
        .await
        .unwrap();
    let new = secrets
        .keys()
        .sign("new", Sig::Es256, &digest)
        .await
        .unwrap();
    assert!(es256_verifies(&old_jwk, &digest, &old) && !es256_verifies(&new_jwk, &digest, &old));
    assert!(es256_verifies(&new_jwk, &digest, &new) && !es256_verifies(&old_jwk, &digest, &new));
}

#[tokio::test]
async fn key_operations_are_audited_without_inputs_or_outputs() {
    let emu = start().await;
    let audit = AuditBuffer::default();
    let secrets = ctx(
        &[
            "key:signer=jwt-signing-key:sign",
            "key:kek=data-kek:decrypt,encrypt",
        ],
        imds_vaults(&emu),
    )
    .with_audit(audit.sink());
    let digest = sha256(b"audited");
    let sig = secrets
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    let ciphertext = secrets
        .keys()
        .encrypt("kek", Enc::RsaOaep256, b"plain-words")
        .await
        .unwrap();
    secrets
        .keys()
        .decrypt("kek", Enc::RsaOaep256, &ciphertext)
        .await
        .unwrap();
    secrets
        .keys()
        .verify("signer", Sig::Es256, &digest, &sig)
        .await
        .unwrap_err();
    let events = audit.events();
    let ops: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}/{}/{}",
                e["op"].as_str().unwrap(),
                e["key"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            "sign/jwt-signing-key/ok",
            "encrypt/data-kek/ok",
            "decrypt/data-kek/ok",
            "verify/jwt-signing-key/not-granted"
        ]
    );
    assert_eq!(events[0]["algorithm"], "ES256");
    assert_eq!(events[0]["name"], "signer");
    let latest = emu.key_versions("main", "jwt-signing-key").pop().unwrap();
    assert_eq!(events[0]["version"], latest.as_str());
    let text = audit.text();
    for leak in [
        URL_SAFE_NO_PAD.encode(&digest),
        URL_SAFE_NO_PAD.encode(&sig),
        URL_SAFE_NO_PAD.encode(&ciphertext),
        "plain-words".to_owned(),
    ] {
        assert!(
            !text.contains(&leak),
            "the audit log holds an input or output: {text}"
        );
    }
}

/// Runs `jwt-sign` written in `lang` in-process; returns (exit code, stdout, stderr).
async fn jwt_sign(
    lang: Lang,
    grants: &[&str],
    emu: &wasm_secrets_emulator::Emulator,
    args: &[&str],
) -> (i32, String, String) {
    let mut argv = vec!["jwt-sign".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let options = CommandOptions {
        args: argv,
        capture_output: true,
        ..CommandOptions::default()
    };
    let r = runtime()
        .run_command(
            &crate::harness::component_at(&lang.guest("jwt-sign")),
            ctx(grants, imds_vaults(emu)),
            &options,
        )
        .await
        .unwrap();
    let Outcome::Exited(code) = r.outcome else {
        panic!("jwt-sign failed: {:?}", r.outcome)
    };
    (
        code,
        String::from_utf8(r.stdout).unwrap(),
        String::from_utf8(r.stderr).unwrap(),
    )
}

#[tokio::test]
async fn jwt_sign_tokens_verify_as_jws_for_each_algorithm_it_is_granted() {
    let _compiling = crate::harness::CPU.read().await;
    for lang in [Lang::Rust, Lang::Python] {
        jwt_sign_in(lang).await;
    }
}

/// The jwt-sign checks for one language's twin.
async fn jwt_sign_in(lang: Lang) {
    let emu = start().await;
    let (code, out, err) = jwt_sign(
        lang,
        &["key:signer=jwt-signing-key:sign"],
        &emu,
        &["sub=alice", "admin=true", "exp=4102444800"],
    )
    .await;
    assert_eq!(code, 0, "{lang:?}: {err}");
    let token = out.trim_end();
    assert_eq!(
        out.lines().count(),
        1,
        "the token on a line of its own: {out}"
    );
    let jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();
    let claims = verified_claims(token, &jwk, Algorithm::ES256);
    assert_eq!(
        claims,
        serde_json::json!({"sub": "alice", "admin": true, "exp": 4102444800u64})
    );

    // RS256 and PS256 with the RSA key, chosen with --alg; the header says which.
    let rsa = emu.public_key_jwk("main", "rsa-signing-key", None).unwrap();
    for (alg, expected) in [("RS256", Algorithm::RS256), ("PS256", Algorithm::PS256)] {
        let (code, out, err) = jwt_sign(
            lang,
            &["key:signer=rsa-signing-key:sign"],
            &emu,
            &["--alg", alg, "sub=bob"],
        )
        .await;
        assert_eq!(code, 0, "{lang:?} {alg}: {err}");
        assert_eq!(crate::jws::header(out.trim_end())["alg"], alg);
        assert_eq!(
            verified_claims(out.trim_end(), &rsa, expected)["sub"],
            "bob"
        );
    }

    // Without a grant, or with one that does not allow sign: not-granted, no token.
    for grants in [&[][..], &["key:signer=jwt-signing-key:verify"][..]] {
        let (code, out, err) = jwt_sign(lang, grants, &emu, &["sub=alice"]).await;
        assert_eq!(code, 1);
        assert_eq!(out, "");
        assert!(
            err.starts_with("jwt-sign: not-granted: "),
            "{lang:?}: {err}"
        );
    }
}

/// The done criterion, as a new user would run it: the emulator running as a process,
/// `wasm-secrets run` with a key grant prints a JWT that verifies against the key's public JWK;
/// the same run without the grant prints not-granted.
#[test]
fn run_with_a_key_grant_prints_a_jwt_that_verifies_and_without_it_not_granted() {
    let emu = crate::cli_azure::EmulatorProcess::start();
    let run = |grants: &[&str]| {
        let mut cmd = cli();
        for (k, v) in emu.exports() {
            cmd.env(k, v);
        }
        cmd.args(["run", "--vault", emu.var("WASM_SECRETS_VAULT"), "--ca-cert"])
            .arg(emu.var("WASM_SECRETS_CA_CERT"))
            .args(["--credential", "managed-identity"]);
        for g in grants {
            cmd.args(["--grant", g]);
        }
        run_cli(cmd.arg(guest("jwt-sign")).arg("sub=alice"))
    };
    let r = run(&["key:signer=jwt-signing-key:sign"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = r.stdout.trim_end().to_owned();

    let jwk = public_jwk_over_http(&emu);
    let claims = verified_claims(&token, &jwk, Algorithm::ES256);
    assert_eq!(claims["sub"], "alice");

    let r = run(&[]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("not-granted"), "{}", r.stderr);
}

/// The public JWK of `jwt-signing-key` from the emulator process, read the way a relying party
/// would: over HTTPS from Key Vault, with a token from the emulator's IMDS.
fn public_jwk_over_http(emu: &crate::cli_azure::EmulatorProcess) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let env = wasm_secrets::credential::Env::from_pairs(
            emu.exports()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>(),
        );
        let connector =
            wasm_secrets::connect::Connector::new(env, wasm_secrets::cache::CacheConfig::default())
                .loopback_only(true);
        let vault = connector
            .key_vault(&wasm_secrets::connect::VaultSettings {
                url: emu.var("WASM_SECRETS_VAULT").to_owned(),
                credential: wasm_secrets::credential::CredentialKind::ManagedIdentity,
                ca_cert: Some(emu.var("WASM_SECRETS_CA_CERT").into()),
                ..Default::default()
            })
            .unwrap();
        let secrets = wasm_secrets::SecretsCtx::new(
            "relying-party",
            wasm_secrets::Grants::parse(["key:jwt-signing-key:verify"]).unwrap(),
            wasm_secrets::Vaults::new().with("default", vault),
        );
        serde_json::from_str(&secrets.keys().public_key("jwt-signing-key").await.unwrap()).unwrap()
    })
}

#[tokio::test]
async fn verify_runs_on_the_cached_public_key_without_the_vault() {
    let emu = start().await;
    let secrets = ctx(
        &[
            "key:signer=jwt-signing-key:sign,verify",
            "key:rsa-signing-key:sign,verify",
        ],
        imds_vaults(&emu),
    );
    let digest = sha256(b"verified here");
    let es = secrets
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    let ps = secrets
        .keys()
        .sign("rsa-signing-key", Sig::Ps256, &digest)
        .await
        .unwrap();
    // The vault is down from here on; the public keys are cached.
    emu.set_faults(Endpoint::KeyVault, repeat(status(503), 1000));
    let before = emu.count(Endpoint::KeyVault);
    let mut tampered = es.clone();
    tampered[10] ^= 1;
    assert!(
        secrets
            .keys()
            .verify("signer", Sig::Es256, &digest, &es)
            .await
            .unwrap()
    );
    assert!(
        !secrets
            .keys()
            .verify("signer", Sig::Es256, &digest, &tampered)
            .await
            .unwrap()
    );
    assert!(
        !secrets
            .keys()
            .verify("signer", Sig::Es256, &sha256(b"other"), &es)
            .await
            .unwrap()
    );
    assert!(
        secrets
            .keys()
            .verify("rsa-signing-key", Sig::Ps256, &digest, &ps)
            .await
            .unwrap()
    );
    assert!(
        !secrets
            .keys()
            .verify("rsa-signing-key", Sig::Rs256, &digest, &ps)
            .await
            .unwrap(),
        "a PSS signature is not a PKCS#1 v1.5 one"
    );
    assert_eq!(emu.count(Endpoint::KeyVault), before, "no vault call");
    // Signing needs the private key, so the vault: unavailable while it is down.
    let e = secrets
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn key_operations_are_counted_by_component_operation_and_outcome() {
    let emu = start().await;
    let secrets = wasm_secrets::SecretsCtx::new(
        "keys-metrics",
        wasm_secrets::Grants::parse(["key:signer=jwt-signing-key:sign"]).unwrap(),
        imds_vaults(&emu),
    );
    let digest = sha256(b"counted");
    secrets
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    secrets
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    secrets
        .keys()
        .sign("signer", Sig::Es256, &[1])
        .await
        .unwrap_err();
    secrets.keys().public_key("nope").await.unwrap_err();
    let text = wasm_secrets::metrics::global().encode();
    for line in [
        "wasm_secrets_key_operations_total{component=\"keys-metrics\",operation=\"sign\",outcome=\"ok\"} 2",
        "wasm_secrets_key_operations_total{component=\"keys-metrics\",operation=\"sign\",outcome=\"invalid-argument\"} 1",
        "wasm_secrets_key_operations_total{component=\"keys-metrics\",operation=\"public-key\",outcome=\"not-granted\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
}

#[tokio::test]
async fn a_key_grant_naming_another_vault_uses_that_vaults_key() {
    let emu = start_with(|c| {
        let key: wasm_secrets_emulator::config::KeyConfig =
            toml::from_str("name = \"team-signing-key\"\nkty = \"EC\"\ncrv = \"P-384\"\n").unwrap();
        let payments = c.vaults.iter_mut().find(|v| v.name == "payments").unwrap();
        payments.keys.push(key);
    })
    .await;
    let secrets = ctx(
        &[
            "key:team=payments/team-signing-key:sign,verify",
            "key:team-signing-key:sign",
        ],
        imds_vaults(&emu),
    );
    let digest = vec![3u8; 48];
    let sig = secrets
        .keys()
        .sign("team", Sig::Es384, &digest)
        .await
        .unwrap();
    assert_eq!(sig.len(), 96, "raw r||s on P-384");
    assert!(
        secrets
            .keys()
            .verify("team", Sig::Es384, &digest, &sig)
            .await
            .unwrap()
    );
    let public: serde_json::Value =
        serde_json::from_str(&secrets.keys().public_key("team").await.unwrap()).unwrap();
    let in_payments = emu
        .public_key_jwk("payments", "team-signing-key", None)
        .unwrap();
    assert_eq!(public["x"], in_payments["x"]);
    assert_eq!(public["crv"], "P-384");
    // The same key name without the vault means the default vault, which has no such key.
    let e = secrets
        .keys()
        .sign("team-signing-key", Sig::Es384, &digest)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

/// Issue 28, for keys: `jwt-SIGNING-KEY` under `key:jwt-signing-key@<pin>:sign` and
/// `key:jwt-*:verify` signs with the pinned version (not refused through the pattern, which
/// allows only verify); every spelling shares one cached public key (one vault read), and
/// the audit names the key one way: `name` as granted, `key` as the vault spells it.
#[tokio::test]
async fn every_spelling_of_a_key_is_one_grant_one_cached_public_key_and_one_audit_name() {
    let emu = start_with(|c| {
        let main = c.vaults.iter_mut().find(|v| v.name == "main").unwrap();
        let key = main
            .keys
            .iter_mut()
            .find(|k| k.name == "jwt-signing-key")
            .unwrap();
        key.name = "JWT-Signing-Key".into();
    })
    .await;
    let audit = AuditBuffer::default();
    // The pin in capitals: version ids are case-insensitive too.
    let pinned = format!("key:jwt-signing-key@{}:sign", OLD_JWT_KEY.to_uppercase());
    let secrets =
        ctx(&[pinned.as_str(), "key:jwt-*:verify"], imds_vaults(&emu)).with_audit(audit.sink());
    let old = emu
        .public_key_jwk("main", "jwt-signing-key", Some(OLD_JWT_KEY))
        .unwrap();
    assert_eq!(
        old["kid"].as_str().unwrap().rsplit('/').nth(1),
        Some("JWT-Signing-Key")
    );
    emu.reset_counters();
    let digest = sha256(b"one key, many spellings");
    for name in ["jwt-signing-key", "jwt-SIGNING-KEY", "Jwt-Signing-Key"] {
        let sig = secrets
            .keys()
            .sign(name, Sig::Es256, &digest)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            es256_verifies(&old, &digest, &sig),
            "{name}: the pinned version signed"
        );
    }
    assert_eq!(
        emu.count(Endpoint::KeyVault),
        5,
        "1 challenge + 1 public-key GET (cached for every spelling) + 3 signs"
    );
    let events = audit.events();
    assert_eq!(events.len(), 3);
    for e in &events {
        assert_eq!(e["outcome"], "ok", "{e}");
        assert_eq!(e["name"], "jwt-signing-key", "{e}");
        assert_eq!(e["key"], "JWT-Signing-Key", "the vault's own spelling: {e}");
        assert_eq!(e["version"], OLD_JWT_KEY, "{e}");
    }
}

/// A config file's `key:` grants load, mixed with secret grants in one list, for `run -c` and
/// `serve -c`: each signs a JWT that verifies against the key's public JWK, and the secret
/// grant beside it still reads its secret. (A config with a key grant used to be refused.)
#[tokio::test(flavor = "multi_thread")]
async fn a_config_files_key_grants_load_for_run_and_serve_and_sign_jwts_that_verify() {
    let emu = start().await;
    let config = crate::harness::temp_file(
        ".toml",
        format!(
            "[components.signer]\nwasm = {:?}\ngrants = [\"db-password\", \"key:signer=jwt-signing-key:sign\"]\n\n[components.api]\nwasm = {:?}\nroute = \"/\"\ngrants = [\"key:signer=jwt-signing-key:sign\", \"db-password\"]\n",
            guest("jwt-sign"),
            guest("http-hello"),
        )
        .as_bytes(),
    );
    let jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();

    let mut cmd = cli();
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["run", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .arg("-c")
        .arg(config.path())
        .args(["signer", "sub=alice"]);
    let r = tokio::task::spawn_blocking(move || run_cli(&mut cmd))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let claims = verified_claims(r.stdout.trim_end(), &jwk, Algorithm::ES256);
    assert_eq!(claims["sub"], "alice");

    let args: Vec<std::ffi::OsString> = vec!["-c".into(), config.path().into()];
    let serve = crate::serve::ServeBinary::start_with(&emu, &args, &[]).await;
    let (status, body) = serve.get("/jwt?sub=bob").await;
    assert_eq!(status, 200, "{body}");
    let claims = verified_claims(body.trim_end(), &jwk, Algorithm::ES256);
    assert_eq!(claims["sub"], "bob");
    let (status, body) = serve.get("/db-password").await;
    assert_eq!(status, 200, "the secret grant in the same list: {body}");
}

/// An audit log every write to fails, as on a full disk.
struct FullDisk;

impl std::io::Write for FullDisk {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from_raw_os_error(28))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A key operation whose audit line cannot be written hands out nothing: each of sign, verify,
/// wrap-key, unwrap-key, encrypt, decrypt and public-key, which succeeds with a writable log, is
/// refused as `unavailable`, naming the key and the audit log.
#[tokio::test]
async fn a_key_operation_that_cannot_be_audited_is_refused() {
    let emu = start().await;
    let grants = [
        "key:signer=jwt-signing-key:sign,verify",
        "key:kek=data-kek:wrap-key,unwrap-key,encrypt,decrypt",
    ];
    let audit = AuditBuffer::default();
    let logged = ctx(&grants, imds_vaults(&emu)).with_audit(audit.sink());
    let unlogged = ctx(&grants, imds_vaults(&emu)).with_audit(std::sync::Arc::new(
        wasm_secrets::audit::JsonLines::new(Box::new(FullDisk)),
    ));
    let digest = sha256(b"audited or nothing");
    let data_key = [9u8; 32];
    let sig = logged
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    let wrapped = logged
        .keys()
        .wrap_key("kek", Enc::RsaOaep256, &data_key)
        .await
        .unwrap();
    let ciphertext = logged
        .keys()
        .encrypt("kek", Enc::RsaOaep256, b"plain-words")
        .await
        .unwrap();
    assert!(
        logged
            .keys()
            .verify("signer", Sig::Es256, &digest, &sig)
            .await
            .unwrap()
    );
    logged
        .keys()
        .unwrap_key("kek", Enc::RsaOaep256, &wrapped)
        .await
        .unwrap();
    logged
        .keys()
        .decrypt("kek", Enc::RsaOaep256, &ciphertext)
        .await
        .unwrap();
    logged.keys().public_key("signer").await.unwrap();
    assert_eq!(audit.events().len(), 7, "each served operation was logged");

    let refusals = [
        (
            "sign",
            "signer",
            unlogged
                .keys()
                .sign("signer", Sig::Es256, &digest)
                .await
                .map(drop),
        ),
        (
            "verify",
            "signer",
            unlogged
                .keys()
                .verify("signer", Sig::Es256, &digest, &sig)
                .await
                .map(drop),
        ),
        (
            "wrap-key",
            "kek",
            unlogged
                .keys()
                .wrap_key("kek", Enc::RsaOaep256, &data_key)
                .await
                .map(drop),
        ),
        (
            "unwrap-key",
            "kek",
            unlogged
                .keys()
                .unwrap_key("kek", Enc::RsaOaep256, &wrapped)
                .await
                .map(drop),
        ),
        (
            "encrypt",
            "kek",
            unlogged
                .keys()
                .encrypt("kek", Enc::RsaOaep256, b"plain-words")
                .await
                .map(drop),
        ),
        (
            "decrypt",
            "kek",
            unlogged
                .keys()
                .decrypt("kek", Enc::RsaOaep256, &ciphertext)
                .await
                .map(drop),
        ),
        (
            "public-key",
            "signer",
            unlogged.keys().public_key("signer").await.map(drop),
        ),
    ];
    for (op, key, result) in refusals {
        let e = result.expect_err(op);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{op}: {}", e.message());
        assert_eq!(
            e.message(),
            format!(
                "the request for key \"{key}\" was refused: the host cannot write its audit log"
            ),
            "{op}"
        );
    }
}

/// A public key past its TTL is served stale while the vault fails, for up to the cache's
/// `stale-if-error`, so `public-key` and `verify` go on; with no stale-if-error window the
/// vault's failure shows as `unavailable`.
#[tokio::test]
async fn public_keys_are_served_stale_within_stale_if_error_while_the_vault_fails() {
    let emu = start().await;
    let ttl = std::time::Duration::from_millis(200);
    let with_window = |stale_if_error| {
        let cache = wasm_secrets::cache::CacheConfig {
            ttl,
            stale_if_error,
            ..Default::default()
        };
        ctx(
            &["key:signer=jwt-signing-key:sign,verify"],
            connect(&emu, &Identity::imds(&emu), cache, fast_options()),
        )
    };
    let stale_ok = with_window(std::time::Duration::from_secs(3600));
    let no_stale = with_window(std::time::Duration::ZERO);
    let digest = sha256(b"stale but good");
    let sig = stale_ok
        .keys()
        .sign("signer", Sig::Es256, &digest)
        .await
        .unwrap();
    let public = stale_ok.keys().public_key("signer").await.unwrap();
    no_stale.keys().public_key("signer").await.unwrap();

    tokio::time::sleep(ttl * 2).await;
    emu.set_standing_fault(Endpoint::KeyVault, Some(status(503)));
    let before = emu.count(Endpoint::KeyVault);
    assert_eq!(stale_ok.keys().public_key("signer").await.unwrap(), public);
    assert!(
        stale_ok
            .keys()
            .verify("signer", Sig::Es256, &digest, &sig)
            .await
            .unwrap()
    );
    assert!(
        emu.count(Endpoint::KeyVault) > before,
        "past the TTL the vault was asked first"
    );
    let e = no_stale.keys().public_key("signer").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let e = no_stale
        .keys()
        .verify("signer", Sig::Es256, &digest, &sig)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

/// An emulator whose default vault also holds `extra` (`[[vaults.keys]]` TOML).
async fn start_with_keys(extra: &str) -> wasm_secrets_emulator::Emulator {
    let extra = EmulatorConfig::from_toml_str(&format!("[[vaults]]\nname = 'x'\n{extra}"))
        .expect("the extra keys parse");
    let keys = extra.vaults[0].keys.clone();
    start_with(move |c| c.vaults[0].keys.extend(keys)).await
}

/// A key whose `key_ops` leave out `verify` is not verified on the cached public key: the
/// request goes to the vault, which refuses it (`forbidden`) even for a good signature.
#[tokio::test]
async fn verify_with_a_key_whose_ops_leave_out_verify_goes_to_the_vault() {
    let emu = start_with_keys(
        "[[vaults.keys]]\nname = 'sign-only-key'\nkty = 'EC'\ncrv = 'P-256'\nkey-ops = ['sign']",
    )
    .await;
    let secrets = ctx(&["key:sign-only-key:sign,verify"], imds_vaults(&emu));
    let digest = sha256(b"signed, not verified here");
    let sig = secrets
        .keys()
        .sign("sign-only-key", Sig::Es256, &digest)
        .await
        .unwrap();
    let jwk = emu.public_key_jwk("main", "sign-only-key", None).unwrap();
    assert!(es256_verifies(&jwk, &digest, &sig), "a good signature");
    secrets.keys().public_key("sign-only-key").await.unwrap();
    let before = emu.count(Endpoint::KeyVault);
    let e = secrets
        .keys()
        .verify("sign-only-key", Sig::Es256, &digest, &sig)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    assert!(
        emu.count(Endpoint::KeyVault) > before,
        "the vault was asked, not the cached public key"
    );
}

/// `jwt-sign --alg` ES384, ES512 and ES256K: a token whose header names the algorithm and
/// whose signature verifies, on the key's public JWK with RustCrypto, over SHA-384, SHA-512
/// and SHA-256 of the signing input.
#[tokio::test]
async fn jwt_sign_with_es384_es512_and_es256k_verifies_on_the_public_key() {
    let emu = start_with_keys(
        "[[vaults.keys]]\nname = 'p384-key'\nkty = 'EC'\ncrv = 'P-384'\n\
         [[vaults.keys]]\nname = 'p521-key'\nkty = 'EC'\ncrv = 'P-521'\n\
         [[vaults.keys]]\nname = 'k256-key'\nkty = 'EC'\ncrv = 'P-256K'",
    )
    .await;
    for (alg, key, width) in [
        ("ES384", "p384-key", 48),
        ("ES512", "p521-key", 66),
        ("ES256K", "k256-key", 32),
    ] {
        let grant = format!("key:signer={key}:sign");
        let (code, out, err) =
            jwt_sign(Lang::Rust, &[&grant], &emu, &["--alg", alg, "sub=carol"]).await;
        assert_eq!(code, 0, "{alg}: {err}");
        let token = out.trim_end();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let (header, claims) = input.split_once('.').unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["alg"], alg, "{token}");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims, serde_json::json!({"sub": "carol"}));
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert_eq!(signature.len(), 2 * width, "{alg}: raw r||s");
        let jwk = emu.public_key_jwk("main", key, None).unwrap();
        assert!(
            ec_verifies(alg, &jwk, input.as_bytes(), &signature),
            "{alg}"
        );
        let mut changed = signature.clone();
        changed[5] ^= 1;
        assert!(!ec_verifies(alg, &jwk, input.as_bytes(), &changed), "{alg}");
    }
}

/// Verifies a JWS `alg` (ES384, ES512 or ES256K) signature of `input` on `jwk`, with RustCrypto.
fn ec_verifies(alg: &str, jwk: &serde_json::Value, input: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let coord = |m: &str| URL_SAFE_NO_PAD.decode(jwk[m].as_str().unwrap()).unwrap();
    let mut sec1 = vec![0x04];
    sec1.extend(coord("x"));
    sec1.extend(coord("y"));
    match alg {
        "ES384" => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
            p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_prehash(&sha2::Sha384::digest(input), &s).is_ok())
        }
        "ES512" => {
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
            p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_prehash(&sha2::Sha512::digest(input), &s).is_ok())
        }
        "ES256K" => {
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
            k256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_prehash(&sha256(input), &s).is_ok())
        }
        other => panic!("not an EC algorithm here: {other}"),
    }
}

/// Runs `lang`'s command `name` in-process with `grants` on the emulator's vaults; returns
/// (exit code, stdout, stderr).
async fn run_guest(
    lang: Lang,
    name: &str,
    grants: &[&str],
    emu: &wasm_secrets_emulator::Emulator,
    args: &[&str],
) -> (i32, String, String) {
    let mut argv = vec![name.to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let options = CommandOptions {
        args: argv,
        capture_output: true,
        ..CommandOptions::default()
    };
    let r = runtime()
        .run_command(
            &crate::harness::component_at(&lang.guest(name)),
            ctx(grants, imds_vaults(emu)),
            &options,
        )
        .await
        .unwrap();
    let Outcome::Exited(code) = r.outcome else {
        panic!("{name} failed: {:?}", r.outcome)
    };
    (
        code,
        String::from_utf8(r.stdout).unwrap(),
        String::from_utf8(r.stderr).unwrap(),
    )
}

/// A JavaScript command built against the `command` world imports `keys`: guest/js/key-sign
/// has the vault sign a digest (the signature verifies on the public JWK, independently),
/// asks it to verify, reads the public key, and without a grant gets `not-granted`.
#[tokio::test]
async fn a_javascript_command_signs_verifies_and_reads_public_keys_through_keys() {
    let _compiling = crate::harness::CPU.read().await;
    let emu = start().await;
    let grants = ["key:signer=jwt-signing-key:sign,verify"];
    let js = Lang::JavaScript;
    let digest = sha256(b"from javascript");
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let (code, out, err) =
        run_guest(js, "key-sign", &grants, &emu, &["signer", "ES256", &hex]).await;
    assert_eq!(code, 0, "{err}");
    let signature = URL_SAFE_NO_PAD.decode(out.trim_end()).unwrap();
    let jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();
    assert!(es256_verifies(&jwk, &digest, &signature), "{out}");

    let mut changed = signature.clone();
    changed[7] ^= 1;
    for (sig, expected) in [(&signature, "true\n"), (&changed, "false\n")] {
        let sig = URL_SAFE_NO_PAD.encode(sig);
        let args = ["--verify", "signer", "ES256", &hex, &sig];
        let (code, out, err) = run_guest(js, "key-sign", &grants, &emu, &args).await;
        assert_eq!((code, out.as_str()), (0, expected), "{err}");
    }

    let (code, out, err) = run_guest(js, "key-sign", &grants, &emu, &["--public", "signer"]).await;
    assert_eq!(code, 0, "{err}");
    let public: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(
        (&public["x"], &public["y"]),
        (&jwk["x"], &jwk["y"]),
        "{out}"
    );

    let (code, out, err) = run_guest(js, "key-sign", &[], &emu, &["signer", "ES256", &hex]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("key-sign: not-granted: "), "{err}");
}
