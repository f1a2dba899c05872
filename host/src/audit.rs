//! The audit log: one JSON line per secret request, key operation, and guest request that
//! carries the host's token (`azure-http` egress). Never a value, never a token. A request
//! whose event cannot be written is refused.
//!
//! ```json
//! {"time":"2026-11-23T15:04:05.123Z","component":"hello","op":"get","name":"db","vault":"default",
//!  "secret":"prod-db-password","version":"4f1…","outcome":"ok","cache":"hit","latency_us":3}
//! ```
//!
//! # One spelling per name
//!
//! Key Vault names are case-insensitive, so a guest may ask for one secret (or key) as
//! `db-password`, `DB-Password` or `db-PASSWORD`. Its audit lines all name it one way, for secrets
//! and keys alike:
//!
//! - `name`: the name as granted. Under an exact grant (plain, alias or pinned), the grant's
//!   guest name as the grant spells it; otherwise (under a pattern, or not granted at all) the
//!   name in lowercase. An invalid name is no name: it is logged escaped and cut
//!   ([`name_for_log`]), with `name_bytes`.
//! - `secret` / `key`: the object's name in the vault. As the vault spells it (the name it was
//!   created with, from the `id` or `kid` of the vault's answer, also when the answer comes from
//!   the cache) when the request got an answer naming it; otherwise as the grant spells it, or
//!   in lowercase under a pattern.

use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

/// One audited request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent<'a> {
    /// RFC 3339 UTC time the request ended.
    pub time: String,
    /// The component that asked.
    pub component: &'a str,
    /// `get`, `get-version`, `info` or `list`; for keys `sign`, `verify`, `wrap-key`,
    /// `unwrap-key`, `encrypt`, `decrypt` or `public-key`; `egress` for a guest request an
    /// `azure-http` rule attaches the host's token to; `use` for a use-only secret the host
    /// applied to a guest's request (with `host`, `method`, `processor` and `status`).
    pub op: &'a str,
    /// The name the guest asked for, in one spelling: as granted, else in lowercase (see
    /// the module's rule). An invalid name is escaped and cut to 160 bytes (see
    /// [`name_for_log`]), with its length in `name_bytes`.
    pub name: &'a str,
    /// The length in bytes of an invalid name, whose `name` is only a safe excerpt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_bytes: Option<usize>,
    /// The vault the grant led to, if it led anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<&'a str>,
    /// The secret's name in the vault, if granted: as the vault spells it where its answer
    /// said, else as the grant does (see the module's rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    /// For a key operation, the key's name in the vault, if granted, spelled as `secret` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    /// For a key operation, the algorithm (`ES256`, `RSA-OAEP-256`, ...). Never an input or
    /// an output: no digest, plaintext, ciphertext or signature is ever logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<&'a str>,
    /// The version served or asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    /// For `egress` and `use`: the host the guest called (for `egress`, `name` is that host
    /// too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
    /// For `egress`: the token's audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a str>,
    /// For `use`: how the secret was applied (`value`, `basic`, `hmac-sha256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor: Option<&'a str>,
    /// For `egress` and `use`: the request's method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    /// For `egress` and `use`: the upstream's status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `ok`, or the WIT error kind (for `egress`: why it was refused or failed).
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
    ///
    /// An error means the event was not recorded; the request is then refused
    /// (`unavailable`) rather than served unrecorded, as HashiCorp Vault does.
    fn record(&self, event: &AuditEvent<'_>) -> std::io::Result<()>;
}

/// The longest excerpt of an invalid name that is logged.
pub const MAX_LOGGED_NAME: usize = 160;

/// How a name the guest sent appears in logs: a valid name as it is; anything else escaped
/// (control and non-ASCII characters as `\u{..}`, quotes and backslashes escaped) and cut to
/// [`MAX_LOGGED_NAME`] bytes, so a guest cannot write a megabyte, or forge lines, in the log.
pub fn name_for_log(name: &str) -> std::borrow::Cow<'_, str> {
    if crate::is_valid_name(name) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(MAX_LOGGED_NAME);
    for c in name.chars() {
        let piece: String = if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            c.to_string()
        } else {
            c.escape_default().to_string()
        };
        if out.len() + piece.len() > MAX_LOGGED_NAME {
            break;
        }
        out.push_str(&piece);
    }
    std::borrow::Cow::Owned(out)
}

/// The `name` and `name_bytes` of an event for a request that asked for `asked`, which the
/// grants gave the name `granted` (if any): see the module's rule.
pub(crate) fn logged_name<'a>(
    asked: &'a str,
    granted: Option<&'a str>,
) -> (std::borrow::Cow<'a, str>, Option<usize>) {
    if let Some(granted) = granted {
        return (std::borrow::Cow::Borrowed(granted), None);
    }
    if crate::is_valid_name(asked) {
        return (crate::fold(asked), None);
    }
    let escaped = name_for_log(asked);
    let bytes = (*escaped != *asked).then_some(asked.len());
    (escaped, bytes)
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
    fn record(&self, event: &AuditEvent<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(&line).and_then(|_| out.flush())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_are_escaped_and_cut() {
        assert_eq!(name_for_log("db-password"), "db-password");
        assert_eq!(name_for_log("a\nb\"c"), "a\\nb\\\"c");
        assert_eq!(name_for_log("é"), "\\u{e9}");
        let huge = "x".repeat(1 << 20);
        assert_eq!(name_for_log(&huge).len(), MAX_LOGGED_NAME);
        let escapes = "\u{1}".repeat(1000);
        let cut = name_for_log(&escapes);
        assert!(cut.len() <= MAX_LOGGED_NAME && cut.ends_with('}'), "{cut}");
    }
}

/// How the vault cache served an answer: the audit line's `cache` field, and a label of the
/// read metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheStatus {
    /// No cache in the path.
    #[default]
    Uncached,
    /// Served from the cache.
    Hit,
    /// Fetched from the vault (and cached).
    Miss,
    /// The vault failed; a value past its TTL but within stale-if-error was served.
    Stale,
}

impl CacheStatus {
    /// `hit`, `miss`, `stale`, or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uncached => "none",
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
        }
    }
}
