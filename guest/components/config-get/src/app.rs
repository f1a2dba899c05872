//! The command itself, over whichever `wasi:config` version the binary generated bindings for.

use crate::wasi::config::store;

pub fn main() {
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
