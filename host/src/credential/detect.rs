//! Picking a credential source from the configuration and the environment.
//!
//! `auto` follows the Azure SDKs' order: workload identity (when `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_TENANT_ID` and a client id are set), then client secret (`AZURE_TENANT_ID`,
//! `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), then managed identity when the environment names
//! an endpoint (App Service, Arc, legacy App Service, or `AZURE_POD_IDENTITY_AUTHORITY_HOST`
//! for IMDS). When none of these is set, `auto` uses the Azure CLI if `az` is on `PATH`, and
//! IMDS at 169.254.169.254 otherwise. It does not probe IMDS first (as `DefaultAzureCredential`
//! does), so that a developer machine never sends a packet there; on a VM that has `az`
//! installed, say `credential = "managed-identity"`.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::app_service::{AppServiceCredential, Protocol};
use super::arc::{ArcCredential, TOKEN_DIR_ENV, default_token_dir};
use super::azure_cli::AzureCliCredential;
use super::client_secret::ClientSecretCredential;
use super::entra::DEFAULT_AUTHORITY;
use super::imds::{AUTHORITY_HOST_ENV, DEFAULT_BASE, ImdsCredential};
use super::workload_identity::WorkloadIdentityCredential;
use super::{CredentialError, Env, TokenCredential, UserAssigned, UserAssignedId};
use crate::credential::CredentialKind;
use crate::http::HttpClient;

/// The credential source `kind` asks for, configured from `env`; logs which one it picked.
///
/// `identity` selects a user-assigned managed identity; for workload identity its client id,
/// when given, replaces `AZURE_CLIENT_ID`. Naming an identity for the client secret or the
/// Azure CLI is an error.
pub fn from_env(
    kind: CredentialKind,
    identity: &UserAssigned,
    http: &HttpClient,
    env: &Env,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let id = identity.id()?;
    let picked: Arc<dyn TokenCredential> = match kind {
        CredentialKind::WorkloadIdentity => {
            Arc::new(workload_identity(env, id.as_ref(), http)?.ok_or_else(|| {
                missing(&[
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "AZURE_TENANT_ID",
                    "AZURE_CLIENT_ID",
                ])
            })?)
        }
        CredentialKind::ClientSecret => {
            no_identity(id.as_ref(), "client-secret")?;
            Arc::new(client_secret(env, http)?.ok_or_else(|| {
                missing(&["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"])
            })?)
        }
        CredentialKind::AzureCli => {
            no_identity(id.as_ref(), "azure-cli")?;
            Arc::new(azure_cli(env).ok_or_else(|| {
                CredentialError::NotConfigured("the Azure CLI (az) is not on PATH".into())
            })?)
        }
        CredentialKind::ManagedIdentity => match managed_identity(env, id.clone(), http)? {
            Some(c) => c,
            None => Arc::new(ImdsCredential::new(http.clone(), DEFAULT_BASE, id)?),
        },
        CredentialKind::Auto => auto(env, id, http)?,
    };
    tracing::info!(credential = picked.kind(), key = %picked.cache_key(), "credential source");
    Ok(picked)
}

fn auto(
    env: &Env,
    id: Option<UserAssignedId>,
    http: &HttpClient,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    if let Some(c) = workload_identity(env, id.as_ref(), http)? {
        return Ok(Arc::new(c));
    }
    if let Some(c) = client_secret(env, http)? {
        return Ok(Arc::new(c));
    }
    if let Some(c) = managed_identity(env, id.clone(), http)? {
        return Ok(c);
    }
    if id.is_none()
        && let Some(c) = azure_cli(env)
    {
        return Ok(Arc::new(c));
    }
    Ok(Arc::new(ImdsCredential::new(
        http.clone(),
        DEFAULT_BASE,
        id,
    )?))
}

fn missing(vars: &[&str]) -> CredentialError {
    CredentialError::NotConfigured(format!("set {}", vars.join(", ")))
}

fn no_identity(id: Option<&UserAssignedId>, kind: &str) -> Result<(), CredentialError> {
    match id {
        Some(_) => Err(CredentialError::NotConfigured(format!(
            "client-id, object-id and resource-id select a managed identity; {kind} does not take one"
        ))),
        None => Ok(()),
    }
}

fn authority(env: &Env) -> &str {
    env.get("AZURE_AUTHORITY_HOST").unwrap_or(DEFAULT_AUTHORITY)
}

fn workload_identity(
    env: &Env,
    id: Option<&UserAssignedId>,
    http: &HttpClient,
) -> Result<Option<WorkloadIdentityCredential>, CredentialError> {
    let client_id = match id {
        Some(UserAssignedId::ClientId(c)) => Some(c.as_str()),
        _ => env.get("AZURE_CLIENT_ID"),
    };
    let (Some(file), Some(tenant), Some(client_id)) = (
        env.get("AZURE_FEDERATED_TOKEN_FILE"),
        env.get("AZURE_TENANT_ID"),
        client_id,
    ) else {
        return Ok(None);
    };
    WorkloadIdentityCredential::new(http.clone(), authority(env), tenant, client_id, file.into())
        .map(Some)
}

fn client_secret(
    env: &Env,
    http: &HttpClient,
) -> Result<Option<ClientSecretCredential>, CredentialError> {
    let (Some(tenant), Some(client_id), Some(secret)) = (
        env.get("AZURE_TENANT_ID"),
        env.get("AZURE_CLIENT_ID"),
        env.get("AZURE_CLIENT_SECRET"),
    ) else {
        return Ok(None);
    };
    let secret = Zeroizing::new(secret.to_owned());
    ClientSecretCredential::new(http.clone(), authority(env), tenant, client_id, secret).map(Some)
}

fn azure_cli(env: &Env) -> Option<AzureCliCredential> {
    env.find_program("az").map(AzureCliCredential::new)
}

/// The managed-identity source the environment names, if it names one.
fn managed_identity(
    env: &Env,
    id: Option<UserAssignedId>,
    http: &HttpClient,
) -> Result<Option<Arc<dyn TokenCredential>>, CredentialError> {
    let http = http.clone();
    if let Some(endpoint) = env.get("IDENTITY_ENDPOINT") {
        if let Some(header) = env.get("IDENTITY_HEADER") {
            let c = AppServiceCredential::new(http, Protocol::V2019, endpoint, header.into(), id)?;
            return Ok(Some(Arc::new(c)));
        }
        if env.has("IMDS_ENDPOINT") {
            if id.is_some() {
                return Err(CredentialError::NotConfigured(
                    "Azure Arc supports only the system-assigned identity; remove client-id, object-id and resource-id".into(),
                ));
            }
            let dir = env
                .get(TOKEN_DIR_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(default_token_dir);
            return Ok(Some(Arc::new(ArcCredential::new(http, endpoint, dir)?)));
        }
    }
    if let (Some(endpoint), Some(secret)) = (env.get("MSI_ENDPOINT"), env.get("MSI_SECRET")) {
        let c = AppServiceCredential::new(http, Protocol::V2017, endpoint, secret.into(), id)?;
        return Ok(Some(Arc::new(c)));
    }
    if let Some(base) = env.get(AUTHORITY_HOST_ENV) {
        return Ok(Some(Arc::new(ImdsCredential::new(http, base, id)?)));
    }
    Ok(None)
}
