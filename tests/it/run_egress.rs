//! `wasm-secrets run` links outgoing wasi:http with the egress rules `serve` has: deny by
//! default, `--allow-http HOST[:PORT]`, config `egress` rules, `azure-http` token injection, the
//! guest's Authorization removed, the loopback guard. A refused request is an error value in
//! the guest (`HTTP-request-denied`), never a trap: the command goes on.
//!
//! The guest is `http-get` (one `GET` per argument; one line per URL: `URL: STATUS: BODY` or
//! `URL: error: ERROR`), which sends `Authorization: Bearer guest-supplied-token` itself.

use crate::emulator::{self, Emulator};
use crate::harness::{Run, cli, guest, run_cli};
use crate::serve::upstream;
use std::path::PathBuf;
use std::process::Command;

/// `run http-get` with the emulator's identity and vault, `args` before the component, off the
/// test's async threads (the emulator and the upstreams answer there).
pub async fn run_http_get(emu: &Emulator, args: &[&str], urls: &[String]) -> Run {
    run_component(emu, guest("http-get"), args, urls).await
}

async fn run_component(emu: &Emulator, component: PathBuf, args: &[&str], urls: &[String]) -> Run {
    let mut cmd: Command = cli();
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["run", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .args(args)
        .arg(component)
        .args(urls);
    blocking(cmd).await
}

pub async fn blocking(mut cmd: Command) -> Run {
    tokio::task::spawn_blocking(move || run_cli(&mut cmd))
        .await
        .unwrap()
}

/// The line `http-get` printed for `url`.
pub fn line_for<'a>(out: &'a str, url: &str) -> &'a str {
    let prefix = format!("{url}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line for {url} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_reaches_only_allowed_hosts_and_a_refusal_is_an_error_in_the_guest() {
    let emu = emulator::start().await;
    let (allowed, allowed_seen) = upstream().await;
    let (other, other_seen) = upstream().await;
    let urls = [
        format!("http://{other}/first"),
        format!("http://{allowed}/ok"),
        format!("http://localhost:{}/by-name", other.port()),
        format!("http://{allowed}/again"),
    ];
    let r = run_http_get(&emu, &["--allow-http", &allowed.to_string()], &urls).await;
    for denied in [&urls[0], &urls[2]] {
        assert_eq!(
            line_for(&r.stdout, denied),
            "error: ErrorCode::HttpRequestDenied",
            "{}",
            r.stderr
        );
    }
    // The run went on after the refusal, and the guest's own credentials never left.
    for ok in [&urls[1], &urls[3]] {
        assert_eq!(line_for(&r.stdout, ok), "200: upstream ok", "{}", r.stderr);
    }
    assert_eq!(
        r.code, 1,
        "a refused request fails the command, not the run"
    );
    assert_eq!(*allowed_seen.lock().unwrap(), vec![None, None]);
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "nothing reached a host without a rule"
    );
}

/// The same rules hold for a WASI 0.3 command's `wasi:http/client@0.3.0` requests: one
/// implementation (the hooks of both WASI versions) allows, refuses, and strips the guest's
/// `Authorization`.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_command_reaches_only_allowed_hosts_without_its_authorization() {
    let emu = emulator::start().await;
    let (allowed, allowed_seen) = upstream().await;
    let (other, other_seen) = upstream().await;
    let urls = [
        format!("http://{other}/first"),
        format!("http://{allowed}/ok"),
    ];
    let args = ["--allow-http", &allowed.to_string()];
    let r = run_component(&emu, guest("http-get-p3"), &args, &urls).await;
    assert_eq!(
        line_for(&r.stdout, &urls[0]),
        "error: ErrorCode::HttpRequestDenied",
        "{}",
        r.stderr
    );
    assert_eq!(
        line_for(&r.stdout, &urls[1]),
        "200: upstream ok",
        "{}",
        r.stderr
    );
    assert_eq!(
        r.code, 1,
        "a refused request fails the command, not the run"
    );
    assert_eq!(
        *allowed_seen.lock().unwrap(),
        vec![None],
        "the guest's Authorization left"
    );
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "nothing reached a host without a rule"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_with_no_rules_reaches_nothing() {
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let url = format!("http://{up}/");
    let r = run_http_get(&emu, &[], std::slice::from_ref(&url)).await;
    assert_eq!(
        line_for(&r.stdout, &url),
        "error: ErrorCode::HttpRequestDenied"
    );
    assert_eq!(r.code, 1);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn run_attaches_the_hosts_token_for_an_azure_http_rule_from_the_config() {
    azure_http_rule_attaches_the_hosts_token("http-get").await;
}

/// The same from a WASI 0.3 command: its `wasi:http/client@0.3.0` request carries the host's
/// token (not its own), and is one audit line without it.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_command_gets_the_hosts_token_for_an_azure_http_rule() {
    azure_http_rule_attaches_the_hosts_token("http-get-p3").await;
}

/// Runs the guest `name` (`http-get` or a twin) as a config entry of that name with an
/// `azure-http` rule to an upstream on loopback, and checks what the upstream received.
async fn azure_http_rule_attaches_the_hosts_token(name: &str) {
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.toml");
    std::fs::write(
        &config,
        format!(
            "[components.{name}]\nwasm = {:?}\negress = [{{ host = \"acct.blob.core.windows.net:{}\", kind = \"azure-http\", resource = \"https://storage.azure.com\", private = true }}]\n",
            guest(name),
            up.port()
        ),
    )
    .unwrap();
    let url = format!("http://acct.blob.core.windows.net:{}/blob", up.port());
    let mut cmd = cli();
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["run", "--credential", "managed-identity", "-c"])
        .arg(&config)
        .args([
            "--resolve",
            &format!("acct.blob.core.windows.net:{}", up.ip()),
        ])
        .arg("--audit-log")
        .arg(dir.path().join("audit.jsonl"))
        .args([name, &url]);
    let r = blocking(cmd).await;
    assert!(
        line_for(&r.stdout, &url).starts_with("200: upstream ok"),
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let auth = seen.lock().unwrap()[0]
        .clone()
        .expect("an Authorization header");
    assert!(
        auth.starts_with("Bearer ") && auth.contains(&emu.canary()),
        "the host's token was attached"
    );
    assert!(!auth.contains("guest-supplied-token"));
    // The request that carried the host's token is one audit line, without the token.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        !audit.contains(auth.trim_start_matches("Bearer ")),
        "no token in the audit log"
    );
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{audit}");
    let e = &events[0];
    assert_eq!(e["component"], name, "{e}");
    assert_eq!(e["op"], "egress", "{e}");
    assert_eq!(e["host"], "acct.blob.core.windows.net", "{e}");
    assert_eq!(e["resource"], "https://storage.azure.com", "{e}");
    assert_eq!(e["method"], "GET", "{e}");
    assert_eq!(e["status"], 200, "{e}");
    assert_eq!(e["outcome"], "ok", "{e}");
    assert!(e["latency_us"].as_u64().is_some(), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_component_with_default_features_fetches_only_where_allowed() {
    let _compiling = crate::harness::CPU.read().await;
    let js = crate::languages::Lang::JavaScript.guest("http-get");
    // componentize-js's default features import wasi:http (for `fetch`): the case the wasmtime
    // CLI needs `-S http` for, and `run` once refused.
    let compiled = tokio::task::spawn_blocking({
        let js = js.clone();
        move || crate::harness::component_at(&js)
    })
    .await
    .unwrap();
    let imports: Vec<String> = compiled
        .component_type()
        .imports(crate::harness::engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@")),
        "{imports:?}"
    );

    let emu = emulator::start().await;
    let (allowed, allowed_seen) = upstream().await;
    let (other, other_seen) = upstream().await;
    let urls = [
        format!("http://{other}/denied"),
        format!("http://{allowed}/ok"),
    ];
    let r = run_component(&emu, js, &["--allow-http", &allowed.to_string()], &urls).await;
    // The refused fetch rejects inside the guest (StarlingMonkey reports every wasi:http error
    // as a NetworkError); the host says why on stderr; the run goes on to the next URL.
    assert_eq!(
        line_for(&r.stdout, &urls[0]),
        "error: NetworkError when attempting to fetch resource",
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("egress refused: no egress rule allows this host"),
        "{}",
        r.stderr
    );
    assert_eq!(
        line_for(&r.stdout, &urls[1]),
        "200: upstream ok",
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        *allowed_seen.lock().unwrap(),
        vec![None],
        "the guest's Authorization was removed"
    );
    assert!(other_seen.lock().unwrap().is_empty());
}
