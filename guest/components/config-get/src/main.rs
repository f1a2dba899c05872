//! `config-get KEY...`: a command written against `wasi:config/store` only, with no knowledge
//! of wasm-secrets. For each key it prints `KEY=VALUE`, `KEY: absent`, or `KEY: error: MESSAGE`;
//! with no keys it prints the keys of `get-all`, one per line. Exits 1 if any key was absent or
//! failed.
//!
//! Under `wasm-secrets run`, the keys are the secrets this component was granted (a key such as
//! `db_password` also finds `db-password`).

wit_bindgen::generate!({
    path: "../../../wit/deps/config",
    world: "wasi:config/imports",
    generate_all,
});

use wasi::config::store;

fn main() {
    let keys: Vec<String> = std::env::args().skip(1).collect();
    if keys.is_empty() {
        match store::get_all() {
            Ok(pairs) => pairs.iter().for_each(|(k, _)| println!("{k}")),
            Err(e) => {
                println!("get-all: error: {}", message(&e));
                std::process::exit(1);
            }
        }
        return;
    }
    let mut failed = false;
    for key in keys {
        match store::get(&key) {
            Ok(Some(value)) => println!("{key}={value}"),
            Ok(None) => {
                failed = true;
                println!("{key}: absent");
            }
            Err(e) => {
                failed = true;
                println!("{key}: error: {}", message(&e));
            }
        }
    }
    std::process::exit(i32::from(failed));
}

fn message(e: &store::Error) -> &str {
    match e {
        store::Error::Upstream(m) | store::Error::Io(m) => m,
    }
}
