//! Running a wasi:cli command component to completion, within its limits.

use super::deadline::{Ticker, set_time_limit};
use super::limits::{Limits, LimitsError, StoreLimiter};
use super::output::{FramedOutput, HostStream, OutputFormat};
use super::state::HostState;
use crate::SecretsCtx;
use crate::egress::{EgressHooks, EgressPolicy};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx};
use wasmtime_wasi_http::WasiHttpCtx;

/// What the command sees of the outside world.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// argv, including argv[0].
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Preopened directories: (host path, guest path).
    pub dirs: Vec<(PathBuf, String)>,
    /// Limits.
    pub limits: Limits,
    /// Capture stdout and stderr (up to 1 MiB each) instead of writing them to the host's.
    /// Otherwise stdout is the host's, untouched, and each stderr line reaches the host's
    /// stderr framed (see [`FramedOutput`]), naming the component.
    pub capture_output: bool,
    /// How framed stderr lines look: like the host's own log lines.
    pub output_format: OutputFormat,
    /// Where outgoing wasi:http requests may go (by default nowhere).
    pub egress: Arc<EgressPolicy>,
}

/// How a command ended, and what it printed when output was captured.
#[derive(Debug)]
pub struct CommandResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Captured stdout (empty when inherited).
    pub stdout: Vec<u8>,
    /// Captured stderr (empty when inherited).
    pub stderr: Vec<u8>,
}

/// How a command ended.
#[derive(Debug)]
pub enum Outcome {
    /// It returned or exited with this code.
    Exited(i32),
    /// A limit stopped it, or it trapped: one line saying why.
    Failed(String),
}

impl Outcome {
    /// The process exit code to pass on: the guest's own, or 1 for a failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exited(code) => *code,
            Self::Failed(_) => 1,
        }
    }
}

/// Links WASI (p2, async), outgoing wasi:http (through the egress rules), the secrets
/// interfaces and `wasi:config/store` for commands.
pub fn command_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::add_to_linker(&mut linker, HostState::secrets_view)?;
    crate::add_wasi_config_to_linker(&mut linker, HostState::secrets_view)?;
    Ok(linker)
}

/// Instantiates `component` as a wasi:cli command and runs it to the end.
pub async fn run_command(
    engine: &Engine,
    component: &Component,
    secrets: SecretsCtx,
    options: &CommandOptions,
) -> anyhow::Result<CommandResult> {
    run_command_with(&command_linker(engine)?, component, secrets, options).await
}

/// [`run_command`] with a linker of the caller's (say, one built once for many runs).
pub async fn run_command_with(
    linker: &Linker<HostState>,
    component: &Component,
    secrets: SecretsCtx,
    options: &CommandOptions,
) -> anyhow::Result<CommandResult> {
    let engine = linker.engine();
    let mut wasi = WasiCtx::builder();
    wasi.args(&options.args).envs(&options.env);
    let pipes = options.capture_output.then(|| {
        let (out, err) = (
            MemoryOutputPipe::new(CAPTURE_LIMIT),
            MemoryOutputPipe::new(CAPTURE_LIMIT),
        );
        wasi.stdout(out.clone()).stderr(err.clone());
        (out, err)
    });
    if pipes.is_none() {
        // stderr is shared with the host's logs and, maybe, the audit log: framed.
        let stderr = FramedOutput::new(
            secrets.component(),
            HostStream::Stderr,
            options.output_format,
        );
        wasi.inherit_stdin().inherit_stdout().stderr(stderr);
    }
    // No sockets and no name lookups: a guest reaches the outside only through the host.
    wasi.socket_addr_check(|_, _| Box::pin(async { false }));
    wasi.allow_ip_name_lookup(false);
    for (host, guest) in &options.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot open directory {} for --dir", host.display()))?;
    }
    let limits = options.limits;
    let state = HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        hooks: EgressHooks::new(options.egress.clone()),
        secrets,
        limiter: StoreLimiter::new(&limits),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_hostcall_fuel(limits.max_hostcall_bytes);
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel)?;
    }
    // This store's own deadline; the ticker makes wasm look at it (and stops no one else).
    set_time_limit(&mut store, limits.timeout);
    let _ticker = limits.timeout.map(|_| Ticker::start(engine.clone()));

    let run = async {
        let command = Command::instantiate_async(&mut store, component, linker).await?;
        command.wasi_cli_run().call_run(&mut store).await
    };
    let result = match limits.timeout {
        // The epoch stops wasm code; this stops a guest parked in a host call.
        Some(t) => tokio::time::timeout(t + t / 10 + Duration::from_millis(50), run)
            .await
            .ok(),
        None => Some(run.await),
    };
    let outcome = match result {
        None => Outcome::Failed(timeout_message(limits.timeout.unwrap_or_default())),
        Some(Ok(Ok(()))) => Outcome::Exited(0),
        Some(Ok(Err(()))) => Outcome::Exited(1),
        Some(Err(e)) => classify(e, &limits),
    };
    let (stdout, stderr) = pipes
        .map(|(o, e)| (o.contents().to_vec(), e.contents().to_vec()))
        .unwrap_or_default();
    Ok(CommandResult {
        outcome,
        stdout,
        stderr,
    })
}

const CAPTURE_LIMIT: usize = 1 << 20;

fn timeout_message(t: Duration) -> String {
    format!(
        "the component ran past its time limit of {} (--timeout) and was stopped",
        humantime::format_duration(t)
    )
}

fn classify(e: wasmtime::Error, limits: &Limits) -> Outcome {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Outcome::Exited(exit.0);
    }
    Outcome::Failed(describe_failure(&e, limits))
}

/// One line saying why a guest stopped: which limit, or what trap.
pub fn describe_failure(e: &wasmtime::Error, limits: &Limits) -> String {
    if let Some(l) = e.downcast_ref::<LimitsError>() {
        return l.to_string();
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => timeout_message(limits.timeout.unwrap_or_default()),
            Trap::OutOfFuel => format!(
                "the component used all of its fuel ({} units, --fuel) and was stopped",
                limits.fuel.unwrap_or_default()
            ),
            other => format!("the component trapped: {other}"),
        };
    }
    let text = format!("{e:#}");
    if text.contains("table count too high") {
        return format!(
            "table creation past the cap of {} tables: the component tried to create more",
            limits.max_tables
        );
    }
    if text.contains("fuel allocated for hostcalls has been exhausted") {
        return format!(
            "the component passed more than {} bytes into one host call and was stopped",
            limits.max_hostcall_bytes
        );
    }
    // Each cause's first line: a wasm backtrace, which wasmtime attaches as a context of its
    // own, is many lines and says nothing a one-line error can use.
    let causes: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
        .filter_map(|c| c.lines().next().map(str::to_owned))
        .filter(|c| !c.is_empty())
        .collect();
    format!("the component failed: {}", causes.join(": "))
}
