//! `bench-get N NAME`: calls `get(NAME)` N times (after a warm-up) and prints the mean
//! nanoseconds per call. `bench-get --sign N KEY` and `bench-get --verify N KEY` do the same
//! with an ES256 `sign` (or `verify` of a signature made first) of a fixed digest with the key
//! granted as KEY. Used by host/benches; it prints timings, never a value.

use std::hint::black_box;
use std::time::Instant;
use wasm_secrets_guest::keys::{self, SignatureAlgorithm};

/// Runs `call` N times after a warm-up of up to 1000 calls (or N/10 for slow calls) and
/// prints the mean nanoseconds per call.
fn time<E: std::fmt::Display>(n: u32, warm_up: u32, mut call: impl FnMut() -> Result<(), E>) {
    for _ in 0..warm_up {
        if let Err(e) = call() {
            eprintln!("bench-get: {e}");
            std::process::exit(1);
        }
    }
    let start = Instant::now();
    for _ in 0..n {
        let _ = black_box(call());
    }
    let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
    println!("{ns}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rest) = match args.first().map(String::as_str) {
        Some(m @ ("--sign" | "--verify")) => (m, &args[1..]),
        _ => ("--get", &args[..]),
    };
    let (Some(n), Some(name)) = (
        rest.first().and_then(|n| n.parse::<u32>().ok()),
        rest.get(1),
    ) else {
        eprintln!("usage: bench-get [--sign | --verify] N NAME");
        std::process::exit(2);
    };
    let digest = [7u8; 32];
    match mode {
        "--sign" => time(n, (n / 10).max(1), || {
            keys::sign(black_box(name), SignatureAlgorithm::Es256, &digest).map(drop)
        }),
        "--verify" => {
            let signature = match keys::sign(name, SignatureAlgorithm::Es256, &digest) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("bench-get: {e}");
                    std::process::exit(1);
                }
            };
            time(n, (n / 10).max(1), || {
                match keys::verify(
                    black_box(name),
                    SignatureAlgorithm::Es256,
                    &digest,
                    &signature,
                ) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(keys::KeyError::InvalidArgument("did not verify".into())),
                    Err(e) => Err(e),
                }
            })
        }
        _ => time(n, n.min(1000), || {
            wasm_secrets_guest::get(black_box(name)).map(drop)
        }),
    }
}
