//! When the cache goes back to the vault: the refresh-ahead point and the backoff after a
//! failed call, each with jitter so that keys (and replicas) fetched together do not refresh
//! together (design sections 5 and 12).

use std::time::Duration;

/// How long after a fetch a hit starts a background refresh: 80% of the TTL, less a random
/// 0-10% of it.
pub(super) fn refresh_after(ttl: Duration) -> Duration {
    ttl.mul_f64(0.8 - 0.1 * rand::random::<f64>())
}

/// The first wait after a failure; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest backoff: the TTL, kept within 1..=30 s, so a vault that recovers serves the
/// current value again within about one TTL.
pub(super) fn backoff_cap(ttl: Duration) -> Duration {
    ttl.clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// How long to wait before the next call after `failures` failed ones in a row (at least 1):
/// the doubled step, capped, then a random 50-100% of it ("equal jitter").
pub(super) fn backoff(ttl: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let step = FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(backoff_cap(ttl));
    step.mul_f64(0.5 + 0.5 * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_within_bounds() {
        let ttl = Duration::from_secs(300);
        for (failures, step_ms) in [(1, 500), (2, 1000), (3, 2000), (6, 16_000), (7, 30_000)] {
            let step = Duration::from_millis(step_ms);
            for _ in 0..200 {
                let b = backoff(ttl, failures);
                assert!(b >= step / 2 && b <= step, "{failures}: {b:?} vs {step:?}");
            }
        }
        assert!(backoff(ttl, u32::MAX) <= Duration::from_secs(30));
        // A short TTL caps the backoff at the TTL (never under 1 s).
        assert!(backoff(Duration::from_secs(2), 10) <= Duration::from_secs(2));
        assert!(backoff(Duration::from_millis(100), 10) >= Duration::from_millis(500));
    }

    #[test]
    fn refresh_point_is_between_70_and_80_percent_of_the_ttl() {
        let ttl = Duration::from_secs(100);
        let all: Vec<_> = (0..500).map(|_| refresh_after(ttl)).collect();
        assert!(
            all.iter()
                .all(|d| *d >= Duration::from_secs(70) && *d <= Duration::from_secs(80))
        );
        // It is jittered, not one fixed point.
        assert!(all.iter().any(|d| *d != all[0]));
    }
}
