//! Egress checks the address it connects to, not the name a rule allows (issue: a guest
//! allowed to call a vendor's name reached the host's identity endpoint through it and got a
//! token). A hostile vendor points its name at the emulator's IMDS (the production attack is
//! an A record for 169.254.169.254; here `--resolve`/a pinned name to the emulator's loopback
//! address and port), and the guest sends what IMDS wants, `Metadata: true` included (the
//! `http-hello` guests send every identity endpoint's header on every request).

use crate::emulator::{self, Endpoint};
use crate::harness::cli;
use crate::run_egress::{blocking, line_for, run_http_get};
use crate::serve::{start, upstream};
use std::sync::Arc;
use wasm_secrets::egress::{EgressPolicy, EgressRule, Resolver};
use wasm_secrets::token_cache::TokenCache;
use wasm_secrets_cli::server::ServeOptions;

const VENDOR: &str = "api.plugin-vendor.test";

/// The IMDS token request a hostile guest sends through a name that leads to `port`.
fn token_url(port: u16) -> String {
    format!(
        "http://{VENDOR}:{port}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    )
}

fn port_of(base: &str) -> u16 {
    url::Url::parse(base).unwrap().port().unwrap()
}

fn refused_metric(reason: &str) -> f64 {
    crate::harness::metric(&format!(
        "wasm_secrets_egress_refused_total{{reason=\"{reason}\"}}"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_an_allowed_name_pointing_at_the_identity_endpoint_gets_no_token() {
    let emu = emulator::start().await;
    let imds_port = port_of(&emu.imds_base());
    // The host's own credential: IMDS at the emulator (as the guest's vault reads use).
    let http = emulator::http(&emu);
    let credential =
        wasm_secrets::credential::imds::ImdsCredential::new(http, &emu.imds_base(), None).unwrap();
    let tokens = Arc::new(TokenCache::new(Arc::new(credential)));
    // The strongest opt-in an operator can give a name: it may resolve to private addresses.
    let rule = EgressRule::http(format!("{VENDOR}:{imds_port}")).allow_private();
    let resolver = Resolver::system();
    resolver.pin(VENDOR, ["127.0.0.1".parse().unwrap()]);
    let policy = EgressPolicy::new(vec![rule], Some(tokens), true)
        .unwrap()
        .with_resolver(resolver);
    let s = start(&emu, &["db-password"], policy, ServeOptions::default()).await;
    let before = emu.count(Endpoint::Imds);
    let refused = refused_metric("identity-endpoint");

    let url = token_url(imds_port).replace('&', "%26");
    let (status, body) = s.get(&format!("/egress?url={url}")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert!(!body.contains("access_token"), "{body}");
    assert_eq!(
        emu.count(Endpoint::Imds),
        before,
        "nothing reached the identity endpoint"
    );
    assert_eq!(refused_metric("identity-endpoint"), refused + 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_an_allowed_name_pointing_at_imds_gets_no_token_and_one_line_says_why() {
    let emu = emulator::start().await;
    let imds_port = port_of(&emu.imds_base());
    let url = token_url(imds_port);
    let r = run_http_get(
        &emu,
        &[
            "--allow-private-http",
            &format!("{VENDOR}:{imds_port}"),
            "--resolve",
            &format!("{VENDOR}:127.0.0.1"),
        ],
        std::slice::from_ref(&url),
    )
    .await;
    assert_eq!(
        line_for(&r.stdout, &url),
        "error: ErrorCode::HttpRequestDenied",
        "{}",
        r.stderr
    );
    assert_eq!(emu.count(Endpoint::Imds), 0, "nothing reached IMDS");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("egress refused"))
        .unwrap_or_else(|| panic!("no refusal line in:\n{}", r.stderr));
    for part in [
        VENDOR,
        &format!("127.0.0.1:{imds_port}"),
        "identity endpoint",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_http_rule_to_a_name_pointing_at_the_app_service_endpoint_reaches_nothing() {
    let emu = emulator::start().await;
    let port = port_of(&emu.app_service_endpoint());
    let url = format!(
        "http://{VENDOR}:{port}/msi/token?api-version=2019-08-01&resource=https://vault.azure.net"
    );
    let config = crate::harness::temp_file(
        ".toml",
        format!(
            "[components.http-get]\nwasm = {:?}\negress = [{{ host = \"{VENDOR}:{port}\", kind = \"azure-http\", resource = \"api://plugin-vendor\", private = true }}]\n",
            crate::harness::guest("http-get")
        )
        .as_bytes(),
    );
    let audit = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = cli();
    cmd.env("IDENTITY_ENDPOINT", emu.app_service_endpoint())
        .env("IDENTITY_HEADER", emu.app_service_header())
        .args(["run", "--credential", "managed-identity", "-c"])
        .arg(config.path())
        .args(["--resolve", &format!("{VENDOR}:127.0.0.1")])
        .arg("--audit-log")
        .arg(audit.path())
        .args(["http-get", &url]);
    let r = blocking(cmd).await;
    assert_eq!(
        line_for(&r.stdout, &url),
        "error: ErrorCode::HttpRequestDenied",
        "{}",
        r.stderr
    );
    assert_eq!(emu.count(Endpoint::AppService), 0, "{}", r.stderr);
    // The refused token-carrying request is audited too.
    let audit = std::fs::read_to_string(audit.path()).unwrap();
    let event: serde_json::Value = serde_json::from_str(audit.trim()).expect("one audit line");
    assert_eq!(event["op"], "egress", "{event}");
    assert_eq!(event["host"], VENDOR, "{event}");
    assert_eq!(event["resource"], "api://plugin-vendor", "{event}");
    assert_eq!(event["outcome"], "denied", "{event}");
    assert!(event.get("status").is_none(), "{event}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_resolving_to_a_private_address_needs_the_opt_in() {
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let name = "private.vendor.test";
    let url = format!("http://{name}:{}/x", up.port());
    let pin = format!("{name}:{}", up.ip());
    let allow = format!("{name}:{}", up.port());

    let r = run_http_get(
        &emu,
        &["--allow-http", &allow, "--resolve", &pin],
        std::slice::from_ref(&url),
    )
    .await;
    assert_eq!(
        line_for(&r.stdout, &url),
        "error: ErrorCode::HttpRequestDenied",
        "{}",
        r.stderr
    );
    assert!(seen.lock().unwrap().is_empty(), "the upstream saw nothing");
    assert!(r.stderr.contains("private"), "{}", r.stderr);

    let r = run_http_get(
        &emu,
        &["--allow-private-http", &allow, "--resolve", &pin],
        std::slice::from_ref(&url),
    )
    .await;
    // The guest's credential headers (Authorization, Metadata, X-IDENTITY-HEADER, Secret) are
    // all gone: the upstream echoes any it gets after "upstream ok".
    assert_eq!(
        line_for(&r.stdout, &url),
        "200: upstream ok",
        "{}",
        r.stderr
    );
    for header in crate::serve::CREDENTIAL_HEADERS {
        assert!(
            !r.stdout.contains(&format!("{header}:")),
            "the upstream got the guest's {header}: {}",
            r.stdout
        );
    }
    assert_eq!(*seen.lock().unwrap(), vec![None]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_naming_the_identity_service_are_refused_at_start() {
    let emu = emulator::start().await;
    let imds = format!("127.0.0.1:{}", port_of(&emu.imds_base()));
    for host in [
        "169.254.169.254",
        "169.254.169.254:80",
        "168.63.129.16",
        "[fe80::1]:80",
        "127.0.0.1:40342",
        imds.as_str(),
    ] {
        for flag in ["--allow-http", "--allow-private-http"] {
            let r = run_http_get(&emu, &[flag, host], &["http://127.0.0.1:9/".into()]).await;
            assert_eq!(r.code, 1, "{flag} {host}: {}", r.stderr);
            assert!(r.stdout.is_empty(), "the guest never ran: {}", r.stdout);
            let last = r.stderr.trim_end().lines().last().unwrap_or_default();
            assert!(
                last.contains("no guest may reach") && last.contains(host),
                "{flag} {host}: {}",
                r.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_config_rule_naming_imds_at_start() {
    let emu = emulator::start().await;
    let config = crate::harness::temp_file(
        ".toml",
        format!(
            "[components.api]\nwasm = {:?}\nroute = \"/\"\negress = [{{ host = \"169.254.169.254\" }}]\n",
            crate::harness::guest("http-hello")
        )
        .as_bytes(),
    );
    let mut cmd = cli();
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        .args(["serve", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .args(["--addr", "127.0.0.1:0", "-c"])
        .arg(config.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("serve started with a rule naming IMDS");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("169.254.169.254") && stderr.contains("no guest may reach"),
        "{stderr}"
    );
}

/// A name checked once and then trusted is DNS rebinding's opening. Here the name first leads
/// to an allowed upstream, then to `0.0.0.0` (which Linux connects to the local host, where the
/// upstream also listens): the second request is refused. The loopback guard is off for this
/// policy so that the address check alone decides; every address involved is local.
#[tokio::test(flavor = "multi_thread")]
async fn a_name_is_checked_again_on_every_request() {
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let name = "rebind.vendor.test";
    let resolver = Resolver::system();
    resolver.pin(name, [up.ip()]);
    let rule = EgressRule::http(format!("{name}:{}", up.port())).allow_private();
    let policy = EgressPolicy::new(vec![rule], None, false)
        .unwrap()
        .with_resolver(resolver.clone());
    let s = start(&emu, &[], policy, ServeOptions::default()).await;
    let path = format!("/egress?url=http://{name}:{}/x", up.port());

    let (status, body) = s.get(&path).await;
    assert_eq!((status, body.as_str()), (200, "upstream ok\n"));
    resolver.pin(name, ["0.0.0.0".parse().unwrap()]);
    let (status, body) = s.get(&path).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "only the first request arrived"
    );
    resolver.pin(name, [up.ip()]);
    assert_eq!(s.get(&path).await.0, 200, "and back again");
}
