//! A component written only against `wasi:config/store` reads its granted secrets unchanged.

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

#[tokio::test]
async fn granted_keys_are_values_and_everything_else_is_absent() {
    let (code, out) = run_guest(
        "config-get",
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
        ]
    );
    assert_eq!(code, 1);
    assert!(!out.contains("v-api"));
}

#[tokio::test]
async fn get_all_lists_only_granted_keys_that_exist() {
    let (code, out) = run_guest("config-get", &["db-password", "missing"], vaults(), &[]).await;
    assert_eq!((code, out.as_str()), (0, "db-password\n"));
}
