//! Key Vault over HTTPS: challenge, token checks, rights, versions, paging, throttling.

mod common;

use common::*;
use serde_json::Value;
use wasm_secrets_emulator::{EmulatorConfig, ThrottleConfig};

const API: &str = "api-version=7.5";

async fn get(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rb = http.get(url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let h = r.headers().clone();
    let (s, v) = json_of(r).await;
    (s, v, h)
}

#[tokio::test]
async fn challenge_and_token_checks() {
    let emu = start().await;
    let http = client(&emu);
    let vault = emu.default_vault_url();
    let url = format!("{vault}/secrets/api-key?{API}");

    let (s, v, h) = get(&http, url.clone(), None).await;
    assert_eq!(s, 401);
    assert_eq!(
        h["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
            emu.authority_host(),
            emu.tenant_id()
        )
    );
    assert_eq!(
        v,
        serde_json::json!({"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}})
    );

    let (s, v, _) = get(&http, url.clone(), Some("not-a-token")).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "Unauthorized");

    let storage = imds_token(&emu, &http, "https://storage.azure.com", "").await;
    let (s, v, _) = get(&http, url.clone(), Some(&storage)).await;
    assert_eq!(s, 401);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("AKV10022"),
        "{v}"
    );

    let other = emu.mint_token_with_issuer(
        VAULT,
        &emu.config().identities.system.object_id,
        "https://sts.windows.net/evil/",
    );
    let (s, v, _) = get(&http, url.clone(), Some(&other)).await;
    assert_eq!(s, 401);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("AKV10032"),
        "{v}"
    );

    emu.set_token_lifetime(0);
    let expired = imds_token(&emu, &http, VAULT, "").await;
    let (s, v, _) = get(&http, url.clone(), Some(&expired)).await;
    assert_eq!(s, 401);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );
    emu.set_token_lifetime(3600);

    // trailing slash audience accepted
    let t = imds_token(&emu, &http, "https://vault.azure.net/", "").await;
    let (s, v, _) = get(&http, url.clone(), Some(&t)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["value"], "api-key-value-42");
    assert_eq!(v["tags"]["team"], "platform");
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with(&format!("{vault}/secrets/api-key/")), "{id}");
    assert_eq!(v["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    assert_eq!(v["attributes"]["recoverableDays"], 90);
    assert_eq!(v["attributes"]["enabled"], true);

    // api-version required, and checked
    let (s, v, _) = get(&http, format!("{vault}/secrets/api-key"), Some(&t)).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "BadParameter");
    let (s, _, _) = get(
        &http,
        format!("{vault}/secrets/api-key?api-version=6.0"),
        Some(&t),
    )
    .await;
    assert_eq!(s, 400);
    for ok in ["7.0", "7.6", "2025-07-01"] {
        let (s, _, _) = get(
            &http,
            format!("{vault}/secrets/api-key?api-version={ok}"),
            Some(&t),
        )
        .await;
        assert_eq!(s, 200, "{ok}");
    }
}

#[tokio::test]
async fn rights_versions_not_found_disabled() {
    let emu = start().await;
    let http = client(&emu);
    let vault = emu.default_vault_url();
    let sys = imds_token(&emu, &http, VAULT, "").await;
    let ua = imds_token(
        &emu,
        &http,
        VAULT,
        &format!("&client_id={}", ids(emu.config()).ua_client),
    )
    .await;

    let (s, v, _) = get(
        &http,
        format!("{vault}/secrets/restricted?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], "Forbidden");
    assert_eq!(v["error"]["innererror"]["code"], "ForbiddenByRbac");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Caller is not authorized to perform action on resource")
    );
    let (s, v, _) = get(
        &http,
        format!("{vault}/secrets/restricted?{API}"),
        Some(&ua),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"], "restricted-value");

    let (s, v, _) = get(&http, format!("{vault}/secrets/nope?{API}"), Some(&sys)).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "SecretNotFound");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("A secret with (name/id) nope was not found in this key vault.")
    );

    let (s, v, _) = get(
        &http,
        format!("{vault}/secrets/disabled-secret?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], "Forbidden");
    assert_eq!(
        v["error"]["message"],
        "Operation get is not allowed on a disabled secret."
    );
    assert_eq!(v["error"]["innererror"]["code"], "SecretDisabled");

    // versions
    let (s, v, _) = get(
        &http,
        format!("{vault}/secrets/db-password/0123456789abcdef0123456789abcdef?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"], "old-db-password");
    let (s, _, _) = get(
        &http,
        format!("{vault}/secrets/db-password/0123456789abcdef0123456789abcdee?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = get(
        &http,
        format!("{vault}/secrets/db-password/NOTHEX?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v, _) = get(
        &http,
        format!("{vault}/secrets/db-password/versions?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    assert!(v["value"][0].get("value").is_none());

    // runtime changes through the Rust API
    let ver = emu.put_secret("main", "api-key", "rotated");
    assert_eq!(ver.len(), 32);
    let (_, v, _) = get(&http, format!("{vault}/secrets/api-key?{API}"), Some(&sys)).await;
    assert_eq!(v["value"], "rotated");
    assert!(v["id"].as_str().unwrap().ends_with(&ver));
    emu.set_secret_enabled("main", "api-key", false);
    let (s, _, _) = get(&http, format!("{vault}/secrets/api-key?{API}"), Some(&sys)).await;
    assert_eq!(s, 403);

    // PUT needs a writer; bad JSON is a 400
    let put = |tok: String, body: &'static str| {
        http.put(format!("{vault}/secrets/new-one?{API}"))
            .bearer_auth(tok)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        put(sys.clone(), r#"{"value":"x"}"#).await.unwrap().status(),
        403
    );
    let (s, v) = json_of(
        put(
            ua.clone(),
            r#"{"value":"x","contentType":"text/plain","tags":{"a":"b"}}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["contentType"], "text/plain");
    assert_eq!(put(ua.clone(), "{not json").await.unwrap().status(), 400);
    let (s, v, _) = get(&http, format!("{vault}/secrets/new-one?{API}"), Some(&sys)).await;
    assert_eq!((s, v["value"].as_str()), (200, Some("x")));

    // payments vault
    let pay = emu.vault_url("payments").unwrap();
    let (s, v, _) = get(&http, format!("{pay}/secrets/stripe-key?{API}"), Some(&sys)).await;
    assert_eq!(s, 200);
    assert!(v["id"].as_str().unwrap().starts_with(&pay));
    assert_eq!(emu.vault_count("payments"), 1);
}

async fn list_all(
    http: &reqwest::Client,
    first: String,
    token: &str,
) -> (Vec<String>, usize, usize) {
    let (mut names, mut pages, mut empty) = (Vec::new(), 0, 0);
    let mut next = Some(first);
    while let Some(url) = next {
        let (s, v, _) = get(http, url, Some(token)).await;
        assert_eq!(s, 200, "{v}");
        let items = v["value"].as_array().unwrap();
        pages += 1;
        if items.is_empty() {
            empty += 1;
        }
        for i in items {
            assert!(i.get("value").is_none());
            names.push(
                i["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        next = v["nextLink"].as_str().map(String::from);
        assert!(pages < 50);
    }
    (names, pages, empty)
}

#[tokio::test]
async fn paging() {
    let emu = start().await; // the demo config has empty_page = true
    let http = client(&emu);
    let vault = emu.default_vault_url();
    let sys = imds_token(&emu, &http, VAULT, "").await;
    let (names, pages, empty) =
        list_all(&http, format!("{vault}/secrets?{API}&maxresults=2"), &sys).await;
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!((pages, empty), (4, 1));
    let (names, pages, empty) = list_all(&http, format!("{vault}/secrets?{API}"), &sys).await;
    assert_eq!((names.len(), pages, empty), (6, 1, 0));
    let (names, _, _) = list_all(
        &http,
        format!("{vault}/secrets/db-password/versions?{API}&maxresults=1"),
        &sys,
    )
    .await;
    assert_eq!(names.len(), 2);
    for bad in ["0", "26", "x"] {
        let (s, v, _) = get(
            &http,
            format!("{vault}/secrets?{API}&maxresults={bad}"),
            Some(&sys),
        )
        .await;
        assert_eq!(s, 400, "{bad}");
        assert_eq!(v["error"]["code"], "BadParameter");
    }

    let emu = start_with(EmulatorConfig {
        empty_page: false,
        ..EmulatorConfig::default()
    })
    .await;
    let http = client(&emu);
    let sys = imds_token(&emu, &http, VAULT, "").await;
    let (names, pages, empty) = list_all(
        &http,
        format!("{}/secrets?{API}&maxresults=2", emu.default_vault_url()),
        &sys,
    )
    .await;
    assert_eq!((names.len(), pages, empty), (6, 3, 0));
}

#[tokio::test]
async fn throttling() {
    for retry_after in [Some(3), None] {
        let emu = start().await;
        let http = client(&emu);
        let sys = imds_token(&emu, &http, VAULT, "").await;
        emu.set_throttle(ThrottleConfig {
            enabled: true,
            max_requests: 2,
            window_ms: 60_000,
            retry_after_secs: retry_after,
        });
        let url = format!("{}/secrets/api-key?{API}", emu.default_vault_url());
        for _ in 0..2 {
            assert_eq!(get(&http, url.clone(), Some(&sys)).await.0, 200);
        }
        let (s, v, h) = get(&http, url.clone(), Some(&sys)).await;
        assert_eq!(s, 429);
        assert_eq!(v["error"]["code"], "Throttled");
        assert!(v["error"]["message"].as_str().unwrap().starts_with(
            "Request was not processed because too many requests were received. Reason:"
        ));
        assert_eq!(
            h.get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
            retry_after.map(|s| s.to_string())
        );
        // the other vault has its own window
        let pay = format!(
            "{}/secrets/stripe-key?{API}",
            emu.vault_url("payments").unwrap()
        );
        assert_eq!(get(&http, pay, Some(&sys)).await.0, 200);
    }
}

#[tokio::test]
async fn latency_is_applied() {
    let emu = start().await;
    let http = client(&emu);
    let sys = imds_token(&emu, &http, VAULT, "").await;
    emu.set_vault_latency("main", std::time::Duration::from_millis(150));
    let t = std::time::Instant::now();
    let (s, _, _) = get(
        &http,
        format!("{}/secrets/api-key?{API}", emu.default_vault_url()),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
}

/// Key Vault names (and version ids) are case-insensitive: a `PUT` in another case adds a
/// version to the same secret, any spelling finds it, and every answer names it as it was
/// first created. Keys alike.
#[tokio::test]
async fn names_are_case_insensitive_and_answers_keep_the_first_spelling() {
    let emu = start().await;
    let http = client(&emu);
    let vault = emu.default_vault_url();
    let sys = imds_token(&emu, &http, VAULT, "").await;
    let ua = imds_token(
        &emu,
        &http,
        VAULT,
        &format!("&client_id={}", ids(emu.config()).ua_client),
    )
    .await;
    let put = |name: &'static str, value: &'static str| {
        http.put(format!("{vault}/secrets/{name}?{API}"))
            .bearer_auth(ua.clone())
            .header("content-type", "application/json")
            .body(format!(r#"{{"value":"{value}"}}"#))
            .send()
    };
    let (s, first) = json_of(put("Case-Test", "one").await.unwrap()).await;
    assert_eq!(s, 200, "{first}");
    assert!(
        first["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{vault}/secrets/Case-Test/")),
        "{first}"
    );
    // Another spelling updates the same secret, and the answer keeps the first spelling.
    let (s, second) = json_of(put("CASE-TEST", "two").await.unwrap()).await;
    assert_eq!(s, 200, "{second}");
    let id = second["id"].as_str().unwrap();
    assert!(
        id.starts_with(&format!("{vault}/secrets/Case-Test/")),
        "{id}"
    );
    let version = id.rsplit('/').next().unwrap().to_owned();
    for asked in ["case-test", "Case-Test", "CASE-TEST", "cAsE-tEsT"] {
        let (s, v, _) = get(&http, format!("{vault}/secrets/{asked}?{API}"), Some(&sys)).await;
        assert_eq!((s, v["value"].as_str()), (200, Some("two")), "{asked}: {v}");
        assert_eq!(v["id"], second["id"], "{asked}");
        // A version id in capitals is the same version.
        let (s, v, _) = get(
            &http,
            format!("{vault}/secrets/{asked}/{}?{API}", version.to_uppercase()),
            Some(&sys),
        )
        .await;
        assert_eq!((s, v["value"].as_str()), (200, Some("two")), "{asked}: {v}");
        assert_eq!(v["id"], second["id"], "{asked}");
    }
    let (s, v, _) = get(
        &http,
        format!("{vault}/secrets/case-TEST/versions?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "one secret with two versions: {ids:?}");
    assert!(
        ids.iter().all(|i| i.contains("/secrets/Case-Test/")),
        "{ids:?}"
    );
    let (names, _, _) = list_all(&http, format!("{vault}/secrets?{API}"), &sys).await;
    let listed: Vec<&String> = names
        .iter()
        .filter(|n| n.eq_ignore_ascii_case("case-test"))
        .collect();
    assert_eq!(listed, ["Case-Test"], "listed once, as first created");

    // Keys: found in any spelling, with any-case versions, and named as created.
    let (s, k, _) = get(
        &http,
        format!("{vault}/keys/JWT-Signing-KEY/1E5A0000000000000000000000000001?{API}"),
        Some(&sys),
    )
    .await;
    assert_eq!(s, 200, "{k}");
    assert_eq!(
        k["key"]["kid"],
        format!("{vault}/keys/jwt-signing-key/1e5a0000000000000000000000000001")
    );
    let digest = [7u8; 32];
    let (s, signed) = json_of(
        http.post(format!(
            "{vault}/keys/JWT-SIGNING-KEY/1E5A0000000000000000000000000002/sign?{API}"
        ))
        .bearer_auth(&sys)
        .json(&serde_json::json!({"alg": "ES256", "value": b64url(&digest)}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(
        signed["kid"],
        format!("{vault}/keys/jwt-signing-key/1e5a0000000000000000000000000002")
    );
    let (s, listing, _) = get(&http, format!("{vault}/keys?{API}"), Some(&sys)).await;
    assert_eq!(s, 200);
    assert!(
        listing["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kid"] == format!("{vault}/keys/jwt-signing-key")),
        "{listing}"
    );
}

fn b64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
