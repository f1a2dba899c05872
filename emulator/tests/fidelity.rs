//! The fidelity test: the REAL Azure SDK for Python (azure-identity, azure-keyvault-secrets and -keys) against the
//! emulator, via tests/fidelity/test_fidelity.py. Python comes from WASM_SECRETS_PYTHON (default `python3`).

mod common;

use std::path::PathBuf;
use std::process::Command;

const FIX: &str = "run: python3 -m venv .venv && .venv/bin/pip install -r tests/fidelity/requirements.txt, then set WASM_SECRETS_PYTHON=.venv/bin/python";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_azure_sdk_for_python_accepts_the_emulator() {
    let emu = common::start().await;
    let c = emu.config();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("tests/fidelity/test_fidelity.py");
    let python = std::env::var("WASM_SECRETS_PYTHON").unwrap_or_else(|_| "python3".into());
    let python = if python.contains('/') && PathBuf::from(&python).is_relative() {
        root.join(python).display().to_string()
    } else {
        python
    };
    let mut cmd = Command::new(&python);
    cmd.arg(&script).current_dir(&root);
    // Nothing Azure from the outer environment: only emulator endpoints, loopback only.
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_")
            || k.starts_with("IDENTITY_")
            || k.starts_with("MSI_")
            || k == "IMDS_ENDPOINT"
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("EMU_VAULT", emu.default_vault_url())
        .env("EMU_PAYMENTS_VAULT", emu.vault_url("payments").unwrap())
        .env("EMU_CA", emu.ca_cert_path())
        .env("EMU_CANARY", emu.canary())
        .env("EMU_IMDS", emu.imds_base())
        .env("EMU_ADMIN", emu.admin_url())
        .env("EMU_UA_CLIENT_ID", &c.identities.user_assigned[0].client_id)
        .env("EMU_APP_SERVICE_ENDPOINT", emu.app_service_endpoint())
        .env("EMU_APP_SERVICE_HEADER", emu.app_service_header())
        .env("EMU_TENANT", emu.tenant_id())
        .env("EMU_AUTHORITY", emu.authority_host())
        .env(
            "EMU_SP_CLIENT_ID",
            &c.identities.service_principals[0].client_id,
        )
        .env(
            "EMU_SP_SECRET",
            &c.identities.service_principals[0].client_secret,
        )
        .env("EMU_FED_CLIENT_ID", &c.identities.federated[0].client_id)
        .env("EMU_FED_ASSERTION", &c.identities.federated[0].assertion);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("cannot run {python}: {e}; {FIX}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) || stdout.contains("MISSING-AZURE-PACKAGES") {
        panic!("the Azure SDK for Python is not installed for {python}; {FIX}");
    }
    assert!(
        out.status.success() && stdout.contains("ALL FIDELITY CHECKS PASSED"),
        "fidelity test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    eprintln!("{stdout}");
}
