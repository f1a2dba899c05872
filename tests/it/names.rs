//! Invalid names are refused at the boundary, before grants or backends.

use crate::harness::{Counting, run_guest, run_guest_with};
use wasm_secrets::grants::{Grants, WholeVault};
use wasm_secrets::{SecretsCtx, Vaults};

#[tokio::test]
async fn invalid_names_are_refused_before_any_backend_call() {
    let backend = Counting::new(&[("x", "v-x")]);
    let mut v = Vaults::new();
    v.insert("default", backend.clone());
    let long = "a".repeat(128);
    let bad = [
        "",
        long.as_str(),
        "../x",
        "a/b",
        "x?y",
        "%2e",
        "sécret",
        "名前",
        "a\0b",
        "a b",
    ];
    // A pattern that would cover everything, so that only the name check can refuse.
    let everything = Grants::parse_with(["*"], WholeVault::Allow).unwrap();
    let ctx = SecretsCtx::new("names", everything, v);
    let (code, out) = run_guest_with("secrets-get", ctx, &bad).await;
    assert_eq!(code, 1);
    let kinds: Vec<&str> = out
        .lines()
        .map(|l| l.split(": ").nth(1).unwrap_or("?"))
        .collect();
    assert_eq!(kinds, vec!["invalid-name"; bad.len()], "{out}");
    assert_eq!(backend.calls(), 0);
}

#[tokio::test]
async fn the_longest_valid_name_is_accepted() {
    let name = "a".repeat(127);
    let backend = Counting::new(&[(name.as_str(), "v-long")]);
    let mut v = Vaults::new();
    v.insert("default", backend);
    let (code, out) = run_guest("secrets-get", &[name.as_str()], v, &[name.as_str()]).await;
    assert_eq!((code, out), (0, format!("{name}=v-long\n")));
}
