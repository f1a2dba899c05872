//! The retry policy of token requests (managed identity, design section 5, and Entra) and
//! mapping their answers to errors.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::CredentialError;
use crate::http::{HttpClient, HttpError, HttpResponse};

/// When to try a token request again.
///
/// 404, 429, 5xx and transport failures are retried `max_retries` times with exponential
/// backoff; 410 ("IMDS is updating") is retried until `gone_window` has passed since the first
/// attempt. Other 4xx are not retried. Every attempt has `attempt_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, for 404, 429, 5xx and transport errors.
    pub max_retries: u32,
    /// The first backoff; each further one doubles.
    pub initial_delay: Duration,
    /// The longest backoff (also caps `Retry-After`).
    pub max_delay: Duration,
    /// How long 410 answers are retried for, counted from the first attempt.
    pub gone_window: Duration,
    /// The timeout of each attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 4 retries from 0.5 s doubling up to 8 s; 410 retried for 70 s; 5 s per attempt.
    fn default() -> Self {
        Self {
            max_retries: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            gone_window: Duration::from_secs(70),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all, the given timeout per attempt.
    pub fn none(attempt_timeout: Duration) -> Self {
        Self {
            max_retries: 0,
            gone_window: Duration::ZERO,
            attempt_timeout,
            ..Self::default()
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(20));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }

    /// Sends the request `make` builds until it succeeds or the policy gives up. Returns the
    /// last response, whatever its status; the caller maps it with [`status_error`].
    pub(crate) async fn send(
        &self,
        http: &HttpClient,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<HttpResponse, CredentialError> {
        let started = Instant::now();
        let mut retries = 0u32;
        loop {
            let outcome = http.send(make().timeout(self.attempt_timeout)).await;
            let delay = self.backoff(retries);
            let retry = match &outcome {
                Ok(r) if r.status == StatusCode::GONE => started.elapsed() < self.gone_window,
                Ok(r) if retryable(r.status) => retries < self.max_retries,
                Ok(_) => false,
                Err(HttpError::Timeout(_) | HttpError::Transport(_)) => retries < self.max_retries,
                Err(_) => false,
            };
            if !retry {
                return outcome.map_err(CredentialError::from);
            }
            let wait = match &outcome {
                Ok(r) => r.retry_after().map_or(delay, |d| d.min(self.max_delay)),
                Err(_) => delay,
            };
            match &outcome {
                Ok(r) => {
                    tracing::debug!(status = r.status.as_u16(), ?wait, "retrying token request")
                }
                Err(e) => tracing::debug!(error = %e, ?wait, "retrying token request"),
            }
            tokio::time::sleep(wait).await;
            retries = retries.saturating_add(1);
        }
    }
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::NOT_FOUND || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// The error for a non-success answer: status, plus the error code and `AADSTS` number when
/// they look like codes. Never the body itself.
pub(crate) fn status_error(resp: &HttpResponse, what: &str) -> CredentialError {
    let status = resp.status;
    let mut detail = format!("{what} answered HTTP {}", status.as_u16());
    let codes = resp.error_codes();
    if !codes.is_empty() {
        detail.push_str(&format!(" ({})", codes.join(", ")));
    }
    if status.is_client_error() && !matches!(status.as_u16(), 404 | 408 | 410 | 429) {
        CredentialError::Rejected(detail)
    } else {
        CredentialError::Unavailable(detail)
    }
}
