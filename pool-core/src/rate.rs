//! Fixed request-rate limits: a token bucket the user sets per partition or class.

use crate::time::Instant;
use serde::{Deserialize, Serialize};

/// A request-rate limit: `per_second` sustained, `burst` tokens at most.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (> 0, finite).
    pub per_second: f64,
    /// Bucket capacity: requests that may start back to back (>= 1, finite).
    #[serde(default = "default_burst")]
    pub burst: f64,
}

fn default_burst() -> f64 {
    1.0
}

impl RateLimit {
    /// A limit of `per_second` with a burst of one second's worth (at least 1).
    pub fn per_second(per_second: f64) -> Self {
        RateLimit {
            per_second,
            burst: per_second.max(1.0),
        }
    }

    /// Checks the values; the error names the offending field under `field`.
    pub fn validate(&self, field: &str) -> Result<(), String> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(format!(
                "{field}.per_second must be a finite number > 0 (got {})",
                self.per_second
            ));
        }
        if !(self.burst.is_finite() && self.burst >= 1.0) {
            return Err(format!(
                "{field}.burst must be a finite number >= 1 (got {})",
                self.burst
            ));
        }
        Ok(())
    }
}

/// A token bucket refilled continuously from the time passed in.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `limit` must have been validated.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            limit,
            tokens: limit.burst,
            last: now,
        }
    }

    /// The limit in force.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Changes the limit, keeping the tokens already earned (capped at the new burst).
    pub fn set_limit(&mut self, limit: RateLimit, now: Instant) {
        self.refill(now);
        self.limit = limit;
        self.tokens = self.tokens.min(limit.burst);
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let dt = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.limit.per_second).min(self.limit.burst);
            self.last = now;
        }
    }

    /// `None` if a token is available now, otherwise when one will be.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            None
        } else {
            let secs = (1.0 - self.tokens) / self.limit.per_second;
            // Round up to the next nanosecond so that waking at the returned instant
            // always finds the token there.
            let nanos = (secs * 1e9).ceil().max(1.0);
            Some(now.saturating_add(core::time::Duration::from_nanos(nanos as u64)))
        }
    }

    /// Spends one token; callers check [`TokenBucket::ready_at`] first.
    pub fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }

    /// Tokens available now.
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_after_burst() {
        let mut b = TokenBucket::new(
            RateLimit {
                per_second: 10.0,
                burst: 2.0,
            },
            Instant::ZERO,
        );
        for _ in 0..2 {
            assert_eq!(b.ready_at(Instant::ZERO), None);
            b.take(Instant::ZERO);
        }
        let at = b.ready_at(Instant::ZERO).expect("empty");
        assert_eq!(at, Instant::from_millis(100));
        assert_eq!(b.ready_at(at), None);
    }

    #[test]
    fn validate_names_fields() {
        let bad = RateLimit {
            per_second: f64::NAN,
            burst: 1.0,
        };
        assert!(bad
            .validate("classes.get.rate")
            .unwrap_err()
            .contains("classes.get.rate.per_second"));
        let bad = RateLimit {
            per_second: 1.0,
            burst: 0.5,
        };
        assert!(bad.validate("r").unwrap_err().contains("r.burst"));
    }
}
