//! Hostile guests written in WAT: each is stopped by its limit with a clear message.

use crate::harness::{cli, run_cli, temp_file, wat};
use std::time::{Duration, Instant};

#[test]
fn an_infinite_loop_stops_at_the_timeout() {
    let start = Instant::now();
    let r = run_cli(
        cli()
            .args(["run", "--timeout", "500ms"])
            .arg(wat("infinite-loop")),
    );
    let took = start.elapsed();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("time limit of 500ms"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_memory_bomb_stops_at_max_memory() {
    let r = run_cli(
        cli()
            .args(["run", "--max-memory", "32MiB"])
            .arg(wat("memory-bomb")),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("over its limit of 33554432 bytes (--max-memory)"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}

#[test]
fn a_fuel_limit_stops_a_busy_guest() {
    let r = run_cli(
        cli()
            .args(["run", "--fuel", "100000"])
            .arg(wat("infinite-loop")),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("used all of its fuel (100000 units"),
        "{}",
        r.stderr
    );
}

/// wasmtime charges "hostcall fuel" for the bytes a guest passes in as it checks the string's
/// bounds, before lifting (copying) it; the host caps that fuel at --max-hostcall-bytes. So
/// the 100 MiB name is refused without the host ever copying or reading it.
/// Runs hostile guest `wat` with `grant` over a secrets file and checks the per-call byte cap
/// stopped it before the copy, quickly.
fn refused_without_copying(grant: &str, wat_name: &str) {
    let secrets = temp_file(".toml", b"x = \"v\"\n");
    let start = Instant::now();
    let r = run_cli(
        cli()
            .args([
                "run",
                "--max-memory",
                "256MiB",
                "--grant",
                grant,
                "--secrets-file",
            ])
            .arg(secrets.path())
            .arg(wat(wat_name)),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("passed more than 1048576 bytes into one host call"),
        "{}",
        r.stderr
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_100_mib_name_is_refused_without_copying_it() {
    refused_without_copying("x", "huge-name");
}

#[test]
fn a_100_mib_digest_for_a_key_is_refused_without_copying_it() {
    refused_without_copying("key:k=jwt-signing-key:sign", "huge-digest");
}
