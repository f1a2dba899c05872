//! IMDS failures: each is retried to success or reaches the guest as `unavailable` (or
//! `forbidden` for a refusal) within a bounded time, never a panic or a hang.
//!
//! The credential's default retry policy backs off for seconds (0.5 s doubling; 410 for 70 s),
//! so these tests build the IMDS credential with a shrunk [`RetryPolicy`]: same rules,
//! milliseconds instead of seconds.

use std::time::{Duration, Instant};

use crate::emulator::*;
use wasm_secrets::credential::RetryPolicy;

/// Reads `db-password` through a guest over IMDS with `retry`; returns the output line and
/// how long the guest took.
async fn read_with(emu: &Emulator, retry: RetryPolicy) -> (String, Duration) {
    let vaults = imds_vault_with_retry(emu, retry, None);
    let started = Instant::now();
    let (_, lines) = secrets_get(&["db-password"], vaults, &["db-password"]).await;
    (lines.concat(), started.elapsed())
}

fn ok_line() -> String {
    format!("db-password={DB_PASSWORD}")
}

#[test]
fn the_default_policy_retries_410_for_at_least_70_seconds() {
    assert!(RetryPolicy::default().gone_window >= Duration::from_secs(70));
}

#[tokio::test]
async fn transient_imds_failures_are_retried_to_success() {
    let emu = start().await;
    emu.set_faults(
        Endpoint::Imds,
        vec![
            status(404),
            Fault::Status {
                status: 429,
                retry_after: Some(1),
                body: None,
            },
            status(500),
            status(503),
        ],
    );
    let (line, took) = read_with(&emu, quick_retry(4, Duration::ZERO)).await;
    assert_eq!(line, ok_line());
    assert_eq!(emu.count(Endpoint::Imds), 5);
    // Retry-After: 1 is capped by the policy's max delay (40 ms here).
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn an_imds_403_is_forbidden_and_not_retried() {
    // Docker Desktop answers 169.254.169.254 with 403 (azure-sdk-for-js#26898).
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, repeat(status(403), 10));
    let (line, _) = read_with(&emu, quick_retry(3, Duration::ZERO)).await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("forbidden"),
        "{line}"
    );
    assert_eq!(emu.count(Endpoint::Imds), 1);
}

#[tokio::test]
async fn persistent_imds_server_errors_become_unavailable_quickly() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, repeat(status(500), 50));
    let (line, took) = read_with(&emu, quick_retry(3, Duration::ZERO)).await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("500"), "{line}");
    assert_eq!(emu.count(Endpoint::Imds), 4, "first attempt + 3 retries");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn imds_410_is_retried_beyond_max_retries_while_imds_updates() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, repeat(status(410), 6));
    // One retry for other statuses, but 410s are retried for the whole window.
    let (line, _) = read_with(&emu, quick_retry(1, Duration::from_secs(5))).await;
    assert_eq!(line, ok_line());
    assert_eq!(emu.count(Endpoint::Imds), 7, "six 410s, then the token");
}

#[tokio::test]
async fn imds_410_stops_being_retried_after_the_window() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, repeat(status(410), 1000));
    let window = Duration::from_millis(400);
    let (line, took) = read_with(&emu, quick_retry(1, window)).await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("410"), "{line}");
    assert!(
        emu.count(Endpoint::Imds) >= 5,
        "410 kept being retried through the window: {} requests",
        emu.count(Endpoint::Imds)
    );
    assert!(took >= window, "{took:?}");
    assert!(took < window + Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_slow_imds_times_out_and_is_retried() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, vec![Fault::Delay(Duration::from_secs(3))]);
    let (line, took) = read_with(&emu, quick_retry(2, Duration::ZERO)).await;
    assert_eq!(line, ok_line());
    assert_eq!(emu.count(Endpoint::Imds), 2);
    assert!(
        took < Duration::from_secs(2),
        "the 3 s answer was not waited for: {took:?}"
    );
}

#[tokio::test]
async fn an_imds_that_never_answers_in_time_is_unavailable() {
    let emu = start().await;
    emu.set_faults(
        Endpoint::Imds,
        repeat(Fault::Delay(Duration::from_secs(5)), 10),
    );
    let (line, took) = read_with(&emu, quick_retry(2, Duration::ZERO)).await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("timed out"), "{line}");
    // 3 attempts of 300 ms, plus backoff.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_dropped_imds_connection_is_retried() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, vec![Fault::DropConnection]);
    let (line, _) = read_with(&emu, quick_retry(2, Duration::ZERO)).await;
    assert_eq!(line, ok_line());
    assert_eq!(emu.count(Endpoint::Imds), 2);
}

#[tokio::test]
async fn malformed_imds_json_is_unavailable() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, vec![Fault::MalformedBody]);
    let (line, _) = read_with(&emu, quick_retry(2, Duration::ZERO)).await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("malformed"), "{line}");
    // The error never quotes the body (which starts a token).
    assert!(!line.contains("eyJ0eX"), "{line}");
}

#[tokio::test]
async fn a_10_mb_imds_answer_is_refused_and_unavailable() {
    let emu = start().await;
    emu.set_faults(
        Endpoint::Imds,
        repeat(Fault::OversizedBody(10 * 1024 * 1024), 10),
    );
    let (line, took) = read_with(&emu, quick_retry(2, Duration::ZERO)).await;
    assert_eq!(
        error_kind(&line, "db-password"),
        Some("unavailable"),
        "{line}"
    );
    assert!(line.contains("larger than"), "{line}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn after_an_imds_outage_the_next_read_fetches_a_token() {
    let emu = start().await;
    emu.set_faults(Endpoint::Imds, repeat(status(503), 3));
    let vaults = imds_vault_with_retry(&emu, quick_retry(2, Duration::ZERO), None);
    let (_, lines) = secrets_get(&["db-password"], vaults.clone(), &["db-password"]).await;
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("unavailable"),
        "{lines:?}"
    );
    // IMDS is back: the next read waits out the short backoff after the failure, then
    // fetches a token and the secret.
    let (code, lines) = secrets_get(&["db-password"], vaults, &["db-password"]).await;
    assert_eq!((code, lines), (0, vec![ok_line()]));
}
