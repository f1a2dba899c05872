//! Turning flags and the config file into vaults and grants.

use super::HostArgs;
use anyhow::Context as _;
use std::sync::Arc;
use wasm_secrets::backend::file::FileBackend;
use wasm_secrets::config::Config;
use wasm_secrets::{Grants, Vaults};

/// The config file named by `--config`, or an empty one.
pub fn load_config(args: &HostArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    }
}

/// The vaults the flags and config describe.
pub fn build_vaults(args: &HostArgs, config: &Config) -> anyhow::Result<Vaults> {
    let secrets_file = args.secrets_file.as_ref().or(config.secrets_file.as_ref());
    if let Some(path) = secrets_file {
        let mut vaults = Vaults::new();
        for (name, backend) in FileBackend::load_file(path)? {
            vaults.insert(name, Arc::new(backend));
        }
        return Ok(vaults);
    }
    let has_vault = args.vault.is_some() || config.vaults.values().any(|v| v.url.is_some());
    anyhow::ensure!(
        !has_vault,
        "Key Vault backends are not available in this build yet; use --secrets-file FILE"
    );
    Ok(Vaults::new())
}

/// Checks the grants can be served by `vaults`, with a hint when there is no source at all.
pub fn check_grants(vaults: &Vaults, grants: &Grants) -> anyhow::Result<()> {
    anyhow::ensure!(
        grants.is_empty() || !vaults.names().is_empty(),
        "grants need a secrets source: give --vault URL (or set WASM_SECRETS_VAULT), or --secrets-file FILE"
    );
    vaults.check_grants(grants)
}

/// Grants from the config's component entry plus `--grant` flags.
pub fn build_grants(args: &HostArgs, from_config: &[String]) -> anyhow::Result<Grants> {
    Grants::parse(from_config.iter().chain(args.grants.iter())).context("--grant")
}
