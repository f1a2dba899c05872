//! The policy point (design section 2): the one path every request of a guest takes, for
//! secrets and keys alike.
//!
//! 1. validate the name (and fold it, in the same pass) -> `invalid-name`;
//! 2. resolve it through this component's grants of the object's kind (deny by default; for a
//!    key operation the grant must allow it) -> `not-granted`, with no vault call;
//! 3. find the grant's vault, then let the caller ([`super::secrets`], [`super::keys`]) ask it,
//!    each vault call first taking from the component's budgets ([`super::budget`]) ->
//!    `over-budget` (the guest's `unavailable`), with no vault call;
//! 4. [`Policy::audited`]: count the request, write its audit line, and refuse an answer whose
//!    line cannot be written.
//!
//! Names are case-insensitive, as in Key Vault: a valid name is [`crate::fold`]ed once, here, and
//! resolved and cached in that spelling, so every spelling of an object meets the same grant
//! (and pin) and the same cache entry. Error messages quote the name as the guest sent it;
//! the audit log names it as [`crate::audit`] says.

use super::budget::{Budget, Charge, Class, Share, Spender};
use super::error::{Error, ErrorKind};
use super::grants::{Grants, ObjectKind, Target};
use super::uses::UseOnly;
use super::vaults::Vault;
use super::vaults::Vaults;
use crate::audit::{AuditEvent, AuditSink, logged_name, name_for_log, now_rfc3339};
use crate::backend::Secret;
use crate::cache::{Admit, CacheStatus, Unlimited};
use crate::keys::KeyOp;
use crate::metrics::ReadCounters;
use crate::{BackendError, SecretValue};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// One component's policy state, shared by its [`SecretsCtx`](crate::SecretsCtx) and its
/// [`Keys`](crate::Keys): its name, its grants, the vaults they lead to, and its audit sink.
#[derive(Clone)]
pub(crate) struct Policy {
    component: Arc<str>,
    grants: Grants,
    vaults: Vaults,
    /// The backend of each vault the grants name, by its place in [`Grants::vault_names`]
    /// (`None`: not configured on this host), so a request looks up its grant and nothing else.
    backends: Box<[Option<Vault>]>,
    /// This component's shares of those vaults' budgets, by the same index.
    shares: Box<[Shares]>,
    /// This component's own vault-call budget.
    spender: Arc<Spender>,
    audit: Option<Arc<dyn AuditSink>>,
    reads: ReadCounters,
}

/// A component's shares of one vault's budgets: for the classes of call its grants allow.
#[derive(Clone, Default)]
struct Shares {
    secrets: Option<Arc<Share>>,
    keys: Option<Arc<Share>>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("component", &self.component)
            .field(
                "grants",
                &self
                    .grants
                    .iter()
                    .chain(self.grants.keys())
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("vaults", &self.vaults)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

/// What a guest asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `store.get`
    Get,
    /// `store.get-version`
    GetVersion,
    /// `store.info`
    Info,
    /// `store.list`
    List,
    /// A use-only secret applied to an outgoing request (by egress, never read by the guest).
    Use,
    /// `keys.public-key`: any key grant allows it.
    PublicKey,
    /// A key operation its grant must allow.
    Key(KeyOp),
}

impl Op {
    /// The audit log's `op`.
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::GetVersion => "get-version",
            Self::Info => "info",
            Self::List => "list",
            Self::Use => "use",
            Self::PublicKey => "public-key",
            Self::Key(op) => op.as_str(),
        }
    }

    /// The kind of object, and so the grants, it concerns.
    fn object(self) -> ObjectKind {
        match self {
            Self::Get | Self::GetVersion | Self::Info | Self::List | Self::Use => {
                ObjectKind::Secret
            }
            Self::PublicKey | Self::Key(_) => ObjectKind::Key,
        }
    }
}

/// What one request touched, for its audit line.
pub(super) struct Trail<'a> {
    op: Op,
    /// The name as the guest sent it.
    pub(super) name: &'a str,
    algorithm: Option<&'static str>,
    target: Option<Target<'a>>,
    /// The version asked for (a pinned grant's or the guest's), until the answer names one.
    pub(super) version: Option<&'a str>,
    /// The version the answer came from.
    pub(super) served: Option<Arc<str>>,
    /// The object's name as the vault's answer spells it.
    pub(super) spelled: Option<Arc<str>>,
    pub(super) cache: Option<CacheStatus>,
    /// What its vault calls may spend, once the grant is resolved.
    charge: Option<Charge<'a>>,
    /// Taken only when there is an audit log to write it to.
    start: Option<Instant>,
}

impl<'a> Trail<'a> {
    /// Notes how the cache served `secret` (and, for an audit line, its version and spelling)
    /// and hands out its value.
    pub(super) fn served(&mut self, (secret, cache): (Arc<Secret>, CacheStatus)) -> SecretValue {
        if self.start.is_some() {
            self.served = Some(secret.version.clone());
            self.spelled = secret.name.clone();
        }
        self.cache = Some(cache);
        secret.value.clone()
    }

    /// Whether this is a `public-key` request (whose answer is the cached public key; a key
    /// operation's audit line has no cache status: operations are never cached).
    pub(super) fn op_is_public_key(&self) -> bool {
        self.op == Op::PublicKey
    }

    /// Asked before each vault call of this request: its budgets, once its grant is resolved.
    pub(super) fn admit(&self) -> &dyn Admit {
        match &self.charge {
            Some(charge) => charge,
            None => &Unlimited,
        }
    }

    /// The guest's error for the vault's refusal `e` (or for the budget's, when the call was
    /// refused before it went out).
    pub(super) fn vault_error(&self, e: BackendError) -> Error {
        let object = self.op.object();
        if matches!(e, BackendError::Unavailable(_))
            && self.charge.as_ref().is_some_and(Charge::refused)
        {
            return Error::over_budget(object, self.name);
        }
        tracing::debug!(op = self.op.as_str(), name = self.name, vault = self.target.map(|t| t.vault), object = self.target.map(|t| t.object), error = %e, "the vault refused");
        Error::from_backend(object, self.name, &e)
    }
}

/// A use-only grant's destinations, for a message: `a.example, b.example:8443`.
pub(super) fn destinations(u: &UseOnly) -> String {
    u.destinations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Policy {
    /// The policy of component `component` with `grants` over `vaults`.
    pub(super) fn new(component: Arc<str>, grants: Grants, vaults: Vaults) -> Self {
        let backends: Box<[Option<Vault>]> = grants
            .vault_names()
            .iter()
            .map(|v| vaults.vault(v).cloned())
            .collect();
        let mut shares = vec![Shares::default(); backends.len()];
        for (kind, class) in [
            (ObjectKind::Secret, Class::Secrets),
            (ObjectKind::Key, Class::Keys),
        ] {
            for i in grants.vaults_of(kind) {
                let Some(vault) = &backends[i] else { continue };
                let share = vault.join(class, &component);
                match class {
                    Class::Secrets => shares[i].secrets = share,
                    Class::Keys => shares[i].keys = share,
                }
            }
        }
        Self {
            reads: crate::metrics::global()
                .read_counters(&component, &ErrorKind::SECRETS.map(ErrorKind::as_str)),
            spender: Arc::new(Spender::new(component.clone(), Some(Budget::COMPONENT))),
            component,
            grants,
            vaults,
            backends,
            shares: shares.into(),
            audit: None,
        }
    }

    pub(super) fn set_budget(&mut self, budget: Option<Budget>) {
        self.spender = Arc::new(Spender::new(self.component.clone(), budget));
    }

    /// What a call of `class` to the vault at `index` may spend.
    pub(super) fn charge(&self, index: usize, class: Class) -> Charge<'_> {
        let shares = self.shares.get(index);
        let share = match class {
            Class::Secrets => shares.and_then(|s| s.secrets.as_deref()),
            Class::Keys => shares.and_then(|s| s.keys.as_deref()),
        };
        let vault = self
            .grants
            .vault_names()
            .get(index)
            .map_or("", String::as_str);
        Charge::new(&self.spender, vault, class, share)
    }

    pub(super) fn set_audit(&mut self, sink: Arc<dyn AuditSink>) {
        self.audit = Some(sink);
    }

    pub(super) fn audit_sink(&self) -> Option<&Arc<dyn AuditSink>> {
        self.audit.as_ref()
    }

    pub(super) fn component(&self) -> &str {
        &self.component
    }

    pub(super) fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The backend of the vault at `index` in [`Grants::vault_names`], if it is configured.
    pub(super) fn backend(&self, index: usize) -> Option<&Vault> {
        self.backends.get(index)?.as_ref()
    }

    /// A trail for request `op` for `name` (with `algorithm`, for a key operation).
    pub(super) fn trail<'a>(
        &self,
        op: Op,
        name: &'a str,
        algorithm: Option<&'static str>,
    ) -> Trail<'a> {
        Trail {
            op,
            name,
            algorithm,
            target: None,
            version: None,
            served: None,
            spelled: None,
            cache: None,
            charge: None,
            start: self.audit.is_some().then(Instant::now),
        }
    }

    /// Steps 1 to 3 for the request on `trail`, whose name is `folded` when valid (from
    /// [`crate::name::fold_valid`]): where the grant leads and the vault to ask. No vault is
    /// called.
    pub(super) fn authorize<'a>(
        &'a self,
        trail: &mut Trail<'a>,
        folded: Option<&'a str>,
    ) -> Result<(Target<'a>, &'a Vault), Error> {
        let kind = trail.op.object();
        let folded = folded.ok_or_else(|| Error::invalid_name(kind, trail.name))?;
        let target = self
            .grants
            .lookup(kind, folded)
            .ok_or_else(|| Error::not_granted(kind, trail.name))?;
        trail.target = Some(target);
        match (trail.op, target.use_only) {
            // A use-only secret is never read; only egress applies it.
            (Op::Get | Op::GetVersion, Some(u)) => {
                return Err(Error::use_only(trail.name, &destinations(u)));
            }
            (Op::Use, None) => return Err(Error::not_use_only(trail.name)),
            _ => {}
        }
        if kind == ObjectKind::Key {
            // A key is used at the version its grant pins, else the latest: the audit line
            // names the pin until the vault names the version it used.
            trail.version = target.version;
        }
        if let Op::Key(op) = trail.op
            && !target.ops.allows(op)
        {
            return Err(Error::op_not_granted(trail.name, op, target.ops));
        }
        let backend = self
            .backend(target.vault_index)
            .ok_or_else(|| Error::no_vault(kind, trail.name))?;
        let class = match kind {
            ObjectKind::Secret => Class::Secrets,
            ObjectKind::Key => Class::Keys,
        };
        trail.charge = Some(self.charge(target.vault_index, class));
        Ok((target, backend))
    }

    /// Step 4: counts `result`, records it in the audit log and returns it; if the log cannot
    /// be written, an answer is not handed out: the request is refused as `unavailable`.
    pub(super) fn audited<T>(
        &self,
        trail: &Trail<'_>,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let outcome = result.as_ref().err().map_or("ok", |e| e.kind().as_str());
        match trail.op {
            Op::Get | Op::GetVersion => match &result {
                Ok(_) => self.reads.ok(trail.cache),
                Err(e) => self.reads.error(e.kind().as_str()),
            },
            Op::Info | Op::List | Op::Use => {}
            Op::PublicKey | Op::Key(_) => {
                crate::metrics::global().key_operation(&self.component, trail.op.as_str(), outcome)
            }
        }
        let kind = trail.op.object();
        tracing::debug!(component = %self.component, op = trail.op.as_str(), object = kind.noun(), name = %name_for_log(trail.name), outcome, "request");
        let Some(sink) = &self.audit else {
            return result;
        };
        let (name, name_bytes) = logged_name(trail.name, trail.target.map(|t| t.name));
        let object = trail.spelled.as_deref().or(trail.target.map(|t| t.object));
        let written = sink.record(&AuditEvent {
            time: now_rfc3339(),
            component: &self.component,
            op: trail.op.as_str(),
            name: &name,
            name_bytes,
            vault: trail.target.map(|t| t.vault),
            secret: object.filter(|_| kind == ObjectKind::Secret),
            key: object.filter(|_| kind == ObjectKind::Key),
            algorithm: trail.algorithm,
            version: trail.served.as_deref().or(trail.version),
            outcome,
            cache: trail.cache.map(CacheStatus::as_str),
            latency_us: trail.start.map_or(0, |t| {
                u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
            }),
            ..Default::default()
        });
        match (written, result) {
            (Ok(()), result) => result,
            (Err(e), Ok(_)) => {
                tracing::error!(component = %self.component, error = %e, "cannot write the audit log; refusing the request");
                Err(Error::audit_failed(kind, &name))
            }
            (Err(e), Err(refused)) => {
                tracing::error!(component = %self.component, error = %e, "cannot write the audit log");
                Err(refused)
            }
        }
    }
}
