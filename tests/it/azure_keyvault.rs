//! The Key Vault client against the emulator's vault: the challenge, typed errors, throttling,
//! server errors and paging, seen from a real guest.

use std::time::{Duration, Instant};

use crate::emulator::*;
use wasm_secrets::Vaults;
use wasm_secrets::backend::keyvault::KeyVaultOptions;

/// Reads `name` with a guest granted just that name; returns the one output line.
async fn read(vaults: &Vaults, name: &str) -> String {
    let (_, lines) = secrets_get(&[name], vaults.clone(), &[name]).await;
    lines.into_iter().next().expect("one line of output")
}

/// Vaults whose `default` vault has already answered the challenge and holds a token, so that
/// the next request is exactly one authorized GET (faults then land where the test wants).
async fn warmed_up(emu: &Emulator) -> Vaults {
    let vaults = imds_vaults(emu);
    assert_eq!(read(&vaults, "api-key").await, format!("api-key={API_KEY}"));
    emu.reset_counters();
    vaults
}

#[tokio::test]
async fn the_first_request_gets_the_401_challenge_and_later_ones_do_not() {
    let emu = start().await;
    let vaults = imds_vaults(&emu);
    assert_eq!(
        read(&vaults, "db-password").await,
        format!("db-password={DB_PASSWORD}")
    );
    // Had the first request carried a token, one request would have been enough: the vault
    // saw an unauthenticated request (answered 401 + WWW-Authenticate), then the token.
    assert_eq!(emu.vault_count("main"), 2, "challenge + authorized GET");
    assert_eq!(emu.count(Endpoint::Imds), 1);

    assert_eq!(read(&vaults, "api-key").await, format!("api-key={API_KEY}"));
    assert_eq!(
        emu.vault_count("main"),
        3,
        "the resource is remembered: no second challenge"
    );
    assert_eq!(emu.count(Endpoint::Imds), 1, "and so is the token");
}

#[tokio::test]
async fn forbidden_not_found_and_disabled_map_to_typed_guest_errors() {
    let emu = start().await;
    let grants = ["restricted", "no-such-secret", "disabled-secret"];
    let (code, lines) = secrets_get(&grants, imds_vaults(&emu), &grants).await;
    assert_eq!(code, 1);
    assert_eq!(
        error_kind(&lines[0], "restricted"),
        Some("forbidden"),
        "{lines:?}"
    );
    assert!(lines[0].contains("403"), "{lines:?}");
    assert_eq!(
        error_kind(&lines[1], "no-such-secret"),
        Some("not-found"),
        "{lines:?}"
    );
    assert!(lines[1].contains("SecretNotFound"), "{lines:?}");
    assert_eq!(
        error_kind(&lines[2], "disabled-secret"),
        Some("not-found"),
        "{lines:?}"
    );
    assert!(!lines.concat().contains(DISABLED) && !lines.concat().contains(RESTRICTED));
}

#[tokio::test]
async fn a_secret_disabled_at_runtime_reads_as_not_found() {
    let emu = start().await;
    assert_eq!(
        read(&imds_vaults(&emu), "api-key").await,
        format!("api-key={API_KEY}")
    );
    emu.set_secret_enabled("main", "api-key", false);
    let line = read(&imds_vaults(&emu), "api-key").await;
    assert_eq!(error_kind(&line, "api-key"), Some("not-found"), "{line}");
    assert!(!line.contains(API_KEY));
}

#[tokio::test]
async fn throttled_with_retry_after_waits_that_long_then_succeeds() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(
        Endpoint::KeyVault,
        vec![Fault::Status {
            status: 429,
            retry_after: Some(1),
            body: None,
        }],
    );
    let started = Instant::now();
    assert_eq!(
        read(&vaults, "db-password").await,
        format!("db-password={DB_PASSWORD}")
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({took:?})"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(emu.vault_count("main"), 2, "429, then the retry");
}

/// `Retry-After` holds for the whole vault (Key Vault throttles per vault), not only for the
/// secret that drew it: while `db-password` waits out a 429 with `Retry-After: 2`, a read of
/// another secret on the same vault sends nothing before that time; then both are read.
#[tokio::test]
async fn retry_after_holds_for_every_secret_of_the_vault() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(
        Endpoint::KeyVault,
        vec![Fault::Status {
            status: 429,
            retry_after: Some(2),
            body: None,
        }],
    );
    let waited = || {
        crate::harness::metric(
            "wasm_secrets_vault_throttle_stops_total{vault=\"127.0.0.1\",outcome=\"waited\"}",
        )
    };
    let waits_before = waited();
    let throttled = Instant::now();
    let first = tokio::spawn({
        let vaults = vaults.clone();
        async move { read(&vaults, "db-password").await }
    });
    // The 429 has gone out (and been read) before the other secret is asked for.
    while emu.vault_count("main") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = tokio::spawn({
        let vaults = vaults.clone();
        async move { read(&vaults, "feature-alpha").await }
    });
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(throttled.elapsed())).await;
    assert_eq!(
        emu.vault_count("main"),
        1,
        "a request went to the vault within its Retry-After"
    );
    assert_eq!(first.await.unwrap(), format!("db-password={DB_PASSWORD}"));
    assert_eq!(other.await.unwrap(), "feature-alpha=on");
    assert!(throttled.elapsed() >= Duration::from_secs(2));
    assert_eq!(emu.vault_count("main"), 3, "the 429, then one read of each");
    // The other secret's request, held back by the stop, is counted (the throttled one waits
    // as its own retry); other tests may add their own.
    assert!(
        waited() >= waits_before + 1.0,
        "{} -> {}",
        waits_before,
        waited()
    );
}

#[tokio::test]
async fn throttled_without_retry_after_backs_off_then_succeeds() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(Endpoint::KeyVault, vec![status(429), status(429)]);
    let started = Instant::now();
    assert_eq!(
        read(&vaults, "db-password").await,
        format!("db-password={DB_PASSWORD}")
    );
    // fast_options(): 20 ms, then 40 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(emu.vault_count("main"), 3);
}

#[tokio::test]
async fn throttled_until_retries_run_out_is_unavailable() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(Endpoint::KeyVault, repeat(status(429), 20));
    let line = read(&vaults, "db-password").await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("429"), "{line}");
    let attempts = 1 + fast_options().throttle_backoff.len() as u64;
    assert_eq!(emu.vault_count("main"), attempts);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_limit_fails_at_once() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(
        Endpoint::KeyVault,
        vec![Fault::Status {
            status: 429,
            retry_after: Some(600),
            body: None,
        }],
    );
    let started = Instant::now();
    let line = read(&vaults, "db-password").await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(emu.vault_count("main"), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_unavailable() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(Endpoint::KeyVault, vec![status(500), status(503)]);
    assert_eq!(
        read(&vaults, "db-password").await,
        format!("db-password={DB_PASSWORD}")
    );
    assert_eq!(emu.vault_count("main"), 3, "two 5xx, then success");

    emu.reset_counters();
    emu.set_faults(Endpoint::KeyVault, repeat(status(502), 20));
    let line = read(&vaults, "restricted-typo").await;
    assert_eq!(
        error_kind(&line, "restricted-typo"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("502"), "{line}");
    assert_eq!(
        emu.vault_count("main"),
        1 + fast_options().error_backoff.len() as u64
    );
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(Endpoint::KeyVault, vec![Fault::DropConnection]);
    assert_eq!(
        read(&vaults, "db-password").await,
        format!("db-password={DB_PASSWORD}")
    );
    assert_eq!(emu.vault_count("main"), 2);
}

#[tokio::test]
async fn a_malformed_or_oversized_answer_is_unavailable() {
    let emu = start().await;
    let vaults = warmed_up(&emu).await;
    emu.set_faults(Endpoint::KeyVault, vec![Fault::MalformedBody]);
    let line = read(&vaults, "db-password").await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );

    emu.set_faults(
        Endpoint::KeyVault,
        repeat(Fault::OversizedBody(10 * 1024 * 1024), 20),
    );
    let started = Instant::now();
    let line = read(&vaults, "api-key-2").await;
    assert_eq!(
        error_kind(&line, "api-key-2"),
        Some("unavailable"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn listing_follows_next_links_through_an_empty_page() {
    let emu = start().await;
    assert!(
        emu.config().empty_page,
        "the default emulator inserts an empty page"
    );
    let options = KeyVaultOptions {
        page_size: 2,
        ..fast_options()
    };
    let vaults = connect(&emu, &Identity::imds(&emu), long_cache(), options);
    let grants = [
        "feature-*",
        "db-password",
        "restricted",
        "disabled-secret",
        "no-such-secret",
        "stripe=payments/stripe-key",
    ];
    let (code, lines) = secrets_get(&grants, vaults, &[]).await;
    assert_eq!(code, 0, "{lines:?}");
    // Disabled and missing secrets are not listed; the alias is listed by its guest name.
    assert_eq!(
        lines,
        [
            "db-password",
            "feature-alpha",
            "feature-beta",
            "restricted",
            "stripe"
        ]
    );
    // main holds 6 secrets: pages of 2, 0 (empty, with a nextLink), 2, 2, plus the challenge.
    assert_eq!(emu.vault_count("main"), 5);
    assert_eq!(
        emu.vault_count("payments"),
        2,
        "one page, plus the challenge"
    );
}

#[tokio::test]
async fn info_on_a_pinned_grant_shows_that_versions_own_metadata_even_when_it_is_disabled() {
    const OLD: &str = "01d0000000000000000000000000000a";
    const NEW: &str = "fe90000000000000000000000000000b";
    let emu = start_with(|c| {
        let version =
            |value: &str, id: &str, enabled: bool, content_type: &str, generation: &str| {
                wasm_secrets_emulator::config::VersionConfig {
                    value: value.into(),
                    enabled,
                    id: Some(id.into()),
                    content_type: Some(content_type.into()),
                    tags: Some([("generation".to_owned(), generation.to_owned())].into()),
                }
            };
        let main = c.vaults.iter_mut().find(|v| v.name == "main").unwrap();
        main.secrets
            .push(wasm_secrets_emulator::config::SecretConfig {
                name: "rotated".into(),
                value: None,
                enabled: None,
                versions: vec![
                    version("old-value", OLD, false, "application/x-old", "1"),
                    version("new-value", NEW, true, "text/plain", "2"),
                ],
                content_type: None,
                tags: Default::default(),
                readers: None,
            });
    })
    .await;
    let vaults = imds_vaults(&emu);
    let pinned_old = format!("rotated@{OLD}");
    let (code, lines) = secrets_get(
        &[&pinned_old],
        vaults.clone(),
        &["rotated", "--info", "rotated"],
    )
    .await;
    assert_eq!(code, 1, "{lines:?}");
    // get says the pinned version is disabled...
    assert_eq!(
        error_kind(&lines[0], "rotated"),
        Some("not-found"),
        "{lines:?}"
    );
    assert!(lines[0].contains("disabled"), "{lines:?}");
    // ...and info agrees, with that version's own content type and tags, not the latest's.
    let info = &lines[1..];
    for expected in [
        format!("version={OLD}"),
        "enabled=false".to_owned(),
        "content-type=application/x-old".to_owned(),
        "tag.generation=1".to_owned(),
    ] {
        assert!(info.contains(&expected), "{expected} in {info:?}");
    }
    // The latest's metadata under the unpinned grant; a pinned enabled version reads its own.
    let pinned_new = format!("rotated@{NEW}");
    for grant in ["rotated", pinned_new.as_str()] {
        let (code, lines) = secrets_get(&[grant], vaults.clone(), &["--info", "rotated"]).await;
        assert_eq!(code, 0, "{grant}: {lines:?}");
        for expected in [
            format!("version={NEW}"),
            "enabled=true".to_owned(),
            "content-type=text/plain".to_owned(),
            "tag.generation=2".to_owned(),
        ] {
            assert!(
                lines.contains(&expected),
                "{grant}: {expected} in {lines:?}"
            );
        }
    }
    // A pinned version that does not exist is not-found, not someone else's metadata.
    let missing = "rotated@00000000000000000000000000000000";
    let (_, lines) = secrets_get(&[missing], vaults, &["--info", "rotated"]).await;
    assert_eq!(
        error_kind(&lines[0], "rotated"),
        Some("not-found"),
        "{lines:?}"
    );
}
