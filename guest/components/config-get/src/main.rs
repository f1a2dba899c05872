//! `config-get KEY...`: a command written against `wasi:config/store@0.2.0-rc.1` (wasmtime's
//! wasi-config, wasmCloud) only, with no knowledge of wasm-secrets. For each key it prints
//! `KEY=VALUE`, `KEY: absent`, or `KEY: error: MESSAGE`; with no keys it prints the keys of
//! `get-all`, one per line. Exits 1 if any key was absent or failed.
//!
//! Under `wasm-secrets run`, the keys are the secrets this component was granted (a key such as
//! `db_password` also finds `db-password`). `config-get-draft` is the same command built against
//! Spin's `wasi:config@0.2.0-draft-2024-09-27`.

wit_bindgen::generate!({
    path: "../../../wit/deps/config",
    world: "wasi:config/imports",
    generate_all,
});

mod app;

fn main() {
    app::main();
}
