//! `wasm-secrets serve`: a wasi:http proxy component, a fresh instance per request.

use super::HostArgs;
use super::run::{EgressArgs, LimitArgs, prepare};
use clap::Args;
use std::sync::Arc;
use wasm_secrets::runtime;
use wasm_secrets::serve::{DEFAULT_REQUEST_TIMEOUT, ServeOptions, Server, serve_engine};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Requests handled at once; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_concurrent: usize,
    #[command(flatten)]
    egress: EgressArgs,
    /// The component (.wasm), or the name of a [components.NAME] entry in the config.
    #[arg(value_name = "COMPONENT")]
    component: String,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let prepared = prepare(&args.host, &args.limits, &args.egress, &args.component)?;
    let engine = serve_engine(
        args.max_concurrent,
        prepared.engine_fuel,
        prepared.limits.max_memory,
    )?;
    let (component, _) = runtime::load_component(
        &engine,
        &prepared.path,
        runtime::default_cache_dir().as_deref(),
    )?;
    let mut limits = prepared.limits;
    limits.timeout = limits.timeout.or(Some(DEFAULT_REQUEST_TIMEOUT));
    let options = ServeOptions {
        limits,
        max_concurrent: args.max_concurrent,
        env: prepared.env,
    };
    let server = Arc::new(Server::new(
        &engine,
        &component,
        prepared.secrets,
        prepared.egress,
        options,
    )?);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    eprintln!(
        "serving {} on http://{} (Ctrl-C or SIGTERM to stop)",
        prepared.path.display(),
        listener.local_addr()?
    );
    let shutdown = async {
        stop_signal().await;
        eprintln!("shutting down: waiting for requests in flight");
    };
    server.serve(listener, shutdown).await?;
    Ok(0)
}

/// Ctrl-C (SIGINT) or, on Unix, SIGTERM (what Kubernetes and systemd send).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
