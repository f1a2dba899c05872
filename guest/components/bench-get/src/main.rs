//! `bench-get N NAME`: calls `get(NAME)` N times (after a warm-up) and prints the mean
//! nanoseconds per call. Used by host/benches; it prints timings, never the value.

use std::hint::black_box;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(name)) = (args.get(1).and_then(|n| n.parse::<u32>().ok()), args.get(2))
    else {
        eprintln!("usage: bench-get N NAME");
        std::process::exit(2);
    };
    for _ in 0..n.min(1000) {
        if let Err(e) = black_box(wasm_secrets_guest::get(name)) {
            eprintln!("bench-get: {e}");
            std::process::exit(1);
        }
    }
    let start = Instant::now();
    for _ in 0..n {
        let _ = black_box(wasm_secrets_guest::get(black_box(name)));
    }
    let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
    println!("{ns}");
}
