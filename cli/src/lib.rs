//! The `wasm-secrets` command line over the `wasm-secrets` library: the config file, the
//! subcommands and the options they share, and `serve`'s listener, routes, admin listener and
//! reload. (A library too, so that the tests can reach the config and the server.)

/// An operator notice (serving on, reloaded, shutting down): shown by default, and a JSON
/// object like every log line with `--log-format json`.
macro_rules! notice {
    ($($arg:tt)*) => {
        tracing::info!(target: "wasm_secrets::notice", $($arg)*)
    };
}

mod app;
mod check;
mod compile;
pub mod config;
mod demo;
mod emulator;
mod host;
#[cfg(test)]
mod proptests;
mod run;
mod serve;
pub mod server;
mod signals;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use wasm_secrets::credential::CredentialKind;

/// Run WebAssembly components that get secrets from Azure Key Vault, without ever seeing a token.
#[derive(Debug, Parser)]
#[command(name = "wasm-secrets", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text, or as JSON objects (one per line, for log pipelines).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Guest output lines are framed to match the log lines around them.
    pub fn guest_output(self) -> wasm_secrets::runtime::OutputFormat {
        match self {
            Self::Text => wasm_secrets::runtime::OutputFormat::Text,
            Self::Json => wasm_secrets::runtime::OutputFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a wasi:cli command component; its exit code is passed on.
    Run(run::RunArgs),
    /// Serve a wasi:http proxy component: a fresh instance per request.
    Serve(app::ServeArgs),
    /// Show the whole story on an in-process Azure emulator: no account, no network.
    Demo(demo::DemoArgs),
    /// Run the local Azure emulator (IMDS, App Service, Arc, Entra, Key Vault) until Ctrl-C or SIGTERM.
    Emulator(emulator::EmulatorArgs),
    /// Validate the config, reach every vault, resolve every grant: one line each.
    Check(check::CheckArgs),
    /// Compile components ahead of time into the cache run and serve read.
    Compile(compile::CompileArgs),
}

impl Cli {
    /// Runs the chosen subcommand; returns the process exit code.
    pub async fn run(self) -> anyhow::Result<i32> {
        match self.command {
            Command::Run(args) => run::run(args, self.log_format).await,
            Command::Serve(args) => serve::run(args, self.log_format).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Emulator(args) => emulator::run(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Compile(args) => compile::run(args).await,
        }
    }
}

/// Options shared by run, serve and check: where secrets come from and who may read them.
#[derive(Debug, Clone, Args, Default)]
pub struct HostArgs {
    /// Config file (TOML); flags override it.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The default vault's URL.
    #[arg(long, value_name = "URL", env = "WASM_SECRETS_VAULT")]
    pub vault: Option<String>,
    /// Read secrets from a local TOML file (name = "value") instead of a vault.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Grant a secret to the component: NAME, ALIAS=NAME, VAULT/NAME, PREFIX*, NAME@VERSION;
    /// or a key: key:[ALIAS=][VAULT/]NAME[@VERSION]:OPS (OPS from sign, verify, wrap-key,
    /// unwrap-key, encrypt, decrypt, comma-separated).
    #[arg(short, long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// Which identity the host uses for vault tokens.
    #[arg(long, value_name = "KIND", value_parser = credential_kind())]
    pub credential: Option<CredentialKind>,
    /// A user-assigned managed identity, by client id.
    #[arg(long, value_name = "ID", conflicts_with_all = ["object_id", "resource_id"])]
    pub client_id: Option<String>,
    /// A user-assigned managed identity, by object id.
    #[arg(long, value_name = "ID", conflicts_with = "resource_id")]
    pub object_id: Option<String>,
    /// A user-assigned managed identity, by Azure resource id.
    #[arg(long, value_name = "ID")]
    pub resource_id: Option<String>,
    /// Extra PEM root certificate for vault TLS (for the emulator).
    #[arg(long, value_name = "FILE", env = "WASM_SECRETS_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Write the audit log (JSON lines) to FILE, or - for stderr.
    #[arg(long, value_name = "FILE|-")]
    pub audit_log: Option<String>,
    /// Allow grants of a whole vault (`*`, `VAULT/*`), which are refused otherwise.
    #[arg(long)]
    pub allow_whole_vault: bool,
}

/// Logs go to stderr; `WASM_SECRETS_LOG` sets the filter (default: warnings, and the
/// operator notices of `serve`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASM_SECRETS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wasm_secrets::notice=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// `--credential`: the library's credential kinds, by name, with their help.
fn credential_kind() -> impl clap::builder::TypedValueParser<Value = CredentialKind> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new(
        CredentialKind::ALL
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .map(|name| {
        CredentialKind::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(kind, _, _)| *kind)
            .unwrap_or_default()
    })
}
