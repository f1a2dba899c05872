//! Asking before a vault call: the cache starts a call for a caller only if the caller's
//! [`Admit`] lets it (the policy point's vault-call budgets, [`crate::policy::budget`]). A
//! refused refresh leaves the cached answer in place; a refused miss is an answer of its own.

/// Why the cache would call the vault for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Nothing usable is held: the caller waits for the call.
    Miss,
    /// A held answer is due for a refresh (ahead of its TTL, or stale past it): the caller
    /// is answered from the cache if the call is refused.
    Refresh,
}

/// Whether a vault call may start now on a caller's behalf. Asked only when a call would
/// start: a hit, or joining a call already in flight, asks nothing.
pub trait Admit: Sync {
    /// Takes one call from the caller's budget, or refuses it.
    fn admit(&self, call: Call) -> bool;
}

/// Admits every call: for the host's own reads (readiness probes) and callers without a
/// budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl Admit for Unlimited {
    fn admit(&self, _: Call) -> bool {
        true
    }
}

/// The error a caller with nothing usable gets when its [`Admit`] refuses the miss. (The
/// policy point, which knows why, replaces it with its own.)
pub(crate) fn refused() -> crate::BackendError {
    crate::BackendError::Unavailable("the vault call was refused by the caller's budget".into())
}
