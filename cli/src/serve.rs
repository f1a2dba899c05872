//! `wasm-secrets serve`: wasi:http proxy components, a fresh instance per request.
//!
//! `serve COMPONENT.wasm` serves one component at `/`; `serve -c app.toml` serves every
//! `[components.NAME]` with a `route`. All components share one engine, one token cache and one
//! secret cache per vault; each keeps its own grants, limits and egress rules. SIGHUP re-reads
//! the config: the new components, routes, grants, limits and egress serve new requests, the
//! requests in flight finish on the old, the caches survive; a config that does not load
//! leaves the running one in place.

use crate::LogFormat;
use crate::app::{App, Plan, ServeArgs};
use crate::server::{Readiness, Server, serve_admin};
use crate::signals::StopSignal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where to listen for admin requests: `ADDR:PORT`, or `PORT` on loopback.
pub fn parse_admin_addr(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        anyhow::anyhow!(
            "admin address {text:?}: expected ADDR:PORT (such as 0.0.0.0:9090) or a port"
        )
    })
}

pub async fn run(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<i32> {
    let config = crate::host::load_config(&args.host)?;
    let plan = Plan::from_args(&args, &config)?;
    let app = Arc::new(App::start(&args, &config, &plan, log_format)?);
    let routes = app.build(&config, &plan)?;
    let server = Arc::new(Server::with_routes(routes, args.max_concurrent));

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    let admin_addr = args.admin_addr.as_deref().or(config.admin_addr.as_deref());
    // Count only when someone can read the counts.
    wasm_secrets::metrics::set_enabled(admin_addr.is_some());
    let admin = match admin_addr {
        Some(text) => {
            let addr = parse_admin_addr(text)?;
            let admin = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--admin-addr): {e}"))?;
            Some(admin)
        }
        None => None,
    };
    // Registered before the address is printed: a SIGTERM or SIGHUP sent the moment a
    // supervisor reads it must stop or reload `serve`, not kill it (their default action).
    let stop = StopSignal::register()?;
    #[cfg(unix)]
    let hangup = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup())
            .map_err(|e| tracing::warn!("cannot listen for SIGHUP: config reload is off: {e}"))
            .ok()
    };
    #[cfg(not(unix))]
    let hangup = None;
    notice!(
        "serving on http://{} (Ctrl-C or SIGTERM to stop; SIGHUP reloads the config)",
        listener.local_addr()?
    );
    let readiness = Arc::new(Readiness::default());
    tokio::spawn({
        let (readiness, routes) = (readiness.clone(), server.routes());
        async move { readiness.check(routes, READINESS_RETRY).await }
    });
    if let Some(admin) = admin {
        notice!(
            "admin endpoints on http://{}/metrics, /healthz and /readyz",
            admin.local_addr()?
        );
        tokio::spawn(serve_admin(
            admin,
            server.clone(),
            readiness.clone(),
            std::future::pending(),
        ));
    }
    for (route, component) in server.routes().iter() {
        notice!("route {route} -> component {}", component.name());
    }
    if let Some(hangup) = hangup {
        tokio::spawn(reload_on_sighup(
            hangup,
            args,
            app,
            server.clone(),
            readiness,
        ));
    }
    let shutdown = async {
        stop.recv().await;
        notice!("shutting down: waiting for requests in flight");
    };
    server.serve(listener, shutdown).await?;
    Ok(0)
}

/// How often readiness tries again to resolve the grants that failed.
const READINESS_RETRY: Duration = Duration::from_secs(2);

#[cfg(unix)]
type HangUp = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type HangUp = std::convert::Infallible;

/// Reloads the config on every SIGHUP, all or nothing.
async fn reload_on_sighup(
    mut hangup: HangUp,
    args: ServeArgs,
    app: Arc<App>,
    server: Arc<Server>,
    readiness: Arc<Readiness>,
) {
    #[cfg(unix)]
    while hangup.recv().await.is_some() {
        let reloaded = crate::host::load_config(&args.host).and_then(|config| {
            let plan = Plan::from_args(&args, &config)?;
            app.check_unchanged(&config, &plan)?;
            app.build(&config, &plan)
        });
        match reloaded {
            Ok(routes) => {
                let n = routes.len();
                // Counted first: whoever sees the new routes answer also sees the count.
                wasm_secrets::metrics::global().reload(true);
                server.set_routes(routes);
                notice!("config reloaded: {n} components served");
                let (readiness, routes) = (readiness.clone(), server.routes());
                tokio::spawn(async move { readiness.check(routes, READINESS_RETRY).await });
            }
            Err(e) => {
                wasm_secrets::metrics::global().reload(false);
                tracing::error!(
                    "config reload failed, the running config stays: {}",
                    format!("{e:#}").replace('\n', " ")
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (&mut hangup, args, app, server, readiness);
}
