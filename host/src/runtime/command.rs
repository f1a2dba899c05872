//! Running a wasi:cli command component to completion, within its limits.

use super::clock;
use super::engine::Runtime;
use super::limits::Limits;
use super::output::{FramedOutput, HostStream, OutputFormat};
use super::state::HostState;
use super::stopped::Stopped;
use crate::SecretsCtx;
use crate::egress::EgressPolicy;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p3::bindings::Command as P3Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx};

/// What the command sees of the outside world.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// argv, including `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Preopened directories: (host path, guest path).
    pub dirs: Vec<(PathBuf, String)>,
    /// Limits.
    pub limits: Limits,
    /// Capture stdout and stderr (up to 1 MiB each) instead of writing them to the host's.
    /// Otherwise stdout is the host's, untouched, and each stderr line reaches the host's
    /// stderr framed (see [`OutputFormat`]), naming the component.
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
    Failed(Stopped),
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

impl Runtime {
    /// Instantiates `component` as a wasi:cli command with [`Runtime::linker`] and runs it to
    /// the end.
    pub async fn run_command(
        &self,
        component: &Component,
        secrets: SecretsCtx,
        options: &CommandOptions,
    ) -> anyhow::Result<CommandResult> {
        self.run_command_with(self.linker(), component, secrets, options)
            .await
    }

    /// [`Runtime::run_command`] with a linker of the caller's, made on this runtime's engine.
    pub async fn run_command_with(
        &self,
        linker: &Linker<HostState>,
        component: &Component,
        secrets: SecretsCtx,
        options: &CommandOptions,
    ) -> anyhow::Result<CommandResult> {
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
        for (host, guest) in &options.dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "cannot give the guest directory {} as {guest}",
                        host.display()
                    )
                })?;
        }
        let limits = options.limits;
        let mut store = self.new_store(wasi, secrets, options.egress.clone(), &limits)?;
        let wait_until = store.data().wait_until();
        // A `wasi:cli/run@0.3.0` command runs inside the store's event loop (its `run` is an
        // async function); a 0.2 one is called directly.
        let run = async {
            let instance = linker.instantiate_async(&mut store, component).await?;
            if let Ok(command) = P3Command::new(&mut store, &instance) {
                return store
                    .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
                    .await?;
            }
            let command = Command::new(&mut store, &instance)?;
            command.wasi_cli_run().call_run(&mut store).await
        };
        let outcome = match clock::within(wait_until, run).await {
            None => Outcome::Failed(Stopped::timeout(limits.timeout.unwrap_or_default())),
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
}

const CAPTURE_LIMIT: usize = 1 << 20;

fn classify(e: wasmtime::Error, limits: &Limits) -> Outcome {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Outcome::Exited(exit.0);
    }
    Outcome::Failed(Stopped::from_error(&e, limits))
}
