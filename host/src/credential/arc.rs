//! Azure Arc-enabled servers (system-assigned only).
//!
//! `GET $IDENTITY_ENDPOINT?api-version=2019-11-01&resource=…` with `Metadata: true` answers 401
//! and `WWW-Authenticate: Basic realm=<path>`. The path must name a `.key` file of at most
//! 4096 bytes directly inside the agent's token folder; its canonical path is checked, so `..`
//! and symlinks out of the folder are refused. The request is then repeated with
//! `Authorization: Basic <file contents>`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use url::Url;
use zeroize::Zeroizing;

use super::expiry::parse_token;
use super::retry::status_error;
use super::{AccessToken, CredentialError, RetryPolicy, TokenCredential, check_resource};
use crate::http::HttpClient;

/// The variable that overrides the token folder (for tests).
pub const TOKEN_DIR_ENV: &str = "WASM_SECRETS_ARC_TOKEN_DIR";

/// The largest key file accepted.
pub const MAX_KEY_LEN: u64 = 4096;

const API_VERSION: &str = "2019-11-01";

/// The agent's token folder on this platform.
pub fn default_token_dir() -> PathBuf {
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(base)
            .join("AzureConnectedMachineAgent")
            .join("Tokens")
    } else {
        PathBuf::from("/var/opt/azcmagent/tokens")
    }
}

/// Tokens from the Azure Arc agent.
#[derive(Debug, Clone)]
pub struct ArcCredential {
    /// `IDENTITY_ENDPOINT`.
    pub endpoint: Url,
    /// The folder key files must be in.
    pub token_dir: PathBuf,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
    http: HttpClient,
    /// Keeps the endpoint out of guests' egress while the credential lives.
    _registration: std::sync::Arc<crate::net::identity_endpoints::Registration>,
}

impl ArcCredential {
    /// The agent at `endpoint`, with key files in `token_dir`.
    pub fn new(
        http: HttpClient,
        endpoint: &str,
        token_dir: PathBuf,
    ) -> Result<Self, CredentialError> {
        let endpoint = Url::parse(endpoint).map_err(|e| {
            CredentialError::NotConfigured(format!("identity endpoint {endpoint:?}: {e}"))
        })?;
        http.check_url(&endpoint)?;
        let registration = std::sync::Arc::new(crate::net::identity_endpoints::register(&endpoint));
        Ok(Self {
            endpoint,
            token_dir,
            retry: RetryPolicy::default(),
            http,
            _registration: registration,
        })
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, CredentialError> {
        check_resource(resource)?;
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION)
            .append_pair("resource", resource);
        let get = || {
            self.http
                .request(Method::GET, url.clone())
                .header("Metadata", "true")
        };
        let challenge = self.retry.send(&self.http, get).await?;
        if challenge.status != StatusCode::UNAUTHORIZED {
            let e = status_error(&challenge, "the Arc agent");
            return Err(CredentialError::Unavailable(format!(
                "{}, expected a 401 challenge",
                e.detail()
            )));
        }
        let realm = challenge
            .header("www-authenticate")
            .and_then(basic_realm)
            .ok_or_else(|| {
                CredentialError::Unavailable(
                    "the Arc agent's 401 has no WWW-Authenticate: Basic realm=<path>".into(),
                )
            })?;
        let key = read_key_file(Path::new(&realm), &self.token_dir)?;
        let now = SystemTime::now();
        let auth = Zeroizing::new(format!("Basic {}", key.as_str()));
        let resp = self
            .retry
            .send(&self.http, || get().header("Authorization", auth.as_str()))
            .await?;
        if !resp.status.is_success() {
            return Err(status_error(&resp, "the Arc agent"));
        }
        parse_token(&resp, now)
    }
}

/// The path in `Basic realm=<path>` (quotes allowed).
fn basic_realm(header: &str) -> Option<String> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let value = rest.trim().strip_prefix("realm=")?.trim().trim_matches('"');
    (!value.is_empty()).then(|| value.to_owned())
}

/// Reads the key file the agent named, after checking it: absolute, extension `.key`, exists,
/// a regular file directly inside `token_dir` (after resolving `..` and symlinks), and at most
/// [`MAX_KEY_LEN`] bytes.
pub fn read_key_file(path: &Path, token_dir: &Path) -> Result<Zeroizing<String>, CredentialError> {
    let bad =
        |why: &str| CredentialError::Unavailable(format!("Arc key file {}: {why}", path.display()));
    if !path.is_absolute() {
        return Err(bad("not an absolute path"));
    }
    let has_key_ext = |p: &Path| p.extension().is_some_and(|e| e == "key");
    if !has_key_ext(path) {
        return Err(bad("the file name does not end in .key"));
    }
    let real = path
        .canonicalize()
        .map_err(|e| bad(&format!("cannot be resolved: {e}")))?;
    let dir = token_dir.canonicalize().map_err(|e| {
        bad(&format!(
            "the token folder {} cannot be resolved: {e}",
            token_dir.display()
        ))
    })?;
    if real.parent() != Some(dir.as_path()) {
        return Err(bad(&format!(
            "not directly inside the token folder {}",
            token_dir.display()
        )));
    }
    if !has_key_ext(&real) {
        return Err(bad("resolves to a file whose name does not end in .key"));
    }
    let file = std::fs::File::open(&real).map_err(|e| bad(&format!("cannot be opened: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(&format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.len() > MAX_KEY_LEN {
        return Err(bad(&format!("larger than {MAX_KEY_LEN} bytes")));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_LEN as usize + 1));
    file.take(MAX_KEY_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(&format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_KEY_LEN {
        return Err(bad(&format!("larger than {MAX_KEY_LEN} bytes")));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    Ok(Zeroizing::new(text.to_owned()))
}

impl TokenCredential for ArcCredential {
    fn kind(&self) -> &'static str {
        "azure-arc"
    }

    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            self.fetch(resource)
                .await
                .map_err(|e| e.context("azure-arc"))
        })
    }
}
