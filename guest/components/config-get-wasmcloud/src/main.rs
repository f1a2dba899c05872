//! `config-get-wasmcloud KEY...`: `config-get` built with wasmCloud's Rust component SDK
//! (`wasmcloud-component` 0.2), whose bindings import `wasi:config/store@0.2.0-draft`: a
//! component written for wasmCloud, which reads its granted secrets under wasm-secrets
//! unchanged.

#[path = "../../config-get/src/app.rs"]
mod app;

/// Where `app` finds the store: wasmCloud's SDK's own bindings.
mod wasi {
    pub mod config {
        pub use wasmcloud_component::wasi::config::store;
    }
}

fn main() {
    app::main();
}
