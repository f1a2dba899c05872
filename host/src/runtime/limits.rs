//! Per-store limits: wall-clock time, fuel, memory, and bytes per host call.

use std::time::Duration;

/// Limits on one guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit for the whole run (epoch interruption inside wasm, a timer outside).
    pub timeout: Option<Duration>,
    /// Fuel units the guest may burn (requires an engine built with fuel).
    pub fuel: Option<u64>,
    /// Bytes of linear memory the guest may hold in all.
    pub max_memory: Option<usize>,
    /// Bytes a guest may pass into one host call (strings and lists), checked before copying.
    pub max_hostcall_bytes: usize,
}

/// The default cap on bytes per host call: 1 MiB.
pub const DEFAULT_MAX_HOSTCALL_BYTES: usize = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: None,
            fuel: None,
            max_memory: None,
            max_hostcall_bytes: DEFAULT_MAX_HOSTCALL_BYTES,
        }
    }
}

/// Which limit stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// Memory growth past `max_memory`.
    #[error(
        "the component tried to grow its memory to {desired} bytes, over its limit of {limit} bytes (--max-memory)"
    )]
    Memory {
        /// Bytes asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// Table growth past the element cap.
    #[error("the component tried to grow a table to {desired} elements, over its limit of {limit}")]
    Table {
        /// Elements asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
}

/// The store's resource limiter. Growth past a limit traps with a [`LimitsError`].
#[derive(Debug, Clone)]
pub struct StoreLimiter {
    max_memory: Option<usize>,
    memory_in_use: usize,
}

impl StoreLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_memory: limits.max_memory,
            memory_in_use: 0,
        }
    }
}

const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if let Some(limit) = self.max_memory
            && total > limit
        {
            return Err(LimitsError::Memory {
                desired: total,
                limit,
            }
            .into());
        }
        self.memory_in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(LimitsError::Table {
                desired,
                limit: MAX_TABLE_ELEMENTS,
            }
            .into());
        }
        Ok(true)
    }
}
