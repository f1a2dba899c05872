//! Egress: a guest's outgoing wasi:http requests go only where its config allows, the same
//! for `run` and `serve`.
//!
//! Every other destination is refused (`HTTP-request-denied`). A rule names a host and a port;
//! without a port it means the scheme's default one. `Authorization` and `Proxy-Authorization`
//! set by the guest are removed on every rule. An `azure-http` rule makes the
//! host attach `Authorization: Bearer <token>` for the rule's resource itself, replacing any
//! Authorization the guest set: the guest calls an Azure API with the host's identity and
//! still never holds the token. With the loopback guard on, nothing outside loopback is
//! reached whatever the rules say.

use crate::http::{is_localhost_name, is_loopback_ip};
use crate::token_cache::TokenCache;
use http::header::{AUTHORIZATION, HeaderValue, PROXY_AUTHORIZATION};
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EgressRule {
    /// `host:port`, or `host` for the scheme's default port only (443 for https, 80 for http).
    pub host: String,
    /// `http` (plain pass-through) or `azure-http` (the host attaches its token).
    #[serde(default)]
    pub kind: EgressKind,
    /// For `azure-http`: the token audience, such as `https://storage.azure.com`.
    pub resource: Option<String>,
}

/// What the host does with requests to an allowed destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressKind {
    /// Pass the request through (any guest Authorization is removed).
    #[default]
    Http,
    /// Attach the host's bearer token for the rule's resource.
    AzureHttp,
}

impl EgressRule {
    /// Parses `--allow-http HOST` style rules.
    pub fn http(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kind: EgressKind::Http,
            resource: None,
        }
    }

    /// Checks the rule is complete: an `azure-http` rule needs an https resource.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.host.is_empty() && !self.host.contains('/'),
            "egress host {:?} must be a host or host:port",
            self.host
        );
        if self.kind == EgressKind::AzureHttp {
            let r = self.resource.as_deref().unwrap_or("");
            anyhow::ensure!(
                r.starts_with("https://"),
                "egress rule for {} is azure-http and needs resource = \"https://...\"",
                self.host
            );
        }
        Ok(())
    }
}

/// The egress rules of one component, with the token cache `azure-http` rules use.
/// The default policy allows nothing.
pub struct EgressPolicy {
    rules: Vec<EgressRule>,
    tokens: Option<Arc<TokenCache>>,
    loopback_only: bool,
}

impl EgressPolicy {
    /// `rules`, with `tokens` for `azure-http` rules; `loopback_only` refuses everything else.
    pub fn new(
        rules: Vec<EgressRule>,
        tokens: Option<Arc<TokenCache>>,
        loopback_only: bool,
    ) -> Self {
        Self {
            rules,
            tokens,
            loopback_only,
        }
    }

    /// No egress at all.
    pub fn deny_all() -> Self {
        Self::new(Vec::new(), None, true)
    }

    /// The rule allowing `host` on `port` (the URL's port, else the scheme's default). A rule
    /// without a port allows the scheme's default port only: 443 for https, 80 for http.
    fn rule_for(&self, host: &str, port: Option<u16>, https: bool) -> Option<&EgressRule> {
        let default_port = if https { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        self.rules.iter().find(|r| match r.host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => {
                h.eq_ignore_ascii_case(host) && p.parse::<u16>() == Ok(port)
            }
            _ => r.host.eq_ignore_ascii_case(host) && port == default_port,
        })
    }
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::deny_all()
    }
}

impl std::fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressPolicy")
            .field("rules", &self.rules)
            .field("tokens", &self.tokens.is_some())
            .field("loopback_only", &self.loopback_only)
            .finish()
    }
}

/// The wasi:http hooks that enforce an [`EgressPolicy`].
#[derive(Clone)]
pub struct EgressHooks {
    policy: Arc<EgressPolicy>,
}

impl EgressHooks {
    /// Hooks for `policy`.
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self { policy }
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse().is_ok_and(is_loopback_ip) || is_localhost_name(bare)
}

type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        drop(fut);
        let policy = self.policy.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
            let https = uri.scheme_str() == Some("https");
            let Some(rule) = policy.rule_for(host, uri.port_u16(), https) else {
                tracing::warn!(
                    host,
                    port = uri.port_u16(),
                    "egress refused: no rule allows this host and port (allow it with --allow-http HOST:PORT or an egress rule)"
                );
                return Err(Error::HttpRequestDenied);
            };
            if policy.loopback_only && !is_loopback_host(host) {
                tracing::warn!(
                    host,
                    "egress refused: WASM_SECRETS_LOOPBACK_ONLY allows loopback only"
                );
                return Err(Error::HttpRequestDenied);
            }
            // Credentials the guest set never leave: not to a plain rule, not to a proxy.
            request.headers_mut().remove(AUTHORIZATION);
            request.headers_mut().remove(PROXY_AUTHORIZATION);
            if rule.kind == EgressKind::AzureHttp {
                // Bearer tokens go over https only (plain http to loopback alone).
                if !https && !is_loopback_host(host) {
                    return Err(Error::HttpRequestDenied);
                }
                let (Some(tokens), Some(resource)) = (&policy.tokens, &rule.resource) else {
                    return Err(Error::HttpRequestDenied);
                };
                let token = tokens.token(resource).await.map_err(|e| {
                    tracing::warn!(host, error = %e, "no token for an azure-http egress request");
                    Error::HttpRequestDenied
                })?;
                let mut value = HeaderValue::try_from(format!("Bearer {}", token.secret()))
                    .map_err(|_| Error::HttpRequestDenied)?;
                value.set_sensitive(true);
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            hosts.iter().map(|h| EgressRule::http(*h)).collect(),
            None,
            false,
        )
    }

    #[test]
    fn a_rule_without_a_port_allows_the_schemes_default_port_only() {
        let p = policy(&["api.example.com"]);
        assert!(p.rule_for("api.example.com", None, true).is_some());
        assert!(p.rule_for("api.example.com", Some(443), true).is_some());
        assert!(p.rule_for("api.example.com", None, false).is_some());
        assert!(p.rule_for("api.example.com", Some(80), false).is_some());
        for port in [8080, 22, 6379, 80] {
            assert!(
                p.rule_for("api.example.com", Some(port), true).is_none(),
                "{port}"
            );
        }
        assert!(p.rule_for("api.example.com", Some(443), false).is_none());
        assert!(
            p.rule_for("API.example.com", None, true).is_some(),
            "hosts ignore case"
        );
        assert!(p.rule_for("other.example.com", None, true).is_none());
    }

    #[test]
    fn a_rule_with_a_port_allows_that_port_only() {
        let p = policy(&["127.0.0.1:8081"]);
        assert!(p.rule_for("127.0.0.1", Some(8081), false).is_some());
        assert!(p.rule_for("127.0.0.1", Some(8082), false).is_none());
        assert!(p.rule_for("127.0.0.1", None, false).is_none());
        assert!(p.rule_for("127.0.0.1", None, true).is_none());
    }
}
