//! The instance metadata service (VMs, ACI, AKS pod identity).
//!
//! `GET {base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`, header
//! `Metadata: true`, never `X-Forwarded-For`. User-assigned: `client_id` | `object_id` |
//! `msi_res_id`. 400 means the identity is not assigned to this machine.

use std::time::SystemTime;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use url::Url;

use super::expiry::parse_token;
use super::retry::status_error;
use super::{
    AccessToken, CredentialError, RetryPolicy, TokenCredential, UserAssignedId, check_resource,
    key_with,
};
use crate::http::HttpClient;

/// The IMDS base URL.
pub const DEFAULT_BASE: &str = "http://169.254.169.254";

/// The variable the Azure SDKs read to point IMDS elsewhere (tests, pod identity).
pub const AUTHORITY_HOST_ENV: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";

const API_VERSION: &str = "2018-02-01";
const PATH: &str = "metadata/identity/oauth2/token";

/// Tokens from IMDS.
#[derive(Debug, Clone)]
pub struct ImdsCredential {
    /// The token URL, `{base}/metadata/identity/oauth2/token`.
    pub endpoint: Url,
    /// The user-assigned identity, or `None` for system-assigned.
    pub identity: Option<UserAssignedId>,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
    http: HttpClient,
    /// Keeps the endpoint out of guests' egress while the credential lives.
    _registration: std::sync::Arc<crate::net::identity_endpoints::Registration>,
}

impl ImdsCredential {
    /// IMDS at `base` (such as [`DEFAULT_BASE`]).
    pub fn new(
        http: HttpClient,
        base: &str,
        identity: Option<UserAssignedId>,
    ) -> Result<Self, CredentialError> {
        let endpoint = Url::parse(&format!("{}/{PATH}", base.trim_end_matches('/')))
            .map_err(|e| CredentialError::NotConfigured(format!("IMDS base {base:?}: {e}")))?;
        http.check_url(&endpoint)?;
        let registration = std::sync::Arc::new(crate::net::identity_endpoints::register(&endpoint));
        Ok(Self {
            endpoint,
            identity,
            retry: RetryPolicy::default(),
            http,
            _registration: registration,
        })
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, CredentialError> {
        check_resource(resource)?;
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", API_VERSION);
            q.append_pair("resource", resource);
            match &self.identity {
                Some(UserAssignedId::ClientId(v)) => q.append_pair("client_id", v),
                Some(UserAssignedId::ObjectId(v)) => q.append_pair("object_id", v),
                Some(UserAssignedId::ResourceId(v)) => q.append_pair("msi_res_id", v),
                None => &mut q,
            };
        }
        let now = SystemTime::now();
        let resp = self
            .retry
            .send(&self.http, || {
                self.http
                    .request(Method::GET, url.clone())
                    .header("Metadata", "true")
            })
            .await?;
        match resp.status {
            StatusCode::OK => parse_token(&resp, now),
            StatusCode::BAD_REQUEST => Err(CredentialError::Rejected(format!(
                "{}: the identity is not assigned to this machine",
                status_error(&resp, "IMDS").detail()
            ))),
            _ => Err(status_error(&resp, "IMDS")),
        }
    }
}

impl TokenCredential for ImdsCredential {
    fn kind(&self) -> &'static str {
        "imds"
    }

    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move { self.fetch(resource).await.map_err(|e| e.context("imds")) })
    }

    fn cache_key(&self) -> String {
        key_with(self.kind(), self.identity.as_ref())
    }
}
