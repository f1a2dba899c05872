//! What the host trusts about a vault, end to end against the emulator: a token only for the
//! vault's own Key Vault audience, paging only within the vault, TLS only with a trusted root
//! and the right name, and bearer tokens never over plain http off loopback.

use crate::emulator::*;
use std::sync::Arc;
use wasm_secrets::Vaults;
use wasm_secrets::backend::keyvault::{KeyVault, KeyVaultOptions};
use wasm_secrets::cache::CachedBackend;
use wasm_secrets::credential::imds::ImdsCredential;
use wasm_secrets::http::HttpClient;
use wasm_secrets::token_cache::TokenCache;

/// Reads `name` through a guest granted just that name; returns its one output line.
async fn read(vaults: Vaults, name: &str) -> String {
    let (_, lines) = secrets_get(&[name], vaults, &[name]).await;
    lines.into_iter().next().expect("one line of output")
}

#[tokio::test]
async fn a_challenge_for_another_audience_gets_no_token_at_all() {
    for audience in [
        "https://management.azure.com",
        "https://storage.azure.com",
        "https://vault.azure.net.evil.example",
    ] {
        let emu = start().await;
        emu.set_faults(Endpoint::KeyVault, vec![Fault::Challenge(audience.into())]);
        let line = read(imds_vaults(&emu), "db-password").await;
        assert_eq!(
            error_kind(&line, "db-password"),
            Some("forbidden"),
            "{line}"
        );
        assert!(
            line.contains(audience),
            "the error names the refused audience: {line}"
        );
        assert_eq!(
            emu.count(Endpoint::Imds),
            0,
            "no token was asked for ({audience})"
        );
        assert_eq!(emu.vault_count("main"), 1, "and nothing was sent again");
    }
}

#[tokio::test]
async fn a_challenge_for_the_vault_audience_is_answered() {
    // The counterpart of the test above: the same fault naming Key Vault's own audience.
    let emu = start().await;
    emu.set_faults(
        Endpoint::KeyVault,
        vec![Fault::Challenge("https://vault.azure.net".into())],
    );
    let line = read(imds_vaults(&emu), "db-password").await;
    assert_eq!(line, format!("db-password={DB_PASSWORD}"));
    assert_eq!(emu.count(Endpoint::Imds), 1);
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed() {
    let emu = start().await;
    // Another origin on loopback that counts the connections it gets.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = elsewhere.local_addr().unwrap().port();
    let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((_, _)) = elsewhere.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let vault = emu.default_vault_url();
    let page = serde_json::json!({
        "value": [{"id": format!("{vault}/secrets/feature-a"), "attributes": {"enabled": true}}],
        "nextLink": format!("https://127.0.0.1:{port}/secrets?api-version=2025-07-01&$skiptoken=x"),
    });
    // The challenge goes through; the authorized listing gets a page pointing elsewhere.
    emu.set_faults(
        Endpoint::KeyVault,
        vec![
            Fault::Delay(std::time::Duration::ZERO),
            Fault::Status {
                status: 200,
                retry_after: None,
                body: Some(page.to_string()),
            },
        ],
    );
    let (code, lines) = secrets_get(&["feature-*"], imds_vaults(&emu), &[]).await;
    assert_eq!(code, 1, "{lines:?}");
    let line = lines.concat();
    assert!(
        line.starts_with("list: unavailable: ") && line.contains("nextLink to another host"),
        "{line}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_next_link_within_the_vault_is_followed() {
    // The counterpart: the same listing through the emulator's own paging, one per page.
    let emu = start().await;
    let options = KeyVaultOptions {
        page_size: 1,
        ..fast_options()
    };
    let vaults = connect(&emu, &Identity::imds(&emu), long_cache(), options);
    let (code, lines) = secrets_get(&["db-password", "api-key"], vaults, &[]).await;
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, ["api-key", "db-password"]);
    assert!(emu.vault_count("main") > 4, "several pages were read");
}

/// The default vault over IMDS with `http` (for TLS settings).
fn vaults_with(emu: &Emulator, http: HttpClient) -> Vaults {
    let imds = ImdsCredential::new(http.clone(), &emu.imds_base(), None).expect("imds");
    let tokens = Arc::new(TokenCache::new(Arc::new(imds)));
    let vault = KeyVault::new(
        &emu.default_vault_url(),
        http,
        tokens,
        KeyVaultOptions {
            error_backoff: vec![],
            ..fast_options()
        },
    )
    .expect("vault");
    Vaults::new().with("default", CachedBackend::new(Arc::new(vault), long_cache()))
}

/// The guest got `unavailable` naming TLS, and no request reached the vault.
fn assert_refused_by_tls(emu: &Emulator, line: &str) {
    assert_eq!(
        error_kind(line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(
        line.to_ascii_lowercase().contains("tls"),
        "the error names TLS: {line}"
    );
    assert_eq!(emu.vault_count("main"), 0, "no request got through");
}

#[tokio::test]
async fn a_vault_certificate_from_an_untrusted_root_is_refused() {
    let emu = start().await;
    // No extra CA: the emulator's root is not in the trust store.
    let http = HttpClient::builder().loopback_only(true).build().unwrap();
    let line = read(vaults_with(&emu, http), "db-password").await;
    assert_refused_by_tls(&emu, &line);
}

#[tokio::test]
async fn a_vault_certificate_for_another_hostname_is_refused() {
    let emu = start_with(|c| c.tls_names = vec!["vault.example.test".into()]).await;
    let line = read(vaults_with(&emu, http(&emu)), "db-password").await;
    assert_refused_by_tls(&emu, &line);
}

#[tokio::test]
async fn a_vault_certificate_for_its_own_name_is_accepted() {
    // The counterpart of the two above: trusted root, right name.
    let emu = start().await;
    let line = read(vaults_with(&emu, http(&emu)), "db-password").await;
    assert_eq!(line, format!("db-password={DB_PASSWORD}"));
}

#[test]
fn a_plain_http_vault_off_loopback_is_refused_before_any_connection() {
    let http = HttpClient::builder().build().unwrap();
    let tokens = Arc::new(TokenCache::new(Arc::new(
        ImdsCredential::new(http.clone(), "http://127.0.0.1:1", None).unwrap(),
    )));
    for url in ["http://my-vault.vault.azure.net", "http://10.0.0.5:8080"] {
        let err = KeyVault::new(
            url,
            http.clone(),
            tokens.clone(),
            KeyVaultOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must use https"), "{url}: {err}");
    }
    // Loopback may be plain http (an emulator without TLS).
    assert!(
        KeyVault::new(
            "http://127.0.0.1:8200",
            http,
            tokens,
            KeyVaultOptions::default()
        )
        .is_ok()
    );
}
