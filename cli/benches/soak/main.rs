//! The soak benchmark: `cargo bench -p wasm-secrets-cli --bench soak` (`SOAK_SECONDS`, default
//! 120, sets the length of each of its two runs). It runs `wasm-secrets serve` with http-hello
//! under 32 connections once with every phase calm and once with the fault schedule of
//! [`harness::Phase::FULL`], and prints the table the README keeps.

#[path = "../shared/announced.rs"]
mod announced;
mod harness;

use std::time::Duration;

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let soak = harness::Soak {
        duration: Duration::from_secs(seconds),
        connections: 32,
        phases: harness::Phase::FULL.to_vec(),
        ttl: Duration::from_secs(2),
    };
    let guest = std::path::Path::new(env!("WASM_SECRETS_GUEST_DIR")).join("http-hello.wasm");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        eprintln!("soak: calm run, {seconds} s");
        let calm = harness::run(&soak, &guest, false).await;
        eprintln!("soak: fault schedule, {seconds} s");
        let faulted = harness::run(&soak, &guest, true).await;
        println!("{}", harness::table(&soak, &faulted, Some(&calm)));
    });
}
