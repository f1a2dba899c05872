//! Prometheus metrics (design section 12): what the host does, never what it holds.
//!
//! One process-wide registry, as a Prometheus client's default registry is: each layer (the
//! policy point, the cache, the Key Vault client, the token cache, egress, serve) counts into
//! it without being handed anything, and `serve`'s admin listener encodes it at `/metrics`.
//! Metric names start with `wasm_secrets_`, carry their unit, and counters end in `_total`.
//! Labels are component, status, outcome, operation (of a key), cache, vault (the vault's
//! host), source (the credential source) and reason (of an egress refusal): never a secret
//! value, a token, or a secret or key name (names go to the audit log).
//!
//! Counting costs an atomic add: the read counters of a component are looked up once, when its
//! [`SecretsCtx`](crate::SecretsCtx) is made, so the cached `get` path pays no label lookup.
//! [`set_enabled`] turns counting off (and on): `serve` counts only with an admin listener.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, Weak};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Counts from now on (the default), or stops counting. Off, each count is one relaxed load.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

use crate::audit::CacheStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    component: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadLabels {
    component: String,
    outcome: String,
    cache: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    component: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppliedLabels {
    component: String,
    processor: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultLabels {
    vault: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    component: String,
    vault: String,
    budget: String,
    call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThrottleLabels {
    vault: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    source: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// Something whose size `/metrics` reports as `wasm_secrets_cache_entries` (summed).
pub trait CountEntries: Send + Sync {
    /// How many entries it holds now.
    fn entries(&self) -> usize;
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Family<ComponentLabel, Histogram>,
    secret_reads: Family<ReadLabels, Counter>,
    key_operations: Family<KeyLabels, Counter>,
    secrets_applied: Family<AppliedLabels, Counter>,
    vault_requests: Family<VaultLabels, Counter>,
    budget_refusals: Family<BudgetLabels, Counter>,
    throttle_stops: Family<ThrottleLabels, Counter>,
    token_requests: Family<TokenLabels, Counter>,
    cache_entries: Gauge,
    in_flight: Gauge,
    reloads: Family<OutcomeLabel, Counter>,
    egress_refused: Family<ReasonLabel, Counter>,
    caches: Mutex<Vec<Weak<dyn CountEntries>>>,
}

fn duration_histogram() -> Histogram {
    // 100 µs to about 52 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("wasm_secrets");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by component and response status",
            http_requests.clone(),
        );
        let http_duration = Family::<ComponentLabel, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by component",
            http_duration.clone(),
        );
        let secret_reads = Family::<ReadLabels, Counter>::default();
        registry.register(
            "secret_reads",
            "Secret reads by guests, by component, outcome (ok or the error kind) and cache status",
            secret_reads.clone(),
        );
        let key_operations = Family::<KeyLabels, Counter>::default();
        registry.register(
            "key_operations",
            "Key operations by guests, by component, operation and outcome (ok or the error kind)",
            key_operations.clone(),
        );
        let vault_requests = Family::<VaultLabels, Counter>::default();
        registry.register(
            "vault_requests",
            "HTTP requests to Key Vault, by vault host and status (or `error` for no answer)",
            vault_requests.clone(),
        );
        let budget_refusals = Family::<BudgetLabels, Counter>::default();
        registry.register(
            "vault_budget_refusals",
            "Vault calls refused before they were sent, by component, vault (as granted), budget (component or vault) and call (miss, refresh or key)",
            budget_refusals.clone(),
        );
        let throttle_stops = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "vault_throttle_stops",
            "Key Vault requests held back by the vault's last Retry-After, by vault host and outcome (waited, or refused when the stop was too long)",
            throttle_stops.clone(),
        );
        let token_requests = Family::<TokenLabels, Counter>::default();
        registry.register(
            "token_requests",
            "Access-token requests, by credential source and outcome",
            token_requests.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register(
            "cache_entries",
            "Entries in the secret caches",
            cache_entries.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "instances_in_flight",
            "Guest instances now: each handling a request, or (WASI 0.3 handlers) kept for more",
            in_flight.clone(),
        );
        let reloads = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP), by outcome",
            reloads.clone(),
        );
        let secrets_applied = Family::<AppliedLabels, Counter>::default();
        registry.register(
            "secrets_applied",
            "Use-only secrets the host applied to guests' outgoing requests (or refused to), by component, processor and outcome",
            secrets_applied.clone(),
        );
        let egress_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "egress_refused",
            "Guest outgoing HTTP requests refused, by reason (no-rule, forbidden-address, identity-endpoint, private-address, loopback-only, plain-http-token)",
            egress_refused.clone(),
        );
        Self {
            registry,
            egress_refused,
            http_requests,
            http_duration,
            secret_reads,
            key_operations,
            secrets_applied,
            vault_requests,
            budget_refusals,
            throttle_stops,
            token_requests,
            cache_entries,
            in_flight,
            reloads,
            caches: Mutex::new(Vec::new()),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let entries: usize = {
            let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
            caches.retain(|c| c.strong_count() > 0);
            caches
                .iter()
                .filter_map(Weak::upgrade)
                .map(|c| c.entries())
                .sum()
        };
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one HTTP request answered by `component` with `status` after `seconds`.
    pub fn http_request(&self, component: &str, status: u16, seconds: f64) {
        if !enabled() {
            return;
        }
        self.http_requests
            .get_or_create(&RequestLabels {
                component: component.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&ComponentLabel {
                component: component.to_owned(),
            })
            .observe(seconds);
    }

    /// `component`'s HTTP request series, to count its requests with (see [`RequestSeries`]).
    pub fn request_series(&self, component: impl Into<String>) -> RequestSeries {
        RequestSeries {
            component: component.into(),
            ok: OnceLock::new(),
            duration: OnceLock::new(),
        }
    }

    /// Counts one request to a Key Vault at `vault` (its host) answered `status` (`None`: no
    /// answer, such as a reset or a timeout).
    pub fn vault_request(&self, vault: &str, status: Option<u16>) {
        if !enabled() {
            return;
        }
        self.vault_requests
            .get_or_create(&VaultLabels {
                vault: vault.to_owned(),
                status: status.map_or_else(|| "error".to_owned(), |s| s.to_string()),
            })
            .inc();
    }

    /// Counts one vault call of `component` to `vault` refused by `budget` (`component` or
    /// `vault`); `call` is `miss`, `refresh` or `key`.
    pub fn budget_refusal(&self, component: &str, vault: &str, budget: &str, call: &str) {
        if !enabled() {
            return;
        }
        self.budget_refusals
            .get_or_create(&BudgetLabels {
                component: component.to_owned(),
                vault: vault.to_owned(),
                budget: budget.to_owned(),
                call: call.to_owned(),
            })
            .inc();
    }

    /// Counts one Key Vault request at `vault` (its host) held back by the vault's
    /// `Retry-After`: `waited` out, or refused when the stop was longer than allowed.
    pub fn throttle_stop(&self, vault: &str, waited: bool) {
        if !enabled() {
            return;
        }
        self.throttle_stops
            .get_or_create(&ThrottleLabels {
                vault: vault.to_owned(),
                outcome: if waited { "waited" } else { "refused" }.to_owned(),
            })
            .inc();
    }

    /// Counts one key operation (`sign`, ..., `public-key`) by `component` that ended in
    /// `outcome` (`ok` or the key error kind).
    pub fn key_operation(&self, component: &str, operation: &str, outcome: &str) {
        if !enabled() {
            return;
        }
        self.key_operations
            .get_or_create(&KeyLabels {
                component: component.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one token request to credential source `source` (`imds`, `workload-identity`, ...).
    pub fn token_request(&self, source: &str, ok: bool) {
        if !enabled() {
            return;
        }
        self.token_requests
            .get_or_create(&TokenLabels {
                source: source.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Counts one request carrying a use-only secret, by how it was applied and how it ended.
    pub fn secret_applied(&self, component: &str, processor: &'static str, outcome: &'static str) {
        if !enabled() {
            return;
        }
        self.secrets_applied
            .get_or_create(&AppliedLabels {
                component: component.to_owned(),
                processor,
                outcome,
            })
            .inc();
    }

    /// Counts one refused guest HTTP request, by why it was refused.
    pub fn egress_refused(&self, reason: &str) {
        if !enabled() {
            return;
        }
        self.egress_refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one config reload.
    pub fn reload(&self, ok: bool) {
        if !enabled() {
            return;
        }
        self.reloads
            .get_or_create(&OutcomeLabel {
                outcome: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// The gauge of guest instances (handling a request, or a WASI 0.3 instance kept for more):
    /// one more while the guard lives.
    pub fn instance_in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Reports `cache`'s entries in `wasm_secrets_cache_entries` for as long as it lives.
    pub fn track_cache(&self, cache: Weak<dyn CountEntries>) {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        if caches.len() >= 64 && caches.len().is_power_of_two() {
            caches.retain(|c| c.strong_count() > 0);
        }
        caches.push(cache);
    }

    /// The read counters of `component`, looked up once; a failed read is counted under its
    /// error kind, one of `errors` (the WIT spellings).
    pub fn read_counters(&self, component: &str, errors: &[&'static str]) -> ReadCounters {
        let counter = |outcome: &str, cache: &str| {
            self.secret_reads.get_or_create_owned(&ReadLabels {
                component: component.to_owned(),
                outcome: outcome.to_owned(),
                cache: cache.to_owned(),
            })
        };
        ReadCounters {
            ok: [
                counter("ok", "hit"),
                counter("ok", "miss"),
                counter("ok", "stale"),
                counter("ok", "none"),
            ],
            errors: errors
                .iter()
                .map(|kind| (*kind, counter(kind, "none")))
                .collect(),
        }
    }
}

/// Holds one count in `wasm_secrets_instances_in_flight`.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One component's `wasm_secrets_secret_reads_total` counters.
#[derive(Clone)]
pub struct ReadCounters {
    ok: [Counter; 4],
    errors: Box<[(&'static str, Counter)]>,
}

impl std::fmt::Debug for ReadCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadCounters")
    }
}

impl ReadCounters {
    /// Counts one read that returned a value, served as `cache` says (`None`: not cached).
    pub fn ok(&self, cache: Option<CacheStatus>) {
        if !enabled() {
            return;
        }
        let i = match cache {
            Some(CacheStatus::Hit) => 0,
            Some(CacheStatus::Miss) => 1,
            Some(CacheStatus::Stale) => 2,
            Some(CacheStatus::Uncached) | None => 3,
        };
        self.ok[i].inc();
    }

    /// Counts one read that failed with error kind `kind`.
    pub fn error(&self, kind: &str) {
        if !enabled() {
            return;
        }
        if let Some((_, counter)) = self.errors.iter().find(|(k, _)| *k == kind) {
            counter.inc();
        }
    }
}

/// One component's HTTP request series, looked up once and then kept: counting a request
/// builds no labels and looks nothing up for the common answer (200) and for the duration
/// histogram. The same series [`Metrics::http_request`] counts in.
pub struct RequestSeries {
    component: String,
    ok: OnceLock<Counter>,
    duration: OnceLock<Histogram>,
}

impl RequestSeries {
    /// Counts one request answered with `status` after `seconds`.
    pub fn count(&self, status: u16, seconds: f64) {
        if !enabled() {
            return;
        }
        let metrics = global();
        let labels = |status: u16| RequestLabels {
            component: self.component.clone(),
            status: status.to_string(),
        };
        if status == 200 {
            self.ok
                .get_or_init(|| metrics.http_requests.get_or_create(&labels(200)).clone())
                .inc();
        } else {
            metrics.http_requests.get_or_create(&labels(status)).inc();
        }
        self.duration
            .get_or_init(|| {
                let label = ComponentLabel {
                    component: self.component.clone(),
                };
                metrics.http_duration.get_or_create(&label).clone()
            })
            .observe(seconds);
    }
}

impl std::fmt::Debug for RequestSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSeries")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
