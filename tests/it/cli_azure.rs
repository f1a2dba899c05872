//! The Azure path from the command line, as a new user meets it: `wasm-secrets emulator` in
//! one terminal, `wasm-secrets run` with the variables it printed in another; `check`; `demo`.

use crate::harness::{cli, guest, run_cli};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// `wasm-secrets emulator`, killed when dropped.
pub(crate) struct EmulatorProcess {
    child: Child,
    exports: HashMap<String, String>,
}

impl EmulatorProcess {
    pub(crate) fn start() -> Self {
        let mut child = cli()
            .arg("emulator")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wasm-secrets emulator");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut exports = HashMap::new();
        // The exports come first: one line per variable a client needs.
        for _ in 0..7 {
            let line = lines.next().expect("an export line").unwrap();
            let (k, v) = line
                .strip_prefix("export ")
                .and_then(|kv| kv.split_once('='))
                .unwrap_or_else(|| panic!("not an export line: {line}"));
            exports.insert(k.to_owned(), v.trim_matches('\'').to_owned());
        }
        Self { child, exports }
    }

    pub(crate) fn var(&self, name: &str) -> &str {
        &self.exports[name]
    }

    /// The variables it exported.
    pub(crate) fn exports(&self) -> impl Iterator<Item = (&str, &str)> {
        self.exports.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn emulator_prints_its_exports_and_run_reads_a_secret_through_managed_identity() {
    let emu = EmulatorProcess::start();
    for name in [
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "AZURE_AUTHORITY_HOST",
        "AZURE_TENANT_ID",
        "WASM_SECRETS_VAULT",
        "WASM_SECRETS_CA_CERT",
    ] {
        assert!(emu.exports.contains_key(name), "missing export {name}");
    }
    let mut cmd = cli();
    for (k, v) in &emu.exports {
        cmd.env(k, v);
    }
    let r = run_cli(
        cmd.args(["run", "--vault", emu.var("WASM_SECRETS_VAULT"), "--ca-cert"])
            .arg(emu.var("WASM_SECRETS_CA_CERT"))
            .args(["--credential", "managed-identity", "--grant", "db-password"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(r.stdout, "db-password=s3cr3t-db-password\n", "{}", r.stderr);
    assert_eq!(r.code, 0);
}

#[test]
fn check_reports_one_line_per_grant_and_fails_if_any_grant_fails() {
    let emu = EmulatorProcess::start();
    let mut cmd = cli();
    for (k, v) in &emu.exports {
        cmd.env(k, v);
    }
    let r = run_cli(cmd.args([
        "check",
        "--credential",
        "managed-identity",
        "-g",
        "db-password",
        "-g",
        "feature-*",
        "-g",
        "restricted",
        "-g",
        "nope",
        "-g",
        "old=db-password@0123456789abcdef0123456789abcdef",
        "-g",
        "key:signer=jwt-signing-key:sign,verify",
        "-g",
        "key:verify-only-key:sign",
        "-g",
        "key:disabled-key:sign",
        "-g",
        "key:missing-key:verify",
    ]));
    let line = |needle: &str| {
        r.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle}: {}", r.stdout))
            .to_owned()
    };
    // The exports name the App Service endpoint too, which managed identity prefers (as the SDKs do).
    assert!(
        line("vault default:").contains("credential app-service"),
        "{}",
        r.stdout
    );
    assert!(line("vault default: ok").contains("reachable"));
    assert!(line("grant (flags) db-password:").contains(": ok"));
    assert!(line("grant (flags) feature-*:").contains("matches 2 secrets"));
    assert!(line("grant (flags) restricted:").contains("FAILED: forbidden"));
    assert!(line("grant (flags) nope:").contains("FAILED: not found"));
    assert!(line("grant (flags) old=db-password@").contains(": ok, version 0123"));
    let signer = line("grant (flags) key:signer=jwt-signing-key:sign,verify:");
    assert!(
        signer.contains(": ok, default/jwt-signing-key is an EC P-256 key (version "),
        "{signer}"
    );
    assert!(
        line("grant (flags) key:verify-only-key:sign:")
            .contains("FAILED: the key default/verify-only-key does not permit sign"),
        "{}",
        r.stdout
    );
    assert!(
        line("grant (flags) key:disabled-key:sign:")
            .contains("FAILED: default/disabled-key is disabled")
    );
    assert!(line("grant (flags) key:missing-key:verify:").contains("FAILED: not found"));
    assert_eq!(r.code, 1);
    assert!(!r.stdout.contains("s3cr3t") && !r.stdout.contains("old-db-password"));
}

#[test]
fn demo_tells_the_story_with_no_network() {
    let r = run_cli(cli().arg("demo"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for needle in [
        "postgres://app:****@",
        "db-password=s3cr3t-db-password",
        "api-key: not-granted",
        "nope: not-found",
        "restricted: forbidden",
        "../etc: invalid-name",
        "\"cache\":\"hit\"",
        "3. `jwt-sign` is granted the key jwt-signing-key",
        "\"op\":\"sign\"",
        "\"algorithm\":\"ES256\"",
        "verifies against jwt-signing-key's public key: true",
        "jwt-sign: not-granted: ",
        "1 token request(s) to IMDS",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("WSCANARY-") || r.stdout.matches("WSCANARY-").count() == 1);
}
