//! Per-key rate limit on writes: a token bucket per signing key (DSSE keyid), charged one
//! token per envelope after the signature has verified, so only a key's holder can spend
//! its budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;

use super::error::ApiError;
use crate::ledger::Prepared;

/// Envelopes per second per key, and the burst a key may spend at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Charges every verified signer for its envelopes, all or nothing; 429 with Retry-After
    /// when a key's bucket is short.
    pub fn charge(&self, prepared: &[Prepared]) -> Result<(), ApiError> {
        let mut wanted: HashMap<&str, f64> = HashMap::new();
        for p in prepared.iter().filter(|p| p.signer_verified()) {
            *wanted.entry(p.signer.as_str()).or_default() += 1.0;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for (key, n) in &wanted {
            let b = buckets.entry((*key).to_owned()).or_insert(Bucket { tokens: burst, at: now });
            b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(burst);
            b.at = now;
            if *n > burst {
                return Err(limited(
                    format!(
                        "{key}: a request may carry at most {burst} envelopes of one key under this rate limit"
                    ),
                    None,
                ));
            }
            if b.tokens < *n {
                let wait = ((n - b.tokens) / per_second).ceil().max(1.0) as u64;
                return Err(limited(
                    format!(
                        "{key} is limited to {per_second} envelopes/s (burst {burst}); retry in {wait} s"
                    ),
                    Some(wait),
                ));
            }
        }
        for (key, n) in wanted {
            if let Some(b) = buckets.get_mut(key) {
                b.tokens -= n;
            }
        }
        Ok(())
    }
}

fn limited(detail: String, retry_after: Option<u64>) -> ApiError {
    ApiError { retry_after, ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail) }
}
