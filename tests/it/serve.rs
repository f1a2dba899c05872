//! `serve`: the http-hello guest (a wasi:http proxy) behind the real server, with secrets from
//! the emulator's Key Vault through managed identity; limits, egress and shutdown.

use crate::emulator::{self, DB_PASSWORD, Emulator};
use crate::harness::{guest, runtime_for_serve};
use http_body_util::Full;
use hyper::body::Bytes;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wasm_secrets::egress::Resolver;
use wasm_secrets::runtime::{Limits, load_component};
use wasm_secrets::token_cache::TokenCache;
use wasm_secrets_cli::server::{EgressPolicy, EgressRule, ServeOptions, Server};

/// A running server on an ephemeral loopback port; stops when `stop` is sent.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start(
    emu: &Emulator,
    grants: &[&str],
    egress: EgressPolicy,
    options: ServeOptions,
) -> Running {
    start_component(emu, "http-hello", grants, egress, options).await
}

/// [`start`] serving the guest component `name`.
pub async fn start_component(
    emu: &Emulator,
    name: &str,
    grants: &[&str],
    egress: EgressPolicy,
    options: ServeOptions,
) -> Running {
    let ctx = emulator::ctx(grants, emulator::imds_vaults(emu));
    start_with_secrets(name, ctx, egress, options).await
}

/// [`start_component`] reading through `ctx`, however it was built.
pub async fn start_with_secrets(
    name: &str,
    ctx: wasm_secrets::SecretsCtx,
    egress: EgressPolicy,
    options: ServeOptions,
) -> Running {
    let runtime = runtime_for_serve();
    let (component, _) = load_component(runtime.engine(), &guest(name), None).unwrap();
    let server = Arc::new(Server::new(&runtime, &component, ctx, egress, options).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        done,
    }
}

impl Running {
    pub async fn get(&self, path: &str) -> (u16, String) {
        get(&format!("http://{}{path}", self.addr)).await
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }
}

pub async fn get(url: &str) -> (u16, String) {
    let client = wasm_secrets::http::HttpClient::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = client
        .send(client.request(reqwest::Method::GET, url.parse().unwrap()))
        .await
        .unwrap();
    (
        r.status.as_u16(),
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_request_reads_its_secret_and_never_shows_a_value_or_token() {
    let emu = emulator::start().await;
    let s = start(
        &emu,
        &["db-password", "restricted"],
        EgressPolicy::deny_all(),
        ServeOptions::default(),
    )
    .await;
    let ok = s.get("/db-password").await;
    assert_eq!(
        ok,
        (
            200,
            format!(
                "hello: read secret 'db-password' ({} characters)\n",
                DB_PASSWORD.len()
            )
        )
    );
    let denied = s.get("/api-key").await;
    assert_eq!(denied.0, 403);
    assert!(denied.1.starts_with("not-granted: "), "{}", denied.1);
    let forbidden = s.get("/restricted").await;
    assert_eq!(forbidden.0, 500);
    assert!(forbidden.1.starts_with("forbidden: "), "{}", forbidden.1);
    let invalid = s.get("/a.b").await;
    assert_eq!(invalid.0, 400);
    for (_, body) in [&ok, &denied, &forbidden, &invalid] {
        assert!(
            !body.contains(DB_PASSWORD) && !body.contains(&emu.canary()),
            "{body}"
        );
    }
    // One token and one vault read (plus the challenge) for many requests.
    for _ in 0..20 {
        assert_eq!(s.get("/db-password").await.0, 200);
    }
    assert_eq!(emu.count(emulator::Endpoint::Imds), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_past_the_concurrency_cap_get_503() {
    let emu = emulator::start().await;
    emu.set_vault_latency("main", Duration::from_millis(1500));
    let options = ServeOptions {
        max_concurrent: 1,
        ..ServeOptions::default()
    };
    let s = Arc::new(start(&emu, &["db-password"], EgressPolicy::deny_all(), options).await);
    let slow = {
        let url = format!("http://{}/db-password", s.addr);
        tokio::spawn(async move { get(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = s.get("/db-password").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(slow.await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_past_its_timeout_gets_504_in_time() {
    let emu = emulator::start().await;
    emu.set_vault_latency("main", Duration::from_secs(5));
    let options = ServeOptions {
        limits: Limits {
            timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        },
        ..ServeOptions::default()
    };
    let s = start(&emu, &["db-password"], EgressPolicy::deny_all(), options).await;
    let t = Instant::now();
    let (status, body) = s.get("/db-password").await;
    assert_eq!(status, 504, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_stopped_at_their_timeout_give_their_slots_back() {
    // Two slots, a vault that takes 3 s, a 300 ms timeout: each wave of two requests gets 504
    // in time, and the next wave finds both slots free again (not 503 busy), because the
    // guests of the last wave were stopped at their deadline.
    let emu = emulator::start().await;
    emu.set_vault_latency("main", Duration::from_secs(3));
    let options = ServeOptions {
        limits: Limits {
            timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        },
        max_concurrent: 2,
        ..ServeOptions::default()
    };
    let s = Arc::new(start(&emu, &["db-password"], EgressPolicy::deny_all(), options).await);
    for wave in 0..3 {
        let t = Instant::now();
        let both = futures::future::join_all((0..2).map(|_| {
            let url = format!("http://{}/db-password", s.addr);
            async move { get(&url).await }
        }))
        .await;
        for (status, body) in &both {
            assert_eq!(*status, 504, "wave {wave}: {body}");
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    // The one vault read those requests shared (a challenge and a GET, 3 s each) went on
    // without them and fills the cache.
    let t = Instant::now();
    while s.get("/db-password").await.0 != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the vault read never landed"
        );
    }
    assert_eq!(
        emu.vault_count("main"),
        2,
        "one challenge and one GET for all requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_for_requests_in_flight() {
    let emu = emulator::start().await;
    emu.set_vault_latency("main", Duration::from_millis(1200));
    let s = start(
        &emu,
        &["db-password"],
        EgressPolicy::deny_all(),
        ServeOptions::default(),
    )
    .await;
    let in_flight = {
        let url = format!("http://{}/db-password", s.addr);
        tokio::spawn(async move { get(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let addr = s.addr;
    s.shutdown().await;
    assert_eq!(
        in_flight.await.unwrap().0,
        200,
        "the request in flight completed"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// The request headers that carry credentials, which an upstream must never receive from a
/// guest.
pub const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "metadata",
    "x-identity-header",
    "secret",
];

/// A loopback upstream that records the Authorization header of each request it gets and
/// answers `upstream ok`, then echoes the credentials it received, one `name: value` line each
/// (`Authorization`, `Proxy-Authorization`, and the identity endpoints' `Metadata`,
/// `X-IDENTITY-HEADER` and `Secret`): what a guest would read back from an upstream that
/// reflects its request.
pub async fn upstream() -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .map(|v| v.to_str().unwrap_or("").to_owned())
                        };
                        record.lock().unwrap().push(header("authorization"));
                        let mut echo = String::from("upstream ok\n");
                        for name in CREDENTIAL_HEADERS {
                            if let Some(v) = header(name) {
                                echo.push_str(&format!("{name}: {v}\n"));
                            }
                        }
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(echo),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn egress_goes_only_where_allowed_and_never_carries_the_guests_authorization() {
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let (other, other_seen) = upstream().await;
    let rules = vec![EgressRule::http(up.to_string())];
    let s = start(
        &emu,
        &["db-password"],
        EgressPolicy::new(rules, None, true).unwrap(),
        ServeOptions::default(),
    )
    .await;

    // The guest sets Authorization; it does not arrive, and the echo shows the upstream got
    // no credential at all. (A guest cannot set Proxy-Authorization: wasi:http refuses it as
    // a forbidden header. The host removes it too, which no guest can show: host/src/egress's
    // unit test `the_guests_credential_headers_are_stripped_and_nothing_else` does.)
    let (status, body) = s.get(&format!("/egress?url=http://{up}/x")).await;
    assert_eq!((status, body.as_str()), (200, "upstream ok\n"));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None],
        "the guest's Authorization was removed"
    );

    let (status, body) = s.get(&format!("/egress?url=http://{other}/x")).await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "nothing reached a host without a rule"
    );
}

/// An `azure-http` rule attaches the host's token (not the guest's) for its audience's
/// domains; an upstream that echoes its request hands the guest only a mask of it (issue 22's
/// echo scrubbing).
#[tokio::test(flavor = "multi_thread")]
async fn an_echoing_upstream_shows_the_guest_only_a_mask_of_the_token_an_azure_http_rule_attached()
{
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let http = emulator::http(&emu);
    let credential =
        wasm_secrets::credential::imds::ImdsCredential::new(http, &emu.imds_base(), None).unwrap();
    let tokens = Arc::new(TokenCache::new(Arc::new(credential)));
    // The token goes only where its audience lives: a storage account's name, here pinned
    // to the loopback upstream (and allowed to resolve to loopback).
    let account = "acct.blob.core.windows.net";
    let rules = vec![
        EgressRule::azure_http(
            format!("{account}:{}", up.port()),
            "https://storage.azure.com",
        )
        .allow_private(),
    ];
    let resolver = Resolver::system();
    resolver.pin(account, [up.ip()]);
    let s = start(
        &emu,
        &[],
        EgressPolicy::new(rules, Some(tokens), true)
            .unwrap()
            .with_resolver(resolver),
        ServeOptions::default(),
    )
    .await;
    let (status, body) = s
        .get(&format!("/egress?url=http://{account}:{}/blob", up.port()))
        .await;
    assert_eq!(status, 200, "{body}");
    let auth = seen.lock().unwrap()[0]
        .clone()
        .expect("an Authorization header");
    assert!(
        auth.starts_with("Bearer ") && auth.contains(&emu.canary()),
        "the host's token was attached"
    );
    assert!(!auth.contains("guest-supplied-token"));
    assert!(!body.contains("guest-supplied"));
    // The upstream reflected its request; the host masked the token in it before the guest
    // read it (here, as much of it as the guest's 200-byte excerpt holds).
    let shown = body
        .strip_prefix("upstream ok\nauthorization: Bearer ")
        .expect("the echo of the Authorization header");
    assert!(
        shown.len() > 100 && shown.bytes().all(|b| b == b'*'),
        "the echoed token is masked: {body}"
    );
    let token = auth.strip_prefix("Bearer ").unwrap();
    assert!(!body.contains(&token[..16]), "{body}");
}

/// `wasm-secrets serve` as a process on a free loopback port, killed when dropped.
pub struct ServeBinary {
    child: std::process::Child,
    pub addr: SocketAddr,
    /// Its admin listener's address, when started with `--admin-addr`.
    pub admin: Option<SocketAddr>,
    /// Its stderr, read all along (a full pipe would stall a chatty server).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl ServeBinary {
    /// Starts `serve` with `args` (before the component, http-hello) and waits until it accepts.
    async fn start(emu: &Emulator, args: &[&str]) -> Self {
        let mut all: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        all.push(guest("http-hello").into());
        Self::start_with(emu, &all, &[]).await
    }

    /// Starts `serve` with `args` (the component last) and `envs`, and waits until it accepts.
    pub async fn start_with(
        emu: &Emulator,
        args: &[std::ffi::OsString],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut child = crate::harness::cli()
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
            .args(["serve", "--credential", "managed-identity", "--vault"])
            .arg(emu.default_vault_url())
            .arg("--ca-cert")
            .arg(emu.ca_cert_path())
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start wasm-secrets serve");
        let (rx, stderr) = crate::harness::watch_stderr(child.stderr.take().unwrap());
        // Compiling a large component (a JavaScript one is 12 MiB) on a busy 2-core machine,
        // with the whole suite running beside it, can take a minute or more.
        let admin = args.iter().any(|a| a == "--admin-addr");
        let Some(addrs) =
            crate::harness::listening_on(rx, Duration::from_secs(240), 1 + usize::from(admin))
                .await
        else {
            let _ = child.kill();
            let stderr = stderr.join().unwrap_or_default();
            panic!("serve never listened: {stderr}");
        };
        Self {
            child,
            addr: addrs[0],
            admin: addrs.get(1).copied(),
            stderr: Some(stderr),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        get(&format!("http://{}{path}", self.addr)).await
    }

    /// Sends `signal` (`HUP`, say) and goes on.
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Sends `signal` (`TERM` or `INT`) and waits for the exit code and stderr.
    pub fn signal_and_wait(mut self, signal: &str) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status.code(), stderr)
    }
}

impl Drop for ServeBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_allows_http_egress_only_to_the_hosts_and_ports_it_names() {
    let emu = emulator::start().await;
    let (up, seen) = upstream().await;
    let (other, other_seen) = upstream().await;
    let with_port = format!("127.0.0.1:{}", up.port());
    let s = ServeBinary::start(&emu, &["-g", "db-password", "--allow-http", &with_port]).await;
    let (status, body) = s.get(&format!("/egress?url=http://{up}/x")).await;
    assert_eq!((status, body.as_str()), (200, "upstream ok\n"));
    assert_eq!(*seen.lock().unwrap(), vec![None]);
    let (status, body) = s.get(&format!("/egress?url=http://{other}/x")).await;
    assert_eq!(status, 502, "{body}");
    assert!(other_seen.lock().unwrap().is_empty());
    drop(s);

    // A rule without a port allows the scheme's default port only (80 for http).
    let s = ServeBinary::start(&emu, &["-g", "db-password", "--allow-http", "127.0.0.1"]).await;
    let (status, body) = s.get(&format!("/egress?url=http://{up}/x")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing more reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_applies_timeout_and_max_concurrent() {
    let emu = emulator::start().await;
    emu.set_vault_latency("main", Duration::from_secs(3));
    let s = Arc::new(
        ServeBinary::start(
            &emu,
            &[
                "-g",
                "db-password",
                "--timeout",
                "2s",
                "--max-concurrent",
                "1",
            ],
        )
        .await,
    );
    let first = {
        let s = s.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            (s.get("/db-password").await, t.elapsed())
        })
    };
    // The first request holds the one slot from well before 500 ms until its 2 s limit: room
    // on a loaded machine for it to take the slot first and for the second to come meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = s.get("/db-password").await;
    assert_eq!(status, 503, "the one slot is taken: {body}");
    let ((status, body), took) = first.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(took < Duration::from_millis(2800), "{took:?}");
    // The slot came back with the timeout.
    let (status, body) = s.get("/db-password").await;
    assert_eq!(status, 504, "{body}");
}

/// A supervisor may signal `serve` the moment it prints its address: SIGHUP then reloads and
/// SIGTERM stops it cleanly (exit 0); neither kills it by the signal's default action. (The
/// handlers were once registered after that line, when the accept loop first polled them; a
/// SIGTERM sent while a loaded machine had not yet run that loop killed the process.)
#[cfg(target_os = "linux")]
#[test]
fn the_binary_answers_signals_sent_the_moment_it_says_it_listens() {
    use std::io::BufRead;
    let secrets = crate::harness::temp_file(".toml", b"");
    for round in 0..20 {
        let mut child = crate::harness::cli()
            .args(["serve", "--addr", "127.0.0.1:0", "--secrets-file"])
            .arg(secrets.path())
            .arg(guest("http-hello"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start wasm-secrets serve");
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap());
        let (mut stderr, mut line) = (String::new(), String::new());
        while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
            if line.contains("serving on http://") {
                // SAFETY: `kill` only sends a signal; `pid` is our child, not yet reaped.
                unsafe {
                    libc::kill(pid, libc::SIGHUP);
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            stderr.push_str(&line);
            line.clear();
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "round {round}: {status}: {stderr}");
        assert!(stderr.contains("shutting down"), "round {round}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_finishes_requests_in_flight_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let emu = emulator::start().await;
        emu.set_vault_latency("main", Duration::from_millis(1500));
        let s = ServeBinary::start(&emu, &["-g", "db-password"]).await;
        let url = format!("http://{}/db-password", s.addr);
        let in_flight = tokio::spawn(async move { get(&url).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let addr = s.addr;
        let (code, stderr) = tokio::task::spawn_blocking(move || s.signal_and_wait(signal))
            .await
            .unwrap();
        assert_eq!(code, Some(0), "{signal}: {stderr}");
        assert!(stderr.contains("shutting down"), "{signal}: {stderr}");
        let (status, body) = in_flight.await.unwrap();
        assert_eq!(
            status, 200,
            "{signal}: the request in flight finished: {body}"
        );
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
