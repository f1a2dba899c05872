//! A component written only against `wasi:config/store` reads its granted secrets unchanged, in
//! both versions guests are built against: `config-get` imports `0.2.0-rc.1` (wasmtime's
//! wasi-config, wasmCloud), `config-get-draft` imports `0.2.0-draft-2024-09-27` (Spin's).

use crate::harness::{Counting, run_guest};
use wasm_secrets::Vaults;

fn vaults() -> Vaults {
    let mut v = Vaults::new();
    v.insert(
        "default",
        Counting::new(&[("db-password", "v-db"), ("api-key", "v-api")]),
    );
    v
}

/// One guest per wasi:config version, the same command in each.
const GUESTS: [&str; 2] = ["config-get", "config-get-draft"];

#[tokio::test]
async fn both_versions_import_what_they_say() {
    for (guest, version) in GUESTS.iter().zip(["0.2.0-rc.1", "0.2.0-draft-2024-09-27"]) {
        let bytes = std::fs::read(crate::harness::guest(guest)).unwrap();
        let needle = format!("wasi:config/store@{version}");
        assert!(
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{guest} imports {needle}"
        );
    }
}

#[tokio::test]
async fn granted_keys_are_values_and_everything_else_is_absent() {
    for guest in GUESTS {
        granted_keys_are_values_for(guest).await;
    }
}

async fn granted_keys_are_values_for(guest: &str) {
    let (code, out) = run_guest(
        guest,
        &["db-password", "missing"],
        vaults(),
        &["db_password", "db-password", "api-key", "missing", "../x"],
    )
    .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "db_password=v-db",
            "db-password=v-db",
            "api-key: absent",
            "missing: absent",
            "../x: absent",
        ],
        "{guest}"
    );
    assert_eq!(code, 1, "{guest}");
    assert!(!out.contains("v-api"), "{guest}");
}

#[tokio::test]
async fn get_all_lists_only_granted_keys_that_exist() {
    for guest in GUESTS {
        let (code, out) = run_guest(guest, &["db-password", "missing"], vaults(), &[]).await;
        assert_eq!((code, out.as_str()), (0, "db-password\n"), "{guest}");
    }
}
