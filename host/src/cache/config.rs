//! How long the vault cache keeps what it read, and how much of it.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The secret cache (design section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CacheConfig {
    /// How long a value is served without asking the vault.
    #[serde(deserialize_with = "duration")]
    pub ttl: Duration,
    /// How long past its TTL a value is served when the vault is unreachable or throttled.
    #[serde(deserialize_with = "duration")]
    pub stale_if_error: Duration,
    /// How long a not-found is remembered.
    #[serde(deserialize_with = "duration")]
    pub negative_ttl: Duration,
    /// How long a request holding a value past its TTL (but within stale-if-error) waits for
    /// the refresh before it gets the stale value (RFC 5861 stale-while-revalidate).
    #[serde(deserialize_with = "duration")]
    pub refresh_wait: Duration,
    /// The most entries kept; the least recently used go first.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            stale_if_error: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(30),
            refresh_wait: Duration::from_millis(50),
            max_entries: 10_000,
        }
    }
}

/// A duration written like `30s`, `5m`, `1h` or `250ms`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim()).map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration; write it like 30s, 5m, 1h or 250ms"
        ))
    })
}
