//! `wasm-secrets emulator`: the local Azure emulator, standalone, until Ctrl-C or SIGTERM.

use clap::Args;
use std::path::PathBuf;
use wasm_secrets_emulator::{Emulator, EmulatorConfig};

/// Arguments of `emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Emulator config (TOML); default: the built-in demo config (emulator/emulator.toml).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the CA certificate (PEM) here.
    #[arg(long, value_name = "FILE")]
    ca_cert_out: Option<PathBuf>,
}

pub async fn run(args: EmulatorArgs) -> anyhow::Result<i32> {
    let mut config = match &args.config {
        Some(path) => EmulatorConfig::from_file(path)?,
        None => EmulatorConfig::default(),
    };
    if let Some(p) = args.ca_cert_out {
        config.ca_cert_path = Some(p);
    }
    let stop = crate::signals::StopSignal::register()?;
    let emulator = Emulator::start(config).await?;
    // The exports come first, on stdout, so `eval "$(wasm-secrets emulator)"`-style use works.
    emulator.print_exports(&mut std::io::stdout())?;
    eprint!("{}", emulator.summary());
    stop.recv().await;
    emulator.shutdown().await;
    Ok(0)
}
