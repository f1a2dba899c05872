//! The secret cache and the token cache against the emulator: stale-if-error, amplification
//! (many guests, one token request, one vault read), token refresh, and the audit log.

use std::time::{Duration, Instant};

use crate::emulator::*;
use wasm_secrets::config::CacheConfig;
use wasm_secrets::{SecretsCtx, Vaults};

/// A cache with a 300 ms TTL and 1 s of stale-if-error.
fn short_cache() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_millis(300),
        stale_if_error: Duration::from_secs(1),
        ..CacheConfig::default()
    }
}

/// A context for `db-password` over IMDS, with `cache`, auditing into `audit`.
fn audited(emu: &Emulator, cache: CacheConfig, audit: &AuditBuffer) -> SecretsCtx {
    let vaults = connect(emu, &Identity::imds(emu), cache, fast_options());
    ctx(&["db-password"], vaults).with_audit(audit.sink())
}

/// The `cache` field of every audited request, in order.
fn cache_column(audit: &AuditBuffer) -> Vec<String> {
    audit
        .events()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["outcome"].as_str().unwrap(),
                e["cache"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

async fn stale_if_error_serves_then_stops(outage: Vec<Fault>) {
    let emu = start().await;
    let audit = AuditBuffer::default();
    let secrets = audited(&emu, short_cache(), &audit);
    let before = Instant::now();
    assert_eq!(
        secrets.get("db-password").await.unwrap().expose(),
        DB_PASSWORD
    );
    let fetched = Instant::now();

    emu.set_faults(Endpoint::KeyVault, outage);
    tokio::time::sleep(Duration::from_millis(400)).await; // past the TTL
    let stale = secrets
        .get("db-password")
        .await
        .expect("the last value, while the vault is down");
    assert_eq!(stale.expose(), DB_PASSWORD);
    assert!(
        before.elapsed() < Duration::from_millis(1300),
        "the stale read came after the window: the test ran too slowly to prove anything"
    );

    // The window (TTL + stale-if-error = 1.3 s) ends at the latest 1.3 s after `fetched`.
    let past_window = Duration::from_millis(1400);
    tokio::time::sleep(past_window.saturating_sub(fetched.elapsed())).await;
    let err = secrets
        .get("db-password")
        .await
        .expect_err("past TTL + stale-if-error");
    assert_eq!(err.kind().as_str(), "unavailable", "{err}");

    emu.set_faults(Endpoint::KeyVault, vec![]);
    assert_eq!(
        secrets.get("db-password").await.unwrap().expose(),
        DB_PASSWORD
    );
    assert_eq!(
        cache_column(&audit),
        ["ok/miss", "ok/stale", "unavailable/-", "ok/miss"]
    );
}

#[tokio::test]
async fn stale_if_error_serves_the_last_value_through_503s_then_stops() {
    stale_if_error_serves_then_stops(repeat(status(503), 1000)).await;
}

#[tokio::test]
async fn stale_if_error_serves_the_last_value_when_connections_drop_then_stops() {
    stale_if_error_serves_then_stops(repeat(Fault::DropConnection, 1000)).await;
}

#[tokio::test]
async fn forbidden_is_never_served_stale() {
    let emu = start().await;
    let audit = AuditBuffer::default();
    let secrets = audited(&emu, short_cache(), &audit);
    secrets.get("db-password").await.unwrap();
    emu.set_faults(Endpoint::KeyVault, vec![status(403)]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = secrets.get("db-password").await.unwrap_err();
    assert_eq!(err.kind().as_str(), "forbidden", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_guests_cause_one_token_request_and_one_vault_read() {
    let emu = start().await;
    // Slow the vault a little so that the guests really overlap the first fetch.
    emu.set_vault_latency("main", Duration::from_millis(200));
    let vaults = imds_vaults(&emu);
    let guests: Vec<_> = (0..100)
        .map(|_| {
            let vaults = vaults.clone();
            tokio::spawn(
                async move { secrets_get(&["db-password"], vaults, &["db-password"]).await },
            )
        })
        .collect();
    for g in guests {
        assert_eq!(
            g.await.unwrap(),
            (0, vec![format!("db-password={DB_PASSWORD}")])
        );
    }
    assert_eq!(emu.count(Endpoint::Imds), 1, "one token request");
    // The vault counts every request it sees: the unauthenticated first request that gets the
    // 401 challenge, and the one authorized GET. So 2 requests = 1 challenge + 1 read.
    assert_eq!(emu.vault_count("main"), 2, "1 challenge + 1 GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_during_a_run_is_refreshed_before_it_expires() {
    let emu = start().await;
    // The host treats a token with less than 10 s left as expired, so a 12 s token is used
    // for 1 to 2 s and then replaced, 10 s before the vault would refuse it.
    emu.set_token_lifetime(12);
    let cache = CacheConfig {
        ttl: Duration::from_millis(1),
        ..CacheConfig::default()
    };
    let vaults: Vaults = connect(&emu, &Identity::imds(&emu), cache, fast_options());
    let secrets = ctx(&["db-password"], vaults);
    let started = Instant::now();
    let mut reads = 0u64;
    while started.elapsed() < Duration::from_millis(3500) {
        let v = secrets
            .get("db-password")
            .await
            .unwrap_or_else(|e| panic!("read {reads} failed: {e}"));
        assert_eq!(v.expose(), DB_PASSWORD);
        reads += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        emu.count(Endpoint::Imds) >= 2,
        "the token was refreshed: {} requests",
        emu.count(Endpoint::Imds)
    );
    // Every read was one vault GET (the TTL is 1 ms), plus the first challenge: no request
    // was refused for an expired token and retried.
    assert_eq!(emu.vault_count("main"), reads + 1, "{reads} reads");
}

#[tokio::test]
async fn the_audit_log_records_outcome_and_cache_status_and_never_a_value() {
    let emu = start().await;
    let audit = AuditBuffer::default();
    let vaults = imds_vaults(&emu);
    let secrets = ctx(
        &[
            "db-password",
            "restricted",
            "no-such-secret",
            "db=db-password",
        ],
        vaults,
    )
    .with_audit(audit.sink());
    secrets.get("db-password").await.unwrap();
    secrets.get("db-password").await.unwrap();
    secrets.get("db").await.unwrap();
    secrets.get("restricted").await.unwrap_err();
    secrets.get("no-such-secret").await.unwrap_err();
    secrets.get("api-key").await.unwrap_err();
    secrets.get("bad name!").await.unwrap_err();
    let events = audit.events();
    let rows: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["cache"].as_str().unwrap_or("-"),
                e["secret"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("db-password", "ok", "miss", "db-password"),
            ("db-password", "ok", "hit", "db-password"),
            ("db", "ok", "hit", "db-password"),
            ("restricted", "forbidden", "-", "restricted"),
            ("no-such-secret", "not-found", "-", "no-such-secret"),
            ("api-key", "not-granted", "-", "-"),
            ("bad name!", "invalid-name", "-", "-"),
        ]
    );
    assert_eq!(events[0]["vault"], "default");
    assert_eq!(events[0]["version"], "fedcba9876543210fedcba9876543210");
    let text = audit.text();
    for value in ALL_VALUES {
        assert!(!text.contains(value), "the audit log holds a value: {text}");
    }
    assert!(
        !text.contains(&emu.canary()),
        "the audit log holds a token: {text}"
    );
}
