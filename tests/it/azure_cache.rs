//! The secret cache and the token cache against the emulator: stale-if-error, amplification
//! (many guests, one token request, one vault read), token refresh, and the audit log.

use std::time::{Duration, Instant};

use crate::emulator::*;
use wasm_secrets::cache::CacheConfig;
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
    // The vault takes 1.5 s a request, far longer than starting 100 guests, so they all ask while the
    // first fetch is in flight; the audit log proves it: every read is a miss that shared
    // that fetch (a guest that came after it would be a hit).
    emu.set_vault_latency("main", Duration::from_millis(1500));
    let audit = AuditBuffer::default();
    let secrets = ctx(&["db-password"], imds_vaults(&emu)).with_audit(audit.sink());
    let started = Instant::now();
    let guests: Vec<_> = (0..100)
        .map(|_| {
            let secrets = secrets.clone();
            tokio::spawn(async move {
                crate::harness::run_guest_with("secrets-get", secrets, &["db-password"]).await
            })
        })
        .collect();
    for g in guests {
        assert_eq!(
            g.await.unwrap(),
            (0, format!("db-password={DB_PASSWORD}\n"))
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the guests waited for one fetch (challenge + GET, 1.5 s each), not one each"
    );
    assert_eq!(
        cache_column(&audit),
        vec!["ok/miss"; 100],
        "all overlapped the one fetch"
    );
    assert_eq!(emu.count(Endpoint::Imds), 1, "one token request");
    // The vault counts every request it sees: the unauthenticated first request that gets the
    // 401 challenge, and the one authorized GET. So 2 requests = 1 challenge + 1 read.
    assert_eq!(emu.vault_count("main"), 2, "1 challenge + 1 GET");
}

/// Refresh-ahead on the path production takes (the coarse clock, real time): against a
/// healthy vault that takes 1 s an answer, a request every 50 ms from the fetch to past the
/// TTL (12 s) never waits for the vault. The refresh starts at 70-80% of the TTL behind a
/// hit and lands before the TTL, so every request is a hit and the value rotated meanwhile
/// is served before the TTL. A refresh decided at the TTL would land a second after it, and
/// the requests in that second would be stale ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_against_a_slow_vault_keeps_every_request_a_fast_hit() {
    const TTL: Duration = Duration::from_secs(12);
    const LATENCY: Duration = Duration::from_secs(1);
    const SLOWEST: Duration = Duration::from_millis(500);
    let emu = start().await;
    let audit = AuditBuffer::default();
    let cache = CacheConfig {
        ttl: TTL,
        ..CacheConfig::default()
    };
    let secrets = audited(&emu, cache, &audit);
    let before = Instant::now();
    assert_eq!(
        secrets.get("db-password").await.unwrap().expose(),
        DB_PASSWORD
    );
    emu.set_vault_latency("main", LATENCY);
    let rotated = "rotated-before-the-refresh";
    assert!(!emu.put_secret("main", "db-password", rotated).is_empty());
    emu.reset_counters();

    let mut values = Vec::new();
    while before.elapsed() < TTL + Duration::from_secs(1) {
        let asked = Instant::now();
        let value = secrets.get("db-password").await.unwrap();
        let took = asked.elapsed();
        assert!(
            took < SLOWEST,
            "a request {:?} after the fetch waited {took:?} for the vault",
            before.elapsed()
        );
        values.push((before.elapsed(), value.expose().to_owned()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let column = cache_column(&audit);
    assert_eq!(column[0], "ok/miss");
    assert!(
        column[1..].iter().all(|c| c == "ok/hit"),
        "every request after the first is a hit: {column:?}"
    );
    assert_eq!(emu.count(Endpoint::KeyVault), 1, "one refresh");
    let first_new = values.iter().find(|(_, v)| v == rotated).map(|(at, _)| *at);
    assert!(
        first_new.is_some_and(|at| at < TTL),
        "the refreshed value came before the TTL: {first_new:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_refreshed_ahead_of_its_expiry_while_reads_go_on() {
    use wasm_secrets::backend::keyvault::KeyVault;
    use wasm_secrets::cache::CachedBackend;
    use wasm_secrets::credential::imds::ImdsCredential;
    use wasm_secrets::token_cache::{TokenCache, TokenCachePolicy};
    let emu = start().await;
    // Tokens live 6 s (5 to 6 s from the fetch: expiry is in whole seconds); refreshed when
    // 5 s remain but not before half the lifetime (2.5 to 3 s); treated as expired with 1 s
    // left (4 to 5 s). So the refresh-ahead point comes at least a second before a blocking
    // re-fetch could, and the run ends before the first token could expire.
    emu.set_token_lifetime(6);
    let policy = TokenCachePolicy {
        refresh_before: Duration::from_secs(5),
        half_life_from: Duration::from_secs(7200),
        expiry_margin: Duration::from_secs(1),
        failure_cooldown: Duration::ZERO,
    };
    let http = http(&emu);
    let imds = ImdsCredential::new(http.clone(), &emu.imds_base(), None).unwrap();
    let tokens = std::sync::Arc::new(TokenCache::with_policy(std::sync::Arc::new(imds), policy));
    let vault = KeyVault::new(&emu.default_vault_url(), http, tokens, fast_options()).unwrap();
    // Every read is past the 1 ms TTL and waits for its own refresh (however slow a loaded
    // machine makes it), so reads and vault GETs stay one to one.
    let cache = CacheConfig {
        ttl: Duration::from_millis(1),
        refresh_wait: Duration::from_secs(5),
        ..CacheConfig::default()
    };
    let vaults = Vaults::new().with(
        "default",
        CachedBackend::new(std::sync::Arc::new(vault), cache),
    );
    let secrets = ctx(&["db-password"], vaults);
    let started = Instant::now();
    let mut reads = 0u64;
    let mut second_token_at = None;
    while started.elapsed() < Duration::from_millis(3900) {
        let v = secrets
            .get("db-password")
            .await
            .unwrap_or_else(|e| panic!("read {reads} failed: {e}"));
        assert_eq!(v.expose(), DB_PASSWORD);
        reads += 1;
        if second_token_at.is_none() && emu.count(Endpoint::Imds) >= 2 {
            second_token_at = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = second_token_at.expect("the token was refreshed");
    assert!(
        at >= Duration::from_millis(2300) && at < Duration::from_millis(3900),
        "refreshed at {at:?}: ahead of expiry (2.5-3 s), not when it ran out (4-5 s)"
    );
    assert_eq!(emu.count(Endpoint::Imds), 2, "one fetch, one refresh");
    // Every read was one vault GET (the TTL is 1 ms), plus the first challenge: no request
    // was refused for an expired token and retried.
    let gets = emu.vault_count("main");
    assert!(
        (reads..=reads + 1).contains(&gets),
        "{gets} vault requests for {reads} reads"
    );
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

/// Issue 28: Key Vault names are case-insensitive, and so is the host. A guest asking for
/// `db-PASSWORD` under `db-password@<pin>` and `db-*` gets the pinned version (not the latest,
/// through the pattern); every spelling of a secret is one cache entry (one vault read), and
/// its audit lines name it one way: `name` as granted (or in lowercase under a pattern), and
/// `secret` as the vault spells it.
#[tokio::test]
async fn every_spelling_of_a_secret_is_one_grant_one_cache_entry_and_one_audit_name() {
    let emu = start().await;
    emu.put_secret("main", "Mixed-Case-Secret", "mixed-value");
    let audit = AuditBuffer::default();
    let secrets = ctx(
        // The pin in capitals: version ids are case-insensitive too.
        &[
            "db-password@0123456789ABCDEF0123456789ABCDEF",
            "db-*",
            "mixed-*",
        ],
        imds_vaults(&emu),
    )
    .with_audit(audit.sink());
    let asked = [
        "db-password",
        "db-PASSWORD",
        "DB-Password",
        "mixed-case-secret",
        "MIXED-Case-Secret",
    ];
    let (code, out) = crate::harness::run_guest_with("secrets-get", secrets.clone(), &asked).await;
    assert_eq!(
        (code, out.lines().collect::<Vec<_>>()),
        (
            0,
            vec![
                "db-password=old-db-password",
                "db-PASSWORD=old-db-password",
                "DB-Password=old-db-password",
                "mixed-case-secret=mixed-value",
                "MIXED-Case-Secret=mixed-value",
            ]
        ),
        "every spelling reads the pinned version"
    );
    // The pin's version asked for in another case is the pin.
    let v = secrets
        .get_version("Db-Password", "0123456789abcdef0123456789ABCDEF")
        .await
        .unwrap();
    assert_eq!(v.expose(), "old-db-password");
    assert_eq!(
        emu.count(Endpoint::KeyVault),
        3,
        "1 challenge + 1 GET per secret, whatever the spelling"
    );
    let events = audit.events();
    let column = |field: &str| -> Vec<String> {
        events
            .iter()
            .map(|e| e[field].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(
        column("name"),
        [
            "db-password",
            "db-password",
            "db-password",
            "mixed-case-secret",
            "mixed-case-secret",
            "db-password"
        ]
    );
    assert_eq!(
        column("secret"),
        [
            "db-password",
            "db-password",
            "db-password",
            "Mixed-Case-Secret",
            "Mixed-Case-Secret",
            "db-password"
        ],
        "the vault's own spelling"
    );
    assert_eq!(
        column("cache"),
        ["miss", "hit", "hit", "miss", "hit", "hit"]
    );
    assert!(
        column("version")
            .iter()
            .all(|v| v == "0123456789abcdef0123456789abcdef" || v.len() == 32),
        "{events:?}"
    );
}

/// Everything read from a vault goes through the one cache policy, and its audit line says how
/// it was served: metadata, the name list and public keys are a miss, then a hit; key
/// operations are never cached and carry no cache status.
#[tokio::test]
async fn metadata_lists_and_public_keys_are_cached_and_audited_with_their_cache_status() {
    let emu = start().await;
    let audit = AuditBuffer::default();
    let secrets = ctx(
        &["db-password", "key:signer=jwt-signing-key:sign"],
        imds_vaults(&emu),
    )
    .with_audit(audit.sink());
    let reads = emu.count(Endpoint::KeyVault);
    for _ in 0..2 {
        secrets.info("db-password").await.unwrap();
        secrets.list().await.unwrap();
        secrets.keys().public_key("signer").await.unwrap();
    }
    secrets
        .keys()
        .sign(
            "signer",
            wasm_secrets::keys::SignatureAlgorithm::Es256,
            &[7u8; 32],
        )
        .await
        .unwrap();
    let rows: Vec<(String, String)> = audit
        .events()
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().to_owned(),
                e["cache"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let row = |op: &str, cache: &str| (op.to_owned(), cache.to_owned());
    assert_eq!(
        rows,
        [
            row("info", "miss"),
            row("list", "miss"),
            row("public-key", "miss"),
            row("info", "hit"),
            row("list", "hit"),
            row("public-key", "hit"),
            row("sign", "-"),
        ]
    );
    // One vault read each for the metadata, the list and the public key (plus the sign, and
    // the 401 challenge of the first request), whatever was asked twice.
    assert!(emu.count(Endpoint::KeyVault) - reads <= 5, "vault reads");
}
