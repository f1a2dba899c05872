//! Per-store limits: wall-clock time, fuel, memory (linear memories and tables together), table
//! counts, and bytes per host call.

use std::time::Duration;

/// Limits on one guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit for the whole run (epoch interruption inside wasm, a timer outside).
    pub timeout: Option<Duration>,
    /// Fuel units the guest may burn (requires an engine that counts fuel:
    /// [`EngineOptions::fuel`](super::EngineOptions::fuel)).
    pub fuel: Option<u64>,
    /// Bytes the guest may hold in all its linear memories and tables together; a table
    /// element counts as a pointer (8 bytes on 64-bit hosts).
    pub max_memory: Option<usize>,
    /// Elements the guest may hold in all its tables together, with or without `max_memory`.
    pub max_table_elements: usize,
    /// Tables the guest may create.
    pub max_tables: usize,
    /// Bytes a guest may pass into one host call (strings and lists), checked before copying.
    pub max_hostcall_bytes: usize,
}

/// The default cap on bytes per host call: 1 MiB.
const DEFAULT_MAX_HOSTCALL_BYTES: usize = 1 << 20;

/// The default cap on table elements per guest, across all its tables: 1 Mi (8 MiB of host
/// memory). Real components hold thousands.
const DEFAULT_MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The default cap on tables per guest. Real components create a handful.
const DEFAULT_MAX_TABLES: usize = 1_000;

/// What one table element costs the host: a pointer (wasmtime's funcref and extern tables).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: None,
            fuel: None,
            max_memory: None,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_tables: DEFAULT_MAX_TABLES,
            max_hostcall_bytes: DEFAULT_MAX_HOSTCALL_BYTES,
        }
    }
}

/// Which limit stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// Memory growth past `max_memory` (memories and tables together).
    #[error(
        "memory growth past the memory limit of {}: the component tried to hold {desired} bytes in its memories and tables",
        size(*limit)
    )]
    Memory {
        /// Bytes of memories and tables asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// Table growth past `max_memory` (memories and tables together).
    #[error(
        "table growth past the memory limit of {}: the component tried to hold {desired} bytes in its memories and tables (a table element counts {TABLE_ELEMENT_BYTES} bytes)",
        size(*limit)
    )]
    TableMemory {
        /// Bytes of memories and tables asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// Table growth past the cap on table elements.
    #[error(
        "table growth past the cap of {limit} table elements: the component tried to hold {desired} elements in its tables"
    )]
    Table {
        /// Elements asked for, across all tables.
        desired: usize,
        /// The limit.
        limit: usize,
    },
}

/// `bytes` as people write it: `1 MiB`, `64 KiB`, or `1000 bytes`.
fn size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// The store's resource limiter: linear memories and tables count against one memory limit,
/// tables also against an element cap and a count. Growth past a limit traps with a
/// [`LimitsError`].
#[derive(Debug, Clone)]
pub struct StoreLimiter {
    max_memory: Option<usize>,
    max_table_elements: usize,
    max_tables: usize,
    memory_bytes: usize,
    table_elements: usize,
}

impl StoreLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_memory: limits.max_memory,
            max_table_elements: limits.max_table_elements,
            max_tables: limits.max_tables,
            memory_bytes: 0,
            table_elements: 0,
        }
    }

    fn table_bytes(elements: usize) -> usize {
        elements.saturating_mul(TABLE_ELEMENT_BYTES)
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    // Each callback gets one memory's (or table's) current and desired size; the store's sum
    // moves by the difference. Creation is growth from 0. A growth past the resource's own
    // maximum is refused here (wasmtime would refuse it anyway) so that it is never counted.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = self
            .memory_bytes
            .saturating_sub(current)
            .saturating_add(desired);
        let total = bytes.saturating_add(Self::table_bytes(self.table_elements));
        if let Some(limit) = self.max_memory
            && total > limit
        {
            return Err(LimitsError::Memory {
                desired: total,
                limit,
            }
            .into());
        }
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        self.memory_bytes = bytes;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = self
            .table_elements
            .saturating_sub(current)
            .saturating_add(desired);
        let total = self
            .memory_bytes
            .saturating_add(Self::table_bytes(elements));
        if let Some(limit) = self.max_memory
            && total > limit
        {
            return Err(LimitsError::TableMemory {
                desired: total,
                limit,
            }
            .into());
        }
        if elements > self.max_table_elements {
            return Err(LimitsError::Table {
                desired: elements,
                limit: self.max_table_elements,
            }
            .into());
        }
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        self.table_elements = elements;
        Ok(true)
    }

    fn tables(&self) -> usize {
        self.max_tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    fn limiter(max_memory: Option<usize>) -> StoreLimiter {
        StoreLimiter::new(&Limits {
            max_memory,
            ..Limits::default()
        })
    }

    #[test]
    fn tables_and_memories_count_against_one_memory_limit() {
        let mut l = limiter(Some(1 << 20));
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        // 64 Ki elements are 512 KiB: exactly the rest of the limit.
        assert!(l.table_growing(0, 64 << 10, None).unwrap());
        let e = l.table_growing(64 << 10, (64 << 10) + 1, None).unwrap_err();
        assert_eq!(
            e.downcast_ref::<LimitsError>(),
            Some(&LimitsError::TableMemory {
                desired: (1 << 20) + TABLE_ELEMENT_BYTES,
                limit: 1 << 20
            })
        );
        assert!(
            e.to_string()
                .starts_with("table growth past the memory limit of 1 MiB")
        );
        let e = l.memory_growing(512 << 10, 576 << 10, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("memory growth past the memory limit of 1 MiB")
        );
    }

    #[test]
    fn table_elements_are_capped_across_tables_without_a_memory_limit() {
        let mut l = limiter(None);
        assert!(
            l.table_growing(0, DEFAULT_MAX_TABLE_ELEMENTS / 2, None)
                .unwrap()
        );
        assert!(
            l.table_growing(0, DEFAULT_MAX_TABLE_ELEMENTS / 2, None)
                .unwrap()
        );
        let e = l.table_growing(0, 1, None).unwrap_err();
        assert!(matches!(
            e.downcast_ref::<LimitsError>(),
            Some(LimitsError::Table { .. })
        ));
        assert_eq!(l.tables(), DEFAULT_MAX_TABLES);
    }

    #[test]
    fn a_growth_past_the_resources_own_maximum_fails_and_is_not_counted() {
        let mut l = limiter(Some(1 << 20));
        assert!(!l.table_growing(0, 1000, Some(10)).unwrap());
        assert!(!l.memory_growing(0, 1 << 16, Some(0)).unwrap());
        assert!(l.table_growing(0, 128 << 10, None).unwrap());
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(3 << 30), "3 GiB");
        assert_eq!(size(1000), "1000 bytes");
        assert_eq!(size(0), "0 bytes");
    }
}
