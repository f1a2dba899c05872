//! A component written only against `wasi:config/store` reads its granted secrets unchanged, in
//! each of the three versions guests are built against: `config-get` imports `0.2.0-rc.1`
//! (wasmtime's wasi-config), `config-get-draft` imports `0.2.0-draft-2024-09-27` (Spin's), and
//! `config-get-wasmcloud` (built with wasmCloud's component SDK, `wasmcloud-component` 0.2)
//! imports `0.2.0-draft`; through the library, `run`, and (an HTTP handler built with the same
//! SDK) `serve`.

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
const GUESTS: [&str; 3] = ["config-get", "config-get-draft", "config-get-wasmcloud"];

#[tokio::test]
async fn each_version_imports_what_it_says() {
    let versions = ["0.2.0-rc.1", "0.2.0-draft-2024-09-27", "0.2.0-draft"];
    for (guest, version) in GUESTS.iter().zip(versions) {
        let imports: Vec<String> = crate::harness::component(guest)
            .component_type()
            .imports(crate::harness::engine())
            .map(|(name, _)| name.to_owned())
            .filter(|name| name.starts_with("wasi:config/"))
            .collect();
        assert_eq!(imports, [format!("wasi:config/store@{version}")], "{guest}");
    }
}

/// `wasm-secrets run` of the component built with wasmCloud's SDK: the granted key's value,
/// the ungranted one absent without its value anywhere.
#[test]
fn run_gives_a_wasmcloud_component_its_granted_keys() {
    let secrets =
        crate::harness::temp_file(".toml", b"db-password = \"v-db\"\napi-key = \"v-api\"\n");
    let r = crate::harness::run_cli(
        crate::harness::cli()
            .args(["run", "--grant", "db-password", "--secrets-file"])
            .arg(secrets.path())
            .arg(crate::harness::guest("config-get-wasmcloud"))
            .args(["db_password", "api_key"]),
    );
    assert_eq!(
        r.stdout, "db_password=v-db\napi_key: absent\n",
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 1);
    assert!(!r.stdout.contains("v-api") && !r.stderr.contains("v-api"));
}

/// `wasm-secrets serve` of an HTTP handler built with wasmCloud's SDK: a granted key is read
/// (its length, never its value), an ungranted one is absent, and `get-all` lists only the
/// granted names that exist.
#[tokio::test(flavor = "multi_thread")]
async fn serve_gives_a_wasmcloud_http_handler_its_granted_keys() {
    let emu = crate::emulator::start().await;
    let args: Vec<std::ffi::OsString> = vec![
        "--grant".into(),
        "db-password".into(),
        "--grant".into(),
        "no-such-secret".into(),
        crate::harness::guest("config-http-wasmcloud").into(),
    ];
    let s = crate::serve::ServeBinary::start_with(&emu, &args, &[]).await;
    assert_eq!(
        s.get("/db_password").await,
        (200, "db_password: 18 characters\n".into())
    );
    assert_eq!(s.get("/api_key").await, (200, "api_key: absent\n".into()));
    assert_eq!(
        s.get("/no-such-secret").await,
        (200, "no-such-secret: absent\n".into())
    );
    assert_eq!(s.get("/").await, (200, "db-password\n".into()));
    for path in ["/db_password", "/api_key", "/"] {
        let (_, body) = s.get(path).await;
        for value in crate::emulator::ALL_VALUES {
            assert!(!body.contains(value), "{path}: {body}");
        }
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
