//! The token cache: one token per (credential, resource), refreshed early, fetched once.
//!
//! Design section 5: a token is refreshed when less than 5 minutes remain, or at half its
//! lifetime for tokens living 2 hours or more (and at half its lifetime when it lives less
//! than 5 minutes in all). One fetch per resource is in flight at a time: callers without a
//! valid token wait for it and share its result; callers holding a valid token that is due
//! for refresh get that token at once while a background task refreshes it, so a slow or
//! failing identity endpoint (IMDS retries a 410 for 70 s) never delays them. If a refresh
//! fails, the old token is used while it is still valid, with a warning that names no token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::credential::{AccessToken, CredentialError, TokenCredential};

/// When tokens are refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCachePolicy {
    /// Refresh when less than this remains (5 minutes).
    pub refresh_before: Duration,
    /// Tokens living at least this long are refreshed at half their lifetime (2 hours).
    pub half_life_from: Duration,
    /// A token with less than this left is treated as expired (10 seconds), so it is not
    /// handed out just before it dies in flight.
    pub expiry_margin: Duration,
    /// After a failed refresh while a valid token is held, wait this long before trying
    /// again (5 seconds).
    pub failure_cooldown: Duration,
}

impl Default for TokenCachePolicy {
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(300),
            half_life_from: Duration::from_secs(2 * 3600),
            expiry_margin: Duration::from_secs(10),
            failure_cooldown: Duration::from_secs(5),
        }
    }
}

impl TokenCachePolicy {
    /// When a token fetched at `fetched` and expiring at `expires` is due for refresh.
    pub fn refresh_at(&self, fetched: SystemTime, expires: SystemTime) -> SystemTime {
        let lifetime = expires.duration_since(fetched).unwrap_or_default();
        let half = fetched + lifetime / 2;
        if lifetime >= self.half_life_from {
            half
        } else {
            let early = expires.checked_sub(self.refresh_before).unwrap_or(fetched);
            early.max(half)
        }
    }
}

struct Entry {
    token: AccessToken,
    refresh_at: SystemTime,
}

#[derive(Default)]
struct State {
    entry: Option<Entry>,
    /// Bumped after every completed fetch, good or bad.
    generation: u64,
    last_error: Option<CredentialError>,
    failed_at: Option<Instant>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    fetch: Arc<tokio::sync::Mutex<()>>,
}

/// Tokens from one credential, by resource. Share it (`Arc`) among every user of the
/// credential. `Debug` shows no token.
pub struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    policy: TokenCachePolicy,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("credential", &self.credential.cache_key())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache over `credential` with the default policy.
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self::with_policy(credential, TokenCachePolicy::default())
    }

    /// A cache over `credential` with `policy`.
    pub fn with_policy(credential: Arc<dyn TokenCredential>, policy: TokenCachePolicy) -> Self {
        Self {
            credential,
            policy,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, resource: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(resource.to_owned()).or_default().clone()
    }

    /// A valid token for `resource`, such as `https://vault.azure.net`.
    pub async fn token(&self, resource: &str) -> Result<AccessToken, CredentialError> {
        let slot = self.slot(resource);
        let now = SystemTime::now();
        let (generation, held, cooling) = {
            let state = lock(&slot.state);
            let held = state
                .entry
                .as_ref()
                .filter(|e| self.valid(&e.token, now))
                .map(|e| (e.token.clone(), now >= e.refresh_at));
            let cooling = state
                .failed_at
                .is_some_and(|t| t.elapsed() < self.policy.failure_cooldown);
            (state.generation, held, cooling)
        };
        match held {
            Some((token, false)) => Ok(token),
            Some((token, true)) => {
                // Due for refresh but still valid: never wait on someone else's refresh.
                if cooling {
                    return Ok(token);
                }
                let Ok(guard) = slot.fetch.clone().try_lock_owned() else {
                    return Ok(token);
                };
                if lock(&slot.state).generation != generation {
                    // Someone refreshed between our look and the lock; use theirs if good.
                    return Ok(self.current(&slot).unwrap_or(token));
                }
                let refresh = Refresh {
                    credential: self.credential.clone(),
                    policy: self.policy,
                    slot,
                    resource: resource.to_owned(),
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(async move {
                            let _guard = guard;
                            refresh.run_keeping_valid().await;
                        });
                        Ok(token)
                    }
                    Err(_) => Ok(refresh.run_keeping_valid().await.unwrap_or(token)),
                }
            }
            None => {
                let _guard = slot.fetch.lock().await;
                {
                    let state = lock(&slot.state);
                    if state.generation != generation {
                        // A fetch finished while we waited: share its outcome.
                        if let Some(e) = state
                            .entry
                            .as_ref()
                            .filter(|e| self.valid(&e.token, SystemTime::now()))
                        {
                            return Ok(e.token.clone());
                        }
                        if let Some(err) = &state.last_error {
                            return Err(err.clone());
                        }
                    }
                }
                Refresh {
                    credential: self.credential.clone(),
                    policy: self.policy,
                    slot: slot.clone(),
                    resource: resource.to_owned(),
                }
                .run()
                .await
            }
        }
    }

    fn valid(&self, token: &AccessToken, now: SystemTime) -> bool {
        token.remaining_at(now) > self.policy.expiry_margin
    }

    fn current(&self, slot: &Slot) -> Option<AccessToken> {
        let state = lock(&slot.state);
        state
            .entry
            .as_ref()
            .filter(|e| self.valid(&e.token, SystemTime::now()))
            .map(|e| e.token.clone())
    }
}

/// One fetch of a token into a slot; whoever runs it holds the slot's fetch lock.
struct Refresh {
    credential: Arc<dyn TokenCredential>,
    policy: TokenCachePolicy,
    slot: Arc<Slot>,
    resource: String,
}

impl Refresh {
    /// Fetches a token and records the outcome.
    async fn run(&self) -> Result<AccessToken, CredentialError> {
        let fetched = SystemTime::now();
        let result = self.credential.get_token(&self.resource).await;
        crate::metrics::global().token_request(self.credential.kind(), result.is_ok());
        let mut state = lock(&self.slot.state);
        state.generation += 1;
        match &result {
            Ok(token) => {
                let refresh_at = self.policy.refresh_at(fetched, token.expires_on());
                state.entry = Some(Entry {
                    token: token.clone(),
                    refresh_at,
                });
                state.last_error = None;
                state.failed_at = None;
                tracing::debug!(
                    credential = %self.credential.cache_key(),
                    resource = %self.resource,
                    lifetime_s = token.remaining_at(fetched).as_secs(),
                    "token fetched"
                );
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                state.failed_at = Some(Instant::now());
            }
        }
        result
    }

    /// A refresh while a valid token is held: a failure is only a warning.
    async fn run_keeping_valid(&self) -> Option<AccessToken> {
        match self.run().await {
            Ok(fresh) => Some(fresh),
            Err(e) => {
                tracing::warn!(
                    credential = %self.credential.cache_key(),
                    resource = %self.resource,
                    error = %e,
                    "token refresh failed; using the current token until it expires"
                );
                None
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[path = "token_cache_tests.rs"]
mod tests;
