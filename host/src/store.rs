//! The store: what a component asks for, checked against its grants, then read from a vault.
//!
//! This is the policy point of design section 2: validate the name, resolve it through this
//! component's grants (deny by default, no backend call for a name outside them), then ask
//! the vault's backend. Nothing here knows about wasmtime.
//!
//! Names are case-insensitive, as in Key Vault: a valid name is [`crate::fold`]ed once, here, and
//! resolved and cached in that spelling, so every spelling of a secret meets the same grant
//! (and pin) and the same cache entry. Error messages quote the name as the guest sent it;
//! the audit log names it as [`crate::audit`] says.

use crate::audit::{AuditEvent, AuditSink};
use crate::backend::{Backend, CacheStatus, SecretMeta};
use crate::grants::{Grants, Target};
use crate::name::{folded, is_valid_name, is_valid_version};
use crate::{BackendError, ErrorKind, SecretError, SecretValue};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// The vaults a host can read, shared by every component it runs. Cheap to clone.
#[derive(Clone, Default)]
pub struct Vaults {
    backends: Arc<HashMap<String, Arc<dyn Backend>, foldhash::fast::RandomState>>,
}

impl fmt::Debug for Vaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, b) in self.backends.iter() {
            m.entry(name, &b.describe());
        }
        m.finish()
    }
}

impl Vaults {
    /// No vaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the vault called `name`. Grants without a vault name use `default`.
    pub fn insert(&mut self, name: impl Into<String>, backend: Arc<dyn Backend>) -> &mut Self {
        Arc::make_mut(&mut self.backends).insert(name.into(), backend);
        self
    }

    /// Builder form of [`Vaults::insert`].
    pub fn with(mut self, name: impl Into<String>, backend: impl Backend) -> Self {
        self.insert(name, Arc::new(backend));
        self
    }

    /// The backend of vault `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Backend>> {
        self.backends.get(name)
    }

    /// The vault names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.backends.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Checks that every vault the grants name exists; the error says which is missing.
    pub fn check_grants(&self, grants: &Grants) -> anyhow::Result<()> {
        for g in grants.iter() {
            anyhow::ensure!(
                self.backends.contains_key(&g.vault),
                "grant \"{g}\" names vault \"{}\", which is not configured (configured: {})",
                g.vault,
                self.names().join(", ")
            );
        }
        for g in grants.keys().iter() {
            anyhow::ensure!(
                self.backends.contains_key(&g.target.vault),
                "grant \"{g}\" names vault \"{}\", which is not configured (configured: {})",
                g.target.vault,
                self.names().join(", ")
            );
        }
        Ok(())
    }
}

/// Metadata of a granted secret, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// The name the guest used.
    pub name: String,
    /// Everything else.
    pub meta: SecretMeta,
}

/// One component's view of the vaults: its grants and its name (for logs).
///
/// Cheap to clone; many instances of one component share one `SecretsCtx`.
#[derive(Clone)]
pub struct SecretsCtx {
    pub(crate) vaults: Vaults,
    grants: Arc<Grants>,
    component: Arc<str>,
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    reads: Arc<crate::metrics::ReadCounters>,
}

impl fmt::Debug for SecretsCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsCtx")
            .field("component", &self.component)
            .field(
                "grants",
                &self
                    .grants
                    .iter()
                    .map(|g| g.to_string())
                    .chain(self.grants.keys().iter().map(|g| g.to_string()))
                    .collect::<Vec<_>>(),
            )
            .field("vaults", &self.vaults)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

/// What the cache could do for a read.
enum Read<'a> {
    /// It held the value.
    Served(SecretValue),
    /// The vault must be asked for this target.
    Fetch(Target<'a>, &'a Arc<dyn Backend>),
}

/// What one request touched, for the audit log.
struct Trail<'a> {
    op: &'static str,
    name: &'a str,
    target: Option<Target<'a>>,
    /// The version asked for (a pinned grant's or the guest's), until the answer names one.
    version: Option<&'a str>,
    /// The version the answer came from.
    served: Option<Arc<str>>,
    /// The secret's name as the vault's answer spells it.
    spelled: Option<Arc<str>>,
    cache: Option<CacheStatus>,
    /// Taken only when there is an audit log to write it to.
    start: Option<Instant>,
}

impl SecretsCtx {
    /// The context of component `component` with `grants` over `vaults`.
    pub fn new(component: impl Into<Arc<str>>, grants: Grants, vaults: Vaults) -> Self {
        let component = component.into();
        Self {
            vaults,
            grants: Arc::new(grants),
            reads: Arc::new(crate::metrics::global().read_counters(&component)),
            component,
            audit: None,
        }
    }

    /// Records every request of this component in `sink`.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The component's name, as given.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The component's grants.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Validates `name` and resolves it, folded, through the grants. No backend is
    /// touched.
    fn authorize<'a>(
        &'a self,
        name: &str,
        folded: &'a str,
    ) -> Result<(Target<'a>, &'a Arc<dyn Backend>), SecretError> {
        if !is_valid_name(name) {
            return Err(SecretError::invalid_name(name));
        }
        let target = self
            .grants
            .resolve(folded)
            .ok_or_else(|| SecretError::not_granted(name))?;
        let backend = self.vaults.get(target.vault).ok_or_else(|| {
            SecretError::new(
                ErrorKind::Unavailable,
                format!(
                    "secret \"{name}\" is unavailable: its vault is not configured on this host"
                ),
            )
        })?;
        Ok((target, backend))
    }

    /// The current value of the secret granted as `name` (or its pinned version).
    pub async fn get(&self, name: &str) -> Result<SecretValue, SecretError> {
        self.read("get", name, None).await
    }

    /// The value of version `version` of the secret granted as `name`.
    pub async fn get_version(&self, name: &str, version: &str) -> Result<SecretValue, SecretError> {
        self.read("get-version", name, Some(version)).await
    }

    async fn read(
        &self,
        op: &'static str,
        name: &str,
        version: Option<&str>,
    ) -> Result<SecretValue, SecretError> {
        // A guest calling `get` in a tight loop is served from the cache without ever waiting,
        // so without this its task would never give the executor back: other guests (and
        // the server's connections) on that worker thread would starve. Tokio's cooperative
        // budget makes it yield once in a while (every 128 calls), at the cost of a counter.
        tokio::task::consume_budget().await;
        let folded = folded(name);
        let mut trail = Trail::new(op, name, self.audit.is_some());
        // The hot path, a cache hit, is plain synchronous code; only a read that must wait
        // for the vault builds (and boxes) a future, so the common case moves no large
        // future state around.
        let result = match self.read_now(&mut trail, name, &folded, version) {
            Ok(Read::Served(value)) => Ok(value),
            Ok(Read::Fetch(target, backend)) => {
                Box::pin(self.read_from_vault(&mut trail, name, target, backend)).await
            }
            Err(e) => Err(e),
        };
        self.audited(&trail, result)
    }

    /// Checks the request and answers it from the cache if the value is at hand, else says
    /// which vault to ask.
    fn read_now<'a>(
        &'a self,
        trail: &mut Trail<'a>,
        name: &'a str,
        folded: &'a str,
        version: Option<&'a str>,
    ) -> Result<Read<'a>, SecretError> {
        let (target, backend) = self.authorize(name, folded)?;
        trail.target = Some(target);
        let version = match version {
            None => target.version,
            Some(v) if !is_valid_version(v) => return Err(SecretError::invalid_version(name, v)),
            // Version ids are case-insensitive too.
            Some(v)
                if target
                    .version
                    .is_some_and(|pinned| !pinned.eq_ignore_ascii_case(v)) =>
            {
                return Err(SecretError::version_not_granted(name, v));
            }
            Some(v) => Some(target.version.unwrap_or(v)),
        };
        trail.version = version;
        match backend.get_now(target.secret, version) {
            None => Ok(Read::Fetch(target, backend)),
            Some(answer) => {
                let secret = answer.map_err(|e| self.backend_error(name, &target, e))?;
                Ok(Read::Served(trail.served(secret)))
            }
        }
    }

    /// The slow path of [`Self::read_now`]: waits for the vault (through its cache).
    async fn read_from_vault<'a>(
        &'a self,
        trail: &mut Trail<'a>,
        name: &'a str,
        target: Target<'a>,
        backend: &'a Arc<dyn Backend>,
    ) -> Result<SecretValue, SecretError> {
        let secret = backend
            .get(target.secret, trail.version)
            .await
            .map_err(|e| self.backend_error(name, &target, e))?;
        Ok(trail.served(secret))
    }

    /// Metadata of the secret granted as `name`. Never the value.
    pub async fn info(&self, name: &str) -> Result<SecretInfo, SecretError> {
        tokio::task::consume_budget().await;
        let folded = folded(name);
        let mut trail = Trail::new("info", name, self.audit.is_some());
        let result = async {
            let (target, backend) = self.authorize(name, &folded)?;
            trail.target = Some(target);
            // A pinned grant's metadata are the pinned version's own.
            let meta = backend
                .info(target.secret, target.version)
                .await
                .map_err(|e| self.backend_error(name, &target, e))?;
            trail.served = Some(Arc::from(meta.version.as_str()));
            trail.spelled = meta.name.as_deref().map(Arc::from);
            trail.cache = Some(CacheStatus::Uncached);
            Ok(SecretInfo {
                name: name.to_owned(),
                meta,
            })
        }
        .await;
        self.audited(&trail, result)
    }

    /// The granted names that exist, sorted. Only vaults this component has grants in are asked.
    pub async fn list(&self) -> Result<Vec<String>, SecretError> {
        tokio::task::consume_budget().await;
        let trail = Trail::new("list", "*", self.audit.is_some());
        let result = async {
            let mut listed: HashMap<&str, Vec<String>> = HashMap::new();
            for vault in self.grants.vaults() {
                let Some(backend) = self.vaults.get(vault) else {
                    continue;
                };
                let names = backend.list().await.map_err(|e| {
                    tracing::warn!(component = %self.component, vault, error = %e, "list failed");
                    let kind = SecretError::from_backend("*", &e).kind();
                    SecretError::new(kind, format!("cannot list secrets: {}", e.detail()))
                })?;
                listed.insert(vault, names);
            }
            Ok(self
                .grants
                .visible_names(|vault| listed.get(vault).map(Vec::as_slice)))
        }
        .await;
        self.audited(&trail, result)
    }

    fn backend_error(&self, name: &str, target: &Target<'_>, e: BackendError) -> SecretError {
        tracing::debug!(component = %self.component, name, vault = target.vault, secret = target.secret, error = %e, "backend refused");
        SecretError::from_backend(name, &e)
    }

    /// Records `result` in the audit log and returns it; if the log cannot be written, a
    /// value is not handed out: the request is refused as `unavailable` instead.
    fn audited<T>(
        &self,
        trail: &Trail<'_>,
        result: Result<T, SecretError>,
    ) -> Result<T, SecretError> {
        if matches!(trail.op, "get" | "get-version") {
            match &result {
                Ok(_) => self.reads.ok(trail.cache),
                Err(e) => self.reads.error(e.kind()),
            }
        }
        let outcome = result.as_ref().err().map_or("ok", |e| e.kind().as_str());
        tracing::debug!(component = %self.component, op = trail.op, name = %crate::audit::name_for_log(trail.name), outcome, "secret request");
        let Some(sink) = &self.audit else {
            return result;
        };
        let (name, name_bytes) =
            crate::audit::logged_name(trail.name, trail.target.map(|t| t.name));
        let written = sink.record(&AuditEvent {
            time: crate::audit::now_rfc3339(),
            component: &self.component,
            op: trail.op,
            name: &name,
            name_bytes,
            vault: trail.target.map(|t| t.vault),
            secret: trail.spelled.as_deref().or(trail.target.map(|t| t.secret)),
            key: None,
            algorithm: None,
            version: trail.version(),
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
                Err(SecretError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the request for \"{name}\" was refused: the host cannot write its audit log"
                    ),
                ))
            }
            (Err(e), Err(refused)) => {
                tracing::error!(component = %self.component, error = %e, "cannot write the audit log");
                Err(refused)
            }
        }
    }
}

impl<'a> Trail<'a> {
    fn new(op: &'static str, name: &'a str, timed: bool) -> Self {
        Self {
            op,
            name,
            target: None,
            version: None,
            served: None,
            spelled: None,
            cache: None,
            start: timed.then(Instant::now),
        }
    }

    /// Notes where `secret` came from and hands out its value.
    fn served(&mut self, secret: crate::backend::Secret) -> SecretValue {
        self.served = Some(secret.version);
        self.spelled = secret.name;
        self.cache = Some(secret.cache);
        secret.value
    }

    /// The version to log: the one served, else the one asked for.
    fn version(&self) -> Option<&str> {
        self.served.as_deref().or(self.version)
    }
}
