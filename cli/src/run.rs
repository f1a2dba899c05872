//! `wasm-secrets run`: one wasi:cli command component, stdin and stdout inherited, stderr
//! framed line by line (it is shared with the host's logs), exit code passed on.

use crate::config::{BudgetSetting, LimitsConfig, parse_budget, parse_bytes, parse_duration};
use crate::{HostArgs, LogFormat, host};
use anyhow::Context as _;
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasm_secrets::SecretsCtx;
use wasm_secrets::credential::Env;
use wasm_secrets::credential::exposure::{exposed_credential_dir, is_credential_var};
use wasm_secrets::egress::{EgressPolicy, EgressRule, Resolver};
use wasm_secrets::runtime::{
    CommandOptions, EngineOptions, Limit, Limits, Outcome, Runtime, Stopped, default_cache_dir,
    load_component,
};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    egress: EgressArgs,
    /// Give the guest a host directory: HOST or HOST::GUEST. A folder that holds the host's
    /// token files (the workload-identity token's, the Azure Arc agent's), is inside one or
    /// contains one is refused.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Let --dir give a folder that holds the host's token files (refused otherwise).
    #[arg(long)]
    allow_credential_dir: bool,
    /// Do not cache compiled components.
    #[arg(long)]
    no_cache: bool,
    /// The name of a [components.NAME] entry in the config, or a component file (.wasm), which
    /// gets only the flags' grants.
    #[arg(value_name = "COMPONENT")]
    component: String,
    /// Arguments for the component.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

/// Limit flags shared by `run` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Stop the guest (or, for serve, one request) after this long (e.g. 500ms, 10s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Stop the guest after this much fuel.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Cap the guest's memory, linear memories and tables together (e.g. 64MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: Option<usize>,
    /// Cap the bytes a guest may pass into one host call (default 1MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_hostcall_bytes: Option<usize>,
    /// The component's budget of vault calls (misses, refreshes, key operations), as
    /// "RATE/s [burst N]", or "off" (default "100/s burst 1000"); past it, reads that need
    /// the vault are refused at once, and cached values are still served.
    #[arg(long, value_name = "BUDGET", value_parser = parse_budget)]
    pub vault_calls: Option<BudgetSetting>,
    /// Pass an environment variable to the guest: NAME=VALUE, or NAME to copy the host's. The
    /// host's identity variables (AZURE_CLIENT_SECRET, IDENTITY_HEADER, MSI_SECRET,
    /// AZURE_FEDERATED_TOKEN_FILE and the like) are refused.
    #[arg(long = "env", value_name = "NAME[=VAL]")]
    pub env: Vec<String>,
    /// Let --env pass the host's identity variables (refused otherwise).
    #[arg(long)]
    pub allow_credential_env: bool,
}

/// Egress flags shared by `run` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct EgressArgs {
    /// Let the guest's outgoing wasi:http requests reach HOST (its scheme's default port) or
    /// HOST:PORT; repeatable. Every other destination is refused inside the guest.
    /// A host name there reaches public addresses only; an IP address reaches that address.
    #[arg(long = "allow-http", value_name = "HOST[:PORT]")]
    pub allow_http: Vec<String>,
    /// Like --allow-http, and the host name may also resolve to loopback, private
    /// (10/8, 172.16/12, 192.168/16, fc00::/7) or CGNAT addresses. Link-local addresses and
    /// the host's identity endpoints stay refused.
    #[arg(long = "allow-private-http", value_name = "HOST[:PORT]")]
    pub allow_private_http: Vec<String>,
    /// Resolve NAME to these addresses for guest requests instead of asking DNS (like curl's
    /// --resolve); the addresses are still checked. Repeatable.
    #[arg(long = "resolve", value_name = "NAME:ADDR[,ADDR]", value_parser = parse_pin)]
    pub resolve: Vec<Pin>,
}

impl EgressArgs {
    /// The rules the flags add.
    pub fn rules(&self) -> impl Iterator<Item = EgressRule> + '_ {
        let public = self.allow_http.iter().map(EgressRule::http);
        let private = (self.allow_private_http.iter()).map(|h| EgressRule::http(h).allow_private());
        public.chain(private)
    }

    /// The resolver with the flags' pins.
    pub fn resolver(&self) -> Resolver {
        let resolver = Resolver::system();
        for (name, addrs) in &self.resolve {
            resolver.pin(name, addrs.iter().copied());
        }
        resolver
    }
}

/// A `--resolve` pin: a host name and the addresses it resolves to.
pub type Pin = (String, Vec<IpAddr>);

/// Parses `NAME:ADDR[,ADDR...]` (`--resolve`), or says how to write one.
fn parse_pin(spec: &str) -> Result<Pin, String> {
    let usage =
        || format!("{spec:?}: write NAME:ADDRESS[,ADDRESS...], such as api.example.com:10.0.0.5");
    let (name, addrs) = spec.split_once(':').ok_or_else(usage)?;
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return Err(usage());
    }
    let addrs = addrs
        .split(',')
        .map(|a| {
            a.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
        })
        .collect::<Result<Vec<IpAddr>, _>>()
        .map_err(|_| usage())?;
    Ok((name.to_owned(), addrs))
}

impl LimitArgs {
    pub fn to_config(&self) -> LimitsConfig {
        LimitsConfig {
            timeout: self.timeout,
            fuel: self.fuel,
            max_memory: self.max_memory,
            max_hostcall_bytes: self.max_hostcall_bytes,
            vault_calls: self.vault_calls,
            ..LimitsConfig::default()
        }
    }
}

/// A component ready to run: its file, compiled form, secrets and limits.
pub struct Prepared {
    pub path: PathBuf,
    pub engine_fuel: bool,
    pub secrets: SecretsCtx,
    pub limits: Limits,
    pub env: Vec<(String, String)>,
    pub egress: EgressPolicy,
}

/// Resolves COMPONENT (a `[components.NAME]` entry by its name, else a file), its grants,
/// limits, env and egress, and builds its secrets context (named after the entry) over the
/// configured vaults.
pub fn prepare(
    host_args: &HostArgs,
    limit_args: &LimitArgs,
    egress_args: &EgressArgs,
    component: &str,
) -> anyhow::Result<Prepared> {
    let config = host::load_config(host_args)?;
    let host::Chosen { name, entry, path } = host::choose_component(&config, component);
    let grants = host::build_grants(host_args, entry)?;
    host::warn_whole_vault(&name, &grants);
    let limits_config = config.limits_for(limit_args.to_config(), entry);
    let limits = limits_config.to_limits();
    let env = guest_env(&limit_args.env, limit_args.allow_credential_env)?;
    let connector = host::connector(&config);
    let vaults = host::build_vaults(host_args, &config, &connector)?;
    host::check_grants(&vaults, &grants)?;
    let mut rules = entry.map(|c| c.egress.clone()).unwrap_or_default();
    rules.extend(egress_args.rules());
    let mut egress = host::egress_policy(
        host_args,
        &config,
        rules,
        egress_args.resolver(),
        &connector,
    )?;
    let mut secrets =
        SecretsCtx::new(name.clone(), grants, vaults).with_budget(limits_config.vault_budget());
    if let Some(sink) = host::audit_sink(host_args, &config)? {
        secrets = secrets.with_audit(sink.clone());
        egress = egress.with_audit(name, sink);
    }
    Ok(Prepared {
        path,
        engine_fuel: limits.fuel.is_some(),
        secrets,
        limits,
        env,
        egress,
    })
}

pub async fn run(args: RunArgs, log_format: LogFormat) -> anyhow::Result<i32> {
    let prepared = prepare(&args.host, &args.limits, &args.egress, &args.component)?;
    let dirs = args
        .dirs
        .iter()
        .map(|d| parse_dir(d, args.allow_credential_dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = Runtime::new(&EngineOptions {
        fuel: prepared.engine_fuel,
        ..EngineOptions::default()
    })?;
    let cache_dir = if args.no_cache {
        None
    } else {
        default_cache_dir()
    };
    let (component, _) = load_component(runtime.engine(), &prepared.path, cache_dir.as_deref())?;
    let mut argv = vec![prepared.path.to_string_lossy().into_owned()];
    argv.extend(args.args);
    let options = CommandOptions {
        args: argv,
        env: prepared.env,
        dirs,
        limits: prepared.limits,
        capture_output: false,
        output_format: log_format.guest_output(),
        egress: Arc::new(prepared.egress),
    };
    let outcome = runtime
        .run_command(&component, prepared.secrets, &options)
        .await?
        .outcome;
    if let Outcome::Failed(why) = &outcome {
        eprintln!("error: {}", with_flag(why));
    }
    Ok(outcome.exit_code())
}

/// Why a guest stopped, naming the flag that sets the limit that stopped it.
fn with_flag(why: &Stopped) -> String {
    let flag = match why.limit {
        Some(Limit::Timeout) => "--timeout",
        Some(Limit::Fuel) => "--fuel",
        Some(Limit::Memory) => "--max-memory",
        Some(Limit::HostcallBytes) => "--max-hostcall-bytes",
        Some(Limit::TableElements | Limit::Tables) | None => return why.to_string(),
    };
    format!("{why} ({flag})")
}

/// The guest's environment from `--env` specs. The host's identity variables are refused
/// unless `allow_credential_env`; a value is never echoed.
pub fn guest_env(
    specs: &[String],
    allow_credential_env: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|s| {
            let name = s.split_once('=').map_or(s.as_str(), |(k, _)| k);
            if is_credential_var(name) {
                anyhow::ensure!(
                    allow_credential_env,
                    "--env {name}: refused: it is one of the host's Azure identity variables (a credential, its path, or the endpoint that hands out tokens), which a guest must not see; pass --allow-credential-env to give it anyway"
                );
                eprintln!(
                    "warning: --allow-credential-env: the guest gets the host's identity variable {name}"
                );
            }
            match s.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                Some(_) => anyhow::bail!("--env {s:?}: expected NAME=VALUE or NAME"),
                None => std::env::var(s).map(|v| (s.clone(), v)).with_context(|| {
                    format!("--env {s}: the host has no such variable to pass on")
                }),
            }
        })
        .collect()
}

/// A `--dir` spec: the host folder (which must exist, and must not expose the host's token
/// files unless `allow_credential_dir`) and the guest's name for it.
fn parse_dir(spec: &str, allow_credential_dir: bool) -> anyhow::Result<(PathBuf, String)> {
    let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
    anyhow::ensure!(
        !host.is_empty() && !guest.is_empty(),
        "--dir {spec:?}: expected HOST or HOST::GUEST"
    );
    let host = PathBuf::from(host);
    anyhow::ensure!(
        host.is_dir(),
        "--dir {spec:?}: {} is not a directory",
        host.display()
    );
    if let Some(tokens) = exposed_credential_dir(&host, &Env::process()) {
        anyhow::ensure!(
            allow_credential_dir,
            "--dir {spec:?}: refused: {} is, is inside, or contains {}, which holds the host's Azure identity token files; pass --allow-credential-dir to give it anyway",
            host.display(),
            tokens.display()
        );
        eprintln!(
            "warning: --allow-credential-dir: the guest gets {}, which holds the host's token files",
            tokens.display()
        );
    }
    Ok((host, guest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_and_bad_ones_say_how_to_write_one() {
        let (name, addrs) = parse_pin("api.vendor.test:127.0.0.1,[::1]").unwrap();
        assert_eq!(name, "api.vendor.test");
        assert_eq!(
            addrs,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        for bad in [
            "api.example.com",
            "api.example.com:",
            "api.example.com:nope",
            ":1.2.3.4",
            "1.2.3.4:5.6.7.8",
        ] {
            let e = parse_pin(bad).unwrap_err();
            assert!(e.contains("NAME:ADDRESS"), "{e}");
        }
    }
}
