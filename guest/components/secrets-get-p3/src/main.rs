//! `secrets-get-p3`: `secrets-get` built as a WASI 0.3 command. It exports
//! `wasi:cli/run@0.3.0`, whose `run` is an async function, and runs the very same code as
//! `secrets-get`, so the two answer byte for byte alike (the tests compare them).
//!
//! `secrets-get-p3 --spin` never returns (for the tests of limits on WASI 0.3 commands).

#[allow(dead_code)]
#[path = "../../secrets-get/src/main.rs"]
mod secrets_get;

use std::process::ExitCode;

struct Command;

wasip3::cli::command::export!(Command);

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        if std::env::args().nth(1).as_deref() == Some("--spin") {
            loop {
                std::hint::spin_loop();
            }
        }
        // WASI 0.3's `run` returns ok or error: a usage error (2) exits 1 here.
        if secrets_get::main() == ExitCode::SUCCESS {
            Ok(())
        } else {
            Err(())
        }
    }
}

/// The WASI 0.2 entry point Rust's standard library exports; a WASI 0.3 host calls `run`.
fn main() {}
