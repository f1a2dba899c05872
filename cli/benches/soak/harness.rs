//! The soak (design section 13): the real `wasm-secrets serve` process with the http-hello
//! guest, reading `db-password` through managed identity (IMDS) and Key Vault over TLS from the
//! in-process emulator, under keep-alive connections, while a schedule of faults runs: the
//! vault answering 503, 429 with and without Retry-After, resetting connections and stalling;
//! IMDS answering 500 and 410. Tokens live 60 s, so they are refreshed under load, and the
//! secret is rotated to a new version during the first vault outage.
//!
//! Shared by the `soak` bench (`cargo bench -p wasm-secrets-cli --bench soak`) and the short soak
//! in the test suite.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasm_secrets_emulator::{Emulator, EmulatorConfig, Endpoint, Fault};

/// One slot of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Calm,
    Vault503,
    Vault429RetryAfter,
    Vault429,
    VaultReset,
    VaultStall,
    Imds500,
    Imds410,
}

impl Phase {
    /// Calm and each fault in turn, with calm between faults.
    pub const FULL: [Phase; 14] = [
        Phase::Calm,
        Phase::Vault503,
        Phase::Calm,
        Phase::Vault429RetryAfter,
        Phase::Calm,
        Phase::Vault429,
        Phase::Calm,
        Phase::VaultReset,
        Phase::Calm,
        Phase::VaultStall,
        Phase::Calm,
        Phase::Imds500,
        Phase::Calm,
        Phase::Imds410,
    ];

    fn fault(self) -> Option<(Endpoint, Fault)> {
        let status = |status, retry_after| Fault::Status {
            status,
            retry_after,
            body: None,
        };
        Some(match self {
            Phase::Calm => return None,
            Phase::Vault503 => (Endpoint::KeyVault, status(503, None)),
            Phase::Vault429RetryAfter => (Endpoint::KeyVault, status(429, Some(1))),
            Phase::Vault429 => (Endpoint::KeyVault, status(429, None)),
            Phase::VaultReset => (Endpoint::KeyVault, Fault::Reset),
            Phase::VaultStall => (Endpoint::KeyVault, Fault::Stall),
            Phase::Imds500 => (Endpoint::Imds, status(500, None)),
            Phase::Imds410 => (Endpoint::Imds, status(410, None)),
        })
    }
}

/// How to soak.
#[derive(Debug, Clone)]
pub struct Soak {
    /// The measured run's length.
    pub duration: Duration,
    /// Keep-alive connections driving requests.
    pub connections: usize,
    /// The schedule, cycled over the run in equal slots.
    pub phases: Vec<Phase>,
    /// The secret cache's TTL in the server.
    pub ttl: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub seconds: f64,
    pub requests: u64,
    /// Answers other than 200 (every request asks for a granted secret).
    pub non_2xx: u64,
    /// Requests with no answer within 10 s, or a broken connection.
    pub errors: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// The slowest request in each phase, by phase.
    pub slowest_by_phase: Vec<(Phase, Duration)>,
    pub vault_gets: u64,
    pub token_requests: u64,
    pub rss_kib: (u64, u64),
    pub fds: (u64, u64),
    /// From the end of the outage during which the secret was rotated to the first answer
    /// with the new value.
    pub rotation_served_after: Option<Duration>,
}

impl Report {
    pub fn vault_gets_per_second(&self) -> f64 {
        self.vault_gets as f64 / self.seconds
    }
}

/// The value `db-password` is rotated to: another length than the first, because http-hello
/// answers with the length only.
const ROTATED: &str = "rotated-db-password-of-another-length";

/// The `wasm-secrets serve` process, killed when dropped.
struct ServeProcess {
    child: Child,
    addr: std::net::SocketAddr,
    log: PathBuf,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// Starts `serve` on a port the system picks and waits (up to 60 s) until it says which.
    async fn start(emu: &Emulator, dir: &Path, ttl: Duration, guest: &Path) -> Self {
        let config = dir.join("soak.toml");
        std::fs::write(
            &config,
            format!(
                "[cache]\nttl = \"{}ms\"\nstale-if-error = \"5m\"\n",
                ttl.as_millis()
            ),
        )
        .expect("write the soak config");
        let log = dir.join("serve.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasm-secrets"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("WASM_SECRETS_LOOPBACK_ONLY", "1")
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .arg("--vault")
            .arg(emu.default_vault_url())
            .arg("--ca-cert")
            .arg(emu.ca_cert_path())
            .arg("--credential")
            .arg("managed-identity")
            .arg("-g")
            .arg("db-password")
            .arg("--max-concurrent")
            .arg("256")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg(guest)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("serve log"));
        let mut child = command.spawn().expect("start wasm-secrets serve");
        let by = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = crate::announced::address_after(&text, "serving on http://") {
                break addr;
            }
            if Instant::now() > by || child.try_wait().is_ok_and(|done| done.is_some()) {
                let _ = child.kill();
                panic!("serve never said where it listens; its log:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self { child, addr, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Resident memory (KiB) and open file descriptors.
    fn resources(&self) -> (u64, u64) {
        let pid = self.child.id();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        (rss, fds)
    }
}

/// One request's result.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<(u32, u8)>,
    non_2xx: u64,
    errors: u64,
}

/// Drives one keep-alive connection until `stop`; records latency, status and when the
/// rotated value was first seen.
async fn worker(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    phase: Arc<std::sync::atomic::AtomicU8>,
    rotated_seen: Arc<Mutex<Option<Instant>>>,
) -> Tally {
    use http_body_util::BodyExt;
    let mut tally = Tally::default();
    let marker = format!("({} characters)", ROTATED.len());
    let mut sender = None;
    while !stop.load(Ordering::Relaxed) {
        if sender.is_none() {
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                tally.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let Ok((s, conn)) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
            else {
                tally.errors += 1;
                continue;
            };
            tokio::spawn(conn);
            sender = Some(s);
        }
        let Some(s) = sender.as_mut() else { continue };
        let request = hyper::Request::get("/db-password")
            .header("host", "soak")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .expect("request");
        let at = phase.load(Ordering::Relaxed);
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let response = s.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        let took = started.elapsed();
        tally
            .latencies_us
            .push((took.as_micros().min(u32::MAX as u128) as u32, at));
        match answer {
            Ok(Ok((200, body))) => {
                if String::from_utf8_lossy(&body).contains(&marker) {
                    let mut seen = rotated_seen.lock().unwrap();
                    if seen.is_none() {
                        *seen = Some(Instant::now());
                    }
                }
            }
            Ok(Ok(_)) => tally.non_2xx += 1,
            Ok(Err(_)) | Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_micros(sorted[i] as u64)
}

/// Runs one soak. With `faults` false the same schedule runs with every phase calm (the
/// baseline); the rotation happens either way.
pub async fn run(soak: &Soak, guest: &Path, faults: bool) -> Report {
    let emu = Emulator::start(EmulatorConfig::default())
        .await
        .expect("start the emulator");
    emu.set_token_lifetime(60);
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = ServeProcess::start(&emu, dir.path(), soak.ttl, guest).await;

    // Ready: the first request fetches the token and the secret.
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = tokio::time::timeout(Duration::from_secs(5), get_status(serve.addr))
            .await
            .ok()
            .flatten();
        if ok == Some(200) {
            break;
        }
        assert!(
            Instant::now() < ready_by,
            "serve did not answer 200 within 60 s; its log ends:\n{}",
            serve.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let phase_now = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let rotated_seen = Arc::new(Mutex::new(None));
    let workers: Vec<_> = (0..soak.connections)
        .map(|_| {
            tokio::spawn(worker(
                serve.addr,
                stop.clone(),
                phase_now.clone(),
                rotated_seen.clone(),
            ))
        })
        .collect();
    // Warm-up: connections open, the allocator pools fill; then resources are read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start_resources = serve.resources();
    emu.reset_counters();
    let begun = Instant::now();

    let slot = soak.duration / soak.phases.len().max(1) as u32;
    let mut rotation_recovered_at = None;
    let mut rotated = false;
    for (i, &phase) in soak.phases.iter().enumerate() {
        phase_now.store(i as u8 + 1, Ordering::Relaxed);
        let fault = if faults { phase.fault() } else { None };
        if let Some((endpoint, f)) = &fault {
            emu.set_standing_fault(*endpoint, Some(f.clone()));
        }
        let rotate_here = !rotated && phase == Phase::Vault503;
        if rotate_here {
            assert!(!emu.put_secret("main", "db-password", ROTATED).is_empty());
            rotated = true;
        }
        tokio::time::sleep(slot).await;
        if let Some((endpoint, _)) = fault {
            emu.set_standing_fault(endpoint, None);
        }
        if rotate_here {
            rotation_recovered_at = Some(Instant::now());
        }
    }
    phase_now.store(0, Ordering::Relaxed);
    let seconds = begun.elapsed().as_secs_f64();
    let vault_gets = emu.vault_count("main");
    let token_requests = emu.count(Endpoint::Imds);
    let end_resources = serve.resources();
    stop.store(true, Ordering::Relaxed);

    let mut all = Vec::new();
    let (mut non_2xx, mut errors) = (0, 0);
    for w in workers {
        let t = w.await.expect("worker");
        non_2xx += t.non_2xx;
        errors += t.errors;
        all.extend(t.latencies_us);
    }
    // Only requests sent during the measured run count (phase index 1..).
    let measured: Vec<(u32, u8)> = all.into_iter().filter(|(_, p)| *p > 0).collect();
    let mut sorted: Vec<u32> = measured.iter().map(|(us, _)| *us).collect();
    sorted.sort_unstable();
    let slowest_by_phase = soak
        .phases
        .iter()
        .enumerate()
        .map(|(i, &phase)| {
            let slowest = measured
                .iter()
                .filter(|(_, p)| *p as usize == i + 1)
                .map(|(us, _)| *us)
                .max()
                .unwrap_or(0);
            (phase, Duration::from_micros(slowest as u64))
        })
        .collect();
    let rotation_served_after = match (*rotated_seen.lock().unwrap(), rotation_recovered_at) {
        (Some(seen), Some(recovered)) => Some(seen.saturating_duration_since(recovered)),
        _ => None,
    };
    drop(serve);
    emu.shutdown().await;
    Report {
        seconds,
        requests: sorted.len() as u64,
        non_2xx,
        errors,
        p50: percentile(&sorted, 0.50),
        p99: percentile(&sorted, 0.99),
        max: sorted
            .last()
            .map_or(Duration::ZERO, |us| Duration::from_micros(*us as u64)),
        slowest_by_phase,
        vault_gets,
        token_requests,
        rss_kib: (start_resources.0, end_resources.0),
        fds: (start_resources.1, end_resources.1),
        rotation_served_after,
    }
}

async fn get_status(addr: std::net::SocketAddr) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/db-password")
        .header("host", "soak")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    Some(response.status().as_u16())
}

/// The report as the table the README keeps; `calm` is the baseline run, if there was one.
pub fn table(soak: &Soak, faulted: &Report, calm: Option<&Report>) -> String {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let ideal = 1.0 / soak.ttl.as_secs_f64();
    let mut out = String::new();
    let mut row = |what: &str, value: String, goal: &str| {
        out.push_str(&format!("| {what} | {value} | {goal} |\n"));
    };
    row(
        "requests",
        format!(
            "{} in {:.0} s ({} connections)",
            faulted.requests, faulted.seconds, soak.connections
        ),
        "",
    );
    row(
        "non-2xx answers / broken requests",
        format!("{} / {}", faulted.non_2xx, faulted.errors),
        "0 / 0",
    );
    let vs = |f: Duration, c: Option<Duration>| match c {
        Some(c) if !c.is_zero() => format!(
            "{} (calm {}, {:.2}x)",
            ms(f),
            ms(c),
            f.as_secs_f64() / c.as_secs_f64()
        ),
        _ => ms(f),
    };
    row("p50", vs(faulted.p50, calm.map(|c| c.p50)), "");
    row(
        "p99",
        vs(faulted.p99, calm.map(|c| c.p99)),
        "within 2x of calm",
    );
    row("max", vs(faulted.max, calm.map(|c| c.max)), "under 100 ms");
    row(
        "vault GETs per second",
        format!(
            "{:.2} (ideal {ideal:.2}: one per key per TTL)",
            faulted.vault_gets_per_second()
        ),
        "",
    );
    row("token requests", faulted.token_requests.to_string(), "");
    row(
        "resident memory, start -> end",
        format!(
            "{:.1} -> {:.1} MiB",
            faulted.rss_kib.0 as f64 / 1024.0,
            faulted.rss_kib.1 as f64 / 1024.0
        ),
        "flat",
    );
    row(
        "open file descriptors, start -> end",
        format!("{} -> {}", faulted.fds.0, faulted.fds.1),
        "flat",
    );
    row(
        "rotated value served after recovery",
        faulted
            .rotation_served_after
            .map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64())),
        &format!("within one TTL ({:.0} s)", soak.ttl.as_secs_f64()),
    );
    let mut phases = String::new();
    for (phase, slowest) in &faulted.slowest_by_phase {
        phases.push_str(&format!("{phase:?} {}; ", ms(*slowest)));
    }
    row("slowest request by phase", phases, "");
    format!("| measure | result | goal |\n|---|---|---|\n{out}")
}
