//! The short soak: the soak bench's harness for 20 s, as a test. `wasm-secrets serve` with
//! http-hello under 32 connections while the emulator's vault answers 503 (the secret is
//! rotated meanwhile), resets connections and stalls, each between calm phases.
//!
//! Bounds here are looser than the bench's goals (the test shares two cores with the rest of
//! the suite); what they still catch is any request waiting on the vault (a refresh in the
//! request path costs 1 s per request on 503 and 10 s on a stall), any failed request, and
//! growth of memory (more than 10% + 4 MiB over the warmed-up resident set) or descriptors.

#[path = "../../cli/benches/soak/harness.rs"]
mod harness;

use harness::{Phase, Soak};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_holds_under_a_fault_schedule_for_20_seconds() {
    let _alone = crate::harness::CPU.write().await;
    let soak = Soak {
        duration: Duration::from_secs(20),
        connections: 32,
        phases: vec![
            Phase::Calm,
            Phase::Vault503,
            Phase::Calm,
            Phase::VaultReset,
            Phase::Calm,
            Phase::VaultStall,
            Phase::Calm,
        ],
        ttl: Duration::from_secs(2),
    };
    let report = harness::run(&soak, &crate::harness::guest("http-hello"), true).await;
    eprintln!("{}", harness::table(&soak, &report, None));
    assert_eq!((report.non_2xx, report.errors), (0, 0));
    assert!(report.requests > 2_000, "{} requests", report.requests);
    assert!(
        report.max < Duration::from_millis(750),
        "max {:?}",
        report.max
    );
    assert!(
        report.p99 < Duration::from_millis(150),
        "p99 {:?}",
        report.p99
    );
    let served = report
        .rotation_served_after
        .expect("the rotated value was served");
    assert!(
        served < Duration::from_secs(4),
        "rotation served after {served:?}"
    );
    // One key, a 2 s TTL: about 10 reads in 20 s when calm; retries and backoff add a few.
    assert!(
        (5..=60).contains(&report.vault_gets),
        "{} vault requests",
        report.vault_gets
    );
    assert!(
        report.token_requests <= 3,
        "{} token requests",
        report.token_requests
    );
    assert!(
        report.fds.1 <= report.fds.0 + 16,
        "descriptors {:?}",
        report.fds
    );
    // Flat memory: the resident set at the end is within 10% + 4 MiB of the one after the
    // warm-up (connections open, allocator pools filled).
    assert!(
        report.rss_kib.1 <= report.rss_kib.0 + report.rss_kib.0 / 10 + 4 * 1024,
        "memory {:?} KiB",
        report.rss_kib
    );
}
