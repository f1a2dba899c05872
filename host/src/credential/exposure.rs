//! What of the host's identity a guest must not be handed: the environment variables that hold
//! a credential (or its path, or the endpoint that hands out tokens), and the folders that hold
//! token files. `run` and `serve` refuse to pass these on unless the operator insists.

use std::path::{Path, PathBuf};

use super::Env;
use super::arc::{TOKEN_DIR_ENV, default_token_dir};
use super::imds::AUTHORITY_HOST_ENV;

/// The identity variables a guest is not given: those the credential sources of this host read
/// that hold a credential, point at one, or name the endpoint that hands out tokens; and the
/// secret-bearing ones other Azure SDKs read (`AZURE_CLIENT_CERTIFICATE_PATH`,
/// `AZURE_CLIENT_CERTIFICATE_PASSWORD`, `AZURE_PASSWORD`). Identifiers (`AZURE_CLIENT_ID`,
/// `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`, `AZURE_USERNAME`) are not credentials and pass.
pub const CREDENTIAL_VARS: &[&str] = &[
    // Client secret.
    "AZURE_CLIENT_SECRET",
    // Workload identity: the federated token's file.
    "AZURE_FEDERATED_TOKEN_FILE",
    // App Service and Azure Arc (2019): the endpoint and its header secret.
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    // Azure Arc: its IMDS endpoint and key folder.
    "IMDS_ENDPOINT",
    TOKEN_DIR_ENV,
    // App Service (2017): the endpoint and its secret.
    "MSI_ENDPOINT",
    "MSI_SECRET",
    // IMDS at another address.
    AUTHORITY_HOST_ENV,
    // Read by other Azure SDKs, not by this host: credentials all the same.
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
];

/// Whether `name` is one of [`CREDENTIAL_VARS`] (in any case: Windows does not tell them apart).
pub fn is_credential_var(name: &str) -> bool {
    CREDENTIAL_VARS.iter().any(|v| v.eq_ignore_ascii_case(name))
}

/// The folders that hold the host's token files, resolved, of those that exist: the folder of
/// `AZURE_FEDERATED_TOKEN_FILE` (as named, and where its links lead: Kubernetes mounts it
/// through `..data` links into a folder below), and the Azure Arc agent's key folder.
pub fn credential_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(file) = env.get("AZURE_FEDERATED_TOKEN_FILE") {
        let file = Path::new(file);
        dirs.extend(file.parent().and_then(|p| p.canonicalize().ok()));
        dirs.extend(
            file.canonicalize()
                .ok()
                .and_then(|f| f.parent().map(Path::to_path_buf)),
        );
    }
    let arc = env
        .get(TOKEN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(default_token_dir);
    dirs.extend(arc.canonicalize().ok());
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The credential folder that giving a guest `dir` would expose (`dir` is it, is inside it, or
/// contains it), if any.
pub fn exposed_credential_dir(dir: &Path, env: &Env) -> Option<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    credential_dirs(env)
        .into_iter()
        .find(|c| dir.starts_with(c) || c.starts_with(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_variables_are_known_in_any_case_and_identifiers_pass() {
        for name in ["AZURE_CLIENT_SECRET", "identity_header", "Msi_Secret"] {
            assert!(is_credential_var(name), "{name}");
        }
        for name in [
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "PATH",
            "AZURE_CLIENT_SECRETS",
        ] {
            assert!(!is_credential_var(name), "{name}");
        }
    }

    #[test]
    fn the_token_files_folder_its_inside_and_what_contains_it_are_exposed() {
        let root = tempfile::tempdir().unwrap();
        let tokens = root.path().join("tokens");
        std::fs::create_dir_all(tokens.join("..data")).unwrap();
        std::fs::create_dir_all(root.path().join("other")).unwrap();
        let file = tokens.join("azure-identity-token");
        std::fs::write(&file, "jwt").unwrap();
        let env = Env::from_pairs([
            ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap()),
            (TOKEN_DIR_ENV, "/no/such/arc/folder"),
        ]);
        for dir in [
            root.path().to_path_buf(),
            tokens.clone(),
            tokens.join("..data"),
        ] {
            assert!(exposed_credential_dir(&dir, &env).is_some(), "{dir:?}");
        }
        assert_eq!(
            exposed_credential_dir(&root.path().join("other"), &env),
            None
        );
        let no_identity = Env::from_pairs([(TOKEN_DIR_ENV, "/no/such/arc/folder")]);
        assert_eq!(exposed_credential_dir(root.path(), &no_identity), None);
    }
}
