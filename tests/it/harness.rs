//! Shared helpers: guest paths, the CLI binary, a counting backend, in-process runs.

#![allow(dead_code)]

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use wasm_secrets::backend::file::FileBackend;
use wasm_secrets::backend::{Backend, Secret, SecretMeta};
use wasm_secrets::runtime::{self, CommandOptions, EngineOptions, Outcome, Runtime};
use wasm_secrets::{BackendError, Grants, SecretsCtx, Vaults};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A guest component built by host/build.rs.
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("WASM_SECRETS_GUEST_DIR")).join(format!("{name}.wasm"))
}

/// A hostile guest in tests/wat.
pub fn wat(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/wat")
        .join(format!("{name}.wat"))
}

/// A folder under target/ for this test binary's cache of compiled components.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

/// The `wasm-secrets` binary, loopback-only, with a shared component cache.
pub fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wasm-secrets"));
    c.env("WASM_SECRETS_LOOPBACK_ONLY", "1")
        .env("WASM_SECRETS_CACHE_DIR", cache_dir())
        .env_remove("WASM_SECRETS_VAULT")
        .env_remove("WASM_SECRETS_CA_CERT")
        .env_remove("WASM_SECRETS_LOG");
    c
}

/// Output of a CLI run, as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_cli(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("spawn wasm-secrets");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// What `serve_once` saw: the answer, and the server's stdout and stderr up to its exit.
pub struct Served {
    pub status: u16,
    pub body: String,
    pub stdout: String,
    pub stderr: String,
}

/// Reads `serve`'s stderr to its end on a thread of its own (a full pipe would stall a chatty
/// server), and says each address it listens on as soon as it prints it, in its order:
/// `serving on http://ADDR`, then with `--admin-addr` `admin endpoints on http://ADDR/...`.
/// `serve` is started on port 0 for both, so no other listener can take a port between a test
/// choosing a free one and `serve` binding it.
pub fn watch_stderr(
    pipe: std::process::ChildStderr,
) -> (
    std::sync::mpsc::Receiver<std::net::SocketAddr>,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut announcements = vec!["admin endpoints on http://", "serving on http://"];
        let mut lines = std::io::BufReader::new(pipe);
        let mut line = String::new();
        while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
            let marker = announcements
                .iter()
                .position(|a| line.contains(a))
                .map(|i| announcements.swap_remove(i));
            if let Some(addr) = marker.and_then(|m| crate::announced::address_after(&line, m)) {
                let _ = tx.send(addr);
            }
            text.push_str(&line);
            line.clear();
        }
        text
    });
    (rx, reader)
}

/// Waits (up to `limit`) for the first `n` addresses [`watch_stderr`] reports (the server's,
/// then its admin listener's); `None` if `serve` ended or took longer.
pub async fn listening_on(
    rx: std::sync::mpsc::Receiver<std::net::SocketAddr>,
    limit: std::time::Duration,
    n: usize,
) -> Option<Vec<std::net::SocketAddr>> {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + limit;
        (0..n)
            .map(|_| rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())))
            .collect::<Result<Vec<_>, _>>()
            .ok()
    })
    .await
    .unwrap()
}

/// Starts `wasm-secrets [global..] serve ARGS --addr <free port>`, sends `GET path` once it
/// listens, stops it with SIGTERM and returns what it answered and printed.
pub async fn serve_once(global: &[&str], args: &[std::ffi::OsString], path: &str) -> Served {
    let mut child = cli()
        .args(global)
        .arg("serve")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wasm-secrets serve");
    let (rx, stderr) = watch_stderr(child.stderr.take().unwrap());
    let Some(addr) = listening_on(rx, std::time::Duration::from_secs(60), 1)
        .await
        .map(|addrs| addrs[0])
    else {
        let _ = child.kill();
        panic!(
            "serve never listened: {}",
            stderr.join().unwrap_or_default()
        );
    };
    let (status, body) = crate::serve::get(&format!("http://{addr}{path}")).await;
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = stderr.join().unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    Served {
        status,
        body,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

/// [`run_cli`], and the child's peak resident memory in bytes (from `wait4`: that one
/// process's own, whatever else the tests run at the same time).
#[cfg(target_os = "linux")]
pub fn run_cli_with_peak_rss(cmd: &mut Command) -> (Run, u64) {
    use std::io::Read;
    use std::process::Stdio;
    #[allow(
        clippy::zombie_processes,
        reason = "reaped below by wait4, which also gives its rusage"
    )]
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasm-secrets");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data; wait4 fills it and `status`. The child is reaped here
    // and never waited on through `child` again.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let run = Run {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    // Linux reports kilobytes.
    (run, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

/// Writes `text` to a new temporary file with the given suffix.
pub fn temp_file(suffix: &str, text: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// One runtime and compiled guests per test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(&EngineOptions::default()).unwrap())
}

/// The engine of [`runtime`].
pub fn engine() -> &'static Engine {
    runtime().engine()
}

/// A runtime for serving (pooling allocator, 16 requests at once), one per test binary.
pub fn runtime_for_serve() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new(&EngineOptions::serving(16, &[])).unwrap())
        .clone()
}

pub fn component(name: &str) -> Component {
    component_at(&guest(name))
}

/// Latency bounds and big compiles do not mix on two cores: a test that compiles a Python or
/// JavaScript component (most of a minute of both cores on a fresh cache) holds this shared,
/// and a test that bounds request latency under load (the soak) holds it alone, so its bounds
/// measure the server rather than whichever compile ran beside it.
pub static CPU: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The component at `path`, compiled once per test binary into the shared on-disk cache, which
/// `wasm-secrets run` (same engine settings) then reads instead of compiling it again: a
/// Python or JavaScript component takes most of a minute to compile here. The table is locked
/// only to find a path's slot, never during a compile: a test waiting on another component's
/// compile would stall its whole (single-threaded) runtime.
pub fn component_at(path: &Path) -> Component {
    type Slot = Arc<OnceLock<Component>>;
    static SLOTS: OnceLock<std::sync::Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    let slot = SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(path.to_owned())
        .or_default()
        .clone();
    slot.get_or_init(|| {
        runtime::load_component(engine(), path, Some(&cache_dir()))
            .unwrap()
            .0
    })
    .clone()
}

/// A backend over in-memory secrets that counts every call it gets.
pub struct Counting {
    inner: FileBackend,
    pub calls: AtomicUsize,
}

impl Counting {
    pub fn new(secrets: &[(&str, &str)]) -> Arc<Self> {
        Arc::new(Self {
            inner: FileBackend::new(
                "test",
                secrets.iter().map(|(k, v)| (k.to_string(), (*v).into())),
            ),
            calls: AtomicUsize::new(0),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Backend for Counting {
    fn describe(&self) -> String {
        "counting test backend".into()
    }
    fn get<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Secret, BackendError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(name, version)
    }
    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.info(name, version)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list()
    }
}

/// Runs guest `name` in-process with `grants` over `vaults`; returns (exit code, stdout).
pub async fn run_guest(
    name: &str,
    grants: &[&str],
    vaults: Vaults,
    args: &[&str],
) -> (i32, String) {
    let ctx = SecretsCtx::new(name, Grants::parse(grants).unwrap(), vaults);
    run_guest_with(name, ctx, args).await
}

/// Runs guest `name` in-process with the secrets context `ctx`; returns (exit code, stdout).
pub async fn run_guest_with(name: &str, ctx: SecretsCtx, args: &[&str]) -> (i32, String) {
    let mut argv = vec![name.to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let options = CommandOptions {
        args: argv,
        capture_output: true,
        ..CommandOptions::default()
    };
    let r = runtime()
        .run_command(&component(name), ctx, &options)
        .await
        .unwrap();
    let code = match r.outcome {
        Outcome::Exited(c) => c,
        Outcome::Failed(why) => panic!("guest failed: {why}"),
    };
    (code, String::from_utf8(r.stdout).unwrap())
}

/// The value of the process's metric `series` (a name with its labels, as `/metrics` prints
/// them), or 0 when it was never counted.
pub fn metric(series: &str) -> f64 {
    let text = wasm_secrets::metrics::global().encode();
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
