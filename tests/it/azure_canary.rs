//! The canary test (design section 8): every token the emulator mints carries a canary string.
//! The `wasm-secrets` binary runs at `WASM_SECRETS_LOG=trace` through granted, denied,
//! not-found, forbidden and fault scenarios; neither the guest's output, nor the host's log
//! lines, nor the audit log may contain the canary (or any other piece of a token).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::emulator::*;
use crate::harness::{Run, cli, guest, run_cli};

/// Variables that could point the CLI at something other than this test's emulator.
const AZURE_VARS: &[&str] = &[
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "WASM_SECRETS_ARC_TOKEN_DIR",
];

/// One CLI run of `secrets-get` against the emulator over IMDS, at trace level.
struct Scenario<'a> {
    what: &'a str,
    grants: &'a [&'a str],
    extra_flags: &'a [&'a str],
    args: &'a [&'a str],
}

struct Outcome {
    run: Run,
    audit: String,
}

/// Runs the scenario in a child process while this process serves the emulator.
async fn run(emu: &Emulator, s: &Scenario<'_>) -> Outcome {
    let audit = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = cli();
    for v in AZURE_VARS {
        cmd.env_remove(v);
    }
    cmd.env("WASM_SECRETS_LOG", TRACE)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["run", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .arg("--audit-log")
        .arg(audit.path());
    for g in s.grants {
        cmd.args(["--grant", g]);
    }
    cmd.args(s.extra_flags)
        .arg(guest("secrets-get"))
        .args(s.args);
    let run = tokio::task::spawn_blocking(move || run_cli(&mut cmd))
        .await
        .unwrap();
    let audit = std::fs::read_to_string(audit.path()).unwrap();
    Outcome { run, audit }
}

/// Pieces of a token that must never appear: the canary, and the token's first segment.
fn token_pieces(emu: &Emulator) -> Vec<String> {
    let system = &emu.config().identities.system;
    let token = emu.mint_token(VAULT_RESOURCE, &system.client_id, &system.object_id);
    let header = token.split('.').next().unwrap().to_owned();
    assert_eq!(
        header,
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256","kid":"wasm-secrets-emulator"}"#)
    );
    vec![emu.canary(), header]
}

/// Fails if the guest's output, the host's log or the audit log holds the canary, the JWT
/// header, or any 12-character piece of any token the emulator minted so far, or a secret value.
fn assert_no_token_anywhere(emu: &Emulator, what: &str, o: &Outcome) {
    for piece in token_pieces(emu) {
        assert!(
            !o.run.stdout.contains(&piece),
            "{what}: guest output holds a token piece:\n{}",
            o.run.stdout
        );
        assert!(
            !o.run.stderr.contains(&piece),
            "{what}: host log holds a token piece:\n{}",
            o.run.stderr
        );
        assert!(
            !o.audit.contains(&piece),
            "{what}: audit log holds a token piece:\n{}",
            o.audit
        );
    }
    assert!(
        o.run.stderr.contains("TRACE"),
        "{what}: the host did not log at trace level, so this proves nothing:\n{}",
        o.run.stderr
    );
    for value in ALL_VALUES {
        assert!(
            !o.run.stderr.contains(value),
            "{what}: host log holds a secret value"
        );
        assert!(
            !o.audit.contains(value),
            "{what}: audit log holds a secret value"
        );
    }
    assert_no_piece(
        &emu.minted_tokens(),
        &[
            (&format!("{what}: guest output"), &o.run.stdout),
            (&format!("{what}: host log"), &o.run.stderr),
            (&format!("{what}: audit log"), &o.audit),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_guest_output_host_logs_or_the_audit_log() {
    let emu = start().await;
    let user = emu.config().identities.user_assigned[0].client_id.clone();

    let s = Scenario {
        what: "granted, denied, not found, disabled, forbidden",
        grants: &[
            "db-password",
            "no-such-secret",
            "disabled-secret",
            "restricted",
        ],
        extra_flags: &[],
        args: &[
            "db-password",
            "api-key",
            "no-such-secret",
            "disabled-secret",
            "restricted",
        ],
    };
    let o = run(&emu, &s).await;
    assert_no_token_anywhere(&emu, s.what, &o);
    let lines: Vec<&str> = o.run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}\n{}", o.run.stdout, o.run.stderr);
    assert_eq!(lines[0], format!("db-password={DB_PASSWORD}"));
    assert_eq!(error_kind(lines[1], "api-key"), Some("not-granted"));
    assert_eq!(error_kind(lines[2], "no-such-secret"), Some("not-found"));
    assert_eq!(error_kind(lines[3], "disabled-secret"), Some("not-found"));
    assert_eq!(error_kind(lines[4], "restricted"), Some("forbidden"));
    assert_eq!(o.run.code, 1);
    assert_eq!(o.audit.lines().count(), 5, "{}", o.audit);

    let user_flags = ["--client-id", user.as_str()];
    let s = Scenario {
        what: "user-assigned identity, list and info",
        grants: &["restricted", "feature-*"],
        extra_flags: &user_flags,
        args: &["restricted", "--info", "feature-alpha"],
    };
    let o = run(&emu, &s).await;
    assert_no_token_anywhere(&emu, s.what, &o);
    assert!(
        o.run
            .stdout
            .starts_with(&format!("restricted={RESTRICTED}\n")),
        "{}\n{}",
        o.run.stdout,
        o.run.stderr
    );
    assert!(
        o.run.stdout.contains("name=feature-alpha"),
        "{}",
        o.run.stdout
    );

    let s = Scenario {
        what: "list",
        grants: &["feature-*", "db-password"],
        extra_flags: &[],
        args: &[],
    };
    let o = run(&emu, &s).await;
    assert_no_token_anywhere(&emu, s.what, &o);
    assert_eq!(
        o.run.stdout, "db-password\nfeature-alpha\nfeature-beta\n",
        "{}",
        o.run.stderr
    );

    let unknown = ["--client-id", "00000000-0000-4000-8000-0000000000ff"];
    let s = Scenario {
        what: "IMDS refuses the identity",
        grants: &["db-password"],
        extra_flags: &unknown,
        args: &["db-password"],
    };
    let o = run(&emu, &s).await;
    assert_no_token_anywhere(&emu, s.what, &o);
    assert_eq!(
        error_kind(o.run.stdout.trim_end(), "db-password"),
        Some("forbidden"),
        "{}",
        o.run.stdout
    );

    emu.set_faults(Endpoint::KeyVault, repeat(status(503), 10));
    let s = Scenario {
        what: "Key Vault keeps failing",
        grants: &["db-password"],
        extra_flags: &[],
        args: &["db-password"],
    };
    let o = run(&emu, &s).await;
    assert_no_token_anywhere(&emu, s.what, &o);
    assert_eq!(
        error_kind(o.run.stdout.trim_end(), "db-password"),
        Some("unavailable"),
        "{}",
        o.run.stdout
    );

    emu.set_faults(Endpoint::KeyVault, vec![]);
    emu.set_faults(Endpoint::Imds, vec![Fault::MalformedBody]);
    let s = Scenario {
        what: "IMDS answers nonsense",
        grants: &["db-password"],
        extra_flags: &[],
        args: &["db-password"],
    };
    let o = run(&emu, &s).await;
    assert_no_token_anywhere(&emu, s.what, &o);
    assert_eq!(
        error_kind(o.run.stdout.trim_end(), "db-password"),
        Some("unavailable"),
        "{}",
        o.run.stdout
    );
}

/// The log filter of the trace-level runs below: everything at trace, but for the compiler's
/// internals (cranelift, regalloc, wasmtime's compiler and environment crates, wasmparser),
/// which see wasm code and never a token, and whose trace output for compiling one component
/// runs to hundreds of megabytes.
const TRACE: &str = "trace,cranelift=warn,regalloc2=warn,wasmtime_internal_cranelift=warn,wasmtime_cranelift=warn,wasmtime_environ=warn,wasmtime_internal_environ=warn,wasmparser=warn,winch=warn";

/// Fails if any 12-character piece of any of `tokens` appears in any of `texts`. One pass
/// over each text: every 12-byte window is looked up among the tokens' pieces.
fn assert_no_piece(tokens: &[String], texts: &[(&str, &str)]) {
    const PIECE: usize = 12;
    assert!(
        !tokens.is_empty(),
        "no token was minted, so this proves nothing"
    );
    let pieces: std::collections::HashSet<&[u8]> = tokens
        .iter()
        .flat_map(|t| t.as_bytes().windows(PIECE))
        .collect();
    for (what, text) in texts {
        if let Some(hit) = text.as_bytes().windows(PIECE).find(|w| pieces.contains(w)) {
            panic!(
                "{what} holds {:?}, a piece of a minted token:\n{text}",
                String::from_utf8_lossy(hit)
            );
        }
    }
}

/// A loopback upstream that answers `ok` and never echoes anything.
async fn quiet_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(hyper::body::Bytes::from("ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_at_trace_level_shows_no_piece_of_any_token() {
    let emu = start().await;
    let up = quiet_upstream().await;
    let audit = tempfile::NamedTempFile::new().unwrap();
    let config = format!(
        "[components.api]\nwasm = {:?}\ngrants = [\"db-password\", \"restricted\"]\negress = [{{ host = \"acct.blob.core.windows.net:{}\", kind = \"azure-http\", resource = \"https://storage.azure.com\", private = true }}]\n",
        guest("http-hello"),
        up.port()
    );
    let config_file = crate::harness::temp_file(".toml", config.as_bytes());
    let args: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        config_file.path().into(),
        "--audit-log".into(),
        audit.path().into(),
        "--resolve".into(),
        format!("acct.blob.core.windows.net:{}", up.ip()).into(),
        "api".into(),
    ];
    let serve =
        crate::serve::ServeBinary::start_with(&emu, &args, &[("WASM_SECRETS_LOG", TRACE)]).await;
    let mut answers = Vec::new();
    for path in [
        "/db-password".to_owned(),
        "/restricted".to_owned(),
        "/api-key".to_owned(),
        format!(
            "/egress?url=http://acct.blob.core.windows.net:{}/blob",
            up.port()
        ),
        "/db-password".to_owned(),
    ] {
        eprintln!("GET {path}");
        answers.push(serve.get(&path).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 500, 403, 200, 200], "{answers:?}");
    let (code, stderr) = tokio::task::spawn_blocking(move || serve.signal_and_wait("TERM"))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("TRACE"), "not at trace level: {stderr}");
    let bodies = answers
        .iter()
        .map(|(_, b)| b.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let audit = std::fs::read_to_string(audit.path()).unwrap();
    // Two audiences were minted for: the vault's, and storage's for the egress call.
    let minted = emu.minted_tokens();
    assert!(minted.len() >= 2, "{} tokens", minted.len());
    assert_no_piece(
        &minted,
        &[
            ("the answers", &bodies),
            ("the host log", &stderr),
            ("the audit log", &audit),
        ],
    );
    for value in ALL_VALUES {
        assert!(!stderr.contains(value) && !audit.contains(value) && !bodies.contains(value));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_at_trace_level_shows_no_piece_of_any_token() {
    let emu = start().await;
    let mut cmd = cli();
    for v in AZURE_VARS {
        cmd.env_remove(v);
    }
    cmd.env("WASM_SECRETS_LOG", TRACE)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["check", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .args(["-g", "db-password", "-g", "restricted", "-g", "feature-*"]);
    let run = tokio::task::spawn_blocking(move || run_cli(&mut cmd))
        .await
        .unwrap();
    assert!(
        run.stderr.contains("TRACE"),
        "not at trace level: {}",
        run.stderr
    );
    assert!(run.stdout.contains("db-password"), "{}", run.stdout);
    assert_no_piece(
        &emu.minted_tokens(),
        &[
            ("check's output", &run.stdout),
            ("check's log", &run.stderr),
        ],
    );
}

#[test]
fn the_demo_at_trace_level_shows_no_piece_of_a_token() {
    // The demo runs its own emulator in its own process, so its tokens are not at hand here:
    // every one starts with the same JWT header and carries the default canary, and every
    // 12-character piece of those must stay out of what it prints.
    let run = run_cli(cli().env("WASM_SECRETS_LOG", TRACE).arg("demo"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("TRACE"), "not at trace level");
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256","kid":"wasm-secrets-emulator"}"#);
    let canary = wasm_secrets_emulator::config::DEFAULT_CANARY.to_owned();
    // The demo names the marker itself, in one line saying nothing else holds it.
    let output: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("Every token it minted carries the marker"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        run.stdout.len() > output.len() + 1,
        "the demo no longer names its marker"
    );
    assert_no_piece(
        &[format!("{header}."), canary],
        &[
            ("the demo's output", &output),
            ("the demo's log", &run.stderr),
        ],
    );
}
