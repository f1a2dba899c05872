//! One line saying why a guest stopped, and which limit stopped it if one did.

use super::limits::{Limits, LimitsError};
use std::fmt;
use std::time::Duration;
use wasmtime::Trap;

/// The limit that stopped a guest: a caller can say how its user raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::timeout`].
    Timeout,
    /// [`Limits::fuel`].
    Fuel,
    /// [`Limits::max_memory`].
    Memory,
    /// [`Limits::max_table_elements`].
    TableElements,
    /// [`Limits::max_tables`].
    Tables,
    /// [`Limits::max_hostcall_bytes`].
    HostcallBytes,
}

/// Why a guest stopped: a limit, a trap or another failure, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The limit that stopped it, if one did.
    pub limit: Option<Limit>,
    message: String,
}

impl Stopped {
    fn new(limit: Option<Limit>, message: String) -> Self {
        Self { limit, message }
    }

    /// Stopped at its time limit `t`.
    pub(super) fn timeout(t: Duration) -> Self {
        Self::new(
            Some(Limit::Timeout),
            format!(
                "the component ran past its time limit of {} and was stopped",
                humantime::format_duration(t)
            ),
        )
    }

    /// Why the guest stopped with `e`, given its `limits`.
    pub(super) fn from_error(e: &wasmtime::Error, limits: &Limits) -> Self {
        if let Some(l) = e.downcast_ref::<LimitsError>() {
            let limit = match l {
                LimitsError::Memory { .. } | LimitsError::TableMemory { .. } => Limit::Memory,
                LimitsError::Table { .. } => Limit::TableElements,
            };
            return Self::new(Some(limit), l.to_string());
        }
        if let Some(trap) = e.downcast_ref::<Trap>() {
            return match trap {
                Trap::Interrupt => Self::timeout(limits.timeout.unwrap_or_default()),
                Trap::OutOfFuel => Self::new(
                    Some(Limit::Fuel),
                    format!(
                        "the component used all of its fuel ({} units) and was stopped",
                        limits.fuel.unwrap_or_default()
                    ),
                ),
                other => Self::new(None, format!("the component trapped: {other}")),
            };
        }
        let text = format!("{e:#}");
        if text.contains("table count too high") {
            return Self::new(
                Some(Limit::Tables),
                format!(
                    "table creation past the cap of {} tables: the component tried to create more",
                    limits.max_tables
                ),
            );
        }
        if text.contains("fuel allocated for hostcalls has been exhausted") {
            return Self::new(
                Some(Limit::HostcallBytes),
                format!(
                    "the component passed more than {} bytes into one host call and was stopped",
                    limits.max_hostcall_bytes
                ),
            );
        }
        // Each cause's first line: a wasm backtrace, which wasmtime attaches as a context of
        // its own, is many lines and says nothing a one-line error can use.
        let causes: Vec<String> = e
            .chain()
            .map(|c| c.to_string())
            .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
            .filter_map(|c| c.lines().next().map(str::to_owned))
            .filter(|c| !c.is_empty())
            .collect();
        Self::new(None, format!("the component failed: {}", causes.join(": ")))
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
