//! Fault injection: per-endpoint sequences consumed one per request, and request counters.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An emulated endpoint (fault sequences and counters are kept per endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Azure Instance Metadata Service.
    Imds,
    /// App Service 2019-08-01.
    AppService,
    /// App Service 2017-09-01.
    AppServiceLegacy,
    /// Azure Arc.
    Arc,
    /// Entra token endpoint (HTTP and HTTPS).
    Entra,
    /// Key Vault (every vault).
    KeyVault,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 6] = [
        Endpoint::Imds,
        Endpoint::AppService,
        Endpoint::AppServiceLegacy,
        Endpoint::Arc,
        Endpoint::Entra,
        Endpoint::KeyVault,
    ];

    /// The name used in config and on the admin endpoint.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Imds => "imds",
            Endpoint::AppService => "app-service",
            Endpoint::AppServiceLegacy => "app-service-legacy",
            Endpoint::Arc => "arc",
            Endpoint::Entra => "entra",
            Endpoint::KeyVault => "keyvault",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown endpoint {s:?} (expected imds, app-service, app-service-legacy, arc, entra or keyvault)"))
    }
}

/// One injected fault, applied to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status, an optional `Retry-After` (seconds) and an optional body.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
        /// The body (default: a small JSON error).
        body: Option<String>,
    },
    /// Wait, then behave normally.
    Delay(Duration),
    /// Answer 200 with truncated, invalid JSON.
    MalformedBody,
    /// Answer 200 with a body of this many bytes.
    OversizedBody(usize),
    /// Close the connection without answering.
    DropConnection,
    /// Reset the connection (TCP RST) without answering.
    Reset,
    /// Read the request and never answer (until the client gives up, or five minutes pass).
    Stall,
    /// Answer 401 with a Bearer challenge naming this resource (audience), as a vault that
    /// wants a token for another service would.
    Challenge(String),
}

/// The serialized form of a [`Fault`] (config files and the admin endpoint).
///
/// TOML: `{ kind = "status", status = 503, retry-after = 2 }`, `{ kind = "delay", ms = 100 }`,
/// `{ kind = "malformed" }`, `{ kind = "oversized", bytes = 100000 }`, `{ kind = "drop" }`,
/// `{ kind = "reset" }`, `{ kind = "stall" }`, `{ kind = "challenge", resource = "https://…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum FaultSpec {
    /// See [`Fault::Status`].
    Status {
        /// The HTTP status (100..=599).
        status: u16,
        /// `Retry-After` seconds.
        #[serde(default)]
        retry_after: Option<u64>,
        /// The body.
        #[serde(default)]
        body: Option<String>,
    },
    /// See [`Fault::Delay`].
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// See [`Fault::MalformedBody`].
    Malformed,
    /// See [`Fault::OversizedBody`].
    Oversized {
        /// Body size in bytes.
        bytes: usize,
    },
    /// See [`Fault::DropConnection`].
    Drop,
    /// See [`Fault::Reset`].
    Reset,
    /// See [`Fault::Stall`].
    Stall,
    /// See [`Fault::Challenge`].
    Challenge {
        /// The resource the challenge names.
        resource: String,
    },
}

impl From<FaultSpec> for Fault {
    fn from(s: FaultSpec) -> Fault {
        match s {
            FaultSpec::Status {
                status,
                retry_after,
                body,
            } => Fault::Status {
                status,
                retry_after,
                body,
            },
            FaultSpec::Delay { ms } => Fault::Delay(Duration::from_millis(ms)),
            FaultSpec::Malformed => Fault::MalformedBody,
            FaultSpec::Oversized { bytes } => Fault::OversizedBody(bytes),
            FaultSpec::Drop => Fault::DropConnection,
            FaultSpec::Reset => Fault::Reset,
            FaultSpec::Stall => Fault::Stall,
            FaultSpec::Challenge { resource } => Fault::Challenge(resource),
        }
    }
}

/// Fault queues, standing faults and request counters, shared by every listener.
#[derive(Debug, Default)]
pub struct FaultBoard {
    queues: Mutex<HashMap<Endpoint, VecDeque<Fault>>>,
    standing: Mutex<HashMap<Endpoint, Fault>>,
    counts: [AtomicU64; 6],
    vault_counts: Mutex<HashMap<String, u64>>,
}

impl FaultBoard {
    /// Replace an endpoint's fault sequence.
    pub fn set(&self, e: Endpoint, faults: Vec<Fault>) {
        if let Ok(mut q) = self.queues.lock() {
            q.insert(e, faults.into());
        }
    }

    /// Set (or clear, with `None`) a fault applied to every request of an endpoint once its
    /// sequence is used up: an outage that lasts until it is cleared.
    pub fn set_standing(&self, e: Endpoint, fault: Option<Fault>) {
        if let Ok(mut m) = self.standing.lock() {
            match fault {
                Some(f) => m.insert(e, f),
                None => m.remove(&e),
            };
        }
    }

    /// Take the next fault for this endpoint: from its sequence, else its standing fault.
    pub fn next(&self, e: Endpoint) -> Option<Fault> {
        let queued = self
            .queues
            .lock()
            .ok()
            .and_then(|mut q| q.get_mut(&e)?.pop_front());
        queued.or_else(|| self.standing.lock().ok()?.get(&e).cloned())
    }

    /// Count one request.
    pub fn hit(&self, e: Endpoint, vault: Option<&str>) {
        self.counts[e.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(v) = vault
            && let Ok(mut m) = self.vault_counts.lock()
        {
            *m.entry(v.to_string()).or_default() += 1;
        }
    }

    /// Requests seen by an endpoint.
    pub fn count(&self, e: Endpoint) -> u64 {
        self.counts[e.index()].load(Ordering::Relaxed)
    }

    /// Requests seen by one vault.
    pub fn vault_count(&self, v: &str) -> u64 {
        self.vault_counts
            .lock()
            .ok()
            .and_then(|m| m.get(v).copied())
            .unwrap_or(0)
    }

    /// All vault counters.
    pub fn vault_counts(&self) -> HashMap<String, u64> {
        self.vault_counts
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Zero every counter.
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        if let Ok(mut m) = self.vault_counts.lock() {
            m.clear();
        }
    }
}
