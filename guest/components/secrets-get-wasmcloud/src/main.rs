//! `secrets-get-wasmcloud KEY...`: reads each key through wasmCloud's secrets interface
//! (`wasmcloud:secrets/store.get`, then `reveal`), as a component written for wasmCloud does,
//! and prints one line per key:
//!
//! ```text
//! KEY=VALUE
//! KEY: not-found
//! KEY: upstream: <why>
//! ```
//!
//! Exit code 1 if any key failed, 2 with no keys.

use std::process::ExitCode;

wit_bindgen::generate!({
    path: "../../../wit/deps/secrets-wasmcloud",
    world: "wasmcloud:secrets/imports",
});

use wasmcloud::secrets::reveal::reveal;
use wasmcloud::secrets::store::{SecretValue, SecretsError, get};

fn main() -> ExitCode {
    let keys: Vec<String> = std::env::args().skip(1).collect();
    if keys.is_empty() {
        eprintln!("usage: secrets-get-wasmcloud KEY...");
        return ExitCode::from(2);
    }
    let mut ok = true;
    for key in &keys {
        match get(key) {
            Ok(secret) => match reveal(&secret) {
                SecretValue::String(v) => println!("{key}={v}"),
                SecretValue::Bytes(b) => println!("{key}={}", String::from_utf8_lossy(&b)),
            },
            Err(e) => {
                ok = false;
                match e {
                    SecretsError::NotFound => println!("{key}: not-found"),
                    SecretsError::Upstream(why) => println!("{key}: upstream: {why}"),
                    SecretsError::Io(why) => println!("{key}: io: {why}"),
                }
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
