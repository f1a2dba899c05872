//! The same guests in Rust, Python and JavaScript (and in Rust again as WASI 0.3 components:
//! `secrets-get-p3`, `http-hello-p3`), held to the same table of cases: each
//! language's `secrets-get` must print exactly what the Rust one prints, through the real CLI
//! against the emulator's Key Vault and through the library; each `http-hello` must answer real
//! requests under `serve` exactly as the Rust one does. The Python and JavaScript components
//! come from `guest/python/build` and `guest/js/build` (tests/run builds them).

use crate::emulator::{self, Emulator};
use crate::harness::{Run, cli, run_cli};
use crate::serve::ServeBinary;
use std::path::PathBuf;
use std::process::Command;
use wasm_secrets::runtime::{CommandOptions, Outcome};
use wasm_secrets::{Grants, SecretsCtx};

/// A language guests are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    /// Rust, built as a WASI 0.3 component (`NAME-p3`).
    RustP3,
    Python,
    /// Python, built as a WASI 0.3 component (`NAME-p3`; only `http-hello` so far).
    PythonP3,
    JavaScript,
}

pub const LANGS: [Lang; 4] = [Lang::Rust, Lang::RustP3, Lang::Python, Lang::JavaScript];

impl Lang {
    /// The built component `name` (`secrets-get`, `http-hello`, `bench-get`) in this language.
    pub fn guest(self, name: &str) -> PathBuf {
        let dir = match self {
            Lang::Rust => return crate::harness::guest(name),
            Lang::RustP3 => return crate::harness::guest(&format!("{name}-p3")),
            Lang::Python => "python",
            Lang::PythonP3 => return Lang::Python.guest(&format!("{name}-p3")),
            Lang::JavaScript => "js",
        };
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../guest")
            .join(dir)
            .join("dist")
            .join(format!("{name}.wasm"));
        assert!(
            path.is_file(),
            "{} is missing: build it with guest/{dir}/build (tests/run installs the toolchain and does)",
            path.display()
        );
        path
    }
}

/// The grants every case runs with: a plain grant, an alias, a secret the vault lacks, one the
/// identity may not read.
const GRANTS: [&str; 4] = ["db-password", "api=api-key", "no-such-secret", "restricted"];

/// Each argument and the outcome every language must report for it.
const CASES: [(&str, &str); 6] = [
    ("db-password", "=s3cr3t-db-password"),
    ("api", "=api-key-value-42"),
    ("stripe-key", ": not-granted: "),
    ("bad_name!", ": invalid-name: "),
    ("no-such-secret", ": not-found: "),
    ("restricted", ": forbidden: "),
];

/// `wasm-secrets run` of `component` against the emulator with [`GRANTS`].
async fn run_secrets_get(emu: &Emulator, component: PathBuf, args: &[&str]) -> Run {
    let mut cmd: Command = cli();
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["run", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path());
    for grant in GRANTS {
        cmd.args(["--grant", grant]);
    }
    cmd.arg(component).args(args);
    tokio::task::spawn_blocking(move || run_cli(&mut cmd))
        .await
        .unwrap()
}

/// `lang`'s `secrets-get`, compiled into the cache the CLI reads (once, however many tests ask).
async fn secrets_get(lang: Lang) -> PathBuf {
    let path = lang.guest("secrets-get");
    let compile = path.clone();
    tokio::task::spawn_blocking(move || crate::harness::component_at(&compile))
        .await
        .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_get_reports_every_case_alike_in_every_language_through_the_cli() {
    let emu = emulator::start().await;
    let args: Vec<&str> = CASES.iter().map(|(arg, _)| *arg).collect();
    let mut outputs = Vec::new();
    for lang in LANGS {
        let r = run_secrets_get(&emu, secrets_get(lang).await, &args).await;
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            CASES.len(),
            "{lang:?}: {}\n{}",
            r.stdout,
            r.stderr
        );
        for ((arg, outcome), line) in CASES.iter().zip(&lines) {
            assert!(
                line.starts_with(&format!("{arg}{outcome}")),
                "{lang:?}: {arg}: {line}"
            );
        }
        assert_eq!(r.code, 1, "{lang:?}: any failure exits 1: {}", r.stderr);
        assert!(!r.stdout.contains(&emu.canary()), "{lang:?}");
        outputs.push((lang, r.stdout));

        // With no arguments: the names granted and present; never a vault secret outside the
        // grants (stripe-key, feature-alpha, ...), never one the vault lacks.
        let r = run_secrets_get(&emu, lang.guest("secrets-get"), &[]).await;
        assert_eq!(r.code, 0, "{lang:?}: {}", r.stderr);
        let names: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(names, ["api", "db-password", "restricted"], "{lang:?}");
    }
    for (lang, out) in &outputs[1..] {
        assert_eq!(
            out, &outputs[0].1,
            "{lang:?} prints exactly what Rust prints"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_get_runs_through_the_library_in_every_language() {
    let _compiling = crate::harness::CPU.read().await;
    for lang in LANGS {
        let path = secrets_get(lang).await;
        let component = crate::harness::component_at(&path);
        let mut vaults = wasm_secrets::Vaults::new();
        vaults.insert(
            "default",
            crate::harness::Counting::new(&[("db-password", "pw-1"), ("api-key", "k-2")]),
        );
        let secrets = SecretsCtx::new(
            "secrets-get",
            Grants::parse(["db-password", "missing"]).unwrap(),
            vaults,
        );
        let options = CommandOptions {
            args: ["secrets-get", "db-password", "api-key", "missing", "a.b"]
                .map(String::from)
                .to_vec(),
            capture_output: true,
            ..CommandOptions::default()
        };
        let result = crate::harness::runtime()
            .run_command(&component, secrets, &options)
            .await
            .unwrap();
        let out = String::from_utf8(result.stdout).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{lang:?}: {out}");
        assert_eq!(lines[0], "db-password=pw-1", "{lang:?}");
        assert!(
            lines[1].starts_with("api-key: not-granted: "),
            "{lang:?}: {}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("missing: not-found: "),
            "{lang:?}: {}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("a.b: invalid-name: "),
            "{lang:?}: {}",
            lines[3]
        );
        assert!(!out.contains("k-2"), "{lang:?}");
        assert!(
            matches!(result.outcome, Outcome::Exited(1)),
            "{lang:?}: {:?}",
            result.outcome
        );
    }
}

/// `http-hello` in every language, and as a WASI 0.3 handler in Rust and Python, under the real
/// `wasm-secrets serve`: the same statuses and bodies byte for byte, and never a value.
#[tokio::test(flavor = "multi_thread")]
async fn http_hello_answers_alike_under_serve_in_every_language() {
    let _compiling = crate::harness::CPU.read().await;
    let emu = emulator::start().await;
    let paths = [
        ("/", 200),
        ("/db-password", 200),
        ("/stripe-key", 403),
        ("/no-such-secret", 404),
        ("/bad_name!", 400),
        ("/restricted", 500),
    ];
    let mut answers = Vec::new();
    for lang in LANGS.into_iter().chain([Lang::PythonP3]) {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        for grant in GRANTS {
            args.push("--grant".into());
            args.push(grant.into());
        }
        args.push(lang.guest("http-hello").into());
        let s = ServeBinary::start_with(&emu, &args, &[]).await;
        let mut got = Vec::new();
        for (path, status) in paths {
            let (code, body) = s.get(path).await;
            assert_eq!(code, status, "{lang:?} {path}: {body}");
            assert!(
                !body.contains("s3cr3t") && !body.contains(&emu.canary()),
                "{lang:?}"
            );
            got.push((code, body));
        }
        assert_eq!(
            got[0].1, "hello: read secret 'db-password' (18 characters)\n",
            "{lang:?}"
        );
        answers.push((lang, got));
    }
    for (lang, got) in &answers[1..] {
        assert_eq!(got, &answers[0].1, "{lang:?} answers exactly as Rust does");
    }
}
