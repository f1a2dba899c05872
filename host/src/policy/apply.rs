//! The policy point's side of use-only secrets: egress asks here for the values of the secret
//! a guest's request names, for that request's destination, and records here what it did
//! with them. The guest never gets these values; only `crate::egress` does.

use super::budget::Class;
use super::error::Error;
use super::point::{Op, destinations};
use super::secrets::SecretsCtx;
use super::uses::{Apply, TokenEndpoint};
use crate::SecretValue;
use crate::audit::{AuditEvent, now_rfc3339};
use crate::name::fold_valid;
use std::time::Instant;

/// The values of one use-only secret, for one request, and how to apply them.
#[derive(Debug)]
pub struct UseValues {
    /// What the marker becomes.
    pub apply: Apply,
    /// The secret (for `basic`: the user).
    pub value: SecretValue,
    /// The second secret of a processor that takes two (`basic`: the password, `oauth2`: the
    /// client secret).
    pub second: Option<SecretValue>,
    /// For `oauth2`: where tokens come from.
    pub token_endpoint: Option<TokenEndpoint>,
}

/// What happened to one request carrying a use-only secret, for its audit line.
#[derive(Debug, Clone, Copy)]
pub struct UseRecord<'a> {
    /// The name in the guest's marker.
    pub name: &'a str,
    /// The processor, if the grant was found.
    pub apply: Option<Apply>,
    /// The request's host and method.
    pub host: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The upstream's status, if it answered.
    pub status: Option<u16>,
    /// `ok`, or why not (an error kind, or egress's reason).
    pub outcome: &'static str,
    /// When the host started on the request.
    pub started: Instant,
}

impl SecretsCtx {
    /// The values of the use-only secret granted as `name`, for a request to `host` on `port`
    /// (which egress has allowed): `not-granted` if no use-only grant gives `name`, or if its
    /// grant does not name that destination; through the cache and the budgets as `get` is.
    /// No audit line: egress writes one with [`SecretsCtx::record_use`] when the request ends.
    pub(crate) async fn use_values(
        &self,
        name: &str,
        host: &str,
        port: u16,
    ) -> Result<UseValues, Error> {
        let policy = self.policy();
        let folded = fold_valid(name);
        let mut trail = policy.trail(Op::Use, name, None);
        let (target, backend) = policy.authorize(&mut trail, folded.as_deref())?;
        let Some(spec) = target.use_only else {
            return Err(Error::not_use_only(name));
        };
        if !spec.allows(host, port) {
            let asked = super::uses::Destination {
                host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
                port,
            };
            return Err(Error::use_elsewhere(
                name,
                &asked.to_string(),
                &destinations(spec),
            ));
        }
        // A cache hit needs no wait, and builds no future.
        let first = match backend.read_now(target.object, target.version, trail.admit()) {
            Some(served) => served,
            None => {
                backend
                    .read(target.object, target.version, trail.admit())
                    .await
            }
        }
        .map_err(|e| trail.vault_error(e))?;
        let value = trail.served(first);
        let second = match (&spec.second, target.second_vault_index) {
            (Some(second), Some(index)) => {
                let backend = policy
                    .backend(index)
                    .ok_or_else(|| Error::no_vault(super::grants::ObjectKind::Secret, name))?;
                let charge = policy.charge(index, Class::Secrets);
                let version = second.version.as_deref();
                let (secret, _) = match backend.read_now(&second.object, version, &charge) {
                    Some(served) => served,
                    None => backend.read(&second.object, version, &charge).await,
                }
                .map_err(|e| trail.vault_error(e))?;
                Some(secret.value.clone())
            }
            _ => None,
        };
        Ok(UseValues {
            apply: spec.apply,
            value,
            second,
            token_endpoint: spec.token_endpoint.clone(),
        })
    }

    /// Writes the audit line of one request that carried (or was refused) a use-only secret,
    /// and counts it. An error if the line cannot be written: the guest then gets no answer.
    pub(crate) fn record_use(&self, record: &UseRecord<'_>) -> Result<(), Error> {
        let policy = self.policy();
        let processor = record.apply.map(Apply::as_str);
        crate::metrics::global().secret_applied(
            policy.component(),
            processor.unwrap_or("none"),
            record.outcome,
        );
        tracing::debug!(component = %policy.component(), name = %crate::audit::name_for_log(record.name), host = record.host, processor, outcome = record.outcome, "use-only secret");
        let Some(sink) = policy.audit_sink() else {
            return Ok(());
        };
        let folded = fold_valid(record.name);
        let target = folded
            .as_deref()
            .and_then(|f| policy.grants().lookup(super::grants::ObjectKind::Secret, f));
        let (name, name_bytes) = crate::audit::logged_name(record.name, target.map(|t| t.name));
        let written = sink.record(&AuditEvent {
            time: now_rfc3339(),
            component: policy.component(),
            op: "use",
            name: &name,
            name_bytes,
            vault: target.map(|t| t.vault),
            secret: target.map(|t| t.object),
            version: target.and_then(|t| t.version),
            host: Some(record.host),
            method: Some(record.method),
            processor,
            status: record.status,
            outcome: record.outcome,
            latency_us: u64::try_from(record.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            ..Default::default()
        });
        written.map_err(|e| {
            tracing::error!(component = %policy.component(), error = %e, "cannot write the audit log; failing the request");
            Error::audit_failed(super::grants::ObjectKind::Secret, &name)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::file::FileBackend;
    use crate::policy::ErrorKind;
    use crate::policy::uses::Apply;
    use crate::{Grants, SecretsCtx, Vaults};

    fn ctx() -> SecretsCtx {
        let file = FileBackend::new(
            "t",
            [
                ("stripe-live".to_string(), "sk_live_value".into()),
                ("api-user".to_string(), "user".into()),
                ("api-password".to_string(), "pass".into()),
                ("db-password".to_string(), "pw".into()),
            ],
        );
        SecretsCtx::new(
            "c",
            Grants::parse([
                "use:stripe=stripe-live for api.stripe.com,127.0.0.1:8443",
                "use:api=api-user+api-password for api.example.com as basic",
                "db-password",
            ])
            .unwrap(),
            Vaults::new().with("default", file),
        )
    }

    #[tokio::test]
    async fn a_use_only_secret_is_never_read_and_says_where_it_may_go() {
        let ctx = ctx();
        for read in [
            ctx.get("stripe").await,
            ctx.get_version("stripe", "v1").await,
        ] {
            let e = read.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotGranted);
            assert!(e.message().contains("use-only"), "{}", e.message());
            assert!(e.message().contains("api.stripe.com"), "{}", e.message());
            assert!(!e.message().contains("sk_live_value"));
        }
        // A readable grant stays readable, and is not applied anywhere.
        assert_eq!(ctx.get("db-password").await.unwrap().expose(), "pw");
        let e = ctx
            .use_values("db-password", "api.stripe.com", 443)
            .await
            .unwrap_err();
        assert!(e.message().contains("no use-only grant"), "{}", e.message());
    }

    #[tokio::test]
    async fn a_use_only_secret_goes_only_to_its_destinations() {
        let ctx = ctx();
        let v = ctx
            .use_values("STRIPE", "API.stripe.com", 443)
            .await
            .unwrap();
        assert_eq!((v.apply, v.value.expose()), (Apply::Value, "sk_live_value"));
        assert!(ctx.use_values("stripe", "127.0.0.1", 8443).await.is_ok());
        for (host, port) in [
            ("api.stripe.com", 8443),
            ("127.0.0.1", 443),
            ("evil.example", 443),
            ("api.stripe.com.evil.example", 443),
        ] {
            let e = ctx.use_values("stripe", host, port).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotGranted, "{host}:{port}");
            assert!(e.message().contains("nothing was sent"), "{}", e.message());
        }
        let basic = ctx.use_values("api", "api.example.com", 443).await.unwrap();
        assert_eq!(basic.apply, Apply::Basic);
        assert_eq!(
            (
                basic.value.expose(),
                basic.second.as_ref().unwrap().expose()
            ),
            ("user", "pass")
        );
        let e = ctx
            .use_values("nope", "api.example.com", 443)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotGranted);
    }
}
