//! `wasm-secrets-emulator`: run the local Azure emulator until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wasm_secrets_emulator::{Emulator, EmulatorConfig, shell_quote};

/// A local Azure emulator (IMDS, App Service, Arc, Entra, Key Vault over TLS) on loopback.
#[derive(Parser, Debug)]
#[command(name = "wasm-secrets-emulator", version)]
struct Args {
    /// TOML config file (default: the built-in demo config, same as emulator/emulator.toml).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Write the CA certificate PEM here (overrides ca_cert_path).
    #[arg(long)]
    ca_cert_out: Option<PathBuf>,
    /// The Azure Arc token folder (overrides arc_token_dir).
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
    let mut out = std::io::stdout().lock();
    for (k, v) in emu.exports() {
        let _ = writeln!(out, "export {k}={}", shell_quote(&v));
    }
    let _ = out.flush();
    drop(out);
    let c = emu.config();
    eprintln!("wasm-secrets emulator running on 127.0.0.1 (Ctrl-C to stop)");
    eprintln!("  IMDS                {}", emu.imds_base());
    eprintln!(
        "  App Service 2019    {} (X-IDENTITY-HEADER)",
        emu.app_service_endpoint()
    );
    eprintln!(
        "  App Service 2017    {} (secret)",
        emu.legacy_msi_endpoint()
    );
    eprintln!(
        "  Azure Arc           {} (keys in {})",
        emu.arc_identity_endpoint(),
        emu.arc_token_dir().display()
    );
    eprintln!(
        "  Entra               {} and {}",
        emu.authority_host(),
        emu.authority_host_http()
    );
    for v in &c.vaults {
        eprintln!(
            "  Key Vault {:<9} {} ({} secrets)",
            v.name,
            emu.vault_url(&v.name).unwrap_or_default(),
            v.secrets.len()
        );
    }
    eprintln!("  CA certificate      {}", emu.ca_cert_path().display());
    eprintln!("  admin               {}", emu.admin_url());
    eprintln!("  tenant              {}", emu.tenant_id());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {e}");
    }
    emu.shutdown().await;
    ExitCode::SUCCESS
}
