//! IMDS, App Service (both api-versions), Azure Arc and Entra over real loopback sockets.

mod common;

use common::*;
use serde_json::Value;
use wasm_secrets_emulator::{EmulatorConfig, LegacyDateForm};

const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

#[tokio::test]
async fn imds_happy_and_errors() {
    let emu = start().await;
    let http = client(&emu);
    let ids = ids(emu.config());
    let base = format!("{}{TOKEN_PATH}?api-version=2018-02-01", emu.imds_base());

    let (s, v) = json_of(
        http.get(format!("{base}&resource={VAULT}"))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    for k in ["expires_in", "expires_on", "ext_expires_in", "not_before"] {
        assert!(v[k].is_string(), "{k} must be a string: {v}");
        v[k].as_str().unwrap().parse::<u64>().unwrap();
    }
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["resource"], VAULT);
    assert_eq!(v["client_id"], ids.system_client.as_str());
    assert!(v["access_token"].as_str().unwrap().contains(&emu.canary()));

    // user-assigned by each selector
    for sel in [
        format!("client_id={}", ids.ua_client),
        format!("object_id={}", ids.ua_object),
        format!("msi_res_id={}", ids.ua_resource),
    ] {
        let (s, v) = json_of(
            http.get(format!("{base}&resource={VAULT}&{sel}"))
                .header("Metadata", "true")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200, "{sel}");
        assert_eq!(v["client_id"], ids.ua_client.as_str());
    }

    // missing Metadata header (also the SDK's probe)
    let (s, v) = json_of(
        http.get(format!("{base}&resource={VAULT}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_request");
    // X-Forwarded-For
    let r = http
        .get(format!("{base}&resource={VAULT}"))
        .header("Metadata", "true")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // missing resource
    let (s, v) = json_of(
        http.get(base.clone())
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_request");
    // unknown identity
    let (s, v) = json_of(
        http.get(format!(
            "{base}&resource={VAULT}&client_id=00000000-0000-0000-0000-000000000000"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        serde_json::json!({"error":"invalid_request","error_description":"Identity not found"})
    );
    // missing api-version
    let r = http
        .get(format!("{}{TOKEN_PATH}?resource={VAULT}", emu.imds_base()))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(emu.count(wasm_secrets_emulator::Endpoint::Imds), 9);
}

#[tokio::test]
async fn app_service_2019() {
    let emu = start().await;
    let http = client(&emu);
    let ids = ids(emu.config());
    let base = format!(
        "{}?api-version=2019-08-01&resource={VAULT}",
        emu.app_service_endpoint()
    );
    let (s, v) = json_of(
        http.get(&base)
            .header("X-IDENTITY-HEADER", emu.app_service_header())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        v["expires_on"].as_str().unwrap().parse::<u64>().is_ok(),
        "{v}"
    );
    assert_eq!(v["client_id"], ids.system_client.as_str());
    assert_eq!(v["token_type"], "Bearer");
    for sel in [
        format!("client_id={}", ids.ua_client),
        format!("principal_id={}", ids.ua_object),
        format!("mi_res_id={}", ids.ua_resource),
    ] {
        let (s, v) = json_of(
            http.get(format!("{base}&{sel}"))
                .header("X-IDENTITY-HEADER", emu.app_service_header())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200, "{sel}");
        assert_eq!(v["client_id"], ids.ua_client.as_str());
    }
    let r = http.get(&base).send().await.unwrap();
    assert_eq!(r.status(), 400, "missing header");
    let r = http
        .get(&base)
        .header("X-IDENTITY-HEADER", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "wrong header");
    let r = http
        .get(format!("{base}&client_id=nope"))
        .header("X-IDENTITY-HEADER", emu.app_service_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown identity");
    let r = http
        .get(format!(
            "{}?api-version=2019-08-01",
            emu.app_service_endpoint()
        ))
        .header("X-IDENTITY-HEADER", emu.app_service_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "missing resource");
}

async fn legacy_expires_on(form: LegacyDateForm) -> String {
    let emu = start_with(EmulatorConfig {
        legacy_expires_on: form,
        ..EmulatorConfig::default()
    })
    .await;
    let http = client(&emu);
    let url = format!(
        "{}?api-version=2017-09-01&resource={VAULT}",
        emu.legacy_msi_endpoint()
    );
    let (s, v) = json_of(
        http.get(&url)
            .header("secret", emu.legacy_msi_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 400);
    assert_eq!(
        http.get(&url)
            .header("secret", "bad")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let ua = &emu.config().identities.user_assigned[0].client_id;
    let (s, v2) = json_of(
        http.get(format!("{url}&clientid={ua}"))
            .header("secret", emu.legacy_msi_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{v2}");
    v["expires_on"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn app_service_legacy_date_forms() {
    let d = legacy_expires_on(LegacyDateForm::TwentyFourHour).await;
    // MM/dd/yyyy HH:mm:ss +00:00
    let b = d.as_bytes();
    assert_eq!(d.len(), 26, "{d}");
    assert!(
        b[2] == b'/' && b[5] == b'/' && d.ends_with(" +00:00"),
        "{d}"
    );
    let d = legacy_expires_on(LegacyDateForm::AmPm).await;
    assert!(
        d.ends_with(" AM +00:00") || d.ends_with(" PM +00:00"),
        "{d}"
    );
}

#[tokio::test]
async fn arc_challenge_then_key() {
    let emu = start().await;
    let http = client(&emu);
    let url = format!(
        "{}?api-version=2020-06-01&resource={VAULT}",
        emu.arc_identity_endpoint()
    );
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let h = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let path = h.strip_prefix("Basic realm=").expect("Basic realm=");
    let path = std::path::Path::new(path);
    assert!(path.is_absolute() && path.extension().unwrap() == "key");
    assert_eq!(path.parent().unwrap(), emu.arc_token_dir());
    let key = std::fs::read_to_string(path).unwrap();
    assert!(key.len() <= 4096);

    let (s, v) = json_of(
        http.get(&url)
            .header("Metadata", "true")
            .header("Authorization", format!("Basic {key}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(v["expires_on"].is_string());
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .header("Authorization", "Basic wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "wrong key");
    let r = http
        .get(format!("{url}&client_id=x"))
        .header("Metadata", "true")
        .header("Authorization", format!("Basic {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "user-assigned not supported");
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400, "missing Metadata");
}

async fn entra_post(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    json_of(http.post(url).form(form).send().await.unwrap()).await
}

#[tokio::test]
async fn entra_client_secret_and_assertion() {
    let emu = start().await;
    let http = client(&emu);
    let ids = ids(emu.config());
    for host in [emu.authority_host(), emu.authority_host_http()] {
        let url = format!("{host}/{}/oauth2/v2.0/token", emu.tenant_id());
        let scope = "https://vault.azure.net/.default";
        let (s, v) = entra_post(
            &http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &ids.sp_client),
                ("client_secret", &ids.sp_secret),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["expires_in"], 3600, "numbers are numbers here");
        assert!(v["ext_expires_in"].is_number());
        assert_eq!(v["token_type"], "Bearer");

        let (s, v) = entra_post(
            &http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &ids.sp_client),
                ("client_secret", "bad"),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(s, 401);
        assert_eq!(v["error"], "invalid_client");
        assert_eq!(v["error_codes"][0], 7000215);
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS7000215: Invalid client secret provided")
        );
        for k in ["timestamp", "trace_id", "correlation_id"] {
            assert!(v[k].is_string(), "{k}");
        }

        let jwt = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        let (s, _) = entra_post(
            &http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &ids.fed_client),
                ("client_assertion", &ids.fed_assertion),
                ("client_assertion_type", jwt),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(s, 200);
        let (s, v) = entra_post(
            &http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &ids.fed_client),
                ("client_assertion", "forged"),
                ("client_assertion_type", jwt),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(s, 401);
        assert_eq!(v["error"], "invalid_client");
        let (s, v) = entra_post(
            &http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &ids.sp_client),
                ("client_secret", &ids.sp_secret),
                ("scope", "https://vault.azure.net"),
            ],
        )
        .await;
        assert_eq!(s, 400);
        assert_eq!(v["error"], "invalid_scope");
        let (s, v) = entra_post(
            &http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(s, 400);
        assert_eq!(v["error"], "unauthorized_client");
        let (s, v) = entra_post(&http, &url, &[("client_id", "x")]).await;
        assert_eq!(s, 400);
        assert_eq!(v["error"], "invalid_request");
        let (s, _) = entra_post(
            &http,
            &format!("{host}/other-tenant/oauth2/v2.0/token"),
            &[("grant_type", "x")],
        )
        .await;
        assert_eq!(s, 400);

        let (s, v) = json_of(
            http.get(format!(
                "{host}/{}/v2.0/.well-known/openid-configuration",
                emu.tenant_id()
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["token_endpoint"], url.as_str());
        let (s, v) = json_of(
            http.get(format!("{host}/common/discovery/instance?api-version=1.1"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        assert!(v["tenant_discovery_endpoint"].is_string());
    }
}
