//! The host's identity stays the host's: `run` and `serve` refuse to copy its credential
//! variables into a guest (`--env`) or give it a folder holding its token files (`--dir`),
//! unless the operator says so with `--allow-credential-env` / `--allow-credential-dir`.

use crate::harness::{cli, guest, run_cli, wat};
use std::path::PathBuf;

const CANARY: &str = "canary-credential-value-7f3a";

/// A workload-identity token file as Kubernetes mounts it: `tokens/azure-identity-token`
/// (with the `..data` folder beside it), and an unrelated `other` folder.
struct TokenLayout {
    root: tempfile::TempDir,
}

impl TokenLayout {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("tokens/..data")).unwrap();
        std::fs::create_dir_all(root.path().join("other")).unwrap();
        std::fs::write(root.path().join("tokens/azure-identity-token"), CANARY).unwrap();
        Self { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `run --env A=1 [extra] --dir DIR env-nonempty.wat` with this token file in the host's
    /// environment.
    fn run_with_dir(&self, dir: &str, extra: &[&str]) -> crate::harness::Run {
        run_cli(
            cli()
                .env(
                    "AZURE_FEDERATED_TOKEN_FILE",
                    self.path("tokens/azure-identity-token"),
                )
                .env("WASM_SECRETS_ARC_TOKEN_DIR", "/no/such/arc/folder")
                .args(["run", "--env", "A=1"])
                .args(extra)
                .arg("--dir")
                .arg(self.path(dir))
                .arg(wat("env-nonempty")),
        )
    }
}

#[test]
fn run_and_serve_refuse_the_hosts_identity_variables() {
    let cases: [&[&str]; 4] = [
        &["--env", "AZURE_CLIENT_SECRET"],
        &["--env", "IDENTITY_HEADER"],
        &["--env", "msi_secret"],
        &[
            "--env",
            "AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/t",
        ],
    ];
    for env in cases {
        let name = env[1].split('=').next().unwrap();
        for command in ["run", "serve"] {
            let target = match command {
                "run" => wat("env-nonempty"),
                _ => guest("http-hello"),
            };
            let mut c = cli();
            c.env("AZURE_CLIENT_SECRET", CANARY)
                .env("IDENTITY_HEADER", CANARY)
                .env("msi_secret", CANARY)
                .arg(command);
            if command == "serve" {
                c.args(["--addr", "127.0.0.1:0"]);
            }
            let r = run_cli(c.args(env).arg(target));
            assert_eq!(r.code, 1, "{command} {env:?}: {}", r.stderr);
            assert!(
                r.stderr.contains(&format!("--env {name}: refused: "))
                    && r.stderr.contains("pass --allow-credential-env"),
                "{command} {env:?}: {}",
                r.stderr
            );
            assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
            assert!(!r.stderr.contains(CANARY) && !r.stdout.contains(CANARY));
        }
    }
}

#[test]
fn an_identity_variable_reaches_the_guest_only_with_allow_credential_env() {
    // The guest exits 0 only when its environment is not empty, and gets only --env's.
    assert_eq!(run_cli(cli().arg("run").arg(wat("env-nonempty"))).code, 1);
    let r = run_cli(
        cli()
            .env("AZURE_CLIENT_SECRET", CANARY)
            .args([
                "run",
                "--allow-credential-env",
                "--env",
                "AZURE_CLIENT_SECRET",
            ])
            .arg(wat("env-nonempty")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: --allow-credential-env: the guest gets the host's identity variable AZURE_CLIENT_SECRET"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(CANARY));
    // Identifiers are not credentials.
    let r = run_cli(
        cli()
            .args([
                "run",
                "--env",
                "AZURE_CLIENT_ID=00000000-0000-0000-0000-000000000000",
            ])
            .arg(wat("env-nonempty")),
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn run_refuses_a_dir_that_holds_is_inside_or_contains_the_token_files_folder() {
    let t = TokenLayout::new();
    for dir in ["tokens", "tokens/..data", ""] {
        let r = t.run_with_dir(dir, &[]);
        assert_eq!(r.code, 1, "{dir:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("refused: ")
                && r.stderr
                    .contains("holds the host's Azure identity token files")
                && r.stderr.contains("pass --allow-credential-dir"),
            "{dir:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(!r.stderr.contains(CANARY));
    }
    // A folder beside it is fine.
    let r = t.run_with_dir("other", &[]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn allow_credential_dir_gives_the_token_files_folder_anyway() {
    let t = TokenLayout::new();
    let r = t.run_with_dir("tokens", &["--allow-credential-dir"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: --allow-credential-dir: the guest gets "),
        "{}",
        r.stderr
    );
}
