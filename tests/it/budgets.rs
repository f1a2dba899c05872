//! Vault-call budgets, end to end against the emulator's Key Vault: a hostile component asking
//! for thousands of names causes at most its budget of vault calls (counted at the emulator)
//! while a neighbour's first reads and refreshes go through; a component signing in a tight
//! loop is held to its share of the vault while another's signatures go through; the host as a
//! whole stays under the emulator's throttle, which the same load without budgets trips; and
//! every refusal is an `over-budget` audit line, a counter, and at most one log line a minute.

use crate::emulator::*;
use crate::harness::{cli, guest, run_cli, run_guest_with};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_secrets::cache::CacheConfig;
use wasm_secrets::connect::{Connector, VaultSettings};
use wasm_secrets::keys::SignatureAlgorithm as Sig;
use wasm_secrets::{Budget, ErrorKind, Grants, SecretsCtx, VaultBudget, Vaults};
use wasm_secrets_emulator::{Emulator, ThrottleConfig};

/// The emulator's `main` vault as the host's `default`, with `budget` and `cache`.
fn vaults(emu: &Emulator, budget: VaultBudget, cache: CacheConfig) -> Vaults {
    let id = Identity::imds(emu);
    let connector = Connector::new(id.env.clone(), cache)
        .loopback_only(true)
        .with_options(fast_options());
    let settings = VaultSettings {
        url: emu.vault_url("main").unwrap(),
        credential: id.kind,
        identity: id.user.clone(),
        ca_cert: Some(emu.ca_cert_path()),
        api_version: None,
    };
    let mut vaults = Vaults::new();
    vaults.insert_with_budget(
        "default",
        Arc::new(connector.key_vault(&settings).unwrap()),
        budget,
    );
    vaults
}

fn component(name: &str, grants: &[&str], vaults: &Vaults, budget: Option<Budget>) -> SecretsCtx {
    SecretsCtx::new(name, Grants::parse(grants).unwrap(), vaults.clone()).with_budget(budget)
}

fn budget(s: &str) -> Budget {
    s.parse().unwrap()
}

/// `n` distinct names under `feature-*` that the vault does not hold: each one a miss.
fn distinct_names(round: usize, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("feature-x{round}-{i}")).collect()
}

/// A hostile guest (`secrets-get` with 10,000 distinct names under its pattern grant, run
/// again and again until the rest of the test is done) causes at most its budget of vault calls, counted at the emulator, and
/// gets the budget error for the rest; meanwhile a neighbour on the same vault reads its
/// secrets for the first time within their timeout, and its cached value is refreshed (a
/// rotation shows up within a TTL or two).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_guest_spends_only_its_budget_and_its_neighbour_reads_and_refreshes() {
    let emu = start().await;
    // Refresh-ahead at 80% of a 1 s TTL: refreshes are due every second.
    let cache = CacheConfig {
        ttl: Duration::from_secs(1),
        ..CacheConfig::default()
    };
    let vaults = vaults(&emu, VaultBudget::default(), cache);
    let limit = budget("20/s burst 50");
    let hostile = component("hostile", &["feature-*"], &vaults, Some(limit));
    let neighbour = component("neighbour", &["api-key", "feature-alpha"], &vaults, None);
    emu.reset_counters();
    let start = Instant::now();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spam = {
        let hostile = hostile.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            // The captured output stops at 1 MiB (about 4,500 of these lines a run): each
            // line seen is a refusal or a vault call's answer.
            let (mut refused, mut answered) = (0, 0);
            let mut round = 0;
            // At least three runs (over 10,000 refusals in all), however slowly a loaded
            // machine runs them beside the neighbour's reads.
            while round < 3 || !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let names = distinct_names(round, 10_000);
                let args: Vec<&str> = names.iter().map(String::as_str).collect();
                let (_, out) = run_guest_with("secrets-get", hostile.clone(), &args).await;
                // A line cut at the limit is left out.
                let whole = out.rsplit_once('\n').map_or("", |(whole, _)| whole);
                for line in whole.lines() {
                    if line.contains(": unavailable: ")
                        && line.contains("over its vault-call budget")
                    {
                        refused += 1;
                    } else {
                        assert!(line.contains(": not-found: "), "{line}");
                        answered += 1;
                    }
                }
            }
            (answered, refused)
        })
    };

    // The neighbour's first reads, each within its timeout, while the spam runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for name in ["api-key", "feature-alpha"] {
        let read = tokio::time::timeout(Duration::from_secs(2), neighbour.get(name)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "the neighbour's first read of {name}: {read:?}"
        );
    }
    // A rotation reaches the neighbour through a refresh while the spam goes on.
    emu.put_secret("main", "api-key", "rotated-api-key");
    assert!(
        sees_rotation(
            &neighbour,
            "api-key",
            "rotated-api-key",
            Duration::from_secs(3)
        )
        .await,
        "the neighbour's cached value was not refreshed"
    );

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, refused) = spam.await.unwrap();
    // /metrics counts the refusals by component, vault, budget and call.
    let counted = crate::harness::metric(
        "wasm_secrets_vault_budget_refusals_total{component=\"hostile\",vault=\"default\",budget=\"component\",call=\"miss\"}",
    );
    assert!(
        counted >= refused as f64,
        "{counted} counted, {refused} refused"
    );
    let elapsed = start.elapsed();
    // Every vault call the emulator saw: the hostile component's (its budget, at most) plus
    // the neighbour's two first reads and the refreshes of its two cached values (at most
    // one per 0.7 s each).
    let refreshes = 2.0 * (elapsed.as_secs_f64() / 0.7 + 1.0);
    let most = limit.most_in(elapsed) + 2.0 + refreshes;
    let calls = emu.vault_count("main") as f64;
    assert!(
        calls <= most,
        "{calls} vault calls in {elapsed:?}; the budget allows {most:.0}"
    );
    assert!(
        answered as f64 <= limit.most_in(elapsed),
        "{answered} reads went to the vault in {elapsed:?}"
    );
    assert!(
        refused > 10_000,
        "only {refused} reads were refused for the budget"
    );
}

/// Polls `ctx.get(name)` until it answers `value`, for at most `within`.
async fn sees_rotation(ctx: &SecretsCtx, name: &str, value: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ctx.get(name).await.is_ok_and(|v| v.expose() == value) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A component whose misses spend every token its budget refills (two tasks asking for new
/// names in a tight loop) still gets what it has cached refreshed: a rotation shows up within
/// two TTLs. (Misses may not take a bucket's last tenth; refreshes may.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_components_own_misses_never_starve_the_refresh_of_what_it_has_cached() {
    let emu = start().await;
    let cache = CacheConfig {
        ttl: Duration::from_secs(1),
        ..CacheConfig::default()
    };
    let vaults = vaults(&emu, VaultBudget::default(), cache);
    let ctx = component(
        "greedy",
        &["feature-*", "db-password"],
        &vaults,
        Some(budget("20/s burst 50")),
    );
    assert_eq!(ctx.get("db-password").await.unwrap().expose(), DB_PASSWORD);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|t| {
            let (ctx, stop) = (ctx.clone(), stop.clone());
            tokio::spawn(async move {
                let mut refused = 0u64;
                for i in 0u64.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = ctx.get(&format!("feature-t{t}-{i}")).await
                        && e.kind() == ErrorKind::OverBudget
                    {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    emu.put_secret("main", "db-password", "rotated-db-password");
    let refreshed = sees_rotation(
        &ctx,
        "db-password",
        "rotated-db-password",
        Duration::from_secs(2),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = 0;
    for s in spinners {
        refused += s.await.unwrap();
    }
    assert!(
        refused > 1_000,
        "the misses met the budget only {refused} times"
    );
    assert!(
        refreshed,
        "the cached value was not refreshed: the component's own misses starved it"
    );
}

/// A component signing in a tight loop is held to its share of the vault's key budget, and a
/// second component's signatures, on the same vault at the same time, all go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_component_signing_in_a_tight_loop_cannot_take_another_components_share() {
    let emu = start().await;
    let keys = budget("20/s burst 40");
    let vaults = vaults(
        &emu,
        VaultBudget {
            secrets: None,
            keys: Some(keys),
        },
        CacheConfig::default(),
    );
    // No budget of its own: only the vault's share holds it.
    let hog = component("hog", &["key:signer=jwt-signing-key:sign"], &vaults, None);
    let other = component("other", &["key:signer=jwt-signing-key:sign"], &vaults, None);
    let digest = [7u8; 32];
    let start = Instant::now();
    let hogging = {
        let hog = hog.clone();
        tokio::spawn(async move {
            let (mut signed, mut refused) = (0u32, 0u32);
            while start.elapsed() < Duration::from_secs(2) {
                match hog.keys().sign("signer", Sig::Es256, &digest).await {
                    Ok(_) => signed += 1,
                    Err(e) if e.kind() == ErrorKind::OverBudget => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            (signed, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..10 {
        let signed = other.keys().sign("signer", Sig::Es256, &digest).await;
        assert!(
            signed.is_ok(),
            "the other component's signature {i}: {signed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (signed, refused) = hogging.await.unwrap();
    let elapsed = start.elapsed();
    // Half the vault's budget (two components share it), and one public-key read.
    let share = Budget::new(keys.rate() / 2.0, keys.burst() / 2).unwrap();
    assert!(
        f64::from(signed) <= share.most_in(elapsed) + 1.0,
        "the hog signed {signed} times in {elapsed:?}; its share allows {:.0}",
        share.most_in(elapsed)
    );
    assert!(refused > 100, "the hog was refused only {refused} times");
}

/// Six components asking for distinct names as fast as they can: with the vault's budget
/// (30 at once, 20 a second: at most 50 in any second) under the emulator's throttle (60 a
/// second), the vault never throttles the host. The same load without budgets is throttled,
/// so the throttle would show it if the budget did not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_host_stays_under_the_vaults_throttle_and_without_budgets_does_not() {
    async fn load(budget: VaultBudget, own: Option<Budget>) -> (u64, u64, u64) {
        let emu = start().await;
        emu.set_throttle(ThrottleConfig {
            enabled: true,
            max_requests: 60,
            window_ms: 1_000,
            retry_after_secs: None,
        });
        // Warm the token first: IMDS is not the vault.
        let vaults = vaults(&emu, budget, CacheConfig::default());
        let _ = component("warm", &["db-password"], &vaults, own)
            .get("db-password")
            .await;
        emu.reset_counters();
        let start = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|c| {
                let ctx = component(&format!("c{c}"), &["feature-*"], &vaults, own);
                tokio::spawn(async move {
                    let (mut over, mut throttled) = (0u64, 0u64);
                    let mut i = 0;
                    while start.elapsed() < Duration::from_millis(2_500) {
                        i += 1;
                        match ctx.get(&format!("feature-c{c}-{i}")).await {
                            Err(e) if e.kind() == ErrorKind::OverBudget => {
                                over += 1;
                                tokio::task::yield_now().await;
                            }
                            Err(e) if e.message().contains("throttl") => throttled += 1,
                            _ => {}
                        }
                    }
                    (over, throttled)
                })
            })
            .collect();
        let (mut over, mut throttled) = (0, 0);
        for t in tasks {
            let (o, t) = t.await.unwrap();
            over += o;
            throttled += t;
        }
        let calls = emu.vault_count("main");
        emu.shutdown().await;
        (calls, over, throttled)
    }

    let limited = VaultBudget {
        secrets: Some(budget("20/s burst 30")),
        keys: None,
    };
    let (calls, over, throttled) = load(limited, None).await;
    assert_eq!(throttled, 0, "the vault throttled the host ({calls} calls)");
    assert!(over > 0, "the load never met the budget");
    // 2.5 s: at most 30 + 20 * 2.5.
    assert!(calls <= 80, "{calls} vault calls");

    let (calls, _, throttled) = load(VaultBudget::UNLIMITED, None).await;
    assert!(
        throttled > 0,
        "without budgets the same load was not throttled ({calls} calls): the test shows nothing"
    );
}

/// `run --vault-calls`: past the budget a read is `unavailable` saying so, the audit line's
/// outcome is `over-budget`, and the log says it once, not once per refused read.
#[test]
fn the_cli_budget_refuses_with_an_audit_line_each_and_one_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(&secrets, "feature-a = \"on\"\n").unwrap();
    let audit = dir.path().join("audit.jsonl");
    let names: Vec<String> = (0..40).map(|i| format!("feature-x{i}")).collect();
    let r = run_cli(
        cli()
            .args([
                "run",
                "--vault-calls",
                "1/m burst 10",
                "--grant",
                "feature-*",
            ])
            .arg("--secrets-file")
            .arg(&secrets)
            .arg("--audit-log")
            .arg(&audit)
            .arg(guest("secrets-get"))
            .args(&names),
    );
    let over: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(": unavailable: ") && l.contains("over its vault-call budget"))
        .collect();
    // 10 at once, of which misses may take 9 (the last is kept for refreshes).
    assert_eq!(over.len(), 40 - 9, "{}", r.stdout);
    let warnings = r
        .stderr
        .lines()
        .filter(|l| l.contains("over its vault-call budget"))
        .count();
    assert_eq!(warnings, 1, "{}", r.stderr);
    let log = std::fs::read_to_string(&audit).unwrap();
    let outcomes: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let over_budget = outcomes
        .iter()
        .filter(|e| e["outcome"] == "over-budget")
        .count();
    assert_eq!(over_budget, 40 - 9, "{log}");
    // A bad budget is a clear one-line error.
    let r = run_cli(
        cli()
            .args(["run", "--vault-calls", "lots"])
            .arg(guest("secrets-get")),
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("RATE/s"), "{}", r.stderr);
}
