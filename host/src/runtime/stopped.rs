//! One line saying why a guest stopped: which limit, or what trap.

use super::limits::{Limits, LimitsError};
use std::time::Duration;
use wasmtime::Trap;

/// The line for a guest stopped at its time limit `t`.
pub(super) fn timeout_message(t: Duration) -> String {
    format!(
        "the component ran past its time limit of {} (--timeout) and was stopped",
        humantime::format_duration(t)
    )
}

/// Why the guest stopped with `e`, given its `limits`.
pub(super) fn describe_failure(e: &wasmtime::Error, limits: &Limits) -> String {
    if let Some(l) = e.downcast_ref::<LimitsError>() {
        return l.to_string();
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => timeout_message(limits.timeout.unwrap_or_default()),
            Trap::OutOfFuel => format!(
                "the component used all of its fuel ({} units, --fuel) and was stopped",
                limits.fuel.unwrap_or_default()
            ),
            other => format!("the component trapped: {other}"),
        };
    }
    let text = format!("{e:#}");
    if text.contains("table count too high") {
        return format!(
            "table creation past the cap of {} tables: the component tried to create more",
            limits.max_tables
        );
    }
    if text.contains("fuel allocated for hostcalls has been exhausted") {
        return format!(
            "the component passed more than {} bytes into one host call and was stopped",
            limits.max_hostcall_bytes
        );
    }
    // Each cause's first line: a wasm backtrace, which wasmtime attaches as a context of its
    // own, is many lines and says nothing a one-line error can use.
    let causes: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
        .filter_map(|c| c.lines().next().map(str::to_owned))
        .filter(|c| !c.is_empty())
        .collect();
    format!("the component failed: {}", causes.join(": "))
}
