//! The Microsoft Entra token endpoint shared by workload identity and client secret.

use std::time::SystemTime;

use reqwest::Method;
use url::Url;

use super::expiry::parse_token;
use super::retry::{RetryPolicy, status_error};
use super::{AccessToken, CredentialError, check_resource};
use crate::http::HttpClient;

/// The public cloud's authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// `{authority}/{tenant}/oauth2/v2.0/token`, with the tenant checked so it cannot bend the path.
pub(crate) fn token_url(authority: &str, tenant: &str) -> Result<Url, CredentialError> {
    let tenant_ok = !tenant.is_empty()
        && tenant.len() <= 128
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !tenant_ok {
        return Err(CredentialError::NotConfigured(format!(
            "tenant id {tenant:?} is not a GUID or domain name"
        )));
    }
    let base = authority.trim_end_matches('/');
    let url = Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/token")).map_err(|e| {
        CredentialError::NotConfigured(format!("authority host {authority:?} is not a URL: {e}"))
    })?;
    Ok(url)
}

/// `https://vault.azure.net` becomes `https://vault.azure.net/.default`.
pub(crate) fn scope_for(resource: &str) -> String {
    if resource.ends_with("/.default") {
        resource.to_owned()
    } else {
        format!("{}/.default", resource.trim_end_matches('/'))
    }
}

/// Entra is retried as managed identity is (404, 429, 5xx and transport failures), a few
/// times; it has no 410 rule.
fn entra_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        gone_window: std::time::Duration::ZERO,
        attempt_timeout: std::time::Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

/// POSTs the client-credentials form and reads the token (`expires_in` is a number here).
pub(crate) async fn request_token(
    http: &HttpClient,
    url: &Url,
    resource: &str,
    form: &[(&str, &str)],
) -> Result<AccessToken, CredentialError> {
    check_resource(resource)?;
    let scope = scope_for(resource);
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.push(("grant_type", "client_credentials"));
    fields.push(("scope", &scope));
    let now = SystemTime::now();
    let resp = entra_retry()
        .send(http, || {
            http.request(Method::POST, url.clone()).form(&fields)
        })
        .await?;
    if !resp.status.is_success() {
        return Err(status_error(&resp, "the token endpoint"));
    }
    parse_token(&resp, now)
}
