//! `serve` as a platform part: many routed components in one server, each with only its own
//! grants; the admin listener (`/metrics`, `/healthz`, `/readyz`); SIGHUP reload, all or
//! nothing; JSON log lines; the environment the AKS workload-identity webhook injects.

use crate::emulator::{self, Emulator};
use crate::harness::guest;
use crate::serve::{ServeBinary, get};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasm_secrets::runtime::{Proxy, ProxyOptions};
use wasm_secrets_cli::server::{EgressPolicy, Readiness, Routes};

/// A config file with `components` (`[components.NAME]` bodies, without the header).
fn write_config(dir: &Path, components: &[(&str, &str)]) -> PathBuf {
    let mut text = String::new();
    for (name, body) in components {
        text.push_str(&format!(
            "[components.{name}]\nwasm = {:?}\n{body}\n\n",
            guest("http-hello")
        ));
    }
    let path = dir.join("app.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `serve -c CONFIG --admin-addr 127.0.0.1:0` on the emulator; returns the server and its
/// admin address (as it printed it).
async fn serve_config(
    emu: &Emulator,
    config: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (ServeBinary, String) {
    let mut args: Vec<OsString> = vec!["-c".into(), config.into()];
    args.push("--admin-addr".into());
    args.push("127.0.0.1:0".into());
    args.extend(extra.iter().map(OsString::from));
    let s = ServeBinary::start_with(emu, &args, envs).await;
    let admin = s.admin.expect("serve printed its admin address");
    (s, format!("http://{admin}"))
}

/// Polls `url` (once its port accepts) until it answers `status` (for `/readyz`, once the
/// check has run), for up to 60 s (a cold start compiles the component); returns the last
/// answer.
async fn wait_for(url: &str, status: u16) -> (u16, String) {
    let start = Instant::now();
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    while tokio::net::TcpStream::connect(&authority).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{url} never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let answer = get(url).await;
        // A readiness check still under way is a 503 too, but not the answer waited for.
        let settled = !answer.1.starts_with("not ready: starting");
        if answer.0 == status && settled || start.elapsed() > Duration::from_secs(60) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the sample `series` (name and labels exactly) in a Prometheus text page.
/// Waits (10 s at most) until `/metrics` counts `n` reloads with `outcome`.
async fn wait_for_reloads(admin: &str, outcome: &str, n: usize) {
    let series = format!("wasm_secrets_config_reloads_total{{outcome=\"{outcome}\"}}");
    let start = Instant::now();
    loop {
        let page = get(&format!("{admin}/metrics")).await.1;
        if sample(&page, &series) == n as f64 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_route_reaches_only_its_own_components_grants() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    // `app` at / reads db-password (http-hello's GET /); `other` takes /db-password and
    // everything below it, and holds no grant for it; `api` reads its alias.
    let config = write_config(
        dir.path(),
        &[
            ("app", "route = \"/\"\ngrants = [\"db-password\"]"),
            (
                "other",
                "route = \"/db-password\"\ngrants = [\"feature-alpha\"]",
            ),
            ("api", "route = \"/api/\"\ngrants = [\"api=api-key\"]"),
        ],
    );
    let (s, _) = serve_config(&emu, &config, &[], &[]).await;
    let (status, body) = s.get("/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello: read secret 'db-password' (18 characters)\n")
    );
    // The longest route wins: /db-password belongs to `other`, which was not granted it.
    for path in ["/db-password", "/db-password/", "/db-password/x"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.starts_with("not-granted: "), "{path}: {body}");
    }
    let (status, body) = s.get("/api").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello: read secret 'api' (16 characters)\n")
    );
    // A whole segment only: /apix is not under /api, so `app` answers (and holds no `apix`).
    let (status, _) = s.get("/apix").await;
    assert_eq!(status, 403);
    drop(s);

    // No route for a path: 404 from the host.
    let config = write_config(
        dir.path(),
        &[("api", "route = \"/api\"\ngrants = [\"api=api-key\"]")],
    );
    let (s, _) = serve_config(&emu, &config, &[], &[]).await;
    let (status, body) = s.get("/elsewhere").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(s.get("/api").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_reports_health_readiness_and_metrics_without_names() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("app", "route = \"/\"\ngrants = [\"db-password\"]"),
            ("other", "route = \"/other\"\ngrants = []"),
        ],
    );
    let (s, admin) = serve_config(&emu, &config, &[], &[]).await;
    assert_eq!(get(&format!("{admin}/healthz")).await.0, 200);
    let (status, body) = wait_for(&format!("{admin}/readyz"), 200).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let before = get(&format!("{admin}/metrics")).await.1;

    for _ in 0..3 {
        assert_eq!(s.get("/").await.0, 200);
    }
    assert_eq!(s.get("/other").await.0, 403);
    let (status, page) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    let reads = "wasm_secrets_secret_reads_total{component=\"app\",outcome=\"ok\",cache=\"hit\"}";
    assert!(
        sample(&page, reads) >= sample(&before, reads) + 3.0,
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "wasm_secrets_secret_reads_total{component=\"other\",outcome=\"not-granted\",cache=\"none\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &page,
            "wasm_secrets_http_requests_total{component=\"app\",status=\"200\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &page,
            "wasm_secrets_http_requests_total{component=\"other\",status=\"403\"}"
        ),
        1.0
    );
    let vault = format!(
        "wasm_secrets_vault_requests_total{{vault=\"{}\",status=\"200\"}}",
        url::Url::parse(&emu.default_vault_url())
            .unwrap()
            .host_str()
            .unwrap()
    );
    assert!(sample(&page, &vault) >= 1.0, "{vault} in\n{page}");
    assert!(
        sample(
            &page,
            "wasm_secrets_token_requests_total{source=\"imds\",outcome=\"ok\"}"
        ) >= 1.0,
        "{page}"
    );
    assert!(sample(&page, "wasm_secrets_cache_entries") >= 1.0, "{page}");
    assert!(page.contains("wasm_secrets_http_request_duration_seconds_bucket"));
    assert!(page.contains("wasm_secrets_instances_in_flight"));
    // Never a secret name, a value or a token in a label.
    for secret in ["db-password", "s3cr3t", &emu.canary()] {
        assert!(!page.contains(secret), "{secret} in /metrics");
    }
    assert_eq!(get(&format!("{admin}/other")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_waits_for_every_exact_grant_and_says_which_failed() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[(
            "app",
            "route = \"/\"\ngrants = [\"db-password\", \"no-such-secret\", \"feature-*\"]",
        )],
    );
    let (s, admin) = serve_config(&emu, &config, &[], &[]).await;
    let (status, body) = wait_for(&format!("{admin}/readyz"), 503).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready: component app: grant no-such-secret: not-found\n"
    );
    assert_eq!(
        get(&format!("{admin}/healthz")).await.0,
        200,
        "alive, though not ready"
    );
    assert_eq!(
        s.get("/").await.0,
        200,
        "the granted secret is still served"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_new_grant_and_a_broken_config_changes_nothing() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("app", "route = \"/\"\ngrants = [\"db-password\"]"),
            ("other", "route = \"/db-password\"\ngrants = []"),
        ],
    );
    let (s, admin) = serve_config(&emu, &config, &[], &[]).await;
    assert_eq!(s.get("/db-password").await.0, 403);
    assert_eq!(s.get("/").await.0, 200);
    let vault_calls = emu.count(wasm_secrets_emulator::Endpoint::KeyVault);
    let token_calls = emu.count(wasm_secrets_emulator::Endpoint::Imds);

    // A grant added to `other`, then SIGHUP: its next request reads the secret.
    write_config(
        dir.path(),
        &[
            ("app", "route = \"/\"\ngrants = [\"db-password\"]"),
            (
                "other",
                "route = \"/db-password\"\ngrants = [\"db-password\"]",
            ),
        ],
    );
    s.signal("HUP");
    let start = Instant::now();
    while s.get("/db-password").await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the reload never took effect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = get(&format!("{admin}/metrics")).await.1;
    assert_eq!(
        sample(&page, "wasm_secrets_config_reloads_total{outcome=\"ok\"}"),
        1.0
    );
    // The caches survived the reload: the secret both components read came from the cache,
    // with the token already held.
    assert_eq!(
        emu.count(wasm_secrets_emulator::Endpoint::KeyVault),
        vault_calls
    );
    assert_eq!(
        emu.count(wasm_secrets_emulator::Endpoint::Imds),
        token_calls
    );

    // A config that does not parse, then one whose component does not compile: nothing
    // changes but a log line and the failed-reload counter. (One at a time: signals sent
    // together may arrive as one.)
    let broken = [
        "[components.app\nroute = ",
        "[components.app]\nwasm = \"/no/such.wasm\"\nroute = \"/\"\n",
    ];
    for (i, text) in broken.iter().enumerate() {
        std::fs::write(&config, text).unwrap();
        s.signal("HUP");
        wait_for_reloads(&admin, "failed", i + 1).await;
    }
    assert_eq!(s.get("/db-password").await.0, 200);
    assert_eq!(s.get("/").await.0, 200);
    let (_, stderr) = s.signal_and_wait("TERM");
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("config reload failed, the running config stays"))
        .collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(failures[0].contains("line "), "says where: {}", failures[0]);
    assert!(
        failures[1].contains("/no/such.wasm"),
        "says which file: {}",
        failures[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_can_be_json_objects() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("app", "route = \"/\"\ngrants = [\"db-password\"]")],
    );
    let (s, _) = serve_config(&emu, &config, &["--log-format", "json"], &[]).await;
    assert_eq!(s.get("/").await.0, 200);
    let (_, stderr) = s.signal_and_wait("TERM");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "{stderr}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["message"].is_string(), "{line}");
    }
    assert!(
        stderr.contains("\"message\":\"serving on http://"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reads_a_secret_with_only_the_workload_identity_webhooks_environment() {
    let emu = emulator::start().await;
    let fed = emu.config().identities.federated[0].clone();
    let token = crate::harness::temp_file(".jwt", fed.assertion.as_bytes());
    // Exactly what the webhook injects, plus the vault and its CA (the ConfigMap's part);
    // --credential is left at auto.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-secrets"))
        .env_clear()
        .env("WASM_SECRETS_LOOPBACK_ONLY", "1")
        .env("WASM_SECRETS_CACHE_DIR", crate::harness::cache_dir())
        .env("AZURE_CLIENT_ID", &fed.client_id)
        .env("AZURE_TENANT_ID", emu.tenant_id())
        .env("AZURE_FEDERATED_TOKEN_FILE", token.path())
        .env("AZURE_AUTHORITY_HOST", emu.authority_host())
        .args(["serve", "--addr", "127.0.0.1:0", "-g", "db-password"])
        .arg("--vault")
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .arg(guest("http-hello"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(child);
    let (rx, stderr) = crate::harness::watch_stderr(server.0.stderr.take().unwrap());
    let Some(addr) = crate::harness::listening_on(rx, Duration::from_secs(60), 1)
        .await
        .map(|addrs| addrs[0])
    else {
        drop(server);
        panic!(
            "serve never listened: {}",
            stderr.join().unwrap_or_default()
        );
    };
    let (status, body) = wait_for(&format!("http://{addr}/"), 200).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello: read secret 'db-password' (18 characters)\n")
    );
    assert!(
        emu.count(wasm_secrets_emulator::Endpoint::Entra) >= 1,
        "the token came from Entra"
    );
    assert_eq!(emu.count(wasm_secrets_emulator::Endpoint::Imds), 0);
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `compile --serve` writes one compiled component into the cache, and `serve` starts from it:
/// it loads that file (its debug line says so) and compiles nothing, writing nothing new.
#[tokio::test(flavor = "multi_thread")]
async fn compile_serve_writes_exactly_what_serve_then_reads() {
    compile_serve_then_serve("", &[]).await;
}

/// The same with a fuel limit (fuel metering changes the compiled code), a memory limit and
/// another `--max-concurrent` (which size the pooling allocator's slots, and today leave the
/// code alone): `compile --serve` builds the engine `serve` builds, so the file it wrote is
/// still the one `serve` loads.
#[tokio::test(flavor = "multi_thread")]
async fn compile_serve_builds_serves_engine_for_its_limits_and_concurrency() {
    compile_serve_then_serve(
        "limits = { fuel = 1000000000, max-memory = \"64MiB\" }",
        &["--max-concurrent", "7"],
    )
    .await;
}

/// `compile --serve -c CONFIG FLAGS` with one routed component (its entry gets `limits`), then
/// `serve -c CONFIG FLAGS`: serve answers from the one compiled file and compiles nothing.
async fn compile_serve_then_serve(limits: &str, flags: &[&str]) {
    let emu = emulator::start().await;
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[(
            "app",
            &format!("route = \"/\"\ngrants = [\"db-password\"]\n{limits}"),
        )],
    );
    let cache_env = cache.path().to_str().unwrap();
    let mut cmd = crate::harness::cli();
    cmd.env("WASM_SECRETS_CACHE_DIR", cache_env)
        .args(["compile", "--serve"])
        .args(flags)
        .arg("-c")
        .arg(&config);
    let r = crate::harness::run_cli(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = || std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(files(), 1, "one compiled component");
    let compiled = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (s, _) = serve_config(
        &emu,
        &config,
        flags,
        &[
            ("WASM_SECRETS_CACHE_DIR", cache_env),
            ("WASM_SECRETS_LOG", "warn,wasm_secrets=debug"),
        ],
    )
    .await;
    assert_eq!(s.get("/").await.0, 200);
    assert_eq!(
        files(),
        1,
        "serve found the compiled form instead of compiling its own"
    );
    let (_, stderr) = s.signal_and_wait("TERM");
    let loaded: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("loaded compiled component from cache"))
        .collect();
    assert_eq!(loaded.len(), 1, "{stderr}");
    assert!(
        loaded[0].contains(&compiled.display().to_string()),
        "{}",
        loaded[0]
    );
    assert!(
        !stderr.contains("compiled component, not found in the cache"),
        "serve compiled: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_finishes_on_the_config_it_started_with() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A pattern grant: readiness resolves exact grants only, so feature-alpha is not cached yet
    // and its first read waits on the (slowed) vault.
    let config = write_config(
        dir.path(),
        &[("app", "route = \"/\"\ngrants = [\"feature-*\"]")],
    );
    let (s, admin) = serve_config(&emu, &config, &[], &[]).await;
    let s = std::sync::Arc::new(s);
    emu.set_vault_latency("main", Duration::from_millis(1500));
    let in_flight = tokio::spawn({
        let s = s.clone();
        async move { s.get("/feature-alpha").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_config(dir.path(), &[("app", "route = \"/\"\ngrants = []")]);
    s.signal("HUP");
    let start = Instant::now();
    loop {
        let page = get(&format!("{admin}/metrics")).await.1;
        if sample(&page, "wasm_secrets_config_reloads_total{outcome=\"ok\"}") == 1.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "the request was still waiting at the reload"
    );
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "hello: read secret 'feature-alpha' (2 characters)\n")
    );
    let (status, _) = s.get("/feature-alpha").await;
    assert_eq!(status, 403, "new requests see the new grants");
}

/// An `azure-http` rule that would send the vault's token, or a token to a host outside its
/// audience's domains, is refused on reload as at start: the running config stays. A rule for
/// a resource the table does not know loads, with one warning line.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_refuses_azure_http_rules_that_send_a_token_where_it_must_not_go() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = "route = \"/\"\ngrants = [\"db-password\"]";
    let config = write_config(dir.path(), &[("app", app)]);
    let (s, admin) = serve_config(&emu, &config, &[], &[]).await;
    assert_eq!(s.get("/").await.0, 200);

    let rule = |host: &str, resource: &str| {
        format!(
            "{app}\negress = [{{ host = \"{host}\", kind = \"azure-http\", resource = \"{resource}\" }}]"
        )
    };
    let refused = [
        rule("myvault.vault.azure.net", "https://vault.azure.net"),
        rule("api.example.com", "https://storage.azure.com"),
    ];
    for (i, body) in refused.iter().enumerate() {
        write_config(dir.path(), &[("app", body)]);
        s.signal("HUP");
        wait_for_reloads(&admin, "failed", i + 1).await;
        assert_eq!(s.get("/").await.0, 200, "the running config stays");
    }
    write_config(
        dir.path(),
        &[("app", &rule("api.example.com", "api://orders-api"))],
    );
    s.signal("HUP");
    wait_for_reloads(&admin, "ok", 1).await;
    let (_, stderr) = s.signal_and_wait("TERM");
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("config reload failed, the running config stays"))
        .collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(failures[0].contains("through grants"), "{}", failures[0]);
    assert!(
        failures[1].contains("api.example.com") && failures[1].contains("core.windows.net"),
        "{}",
        failures[1]
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("goes to this host as is"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("api://orders-api"), "{}", warnings[0]);
}

/// What a reload cannot change, because the server made it once at start, is refused with a
/// line saying to restart, and the running config stays: `[vaults]`, `[cache]`, `secrets-file`,
/// `audit-log`, a fuel limit when the server started without fuel metering, and a memory limit
/// above the one the server started with. A smaller memory limit is not such a change: it loads.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_refuses_what_only_a_restart_can_change_and_says_so() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.toml");
    let app = format!(
        "[components.app]\nwasm = {:?}\nroute = \"/\"\ngrants = [\"db-password\"]\n",
        guest("http-hello")
    );
    let write = |top: &str| std::fs::write(&config, format!("{top}\n{app}")).unwrap();
    write("[limits]\nmax-memory = \"64MiB\"");
    let (s, admin) = serve_config(&emu, &config, &[], &[]).await;
    assert_eq!(s.get("/").await.0, 200);

    let fixed =
        "[vaults], [cache], secrets-file and audit-log are read at start: restart to change them";
    let fuel = "the server started without fuel metering: restart to apply it";
    let memory = "above what the server started with: restart to apply it";
    let secrets = dir.path().join("secrets.json");
    let audit = dir.path().join("audit.log");
    let refused = [
        (
            format!(
                "[limits]\nmax-memory = \"64MiB\"\n[vaults.other]\nurl = {:?}",
                emu.default_vault_url()
            ),
            fixed,
        ),
        (
            "[limits]\nmax-memory = \"64MiB\"\n[cache]\nttl = \"1s\"".to_owned(),
            fixed,
        ),
        (
            format!("secrets-file = {secrets:?}\n[limits]\nmax-memory = \"64MiB\""),
            fixed,
        ),
        (
            format!("audit-log = {audit:?}\n[limits]\nmax-memory = \"64MiB\""),
            fixed,
        ),
        (
            "[limits]\nmax-memory = \"64MiB\"\nfuel = 1000000000".to_owned(),
            fuel,
        ),
        ("[limits]\nmax-memory = \"128MiB\"".to_owned(), memory),
        ("".to_owned(), memory),
    ];
    for (i, (top, _)) in refused.iter().enumerate() {
        write(top);
        s.signal("HUP");
        wait_for_reloads(&admin, "failed", i + 1).await;
        assert_eq!(s.get("/").await.0, 200, "the running config stays");
    }
    // What may change does: a smaller memory limit loads.
    write("[limits]\nmax-memory = \"32MiB\"");
    s.signal("HUP");
    wait_for_reloads(&admin, "ok", 1).await;
    assert_eq!(s.get("/").await.0, 200);

    let (_, stderr) = s.signal_and_wait("TERM");
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("config reload failed, the running config stays"))
        .collect();
    assert_eq!(failures.len(), refused.len(), "{stderr}");
    for (line, (top, reason)) in failures.iter().zip(&refused) {
        assert!(
            line.contains(reason),
            "{top:?} refused as {reason:?}: {line}"
        );
    }
    assert!(
        !secrets.exists() && !audit.exists(),
        "nothing of the refused configs was made"
    );
}

/// A route table serving http-hello at `/` with `grants` over `vaults`.
fn routes_granting(grants: &[&str], vaults: wasm_secrets::Vaults) -> std::sync::Arc<Routes> {
    let runtime = crate::harness::runtime_for_serve();
    let (component, _) =
        wasm_secrets::runtime::load_component(runtime.engine(), &guest("http-hello"), None)
            .unwrap();
    let served = Proxy::new(
        &runtime,
        "app",
        &component,
        emulator::ctx(grants, vaults),
        EgressPolicy::deny_all(),
        ProxyOptions::default(),
    )
    .unwrap();
    std::sync::Arc::new(Routes::single(served))
}

/// Polls `readiness` until its reason contains `text`, for up to 20 s.
async fn wait_for_reason(readiness: &Readiness, text: &str) {
    let start = Instant::now();
    while !readiness.get().is_err_and(|why| why.contains(text)) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never not ready for {text}: {:?}",
            readiness.get()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_reload_the_old_tables_readiness_check_can_no_longer_mark_the_server_ready() {
    let emu = emulator::start().await;
    // Not-found is not remembered, so each round asks the vault again.
    let cache = wasm_secrets::cache::CacheConfig {
        negative_ttl: Duration::ZERO,
        ..emulator::long_cache()
    };
    let vaults = emulator::connect(
        &emu,
        &emulator::Identity::imds(&emu),
        cache,
        emulator::fast_options(),
    );
    let readiness = std::sync::Arc::new(Readiness::default());
    // The running table waits for `late-secret`, trying again every 50 ms.
    let old = routes_granting(&["late-secret"], vaults.clone());
    tokio::spawn({
        let readiness = readiness.clone();
        async move { readiness.check(old, Duration::from_millis(50)).await }
    });
    wait_for_reason(&readiness, "grant late-secret: not-found").await;
    // A reload serves a table whose grant cannot be read; its own check tries again only in
    // an hour.
    let new = routes_granting(&["never-created"], vaults);
    tokio::spawn({
        let readiness = readiness.clone();
        async move { readiness.check(new, Duration::from_secs(3600)).await }
    });
    wait_for_reason(&readiness, "grant never-created: not-found").await;
    // The old table's secret appears: a check still running over it would now say ready.
    emu.put_secret("main", "late-secret", "finally");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        readiness.get(),
        Err("component app: grant never-created: not-found".to_owned())
    );
}

/// Every component's `azure-http` egress gets its token from the process's one token cache,
/// across reloads: two components calling a storage account, then a reload, then both again,
/// cost one token request. (The components read no secret, so the vault asks for no token.)
#[tokio::test(flavor = "multi_thread")]
async fn azure_http_egress_of_every_component_and_reload_shares_one_token() {
    let emu = emulator::start().await;
    let (up, seen) = crate::serve::upstream().await;
    let account = "acct.blob.core.windows.net";
    let target = format!("{account}:{}", up.port());
    let dir = tempfile::tempdir().unwrap();
    let body = |route: &str| {
        format!(
            "route = \"{route}\"\ngrants = []\negress = [{{ host = \"{target}\", kind = \"azure-http\", resource = \"https://storage.azure.com\", private = true }}]"
        )
    };
    // http-hello reads the first path segment: `/egress/a?url=` is its egress call too.
    let config = write_config(
        dir.path(),
        &[("a", &body("/egress/a")), ("b", &body("/egress/b"))],
    );
    let pin = format!("{account}:127.0.0.1");
    let (s, admin) = serve_config(&emu, &config, &["--resolve", &pin], &[]).await;
    let imds = emu.count(wasm_secrets_emulator::Endpoint::Imds);
    let call = |route: &'static str| {
        let s = &s;
        let url = format!("/egress/{route}?url=http://{target}/blob");
        async move {
            let (status, text) = s.get(&url).await;
            assert_eq!(status, 200, "{route}: {text}");
        }
    };
    call("a").await;
    call("b").await;
    // A reload builds both components again (here with a changed route).
    write_config(
        dir.path(),
        &[("a", &body("/egress/a")), ("b", &body("/egress/b2"))],
    );
    s.signal("HUP");
    wait_for_reloads(&admin, "ok", 1).await;
    call("a").await;
    call("b2").await;
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 4, "every call reached the upstream");
    assert!(
        sent.iter()
            .all(|auth| auth.as_deref() == sent[0].as_deref() && sent[0].is_some()),
        "one token for all: {}",
        sent.len()
    );
    assert_eq!(
        emu.count(wasm_secrets_emulator::Endpoint::Imds) - imds,
        1,
        "one token request for two components and a reload"
    );
}

/// Readiness resolves every exact grant, secrets and keys, as the host checking its config and
/// not as the guest reading: no audit line and no read metric under the component's name.
/// A key grant the vault cannot resolve keeps the server unready and says which.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_probes_secret_and_key_grants_without_reading_as_the_guest() {
    let emu = emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_flag = audit.to_str().unwrap().to_owned();
    let config = write_config(
        dir.path(),
        &[(
            "app",
            "route = \"/\"\ngrants = [\"db-password\", \"key:signer=jwt-signing-key:sign\"]",
        )],
    );
    let (s, admin) = serve_config(&emu, &config, &["--audit-log", &audit_flag], &[]).await;
    let (status, body) = wait_for(&format!("{admin}/readyz"), 200).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let metrics = get(&format!("{admin}/metrics")).await.1;
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(
        !log.contains("\"app\""),
        "readiness wrote audit lines as the component:\n{log}"
    );
    let counted: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("component=\"app\"") && !l.ends_with(" 0"))
        .collect();
    assert!(
        counted.is_empty(),
        "readiness counted as the component: {counted:?}"
    );
    drop(s);

    let config = write_config(
        dir.path(),
        &[(
            "app",
            "route = \"/\"\ngrants = [\"db-password\", \"key:signer=no-such-key:sign\"]",
        )],
    );
    let (_s, admin) = serve_config(&emu, &config, &[], &[]).await;
    // 503 "starting" until the first probe has run; then 503 naming the grant that failed.
    let url = format!("{admin}/readyz");
    let mut answer = wait_for(&url, 503).await;
    let start = Instant::now();
    while answer.1.contains("starting") && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = get(&url).await;
    }
    assert_eq!(
        (answer.0, answer.1.as_str()),
        (
            503,
            "not ready: component app: grant key:signer: not-found\n"
        )
    );
}
