//! App Service, Functions and Container Apps managed identity, current and legacy.
//!
//! Current: `GET $IDENTITY_ENDPOINT?resource=…&api-version=2019-08-01`, header
//! `X-IDENTITY-HEADER: $IDENTITY_HEADER`; user-assigned `client_id` | `principal_id` |
//! `mi_res_id`; `expires_on` is an epoch string.
//! Legacy: `GET $MSI_ENDPOINT?resource=…&api-version=2017-09-01`, header `secret: $MSI_SECRET`;
//! user-assigned by `clientid` only; `expires_on` may be a date string.

use std::fmt;
use std::time::SystemTime;

use futures::future::BoxFuture;
use reqwest::Method;
use url::Url;
use zeroize::Zeroizing;

use super::expiry::parse_token;
use super::retry::status_error;
use super::{
    AccessToken, CredentialError, RetryPolicy, TokenCredential, UserAssignedId, check_resource,
    key_with,
};
use crate::http::HttpClient;

/// Which protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, api-version 2019-08-01.
    V2019,
    /// `MSI_ENDPOINT` + `MSI_SECRET`, api-version 2017-09-01.
    V2017,
}

/// Tokens from the App Service identity endpoint.
#[derive(Clone)]
pub struct AppServiceCredential {
    /// The endpoint URL.
    pub endpoint: Url,
    /// Which protocol.
    pub protocol: Protocol,
    /// The user-assigned identity, or `None` for system-assigned.
    pub identity: Option<UserAssignedId>,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
    header: Zeroizing<String>,
    http: HttpClient,
    /// Keeps the endpoint out of guests' egress while the credential lives.
    _registration: std::sync::Arc<crate::net::identity_endpoints::Registration>,
}

impl fmt::Debug for AppServiceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppServiceCredential")
            .field("endpoint", &self.endpoint.as_str())
            .field("protocol", &self.protocol)
            .field("identity", &self.identity)
            .field("header", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl AppServiceCredential {
    /// The endpoint `endpoint`, authenticated by `header` (`IDENTITY_HEADER` or `MSI_SECRET`).
    pub fn new(
        http: HttpClient,
        protocol: Protocol,
        endpoint: &str,
        header: String,
        identity: Option<UserAssignedId>,
    ) -> Result<Self, CredentialError> {
        let header = Zeroizing::new(header);
        let endpoint = Url::parse(endpoint).map_err(|e| {
            CredentialError::NotConfigured(format!("identity endpoint {endpoint:?}: {e}"))
        })?;
        http.check_url(&endpoint)?;
        let registration = std::sync::Arc::new(crate::net::identity_endpoints::register(&endpoint));
        if protocol == Protocol::V2017
            && matches!(
                identity,
                Some(UserAssignedId::ObjectId(_) | UserAssignedId::ResourceId(_))
            )
        {
            return Err(CredentialError::NotConfigured(
                "the legacy App Service endpoint (MSI_ENDPOINT) takes a user-assigned identity by client id only".into(),
            ));
        }
        Ok(Self {
            endpoint,
            protocol,
            identity,
            retry: RetryPolicy::default(),
            header,
            http,
            _registration: registration,
        })
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, CredentialError> {
        check_resource(resource)?;
        let mut url = self.endpoint.clone();
        let (version, header) = match self.protocol {
            Protocol::V2019 => ("2019-08-01", "X-IDENTITY-HEADER"),
            Protocol::V2017 => ("2017-09-01", "secret"),
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", version);
            q.append_pair("resource", resource);
            match (&self.identity, self.protocol) {
                (Some(UserAssignedId::ClientId(v)), Protocol::V2019) => {
                    q.append_pair("client_id", v)
                }
                (Some(UserAssignedId::ObjectId(v)), _) => q.append_pair("principal_id", v),
                (Some(UserAssignedId::ResourceId(v)), _) => q.append_pair("mi_res_id", v),
                (Some(UserAssignedId::ClientId(v)), Protocol::V2017) => {
                    q.append_pair("clientid", v)
                }
                (None, _) => &mut q,
            };
        }
        let now = SystemTime::now();
        let resp = self
            .retry
            .send(&self.http, || {
                self.http
                    .request(Method::GET, url.clone())
                    .header(header, self.header.as_str())
            })
            .await?;
        if !resp.status.is_success() {
            return Err(status_error(&resp, "the identity endpoint"));
        }
        parse_token(&resp, now)
    }
}

impl TokenCredential for AppServiceCredential {
    fn kind(&self) -> &'static str {
        match self.protocol {
            Protocol::V2019 => "app-service",
            Protocol::V2017 => "app-service-2017",
        }
    }

    fn get_token<'a>(
        &'a self,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, CredentialError>> {
        Box::pin(async move {
            self.fetch(resource)
                .await
                .map_err(|e| e.context(self.kind()))
        })
    }

    fn cache_key(&self) -> String {
        key_with(self.kind(), self.identity.as_ref())
    }
}
