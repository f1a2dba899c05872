//! How the cache served an answer, for the audit log and the read metrics.

/// How the vault cache served an answer.
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
