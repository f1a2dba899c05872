//! `wasm-secrets-emulator`: run the local Azure emulator until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wasm_secrets_emulator::{Emulator, EmulatorConfig};

/// A local Azure emulator (IMDS, App Service, Arc, Entra, Key Vault over TLS) on loopback.
#[derive(Parser, Debug)]
#[command(name = "wasm-secrets-emulator", version)]
struct Args {
    /// TOML config file (default: the built-in demo config, same as emulator/emulator.toml).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Write the CA certificate PEM here (overrides ca-cert-path).
    #[arg(long)]
    ca_cert_out: Option<PathBuf>,
    /// The Azure Arc token folder (overrides arc-token-dir).
    #[arg(long)]
    arc_token_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wasm_secrets_emulator=info".into()),
        )
        .init();
    let mut config = match &args.config {
        Some(p) => match EmulatorConfig::from_file(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => EmulatorConfig::default(),
    };
    if let Some(p) = args.ca_cert_out {
        config.ca_cert_path = Some(p);
    }
    if let Some(p) = args.arc_token_dir {
        config.arc_token_dir = Some(p);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(config))
}

async fn run(config: EmulatorConfig) -> ExitCode {
    let emu = match Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = emu.print_exports(&mut std::io::stdout()) {
        eprintln!("error: cannot print the exports: {e}");
        return ExitCode::FAILURE;
    }
    eprint!("{}", emu.summary());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {e}");
    }
    emu.shutdown().await;
    ExitCode::SUCCESS
}
