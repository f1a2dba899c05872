//! Egress: a guest's outgoing wasi:http requests go only where its config allows.
//!
//! Every other destination is refused (`HTTP-request-denied`). An `azure-http` rule makes the
//! host attach `Authorization: Bearer <token>` for the rule's resource itself, replacing any
//! Authorization the guest set: the guest calls an Azure API with the host's identity and
//! still never holds the token. With the loopback guard on, nothing outside loopback is
//! reached whatever the rules say.

use crate::http::{is_localhost_name, is_loopback_ip};
use crate::token_cache::TokenCache;
use http::header::{AUTHORIZATION, HeaderValue};
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EgressRule {
    /// `host` or `host:port`, as in the request URL.
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

    fn rule_for(&self, host: &str, port: Option<u16>) -> Option<&EgressRule> {
        self.rules.iter().find(|r| match r.host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => {
                h.eq_ignore_ascii_case(host) && port.map(|x| x.to_string()).as_deref() == Some(p)
            }
            _ => r.host.eq_ignore_ascii_case(host),
        })
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
            let Some(rule) = policy.rule_for(host, uri.port_u16()) else {
                tracing::info!(host, "egress refused: no rule allows this host");
                return Err(Error::HttpRequestDenied);
            };
            if policy.loopback_only && !is_loopback_host(host) {
                tracing::info!(host, "egress refused: loopback only");
                return Err(Error::HttpRequestDenied);
            }
            request.headers_mut().remove(AUTHORIZATION);
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
