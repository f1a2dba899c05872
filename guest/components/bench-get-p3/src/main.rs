//! `bench-get-p3 N NAME`: awaits the async `get(NAME)` of `wasm-secrets:secrets@0.2.0` N times
//! (after a warm-up) and prints the mean nanoseconds per call: `bench-get` for WASI 0.3. Used
//! by the benchmarks; it prints timings, never a value.

use std::hint::black_box;
use std::time::Instant;

struct Command;

wasip3::cli::command::export!(Command);

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (Some(n), Some(name)) = (
            args.first().and_then(|n| n.parse::<u32>().ok()),
            args.get(1),
        ) else {
            eprintln!("usage: bench-get-p3 N NAME");
            return Err(());
        };
        for _ in 0..n.min(1000) {
            if let Err(e) = wasm_secrets_guest::p3::get(name).await {
                eprintln!("bench-get-p3: {e}");
                return Err(());
            }
        }
        let start = Instant::now();
        for _ in 0..n {
            let _ = black_box(wasm_secrets_guest::p3::get(black_box(name)).await);
        }
        let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
        println!("{ns}");
        Ok(())
    }
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `run`.
fn main() {}
