//! Which identity the host uses to get tokens.

use serde::Deserialize;

/// Which identity the host uses to get tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// Workload identity, then client secret, then managed identity, then the Azure CLI.
    #[default]
    Auto,
    /// IMDS, App Service, or Azure Arc, as the environment says.
    ManagedIdentity,
    /// A federated token file (Kubernetes workload identity).
    WorkloadIdentity,
    /// A service principal's client secret.
    ClientSecret,
    /// `az account get-access-token`.
    AzureCli,
}

impl CredentialKind {
    /// Every kind with its name (as in a config file) and what it means, for a command line's
    /// help.
    pub const ALL: [(CredentialKind, &'static str, &'static str); 5] = [
        (
            Self::Auto,
            "auto",
            "Workload identity, then client secret, then managed identity, then the Azure CLI",
        ),
        (
            Self::ManagedIdentity,
            "managed-identity",
            "IMDS, App Service, or Azure Arc, as the environment says",
        ),
        (
            Self::WorkloadIdentity,
            "workload-identity",
            "A federated token file (Kubernetes workload identity)",
        ),
        (
            Self::ClientSecret,
            "client-secret",
            "A service principal's client secret",
        ),
        (Self::AzureCli, "azure-cli", "`az account get-access-token`"),
    ];
}
