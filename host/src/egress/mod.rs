//! Egress: a guest's outgoing wasi:http requests go only where its rules allow, the same
//! for `run`, `serve` and embedders.
//!
//! The data path of one request: `EgressPolicy::rule_for` finds the rule for the URL's host
//! and port (none: refused); the guest's credential headers are removed (`Authorization`,
//! `Proxy-Authorization`, and the identity endpoints' own `Metadata`, `X-IDENTITY-HEADER` and
//! `Secret`); [`resolve`] turns the host into addresses; every address is checked
//! (`net::address`): link-local (IMDS, 169.254.0.0/16, fe80::/10), Azure's wire
//! server and the host's own identity endpoints are refused whatever the rules say; loopback,
//! private and CGNAT addresses only for a rule that opts in; with the loopback guard on,
//! anything but loopback is refused. Then `connect` connects to exactly the checked
//! addresses, with no lookup of its own. An `azure-http` rule makes the host attach
//! `Authorization: Bearer <token>` for the rule's resource ([`audiences`] says where each
//! audience may go), so the guest calls an Azure API with the host's identity and never
//! holds the token.
//!
//! Each refusal is `HTTP-request-denied` in the guest, one warning line (rule, host, address,
//! why; never a token) and a count in `wasm_secrets_egress_refused_total`.

pub mod audiences;
mod connect;
mod inject;
mod oauth;
pub mod resolve;
mod rule;
mod scrub;

pub use crate::net::identity_endpoints::{Registration, register as protect_identity_endpoint};
pub use oauth::exchange as oauth2_exchange;
pub use resolve::Resolver;
pub use rule::{EgressKind, EgressRule};

use crate::SecretsCtx;
use crate::audit::{AuditEvent, AuditSink};
use crate::net::address::{Reach, canonical, reach};
use crate::net::identity_endpoints::is_identity_address;
use crate::token_cache::TokenCache;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue, PROXY_AUTHORIZATION};
use oauth::OAuthClients;
use resolve::ResolveError;
use scrub::{FormsCache, Needles, Scrubber};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Request headers a guest may never send on: credentials, and the headers that authenticate
/// a caller to IMDS (`Metadata`), App Service and Arc (`X-IDENTITY-HEADER`) and the legacy
/// MSI endpoint (`Secret`).
const STRIPPED: [HeaderName; 5] = [
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    HeaderName::from_static("metadata"),
    HeaderName::from_static("x-identity-header"),
    HeaderName::from_static("secret"),
];

/// Removes every value of each [`STRIPPED`] header: credentials the guest set never leave,
/// not to a plain rule, not to a proxy, and no identity endpoint's authentication header
/// either. wasi:http already refuses some of them from a guest (`Proxy-Authorization`); this
/// does not count on it.
fn strip_guest_credentials(headers: &mut http::HeaderMap) {
    for name in &STRIPPED {
        headers.remove(name);
    }
}

/// The egress rules of one component, with the token cache `azure-http` rules use and the
/// resolver for host names. The default policy allows nothing.
pub struct EgressPolicy {
    rules: Vec<EgressRule>,
    tokens: Option<Arc<TokenCache>>,
    loopback_only: bool,
    resolver: Resolver,
    audit: Option<(String, Arc<dyn AuditSink>)>,
    /// The OAuth 2 clients of `oauth2` use-only grants, and their tokens.
    oauth: OAuthClients,
    /// The encodings of the values this component's requests carried, for echo scrubbing.
    forms: FormsCache,
}

impl EgressPolicy {
    /// `rules`, each checked first ([`EgressRule::check`]: no rule may name an identity
    /// endpoint, and an `azure-http` token goes only where its audience lives), with `tokens`
    /// for `azure-http` rules; `loopback_only` refuses every address outside loopback. Host
    /// names resolve through system DNS; see [`EgressPolicy::with_resolver`].
    pub fn new(
        rules: Vec<EgressRule>,
        tokens: Option<Arc<TokenCache>>,
        loopback_only: bool,
    ) -> anyhow::Result<Self> {
        for rule in &rules {
            rule.check()?;
            if rule.unknown_audience() {
                tracing::warn!(
                    rule = %rule.host,
                    resource = rule.resource.as_deref().unwrap_or_default(),
                    "egress rule: the host's token for this resource goes to this host as is; make sure the host is that resource's own API"
                );
            }
        }
        Ok(Self {
            rules,
            tokens,
            loopback_only,
            resolver: Resolver::system(),
            audit: None,
            oauth: OAuthClients::default(),
            forms: FormsCache::default(),
        })
    }

    /// Reaches the token URLs of `oauth2` use-only grants through `http` (by default, a
    /// client with the public web's roots and the loopback guard of the environment).
    pub fn with_token_http(mut self, http: crate::http::HttpClient) -> Self {
        self.oauth = OAuthClients::with_http(http);
        self
    }

    /// Resolves host names with `resolver` (pins first, then system DNS).
    pub fn with_resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// Records each request an `azure-http` rule attaches the host's token to (and each such
    /// request refused) in `sink`, as `component`'s. A request whose event cannot be written
    /// fails in the guest.
    pub fn with_audit(mut self, component: impl Into<String>, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some((component.into(), sink));
        self
    }

    /// One audit line for a token-carrying request; an error if it cannot be written.
    fn audit(
        &self,
        rule: &EgressRule,
        host: &str,
        method: &str,
        result: &Result<u16, &Error>,
        started: Instant,
    ) -> Result<(), Error> {
        let Some((component, sink)) = &self.audit else {
            return Ok(());
        };
        let outcome = match result {
            Ok(_) => "ok",
            Err(Error::HttpRequestDenied) => "denied",
            Err(_) => "failed",
        };
        let written = sink.record(&AuditEvent {
            time: crate::audit::now_rfc3339(),
            component,
            op: "egress",
            name: host,
            host: Some(host),
            resource: rule.resource.as_deref(),
            method: Some(method),
            status: result.as_ref().ok().copied(),
            outcome,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            ..Default::default()
        });
        written.map_err(|e| {
            tracing::error!(component, error = %e, "cannot write the audit log; failing the egress request");
            Error::HttpRequestDenied
        })
    }

    /// No egress at all.
    pub fn deny_all() -> Self {
        Self {
            rules: Vec::new(),
            tokens: None,
            loopback_only: true,
            resolver: Resolver::system(),
            audit: None,
            oauth: OAuthClients::default(),
            forms: FormsCache::default(),
        }
    }

    /// The rule allowing `host` on `port` (the URL's port, else the scheme's default). A rule
    /// without a port allows the scheme's default port only: 443 for https, 80 for http.
    fn rule_for(&self, host: &str, port: Option<u16>, https: bool) -> Option<&EgressRule> {
        let default_port = if https { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.');
        self.rules.iter().find(|r| {
            let (h, p) = r.host_port();
            h.eq_ignore_ascii_case(host) && p.unwrap_or(default_port) == port
        })
    }

    /// The addresses `rule` lets a request to `host:port` connect to: every address the host
    /// resolves to, each checked. Any address that fails is a refusal of the whole request.
    async fn destination(
        &self,
        rule: &EgressRule,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Error> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ips = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match self.resolver.lookup(bare, port, self.loopback_only).await {
                Ok(ips) => ips,
                Err(ResolveError::LoopbackOnly) => {
                    return Err(refuse(
                        rule,
                        host,
                        None,
                        "loopback-only",
                        "WASM_SECRETS_LOOPBACK_ONLY allows loopback only and the name is not pinned",
                    ));
                }
                Err(ResolveError::NotFound) => return Err(Error::DestinationNotFound),
            },
        };
        let mut addrs = Vec::with_capacity(ips.len());
        for ip in ips {
            let addr = SocketAddr::new(canonical(ip), port);
            let class = reach(addr.ip());
            if let Reach::Forbidden(why) = class {
                return Err(refuse(rule, host, Some(addr), "forbidden-address", why));
            }
            if is_identity_address(addr) {
                return Err(refuse(
                    rule,
                    host,
                    Some(addr),
                    "identity-endpoint",
                    "an identity endpoint this host gets its tokens from",
                ));
            }
            if !rule.reaches(class) {
                return Err(refuse(
                    rule,
                    host,
                    Some(addr),
                    "private-address",
                    "a private or loopback address, and the rule names a host without private = true",
                ));
            }
            if self.loopback_only && !addr.ip().is_loopback() {
                return Err(refuse(
                    rule,
                    host,
                    Some(addr),
                    "loopback-only",
                    "WASM_SECRETS_LOOPBACK_ONLY allows loopback only",
                ));
            }
            addrs.push(addr);
        }
        Ok(addrs)
    }
}

/// Logs and counts one refusal; the guest sees `HTTP-request-denied`.
fn refuse(
    rule: &EgressRule,
    host: &str,
    addr: Option<SocketAddr>,
    reason: &'static str,
    why: &str,
) -> Error {
    tracing::warn!(
        rule = %rule.host,
        host,
        address = addr.map(tracing::field::display),
        "egress refused: {why}"
    );
    crate::metrics::global().egress_refused(reason);
    Error::HttpRequestDenied
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
            .field("resolver", &self.resolver)
            .field("audited", &self.audit.is_some())
            .finish()
    }
}

/// The wasi:http hooks that enforce an [`EgressPolicy`], and apply the component's use-only
/// secrets ([`inject`]) to the requests it allows.
#[derive(Clone)]
pub struct EgressHooks {
    policy: Arc<EgressPolicy>,
    secrets: SecretsCtx,
}

impl EgressHooks {
    /// Hooks for `policy`, with the use-only secrets of `secrets`'s grants.
    pub fn new(policy: Arc<EgressPolicy>, secrets: SecretsCtx) -> Self {
        Self { policy, secrets }
    }
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = connect::Sent> + Send> {
        drop(fut);
        let policy = self.policy.clone();
        let secrets = self.secrets.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let Some(rule) = policy.rule_for(host, uri.port_u16(), https) else {
                tracing::warn!(
                    host,
                    port,
                    "egress refused: no egress rule allows this host and port"
                );
                crate::metrics::global().egress_refused("no-rule");
                return Err(Error::HttpRequestDenied);
            };
            // Marked headers are set aside first: a marker may sit in `Authorization`.
            let marked = inject::take_markers(request.headers_mut())?;
            strip_guest_credentials(request.headers_mut());
            let started = Instant::now();
            let method = request.method().clone();
            let mut out = Outgoing {
                needles: Needles::default(),
                applied: None,
            };
            let destination = Destination { host, port, https };
            let sent = send_checked(
                &policy,
                &secrets,
                rule,
                request,
                options,
                destination,
                marked,
                &mut out,
            )
            .await;
            let status = sent.as_ref().map(|(r, _)| r.status().as_u16());
            if rule.kind != EgressKind::Http {
                policy.audit(rule, host, method.as_str(), &status, started)?;
            }
            if let Some(applied) = &out.applied {
                applied.record(&secrets, host, method.as_str(), status)?;
            }
            let (mut response, io) = sent?;
            if !out.needles.is_empty() {
                let scrubber = Arc::new(Scrubber::new(out.needles));
                scrubber.headers(response.headers_mut());
                response = response.map(|body| scrubber.body(body));
            }
            Ok((response, io))
        })
    }
}

/// Whether a request would carry a value (a use-only secret, a token) in plain http to an
/// address outside loopback, which it may not: values go over https only (plain http to
/// loopback alone, for tests).
fn plain_off_loopback(https: bool, addrs: &[SocketAddr]) -> bool {
    !https && !addrs.iter().all(|a| a.ip().is_loopback())
}

/// Where a request goes, as its URL says.
#[derive(Clone, Copy)]
struct Destination<'a> {
    host: &'a str,
    port: u16,
    https: bool,
}

/// What sending one request put in it: the values to scrub from its response, and the
/// use-only secrets to audit.
struct Outgoing {
    needles: Needles,
    applied: Option<inject::Applied>,
}

/// Sends a request `rule` allows: to checked addresses only, with its use-only secrets
/// applied and, under an `azure-http` rule, the host's token for the rule's resource in
/// place of anything the guest set. Values go over https only (plain http to loopback alone).
#[allow(clippy::too_many_arguments)]
async fn send_checked(
    policy: &EgressPolicy,
    secrets: &SecretsCtx,
    rule: &EgressRule,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    to: Destination<'_>,
    marked: Vec<inject::Marked>,
    out: &mut Outgoing,
) -> connect::Sent {
    let Destination { host, port, https } = to;
    let addrs = policy.destination(rule, host, port).await?;
    let in_the_clear = plain_off_loopback(https, &addrs);
    if !marked.is_empty() {
        if in_the_clear {
            return Err(refuse(
                rule,
                host,
                None,
                "plain-http-secret",
                "a use-only secret goes over https only",
            ));
        }
        out.applied = Some(
            inject::apply(
                secrets,
                policy,
                marked,
                &mut request,
                host,
                port,
                &mut out.needles,
            )
            .await?,
        );
    }
    if rule.kind != EgressKind::Http {
        if in_the_clear {
            return Err(refuse(
                rule,
                host,
                None,
                "plain-http-token",
                "an azure-http rule sends its token over https only",
            ));
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
        out.needles.add(&policy.forms, token.secret().as_bytes());
    }
    connect::send(request, options, host, &addrs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each credential header leaves the request, every value of it and whatever its
    /// spelling; the guest's other headers stay as they were.
    #[test]
    fn the_guests_credential_headers_are_stripped_and_nothing_else() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("Authorization", "Bearer guest-token"),
            ("authorization", "Basic second-value"),
            ("Proxy-Authorization", "Basic cHJveHk6cGFzcw=="),
            ("Metadata", "true"),
            ("X-IDENTITY-HEADER", "guest-identity-header"),
            ("Secret", "guest-msi-secret"),
            ("Content-Type", "application/json"),
            ("X-Api-Key", "meant-for-the-upstream"),
            ("Accept", "*/*"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        strip_guest_credentials(&mut headers);
        let mut left: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ("accept", "*/*"),
                ("content-type", "application/json"),
                ("x-api-key", "meant-for-the-upstream"),
            ]
        );
    }

    fn policy(hosts: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            hosts.iter().map(|h| EgressRule::http(*h)).collect(),
            None,
            false,
        )
        .unwrap()
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
    fn values_go_in_plain_http_to_loopback_only() {
        let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 8080);
        assert!(!plain_off_loopback(false, &[at("127.0.0.1"), at("::1")]));
        assert!(plain_off_loopback(
            false,
            &[at("127.0.0.1"), at("10.0.0.7")]
        ));
        assert!(plain_off_loopback(false, &[at("203.0.113.9")]));
        assert!(!plain_off_loopback(true, &[at("203.0.113.9")]));
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
