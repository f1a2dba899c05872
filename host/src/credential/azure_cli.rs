//! The Azure CLI, for developer machines: `az account get-access-token --resource … -o json`.
//!
//! Reads `accessToken` and `expires_on` (Unix seconds), or, from older CLIs, `expiresOn` in
//! local time. The CLI runs with `TZ=UTC` so that local time is UTC.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use super::expiry::parse_cli_local;
use super::{AccessToken, CredentialError, TokenCredential, check_resource, parse_epoch};
use crate::http::json_error;

/// The largest output accepted from the CLI.
const MAX_OUTPUT: u64 = 1 << 20;

/// Tokens from the Azure CLI.
#[derive(Debug, Clone)]
pub struct AzureCliCredential {
    /// The `az` program.
    pub program: PathBuf,
    /// How long the CLI may take.
    pub timeout: Duration,
}

impl AzureCliCredential {
    /// Runs `program`, with a 30 s timeout.
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            timeout: Duration::from_secs(30),
        }
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, CredentialError> {
        check_resource(resource)?;
        let mut child = tokio::process::Command::new(&self.program)
            .args([
                "account",
                "get-access-token",
                "--resource",
                resource,
                "-o",
                "json",
            ])
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                CredentialError::NotConfigured(format!(
                    "cannot run {}: {e}",
                    self.program.display()
                ))
            })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let run = async {
            let mut out = Zeroizing::new(Vec::new());
            let mut err = Vec::new();
            let (mut stdout, mut stderr) = (stdout.take(MAX_OUTPUT), stderr.take(MAX_OUTPUT));
            let (o, e) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            o.and(e)?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err))
        };
        let (status, out, err) = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| {
                CredentialError::Unavailable(format!("az did not answer within {:?}", self.timeout))
            })?
            .map_err(|e| CredentialError::Unavailable(format!("running az: {e}")))?;
        if !status.success() {
            // stderr is not quoted: only a hint is taken from it.
            let text = String::from_utf8_lossy(&err);
            return Err(if text.contains("az login") {
                CredentialError::Rejected(format!(
                    "az exited with {status}: not logged in; run `az login`"
                ))
            } else {
                CredentialError::Unavailable(format!("az exited with {status}"))
            });
        }
        parse_output(&out)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CliToken {
    access_token: String,
    #[serde(default, rename = "expires_on")]
    expires_on_epoch: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<String>,
}

fn parse_output(out: &[u8]) -> Result<AccessToken, CredentialError> {
    let raw: CliToken = serde_json::from_slice(out).map_err(|e| {
        CredentialError::Unavailable(format!("az printed malformed JSON: {}", json_error(&e)))
    })?;
    let token = AccessToken::new(raw.access_token, std::time::UNIX_EPOCH);
    if token.secret().is_empty() {
        return Err(CredentialError::Unavailable(
            "az printed an empty accessToken".into(),
        ));
    }
    let epoch = match &raw.expires_on_epoch {
        Some(serde_json::Value::Number(n)) => parse_epoch(&n.to_string()),
        Some(serde_json::Value::String(s)) => parse_epoch(s),
        _ => None,
    };
    let expiry = epoch
        .or_else(|| parse_cli_local(raw.expires_on.as_deref()?))
        .ok_or_else(|| {
            CredentialError::Unavailable("az printed no readable expires_on or expiresOn".into())
        })?;
    Ok(token.with_expiry(expiry))
}

impl TokenCredential for AzureCliCredential {
    fn kind(&self) -> &'static str {
        "azure-cli"
    }

    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            self.fetch(resource)
                .await
                .map_err(|e| e.context("azure-cli"))
        })
    }
}
