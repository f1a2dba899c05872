//! `config-get-draft KEY...`: `config-get` built against `wasi:config@0.2.0-draft-2024-09-27`,
//! the version Spin's SDK imports, so a component written for Spin reads its granted secrets
//! under wasm-secrets unchanged.

wit_bindgen::generate!({
    path: "../../../wit/deps/config-draft",
    world: "wasi:config/imports",
    generate_all,
});

mod app;

fn main() {
    app::main();
}
