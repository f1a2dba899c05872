//! Turning flags and the config file into vaults and grants.

use crate::HostArgs;
use crate::config::{self, ComponentConfig, Config};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use wasm_secrets::audit::{AuditSink, JsonLines};
use wasm_secrets::backend::file::FileBackend;
use wasm_secrets::connect::{Connector, VaultSettings};
use wasm_secrets::credential::{Env, UserAssigned};
use wasm_secrets::egress::{EgressKind, EgressPolicy, EgressRule, Resolver};
use wasm_secrets::grants::DEFAULT_VAULT;
use wasm_secrets::http::loopback_only_from_env;
use wasm_secrets::{Grants, Vaults};

/// The config file named by `--config`, or an empty one.
pub fn load_config(args: &HostArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    }
}

/// The process's one [`Connector`]: every vault, every component's `azure-http` egress and
/// every reload get their HTTP clients and token caches from it.
pub fn connector(config: &Config) -> Connector {
    Connector::new(Env::process(), config.cache)
}

/// The vaults the flags and config describe, built by `connector`.
pub fn build_vaults(
    args: &HostArgs,
    config: &Config,
    connector: &Connector,
) -> anyhow::Result<Vaults> {
    let secrets_file = args.secrets_file.as_ref().or(config.secrets_file.as_ref());
    if let Some(path) = secrets_file {
        let mut vaults = Vaults::new();
        for (name, backend) in FileBackend::load_file(path)? {
            vaults.insert(name, Arc::new(backend));
        }
        return Ok(vaults);
    }
    let mut vaults = Vaults::new();
    for (name, settings) in vault_settings(args, config)? {
        let backend = connector
            .key_vault(&settings)
            .with_context(|| format!("vault \"{name}\""))?;
        let budget = config
            .vaults
            .get(&name)
            .map(|v| v.budget())
            .unwrap_or_default();
        vaults.insert_with_budget(name, Arc::new(backend), budget);
    }
    Ok(vaults)
}

/// Each configured vault's settings, with flags overriding the file (`--vault` sets the
/// default vault's URL; the credential flags apply to every vault that does not set its own).
pub fn vault_settings(
    args: &HostArgs,
    config: &Config,
) -> anyhow::Result<Vec<(String, VaultSettings)>> {
    let mut vaults = config.vaults.clone();
    if let Some(url) = &args.vault {
        vaults.entry(DEFAULT_VAULT.to_owned()).or_default().url = Some(url.clone());
    }
    let flag_identity = UserAssigned {
        client_id: args.client_id.clone(),
        object_id: args.object_id.clone(),
        resource_id: args.resource_id.clone(),
    };
    let flags_name_identity =
        args.client_id.is_some() || args.object_id.is_some() || args.resource_id.is_some();
    let mut out = Vec::new();
    for (name, v) in vaults {
        let url = v
            .url
            .with_context(|| format!("[vaults.{name}] has no url"))?;
        let file_identity = UserAssigned {
            client_id: v.client_id,
            object_id: v.object_id,
            resource_id: v.resource_id,
        };
        out.push((
            name,
            VaultSettings {
                url,
                credential: args.credential.or(v.credential).unwrap_or_default(),
                identity: if flags_name_identity {
                    flag_identity.clone()
                } else {
                    file_identity
                },
                ca_cert: args.ca_cert.clone().or(v.ca_cert),
                api_version: v.api_version,
            },
        ));
    }
    Ok(out)
}

/// For each vault: where it is and which credential reads it (for `check`).
pub fn describe_sources(args: &HostArgs, config: &Config) -> anyhow::Result<Vec<(String, String)>> {
    if let Some(path) = args.secrets_file.as_ref().or(config.secrets_file.as_ref()) {
        return Ok(vec![(
            "*".into(),
            format!("secrets file {}", path.display()),
        )]);
    }
    let connector = connector(config);
    vault_settings(args, config)?
        .into_iter()
        .map(|(name, s)| {
            let kind = connector.credential_kind(&s)?;
            Ok((name, format!("{} with credential {kind}", s.url)))
        })
        .collect()
}

/// The credential settings `azure-http` egress uses: the default vault's, else the flags'.
pub fn token_settings(args: &HostArgs, config: &Config) -> anyhow::Result<VaultSettings> {
    let settings = vault_settings(args, config).unwrap_or_default();
    if let Some((_, s)) = settings.into_iter().find(|(n, _)| n == DEFAULT_VAULT) {
        return Ok(s);
    }
    Ok(VaultSettings {
        url: String::new(),
        credential: args.credential.unwrap_or_default(),
        identity: UserAssigned {
            client_id: args.client_id.clone(),
            object_id: args.object_id.clone(),
            resource_id: args.resource_id.clone(),
        },
        ca_cert: args.ca_cert.clone(),
        api_version: None,
    })
}

/// The egress policy for `rules`: checked, with `connector`'s token cache when an
/// `azure-http` rule needs one (the identity of the default vault), names resolved by
/// `resolver`, and the loopback guard from the environment.
pub fn egress_policy(
    args: &HostArgs,
    config: &Config,
    rules: Vec<EgressRule>,
    resolver: Resolver,
    connector: &Connector,
) -> anyhow::Result<EgressPolicy> {
    for rule in &rules {
        rule.check()?;
    }
    let tokens = if rules.iter().any(|r| r.kind == EgressKind::AzureHttp) {
        Some(connector.token_cache(&token_settings(args, config)?)?)
    } else {
        None
    };
    Ok(EgressPolicy::new(rules, tokens, loopback_only_from_env())?
        .with_resolver(resolver)
        .with_token_http(token_http(args, config, connector)?))
}

/// The HTTP client `oauth2` use-only grants reach their token URLs through: the connector's,
/// trusting what `--ca-cert` (or the default vault's `ca-cert`) adds.
pub fn token_http(
    args: &HostArgs,
    config: &Config,
    connector: &Connector,
) -> anyhow::Result<wasm_secrets::http::HttpClient> {
    connector.http_client(&token_settings(args, config)?)
}

/// The audit sink the flags or config ask for.
pub fn audit_sink(args: &HostArgs, config: &Config) -> anyhow::Result<Option<Arc<dyn AuditSink>>> {
    match args.audit_log.as_ref().or(config.audit_log.as_ref()) {
        Some(target) => Ok(Some(Arc::new(JsonLines::open(target)?))),
        None => Ok(None),
    }
}

/// Checks the grants can be served by `vaults`, with a hint when there is no source at all.
pub fn check_grants(vaults: &Vaults, grants: &Grants) -> anyhow::Result<()> {
    anyhow::ensure!(
        grants.is_empty() || !vaults.names().is_empty(),
        "grants need a secrets source: give --vault URL (or set WASM_SECRETS_VAULT), or --secrets-file FILE"
    );
    vaults.check_grants(grants)
}

/// What COMPONENT names: an entry of the config, by its name, or else a file.
pub struct Chosen<'a> {
    /// The entry's name, or the file's stem: what the audit log and metrics call it.
    pub name: String,
    /// The entry, whose grants, egress and limits apply; none for a file.
    pub entry: Option<&'a ComponentConfig>,
    /// The component's file.
    pub path: PathBuf,
}

/// Resolves COMPONENT: the name of a `[components.NAME]` entry, or a path. An entry is chosen
/// only by its name, never by a file's: a file named `api.wasm` gets none of `[components.api]`'s
/// grants, egress or limits, only the flags' (a warning says how to choose the entry).
pub fn choose_component<'a>(config: &'a Config, component: &str) -> Chosen<'a> {
    if let Some(entry) = config.components.get(component) {
        return Chosen {
            name: component.to_owned(),
            path: entry
                .wasm
                .clone()
                .unwrap_or_else(|| PathBuf::from(component)),
            entry: Some(entry),
        };
    }
    let path = PathBuf::from(component);
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| component.to_owned());
    if config.components.contains_key(&name) {
        eprintln!(
            "warning: {component} is a file, not the entry [components.{name}]: it gets only the flags' grants, egress and limits; to use [components.{name}], give its name: {name}"
        );
    }
    Chosen {
        name,
        entry: None,
        path,
    }
}

/// Grants from the config's component entry plus `--grant` flags. Whole-vault grants need
/// `--allow-whole-vault` or the entry's `allow-whole-vault`.
pub fn build_grants(args: &HostArgs, entry: Option<&ComponentConfig>) -> anyhow::Result<Grants> {
    let from_config = entry.map(|c| c.grants.as_slice()).unwrap_or_default();
    let allow = args.allow_whole_vault || entry.is_some_and(|c| c.allow_whole_vault);
    config::parse_grants(from_config.iter().chain(args.grants.iter()), allow).context("--grant")
}

/// The one warning line `run` and `serve` print when a component may read a whole vault.
pub fn warn_whole_vault(component: &str, grants: &Grants) {
    if grants.has_whole_vault() {
        eprintln!(
            "warning: allow-whole-vault is on: component {component} may read every secret of the vaults its * grants name"
        );
    }
}
