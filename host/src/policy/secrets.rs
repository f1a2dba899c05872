//! Secrets: what a component reads (`get`, `get-version`, `info`, `list`), through the
//! policy point ([`super::point`]) and then its vault. Nothing here knows about wasmtime.

use super::budget::{Budget, Class};
use super::error::Error;
use super::grants::{Grants, ObjectKind, Target};
use super::keys::Keys;
use super::point::{Op, Policy, Trail};
use super::vaults::Vault;
use super::vaults::Vaults;
use crate::SecretValue;
use crate::audit::AuditSink;
use crate::backend::SecretMeta;
use crate::cache::{CacheStatus, Unlimited};
use crate::name::{fold_valid, is_valid_version};
use std::collections::HashMap;
use std::sync::Arc;

/// Metadata of a granted secret, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// The name the guest used.
    pub name: String,
    /// Everything else.
    pub meta: SecretMeta,
}

/// One component's view of the vaults: its grants (secrets and keys), its name (for logs)
/// and its audit sink. Reads secrets itself; [`SecretsCtx::keys`] uses its keys.
///
/// Cheap to clone; many instances of one component share one `SecretsCtx`.
#[derive(Clone, Debug)]
pub struct SecretsCtx {
    policy: Arc<Policy>,
}

/// What the cache could do for a read.
enum Read<'a> {
    /// It held the value.
    Served(SecretValue),
    /// The vault must be asked for this target.
    Fetch(Target<'a>, &'a Vault),
}

impl SecretsCtx {
    /// The context of component `component` with `grants` over `vaults`.
    pub fn new(component: impl Into<Arc<str>>, grants: Grants, vaults: Vaults) -> Self {
        Self {
            policy: Arc::new(Policy::new(component.into(), grants, vaults)),
        }
    }

    /// Records every request of this component, for secrets and keys, in `sink`.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        Arc::make_mut(&mut self.policy).set_audit(sink);
        self
    }

    /// Holds this component's vault calls (misses, the refreshes its reads make due, key
    /// operations) to `budget`, or to no budget of its own with `None`; the default is
    /// [`Budget::COMPONENT`]. Its shares of each vault's [`budget`](super::budget::VaultBudget)
    /// hold either way.
    pub fn with_budget(mut self, budget: Option<Budget>) -> Self {
        Arc::make_mut(&mut self.policy).set_budget(budget);
        self
    }

    /// The component's name, as given.
    pub fn component(&self) -> &str {
        self.policy.component()
    }

    /// The component's grants.
    pub fn grants(&self) -> &Grants {
        self.policy.grants()
    }

    /// The component's keys: the operations its key grants allow, under the same policy.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(&self.policy)
    }

    /// The policy point this component's requests take.
    pub(super) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The current value of the secret granted as `name` (or its pinned version).
    pub async fn get(&self, name: &str) -> Result<SecretValue, Error> {
        self.read(Op::Get, name, None).await
    }

    /// The value of version `version` of the secret granted as `name`.
    pub async fn get_version(&self, name: &str, version: &str) -> Result<SecretValue, Error> {
        self.read(Op::GetVersion, name, Some(version)).await
    }

    async fn read(&self, op: Op, name: &str, version: Option<&str>) -> Result<SecretValue, Error> {
        // A guest calling `get` in a tight loop is served from the cache without ever waiting,
        // so without this its task would never give the executor back: other guests (and
        // the server's connections) on that worker thread would starve. Tokio's cooperative
        // budget makes it yield once in a while (every 128 calls), at the cost of a counter.
        tokio::task::consume_budget().await;
        let policy = &*self.policy;
        let folded = fold_valid(name);
        let mut trail = policy.trail(op, name, None);
        // The hot path, a cache hit, is plain synchronous code; only a read that must wait
        // for the vault builds (and boxes) a future, so the common case moves no large
        // future state around.
        let result = match read_now(policy, &mut trail, folded.as_deref(), version) {
            Ok(Read::Served(value)) => Ok(value),
            Ok(Read::Fetch(target, backend)) => {
                Box::pin(read_from_vault(&mut trail, target, backend)).await
            }
            Err(e) => Err(e),
        };
        policy.audited(&trail, result)
    }

    /// Metadata of the secret granted as `name`. Never the value.
    pub async fn info(&self, name: &str) -> Result<SecretInfo, Error> {
        tokio::task::consume_budget().await;
        let policy = &*self.policy;
        let folded = fold_valid(name);
        let mut trail = policy.trail(Op::Info, name, None);
        let result = async {
            let (target, backend) = policy.authorize(&mut trail, folded.as_deref())?;
            // A pinned grant's metadata are the pinned version's own.
            let (meta, cache) = backend
                .read_info(target.object, target.version, trail.admit())
                .await
                .map_err(|e| trail.vault_error(e))?;
            trail.served = Some(Arc::from(meta.version.as_str()));
            trail.spelled = meta.name.as_deref().map(Arc::from);
            trail.cache = Some(cache);
            Ok(SecretInfo {
                name: name.to_owned(),
                meta,
            })
        }
        .await;
        policy.audited(&trail, result)
    }

    /// The granted names that exist, sorted. Only vaults this component has secret grants in
    /// are asked.
    pub async fn list(&self) -> Result<Vec<String>, Error> {
        tokio::task::consume_budget().await;
        let policy = &*self.policy;
        let mut trail = policy.trail(Op::List, "*", None);
        let result = async {
            let grants = policy.grants();
            let mut listed: HashMap<&str, Vec<String>> = HashMap::new();
            for i in grants.vaults_of(ObjectKind::Secret) {
                let Some(backend) = policy.backend(i) else {
                    continue;
                };
                let vault = grants.vault_names()[i].as_str();
                let charge = policy.charge(i, Class::Secrets);
                let (names, cache) = backend.read_list(&charge).await.map_err(|e| {
                    if charge.refused() {
                        return Error::over_budget(ObjectKind::Secret, "*");
                    }
                    tracing::warn!(component = %policy.component(), vault, error = %e, "list failed");
                    Error::list_failed(&e)
                })?;
                trail.cache = Some(combined(trail.cache, cache));
                listed.insert(vault, names);
            }
            Ok(grants.visible_names(|vault| listed.get(vault).map(Vec::as_slice)))
        }
        .await;
        policy.audited(&trail, result)
    }
}

/// An exact grant a [`SecretsCtx::probe`] could not resolve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The grant's guest name, with `key:` in front for a key grant.
    pub grant: String,
    /// Why, as the guest would be told.
    pub kind: super::error::ErrorKind,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "grant {}: {}", self.grant, self.kind.as_str())
    }
}

impl SecretsCtx {
    /// Resolves every exact grant of this component, secrets and keys, from its vault through
    /// the cache (a secret's value, a key's public key), as a first read would, so the cache
    /// is warm. This is the host checking its configuration, not the guest reading: no audit
    /// line and no read metric. The first grant that cannot be resolved, if any.
    pub async fn probe(&self) -> Result<(), Unresolved> {
        let policy = &*self.policy;
        let grants = policy.grants();
        for grant in grants.iter().chain(grants.keys()).filter(|g| !g.pattern) {
            let folded = crate::fold(&grant.guest_name);
            let Some(target) = grants.lookup(grant.kind, &folded) else {
                continue;
            };
            let answer = match policy.backend(target.vault_index) {
                None => Err(crate::BackendError::Unavailable(
                    "its vault is not configured on this host".into(),
                )),
                Some(vault) => match grant.kind {
                    ObjectKind::Secret => vault
                        .read(target.object, target.version, &Unlimited)
                        .await
                        .map(drop),
                    ObjectKind::Key => vault
                        .read_public_key(target.object, target.version, &Unlimited)
                        .await
                        .map(drop),
                },
            };
            if let Err(e) = answer {
                let prefix = if grant.kind == ObjectKind::Key {
                    "key:"
                } else {
                    ""
                };
                return Err(Unresolved {
                    grant: format!("{prefix}{}", grant.guest_name),
                    kind: Error::from_backend(grant.kind, &grant.guest_name, &e).kind(),
                });
            }
        }
        Ok(())
    }
}

/// Checks the request and answers it from the cache if the value is at hand, else says
/// which vault to ask.
fn read_now<'a>(
    policy: &'a Policy,
    trail: &mut Trail<'a>,
    folded: Option<&'a str>,
    version: Option<&'a str>,
) -> Result<Read<'a>, Error> {
    let (target, backend) = policy.authorize(trail, folded)?;
    let name = trail.name;
    let version = match version {
        None => target.version,
        Some(v) if !is_valid_version(v) => return Err(Error::invalid_version(name, v)),
        // Version ids are case-insensitive too.
        Some(v)
            if target
                .version
                .is_some_and(|pinned| !pinned.eq_ignore_ascii_case(v)) =>
        {
            return Err(Error::version_not_granted(name, v));
        }
        Some(v) => Some(target.version.unwrap_or(v)),
    };
    trail.version = version;
    match backend.read_now(target.object, version, trail.admit()) {
        None => Ok(Read::Fetch(target, backend)),
        Some(answer) => {
            let secret = answer.map_err(|e| trail.vault_error(e))?;
            Ok(Read::Served(trail.served(secret)))
        }
    }
}

/// The slow path of [`read_now`]: waits for the vault (through its cache).
async fn read_from_vault<'a>(
    trail: &mut Trail<'a>,
    target: Target<'a>,
    backend: &'a Vault,
) -> Result<SecretValue, Error> {
    let secret = backend
        .read(target.object, trail.version, trail.admit())
        .await
        .map_err(|e| trail.vault_error(e))?;
    Ok(trail.served(secret))
}

/// How a list over several vaults was served, from how each part was: stale if any part was,
/// else a miss if any was, else uncached if any was, else a hit.
fn combined(so_far: Option<CacheStatus>, part: CacheStatus) -> CacheStatus {
    let rank = |c: CacheStatus| match c {
        CacheStatus::Hit => 0,
        CacheStatus::Uncached => 1,
        CacheStatus::Miss => 2,
        CacheStatus::Stale => 3,
    };
    match so_far {
        Some(c) if rank(c) >= rank(part) => c,
        _ => part,
    }
}
