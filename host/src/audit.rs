//! The audit log: one JSON line per secret request. Never a value, never a token.
//!
//! ```json
//! {"time":"2026-11-23T15:04:05.123Z","component":"hello","op":"get","name":"db","vault":"default",
//!  "secret":"prod-db-password","version":"4f1…","outcome":"ok","cache":"hit","latency_us":3}
//! ```

use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

/// One audited request.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent<'a> {
    /// RFC 3339 UTC time the request ended.
    pub time: String,
    /// The component that asked.
    pub component: &'a str,
    /// `get`, `get-version`, `info` or `list`.
    pub op: &'a str,
    /// The name the guest used.
    pub name: &'a str,
    /// The vault the grant led to, if it led anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<&'a str>,
    /// The secret's name in the vault, if granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    /// The version served or asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    /// `ok`, or the WIT error kind.
    pub outcome: &'a str,
    /// `hit`, `miss`, `stale` or `none`; absent when no backend was involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'a str>,
    /// Time spent in the host, in microseconds.
    pub latency_us: u64,
}

/// Where audit events go.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event. Must not block for long: it is called on the request path.
    fn record(&self, event: &AuditEvent<'_>);
}

/// Writes events as JSON lines to a file or stderr.
pub struct JsonLines {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonLines")
    }
}

impl JsonLines {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// `-` is stderr; anything else a file, appended to.
    pub fn open(target: &str) -> anyhow::Result<Self> {
        if target == "-" {
            return Ok(Self::new(Box::new(std::io::stderr())));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(target)
            .map_err(|e| anyhow::anyhow!("cannot open audit log {target}: {e}"))?;
        Ok(Self::new(Box::new(file)))
    }
}

impl AuditSink for JsonLines {
    fn record(&self, event: &AuditEvent<'_>) {
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).unwrap_or_default()
}
