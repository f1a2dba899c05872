//! Vault-call budgets: one component cannot spend a vault's budget.
//!
//! Every vault call a request would cause (a cache miss, a refresh its hit makes due, a key
//! operation) takes a token from two token buckets before it starts, and is refused at once,
//! never waited for, when either is empty:
//!
//! - the component's own [`Budget`] (all its calls, every vault), set per component;
//! - its share of the vault's budget for that class of call ([`VaultBudget`]: secret reads,
//!   key reads and operations). A vault's budget is split evenly between the components that
//!   use it for that class, so one over its share cannot take another's; and the vault's
//!   whole budget is a bucket of its own, so the host as a whole never sends more.
//!
//! Refreshes of what is already cached are never starved by misses: a miss may not take a
//! bucket's last tenth (its reserve), a refresh may. A refused refresh leaves the cached
//! answer in place; a refused miss or key operation is an `over-budget` error. Hits cost no
//! token and never look at a bucket.

use crate::cache::{Admit, Call};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::time::Instant;

/// A token bucket's shape: `rate` calls a second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    rate: f64,
    burst: u32,
}

impl Budget {
    /// `rate` calls a second, up to `burst` at once; `None` unless the rate is positive and
    /// finite and the burst at least 1.
    pub fn new(rate: f64, burst: u32) -> Option<Self> {
        (rate.is_finite() && rate > 0.0 && burst >= 1).then_some(Self { rate, burst })
    }

    /// Calls a second, on average.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Calls at once, from a full bucket.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The most calls it lets through in any `window`: a full bucket, then the rate.
    pub fn most_in(&self, window: std::time::Duration) -> f64 {
        f64::from(self.burst) + self.rate * window.as_secs_f64()
    }

    /// A component's default: 100 calls a second, 1,000 at once. A component that caches
    /// what it reads never comes near it; one asking for thousands of names does.
    pub const COMPONENT: Self = Self {
        rate: 100.0,
        burst: 1_000,
    };
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s burst {}", self.rate, self.burst)
    }
}

const BUDGET_SYNTAX: &str =
    "write RATE/s or RATE/m, optionally followed by \"burst N\" (such as \"20/s burst 100\")";

impl FromStr for Budget {
    type Err = String;

    /// `RATE/s` or `RATE/m`, then optionally `burst N`; the burst defaults to ten seconds'
    /// worth of the rate (at least 1).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("budget {s:?}: {BUDGET_SYNTAX}");
        let mut words = s.split_whitespace();
        let (count, per) = words
            .next()
            .and_then(|r| r.split_once('/'))
            .ok_or_else(bad)?;
        let count: f64 = count.parse().map_err(|_| bad())?;
        let rate = match per {
            "s" => count,
            "m" => count / 60.0,
            _ => return Err(bad()),
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, ..) => (rate * 10.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            (Some("burst"), Some(n), None) => n.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        Self::new(rate, burst).ok_or_else(bad)
    }
}

/// A vault's budgets, per class of call, for the whole host; `None`: no limit for that class.
///
/// Key Vault throttles each vault per 10 seconds, weighing each class against its own limit
/// (as of 2026: 4,000 secret transactions; 2,000 to 4,000 key transactions for RSA 2048-bit
/// and EC keys, 500 to 1,000 for RSA 3072-bit, 250 to 500 for RSA 4096-bit, HSM keys at the
/// lower figure). The defaults stay below those together for RSA 2048-bit and EC keys: at
/// most 2,000 secret calls and 750 key calls in any 10 seconds. Lower `keys` for larger RSA
/// keys, and lower both when other hosts share the vault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaultBudget {
    /// Secret reads: values, metadata, lists.
    pub secrets: Option<Budget>,
    /// Key reads (public keys) and key operations.
    pub keys: Option<Budget>,
}

impl Default for VaultBudget {
    fn default() -> Self {
        Self {
            secrets: Budget::new(150.0, 500),
            keys: Budget::new(50.0, 250),
        }
    }
}

impl VaultBudget {
    /// No limit on any class.
    pub const UNLIMITED: Self = Self {
        secrets: None,
        keys: None,
    };
}

/// The class of a vault call, each with its own part of a vault's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Secrets,
    Keys,
}

impl Class {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Secrets => "secrets",
            Self::Keys => "keys",
        }
    }
}

/// One token bucket. Its shape may be scaled down at each take (a component's share of a
/// vault's budget shrinks as more components use the vault).
#[derive(Debug)]
pub(crate) struct Bucket {
    budget: Budget,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of shape `budget`.
    pub(crate) fn new(budget: Budget) -> Self {
        Self::with_tokens(budget, f64::from(budget.burst))
    }

    fn with_tokens(budget: Budget, tokens: f64) -> Self {
        Self {
            budget,
            state: Mutex::new(State {
                tokens,
                at: Instant::now(),
            }),
        }
    }

    /// Takes a token for `call`, the bucket being `1/share` of its budget: a miss must leave
    /// the reserve, a refresh may take it.
    fn take(&self, call: Call, share: usize) -> bool {
        let share = share.max(1) as f64;
        // A share below one call at once could never let a call through.
        let capacity = (f64::from(self.budget.burst) / share).max(1.0);
        let rate = self.budget.rate / share;
        let reserve = if capacity >= 2.0 {
            (capacity / 10.0).ceil()
        } else {
            0.0
        };
        let needed = match call {
            Call::Miss => 1.0 + reserve,
            Call::Refresh => 1.0,
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(capacity);
        state.at = now;
        if state.tokens + 1e-9 >= needed {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Returns the token just taken for a call that did not go out after all.
    fn give_back(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tokens += 1.0;
    }
}

/// A vault's budget for one class of call: the whole, and the shares of the components that
/// use it.
#[derive(Debug)]
pub(crate) struct Pool {
    whole: Bucket,
    budget: Budget,
    members: Mutex<HashMap<Arc<str>, Weak<Share>>>,
    count: AtomicUsize,
}

impl Pool {
    pub(crate) fn new(budget: Budget) -> Arc<Self> {
        Arc::new(Self {
            whole: Bucket::new(budget),
            budget,
            members: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
        })
    }

    /// The share of `component`: the one it already has (every context of one component, and
    /// the next one after a reload, share it), or a new one.
    pub(crate) fn join(self: &Arc<Self>, component: &Arc<str>) -> Arc<Share> {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(share) = members.get(component).and_then(Weak::upgrade) {
            return share;
        }
        let n = members.len() + usize::from(!members.contains_key(component));
        // A newcomer starts with what a share holds when full.
        let tokens = (f64::from(self.budget.burst) / n as f64).max(1.0);
        let share = Arc::new(Share {
            pool: self.clone(),
            component: component.clone(),
            bucket: Bucket::with_tokens(self.budget, tokens),
        });
        members.insert(component.clone(), Arc::downgrade(&share));
        self.count.store(members.len(), Ordering::Relaxed);
        share
    }
}

/// One component's share of a vault's budget for one class of call.
#[derive(Debug)]
pub(crate) struct Share {
    pool: Arc<Pool>,
    component: Arc<str>,
    bucket: Bucket,
}

impl Share {
    /// Takes a token from this share and from the vault's whole budget, or neither.
    fn take(&self, call: Call) -> bool {
        let members = self.pool.count.load(Ordering::Relaxed);
        if !self.bucket.take(call, members) {
            return false;
        }
        if self.pool.whole.take(call, 1) {
            return true;
        }
        self.bucket.give_back();
        false
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut members = self.pool.members.lock().unwrap_or_else(|p| p.into_inner());
        // Only this share's entry: a newer share of the same component may have replaced it.
        if members
            .get(&self.component)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            members.remove(&self.component);
        }
        self.pool.count.store(members.len(), Ordering::Relaxed);
    }
}

/// A component's spending: its own bucket (`None`: no limit of its own), and when it last
/// said in the log that it is over budget.
#[derive(Debug)]
pub(crate) struct Spender {
    component: Arc<str>,
    bucket: Option<Bucket>,
    warned: Mutex<Option<Instant>>,
}

/// The most often a component's refusals are logged: one line a minute, never one a request.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Spender {
    pub(crate) fn new(component: Arc<str>, budget: Option<Budget>) -> Self {
        Self {
            component,
            bucket: budget.map(Bucket::new),
            warned: Mutex::new(None),
        }
    }

    /// Counts a refusal, and logs it if the last line was a minute ago or more.
    fn refused(&self, vault: &str, class: Class, call: Call, own: bool) {
        let call = match (class, call) {
            (Class::Keys, Call::Miss) => "key",
            (_, Call::Miss) => "miss",
            (_, Call::Refresh) => "refresh",
        };
        let budget = if own { "component" } else { "vault" };
        crate::metrics::global().budget_refusal(&self.component, vault, budget, call);
        let now = Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY) {
            *warned = Some(now);
            tracing::warn!(
                component = %self.component,
                vault,
                budget,
                class = class.as_str(),
                "the component is over its vault-call budget: its misses and key operations are refused until the budget refills (cached values are still served; at most one such line a minute)"
            );
        }
    }
}

/// What one request may spend on one vault: its component's bucket and its share of the
/// vault's budget for the class of call it makes. Remembers whether the last call it was
/// asked about was refused.
pub(crate) struct Charge<'a> {
    spender: &'a Spender,
    vault: &'a str,
    class: Class,
    share: Option<&'a Share>,
    refused: AtomicBool,
}

impl<'a> Charge<'a> {
    pub(crate) fn new(
        spender: &'a Spender,
        vault: &'a str,
        class: Class,
        share: Option<&'a Share>,
    ) -> Self {
        Self {
            spender,
            vault,
            class,
            share,
            refused: AtomicBool::new(false),
        }
    }

    /// Whether the last call asked about was refused.
    pub(crate) fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Admit for Charge<'_> {
    fn admit(&self, call: Call) -> bool {
        let own = self.spender.bucket.as_ref();
        let mine = own.is_none_or(|b| b.take(call, 1));
        let admitted = mine && self.share.is_none_or(|s| s.take(call));
        if mine && !admitted {
            own.inspect(|b| b.give_back());
        }
        self.refused.store(!admitted, Ordering::Relaxed);
        if !admitted {
            self.spender.refused(self.vault, self.class, call, !mine);
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn budgets_parse_and_bad_ones_say_how_to_write_one() {
        let b: Budget = "20/s burst 100".parse().unwrap();
        assert_eq!((b.rate(), b.burst()), (20.0, 100));
        let b: Budget = "60/m".parse().unwrap();
        assert_eq!((b.rate(), b.burst()), (1.0, 10));
        assert_eq!("0.5/s".parse::<Budget>().unwrap().burst(), 5);
        for bad in [
            "",
            "20",
            "20/h",
            "x/s",
            "0/s",
            "-1/s",
            "20/s burst",
            "20/s burst 0",
            "20/s 100",
            "20/s burst 1 2",
            "inf/s",
        ] {
            let e = bad.parse::<Budget>().unwrap_err();
            assert!(e.contains("RATE/s"), "{bad}: {e}");
        }
        assert_eq!(
            "20/s burst 100".parse::<Budget>().unwrap().to_string(),
            "20/s burst 100"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_lets_its_burst_through_then_its_rate_and_keeps_a_reserve_for_refreshes() {
        let bucket = Bucket::new(Budget::new(10.0, 20).unwrap());
        // A miss may not take the last tenth (2 tokens): 18 misses, then 2 refreshes.
        let misses = (0..100).take_while(|_| bucket.take(Call::Miss, 1)).count();
        assert_eq!(misses, 18);
        assert!(bucket.take(Call::Refresh, 1));
        assert!(bucket.take(Call::Refresh, 1));
        assert!(!bucket.take(Call::Refresh, 1));
        // A second refills 10: the reserve first, then misses.
        tokio::time::advance(Duration::from_secs(1)).await;
        let misses = (0..100).take_while(|_| bucket.take(Call::Miss, 1)).count();
        assert_eq!(misses, 8);
        assert!(bucket.take(Call::Refresh, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_vaults_budget_is_shared_evenly_and_the_whole_holds() {
        let pool = Pool::new(Budget::new(10.0, 100).unwrap());
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let share_a = pool.join(&a);
        let share_b = pool.join(&b);
        assert!(
            Arc::ptr_eq(&share_a, &pool.join(&a)),
            "one share per component"
        );
        // Each gets half: 50 at once, of which misses take 45.
        let took_a = (0..1000).take_while(|_| share_a.take(Call::Miss)).count();
        assert_eq!(took_a, 45);
        let took_b = (0..1000).take_while(|_| share_b.take(Call::Miss)).count();
        assert_eq!(took_b, 45, "a's spending took nothing of b's share");
        // Over 10 s, together at most the whole: 100 + 10 * 10.
        let mut total = took_a + took_b;
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(100)).await;
            total += (0..1000)
                .take_while(|_| share_a.take(Call::Refresh))
                .count();
            total += (0..1000)
                .take_while(|_| share_b.take(Call::Refresh))
                .count();
        }
        assert!(
            total as f64 <= pool.budget.most_in(Duration::from_secs(10)),
            "{total}"
        );
        // When b goes, a's share grows to the whole.
        drop(share_b);
        assert_eq!(pool.count.load(Ordering::Relaxed), 1);
        tokio::time::advance(Duration::from_secs(100)).await;
        let took = (0..1000)
            .take_while(|_| share_a.take(Call::Refresh))
            .count();
        assert_eq!(took, 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_charge_takes_from_both_or_neither() {
        let spender = Spender::new("a".into(), Budget::new(1.0, 100));
        let pool = Pool::new(Budget::new(1.0, 10).unwrap());
        let share = pool.join(&Arc::from("a"));
        let charge = Charge::new(&spender, "v", Class::Secrets, Some(&share));
        let took = (0..1000).take_while(|_| charge.admit(Call::Miss)).count();
        assert_eq!(took, 9, "the vault's share is the tighter bucket");
        assert!(charge.refused());
        // The component's bucket got back every token the share refused.
        let own = spender.bucket.as_ref().unwrap();
        let left = (0..1000).take_while(|_| own.take(Call::Miss, 1)).count();
        assert_eq!(left, 90 - 9);
    }
}
