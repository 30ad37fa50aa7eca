//! Token buckets per source address for the routes an unauthenticated or low-privilege caller
//! can make expensive: enrolment (a credential and a pending row each) and the operator API
//! (token checks hit the store). Memory is bounded: at most [`MAX_KEYS`] buckets, full ones are
//! dropped first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::ApiError;

/// Buckets kept at most (per class); beyond it, full buckets are forgotten.
pub const MAX_KEYS: usize = 65_536;

/// What a request is limited as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `POST /api/v1/agent/enrol`.
    Enrol,
    /// Routes that need an API token.
    Admin,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Limiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            per_sec,
            burst: per_sec * 4.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`, or say how many seconds until one is there.
    fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            // Fail closed: a poisoned limiter refuses.
            return Err(1);
        };
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
            if buckets.len() >= MAX_KEYS {
                return Err(1);
            }
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refill(b, now, self.per_sec, self.burst);
        if tokens >= 1.0 {
            *b = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *b = Bucket { tokens, at: now };
            let wait = ((1.0 - tokens) / self.per_sec).ceil();
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive number of seconds far below u64::MAX"
            )]
            Err((wait as u64).max(1))
        }
    }
}

fn refill(b: &Bucket, now: Instant, per_sec: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * per_sec).min(burst)
}

/// The verifier's limiters.
#[derive(Debug)]
pub struct Limits {
    enrol: Limiter,
    admin: Limiter,
}

impl Limits {
    /// Enrolment and operator rates, per second per source (burst 4x).
    #[must_use]
    pub fn new(enrol_per_sec: u32, admin_per_sec: u32) -> Self {
        Self {
            enrol: Limiter::new(enrol_per_sec),
            admin: Limiter::new(admin_per_sec),
        }
    }

    /// Take a token for `source` in `class`; 429 with `Retry-After` when there is none.
    pub fn check(&self, class: Class, source: &str) -> Result<(), ApiError> {
        let (limiter, what) = match class {
            Class::Enrol => (&self.enrol, "enrolment"),
            Class::Admin => (&self.admin, "API"),
        };
        limiter
            .take(source, Instant::now())
            .map_err(|retry_after_secs| ApiError::TooManyRequests {
                message: format!("too many {what} requests from {source}; retry later"),
                retry_after_secs,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_its_burst_then_refuses_until_refilled() {
        let l = Limiter::new(2);
        let t0 = Instant::now();
        for _ in 0..8 {
            assert!(l.take("a", t0).is_ok());
        }
        assert_eq!(l.take("a", t0), Err(1));
        // Another source has its own bucket.
        assert!(l.take("b", t0).is_ok());
        // Half a second later one token (2/s) is back.
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let limits = Limits::new(1, 1);
        for _ in 0..4 {
            limits.check(Class::Enrol, "10.0.0.1").unwrap();
        }
        match limits.check(Class::Enrol, "10.0.0.1") {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        // The operator bucket is separate.
        assert!(limits.check(Class::Admin, "10.0.0.1").is_ok());
    }
}
