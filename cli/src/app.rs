//! What `serve` serves: the components the flags and config describe ([`Plan`]), built into a
//! route table over one engine and one set of vaults ([`App`]), again on every reload.

use crate::config::{ComponentConfig, Config, LimitsConfig, parse_duration};
use crate::run::{EgressArgs, LimitArgs, guest_env};
use crate::server::{DEFAULT_REQUEST_TIMEOUT, Routes};
use crate::{HostArgs, LogFormat, host};
use anyhow::Context as _;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasm_secrets::audit::AuditSink;
use wasm_secrets::connect::Connector;
use wasm_secrets::egress::{EgressRule, Resolver};
use wasm_secrets::runtime::{
    EngineOptions, Limits, OutputFormat, Proxy, ProxyOptions, Reuse, Runtime, default_cache_dir,
    load_component,
};
use wasm_secrets::{Budget, Grants, SecretsCtx, Vaults};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub egress: EgressArgs,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Requests handled at once, across all components; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_concurrent: usize,
    /// Requests one instance of a WASI 0.3 handler serves in all before it is retired
    /// (default 128; 1: a fresh instance per request). WASI 0.2 handlers get a fresh instance
    /// per request.
    #[arg(long, value_name = "N")]
    pub instance_requests: Option<usize>,
    /// Requests one instance of a WASI 0.3 handler serves at once (default 16).
    #[arg(long, value_name = "N")]
    pub instance_concurrency: Option<usize>,
    /// How long an instance of a WASI 0.3 handler with nothing to do is kept (default 1s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub instance_idle: Option<Duration>,
    /// Serve /metrics, /healthz and /readyz on ADDR:PORT (a port alone means 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR")]
    pub admin_addr: Option<String>,
    /// The name of a [components.NAME] entry in the config, or a component file (.wasm), which
    /// gets only the flags' grants. Without it, every [components.NAME] with a route is served.
    #[arg(value_name = "COMPONENT")]
    pub component: Option<String>,
}

impl ServeArgs {
    /// The limits the flags set, the instance reuse bounds among them.
    fn limits_config(&self) -> LimitsConfig {
        LimitsConfig {
            instance_requests: self.instance_requests,
            instance_concurrency: self.instance_concurrency,
            instance_idle: self.instance_idle,
            ..self.limits.to_config()
        }
    }
}

/// One component to serve.
pub struct ComponentPlan {
    name: String,
    path: PathBuf,
    route: String,
    grants: Grants,
    limits: Limits,
    vault_budget: Option<Budget>,
    reuse: Reuse,
    egress: Vec<EgressRule>,
}

/// Every component to serve, as the flags and the config say now.
pub struct Plan {
    components: Vec<ComponentPlan>,
    env: Vec<(String, String)>,
    resolver: Resolver,
}

impl Plan {
    /// `serve COMPONENT`: that one component at `/`. `serve -c FILE`: every component of the
    /// config with a route.
    pub fn from_args(args: &ServeArgs, config: &Config) -> anyhow::Result<Self> {
        let mut components = Vec::new();
        match &args.component {
            Some(component) => {
                let host::Chosen { name, entry, path } = host::choose_component(config, component);
                components.push(Self::component(
                    args,
                    config,
                    name,
                    entry,
                    path,
                    "/".into(),
                )?);
            }
            None => {
                anyhow::ensure!(
                    args.host.grants.is_empty(),
                    "--grant gives one component its grants; with routed components, put them in [components.NAME] grants"
                );
                for (name, entry) in &config.components {
                    let Some(route) = &entry.route else { continue };
                    let path = entry.wasm.clone().unwrap_or_default();
                    components.push(Self::component(
                        args,
                        config,
                        name.clone(),
                        Some(entry),
                        path,
                        route.clone(),
                    )?);
                }
                anyhow::ensure!(
                    !components.is_empty(),
                    "nothing to serve: give COMPONENT.wasm, or a config (-c) whose [components.NAME] have a route"
                );
            }
        }
        Ok(Self {
            components,
            env: guest_env(&args.limits.env, args.limits.allow_credential_env)?,
            resolver: args.egress.resolver(),
        })
    }

    /// One component: `entry`'s grants, limits and egress (none for a file) with the flags'.
    fn component(
        args: &ServeArgs,
        config: &Config,
        name: String,
        entry: Option<&ComponentConfig>,
        path: PathBuf,
        route: String,
    ) -> anyhow::Result<ComponentPlan> {
        let grants =
            host::build_grants(&args.host, entry).with_context(|| format!("component {name}"))?;
        host::warn_whole_vault(&name, &grants);
        let flags = args.limits_config();
        let limits = serve_limits(flags, entry, config);
        let cascaded = config.limits_for(flags, entry);
        let vault_budget = cascaded.vault_budget();
        let reuse = cascaded
            .reuse()
            .with_context(|| format!("component {name}"))?;
        let mut egress = entry.map(|c| c.egress.clone()).unwrap_or_default();
        egress.extend(args.egress.rules());
        Ok(ComponentPlan {
            name,
            path,
            route,
            grants,
            limits,
            vault_budget,
            reuse,
            egress,
        })
    }

    /// The engine these components are served on, `max_concurrent` requests at once.
    fn engine_options(&self, max_concurrent: usize) -> EngineOptions {
        EngineOptions::serving(max_concurrent, self.components.iter().map(|c| &c.limits))
    }
}

/// A served component's limits: the flags', else its config entry's, else the config's; and
/// [`DEFAULT_REQUEST_TIMEOUT`] per request when none sets a timeout. `serve` and
/// `compile --serve` both size their engine from these (see [`EngineOptions::serving`]), so that
/// a precompiled component matches.
pub fn serve_limits(
    flags: LimitsConfig,
    entry: Option<&ComponentConfig>,
    config: &Config,
) -> Limits {
    let mut limits = config.limits_for(flags, entry).to_limits();
    limits.timeout = limits.timeout.or(Some(DEFAULT_REQUEST_TIMEOUT));
    limits
}

/// What lives as long as the server: the engine, the vaults (and so every cache), the audit
/// log; and what of the config they were made from, which a reload may not change.
pub struct App {
    host_args: HostArgs,
    runtime: Runtime,
    engine_options: EngineOptions,
    vaults: Vaults,
    /// The one connector: egress token caches survive reloads.
    connector: Connector,
    audit: Option<Arc<dyn AuditSink>>,
    cache_dir: Option<PathBuf>,
    fixed: String,
    output_format: OutputFormat,
}

/// The parts of the config that are read once, at start.
fn fixed_part(config: &Config) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        config.vaults, config.cache, config.secrets_file, config.audit_log
    )
}

impl App {
    /// The engine (sized for `plan`), the vaults and the audit log.
    pub fn start(
        args: &ServeArgs,
        config: &Config,
        plan: &Plan,
        log_format: LogFormat,
    ) -> anyhow::Result<Self> {
        let engine_options = plan.engine_options(args.max_concurrent);
        let connector = host::connector(config);
        Ok(Self {
            host_args: args.host.clone(),
            runtime: Runtime::new(&engine_options)?,
            engine_options,
            vaults: host::build_vaults(&args.host, config, &connector)?,
            connector,
            audit: host::audit_sink(&args.host, config)?,
            cache_dir: default_cache_dir(),
            fixed: fixed_part(config),
            output_format: log_format.guest_output(),
        })
    }

    /// Refuses a reload that needs what only a restart gives.
    pub fn check_unchanged(&self, config: &Config, plan: &Plan) -> anyhow::Result<()> {
        anyhow::ensure!(
            fixed_part(config) == self.fixed,
            "[vaults], [cache], secrets-file and audit-log are read at start: restart to change them"
        );
        let started = &self.engine_options;
        let wanted = plan.engine_options(started.pooled_instances.unwrap_or_default());
        anyhow::ensure!(
            !wanted.fuel || started.fuel,
            "a component now has a fuel limit, and the server started without fuel metering: restart to apply it"
        );
        let fits = match (started.max_memory, wanted.max_memory) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(have), Some(want)) => want <= have,
        };
        anyhow::ensure!(
            fits,
            "a component's memory limit is now above what the server started with: restart to apply it"
        );
        Ok(())
    }

    /// Compiles (or loads from the cache) and pre-instantiates every component of `plan`.
    pub fn build(&self, config: &Config, plan: &Plan) -> anyhow::Result<Routes> {
        let mut routes = Routes::new();
        for c in &plan.components {
            host::check_grants(&self.vaults, &c.grants)
                .with_context(|| format!("component {}", c.name))?;
            let (component, _) =
                load_component(self.runtime.engine(), &c.path, self.cache_dir.as_deref())
                    .with_context(|| format!("component {}", c.name))?;
            let mut secrets =
                SecretsCtx::new(c.name.as_str(), c.grants.clone(), self.vaults.clone())
                    .with_budget(c.vault_budget);
            if let Some(sink) = &self.audit {
                secrets = secrets.with_audit(sink.clone());
            }
            let mut egress = host::egress_policy(
                &self.host_args,
                config,
                c.egress.clone(),
                plan.resolver.clone(),
                &self.connector,
            )
            .with_context(|| format!("component {}", c.name))?;
            if let Some(sink) = &self.audit {
                egress = egress.with_audit(c.name.as_str(), sink.clone());
            }
            let served = Proxy::new(
                &self.runtime,
                c.name.clone(),
                &component,
                secrets,
                egress,
                ProxyOptions {
                    limits: c.limits,
                    env: plan.env.clone(),
                    output_format: self.output_format,
                    reuse: c.reuse,
                },
            )
            .with_context(|| format!("component {}", c.name))?;
            routes
                .add(&c.route, Arc::new(served))
                .with_context(|| format!("component {}", c.name))?;
        }
        Ok(routes)
    }
}
