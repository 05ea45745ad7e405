//! `AwsAdaptiveRateLimiter`: the AWS SDKs' adaptive retry-mode client rate
//! limiter, a CUBIC-controlled token bucket armed by the first throttle.
//!
//! Source: `smithy-lang/smithy-rs` `aws-smithy-runtime/src/client/retries/
//! client_rate_limiter.rs` (commit `56ee88c`) and botocore
//! `retries/{adaptive,bucket,throttling}.py`; anchors §3.2. Constants:
//! `β = 0.7`, `C = 0.4`, rate smoothing `0.8`, 0.5 s measurement buckets,
//! `MIN_FILL_RATE = 0.5` tokens/s, `MIN_CAPACITY = 1`, 1 token per attempt.
//!
//! ```text
//! on every response at t (seconds):
//!     count += 1; tb = floor(2t) / 2
//!     if tb > last_tb: measured = 0.8 * count / (tb - last_tb) + 0.2 * measured
//!                      count = 0; last_tb = tb
//!     if throttled:
//!         rate = enabled ? min(measured, fill_rate) : measured
//!         W_max = rate; last_throttle = t; new = rate * β; enabled = true
//!     else:
//!         K = cbrt(W_max * (1 - β) / C); new = C * (t - last_throttle - K)^3 + W_max
//!     new = min(new, 2 * measured)
//!     refill at the old rate; fill_rate = max(new, 0.5); max_capacity = max(new, 1)
//!     capacity = min(capacity, max_capacity)
//! before each send (only once enabled):
//!     capacity = min(max_capacity, capacity + (t - last_refill) * fill_rate)
//!     if 1 > capacity: wait (1 - capacity) / fill_rate   else capacity -= 1
//! ```
//! A sub-nanosecond shortfall is granted (smithy-rs #4632: a zero wait would
//! spin). The state starts as the SDK's `ClientRateLimiter::new(t0)` at the
//! first call: `measured = 0.5`, `last_tb = floor(t0)`, `last_throttle = t0`.
//! A consequence kept as the SDKs have it: a throttle before the first 0.5 s
//! bucket closes uses that initial 0.5 req/s estimate, so the fill rate drops
//! to `MIN_FILL_RATE` and climbs back along the cubic (bounded by twice the
//! measured rate), which takes seconds. Only `Throttled` samples are throttles; a cancelled attempt got no response
//! and is not counted; every other outcome (success, error, timeout) is a
//! response. Time is seconds since the engine's epoch. Use it globally
//! (`Engine::set_rate_gate`) or per partition ([`AwsAdaptiveRateLimiter::factory`]),
//! alone or beside any concurrency controller.

use core::time::Duration;
use pool_core::control::RateGateFactory;
use pool_core::{AttemptSample, Instant, RateGate, SampleOutcome};
use serde::{Deserialize, Serialize};

const BETA: f64 = 0.7;
const SCALE_CONSTANT: f64 = 0.4;
const SMOOTH: f64 = 0.8;
const MIN_FILL_RATE: f64 = 0.5;
const MIN_CAPACITY: f64 = 1.0;

/// [`AwsAdaptiveRateLimiter`] parameters. The algorithm's constants are fixed
/// (they are not configurable in the SDKs either); only the per-attempt cost is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsAdaptiveParams {
    /// Tokens one attempt costs (1 in botocore and Retry Behavior 2.1).
    pub cost: f64,
}

impl Default for AwsAdaptiveParams {
    fn default() -> Self {
        AwsAdaptiveParams { cost: 1.0 }
    }
}

impl AwsAdaptiveParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.cost.is_finite() && self.cost > 0.0) {
            return Err(format!(
                "cost must be a finite number > 0 (got {})",
                self.cost
            ));
        }
        Ok(())
    }
}

/// The CUBIC client rate limiter. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsAdaptiveRateLimiter {
    cost: f64,
    initialised: bool,
    fill_rate: f64,
    max_capacity: f64,
    current_capacity: f64,
    last_timestamp: Option<f64>,
    enabled: bool,
    measured_tx_rate: f64,
    last_tx_rate_bucket: f64,
    request_count: u64,
    last_max_rate: f64,
    time_of_last_throttle: f64,
}

fn secs(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e9
}

impl AwsAdaptiveRateLimiter {
    /// A limiter that initialises itself like `ClientRateLimiter::new(t)` at
    /// the time of its first call.
    pub fn new(p: AwsAdaptiveParams) -> Self {
        let mut s = Self::zeroed();
        s.cost = p.cost;
        s.initialised = false;
        s
    }

    /// A limiter whose state is all zeros from the epoch (the SDK builder's
    /// defaults, the starting point of the SDKs' shared test vectors).
    pub fn zeroed() -> Self {
        AwsAdaptiveRateLimiter {
            cost: 1.0,
            initialised: true,
            fill_rate: 0.0,
            max_capacity: f64::MAX,
            current_capacity: 0.0,
            last_timestamp: None,
            enabled: false,
            measured_tx_rate: 0.0,
            last_tx_rate_bucket: 0.0,
            request_count: 0,
            last_max_rate: 0.0,
            time_of_last_throttle: 0.0,
        }
    }

    /// A factory for [`pool_core::Engine::set_partition_rate_gate_factory`]:
    /// one independent limiter per partition key.
    pub fn factory(p: AwsAdaptiveParams) -> RateGateFactory {
        Box::new(move |_key| Box::new(AwsAdaptiveRateLimiter::new(p)))
    }

    /// Whether a throttle has armed the bucket.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// The bucket's fill rate, tokens/s.
    pub fn fill_rate(&self) -> f64 {
        self.fill_rate
    }
    /// The smoothed measured send rate, responses/s.
    pub fn measured_rate(&self) -> f64 {
        self.measured_tx_rate
    }
    /// Tokens in the bucket.
    pub fn capacity(&self) -> f64 {
        self.current_capacity
    }
    /// The bucket's capacity.
    pub fn max_capacity(&self) -> f64 {
        self.max_capacity
    }

    fn init(&mut self, t: f64) {
        if !self.initialised {
            self.initialised = true;
            self.measured_tx_rate = MIN_FILL_RATE;
            self.last_tx_rate_bucket = libm::floor(t);
            self.time_of_last_throttle = t;
        }
    }

    fn refill(&mut self, t: f64) {
        if let Some(last) = self.last_timestamp {
            let fill = (t - last) * self.fill_rate;
            self.current_capacity = self.max_capacity.min(self.current_capacity + fill);
        }
        self.last_timestamp = Some(t);
    }

    fn time_window(&self) -> f64 {
        libm::cbrt(self.last_max_rate * (1.0 - BETA) / SCALE_CONSTANT)
    }

    fn measure(&mut self, t: f64) {
        let bucket = libm::floor(t * 2.0) / 2.0;
        self.request_count += 1;
        if bucket > self.last_tx_rate_bucket {
            let rate = self.request_count as f64 / (bucket - self.last_tx_rate_bucket);
            self.measured_tx_rate = rate * SMOOTH + self.measured_tx_rate * (1.0 - SMOOTH);
            self.request_count = 0;
            self.last_tx_rate_bucket = bucket;
        }
    }

    /// One response at `t` seconds (`update_rate_limiter`).
    pub fn update(&mut self, t: f64, throttled: bool) {
        self.init(t);
        self.measure(t);
        let calculated = if throttled {
            let rate = if self.enabled {
                self.measured_tx_rate.min(self.fill_rate)
            } else {
                self.measured_tx_rate
            };
            self.last_max_rate = rate;
            self.time_of_last_throttle = t;
            self.enabled = true;
            rate * BETA
        } else {
            let dt = t - self.time_of_last_throttle - self.time_window();
            SCALE_CONSTANT * dt * dt * dt + self.last_max_rate
        };
        let new_rate = calculated.min(2.0 * self.measured_tx_rate);
        self.refill(t);
        self.fill_rate = new_rate.max(MIN_FILL_RATE);
        self.max_capacity = new_rate.max(MIN_CAPACITY);
        self.current_capacity = self.current_capacity.min(self.max_capacity);
    }

    /// Asks to send at `t` seconds: `Ok` or the wait before trying again.
    pub fn acquire(&mut self, t: f64) -> Result<(), Duration> {
        self.acquire_secs(t)
            .map_err(|w| Duration::try_from_secs_f64(w).unwrap_or(Duration::MAX))
    }

    /// [`acquire`](Self::acquire) with the wait in seconds (no rounding).
    fn acquire_secs(&mut self, t: f64) -> Result<(), f64> {
        self.init(t);
        if !self.enabled {
            return Ok(());
        }
        self.refill(t);
        if self.cost > self.current_capacity {
            let wait = (self.cost - self.current_capacity) / self.fill_rate;
            if wait < 1e-9 {
                // Sub-nanosecond shortfall: grant, keeping capacity >= 0.
                self.current_capacity = (self.current_capacity - self.cost).max(0.0);
                return Ok(());
            }
            return Err(wait);
        }
        self.current_capacity -= self.cost;
        Ok(())
    }
}

impl Default for AwsAdaptiveRateLimiter {
    fn default() -> Self {
        AwsAdaptiveRateLimiter::new(AwsAdaptiveParams::default())
    }
}

impl RateGate for AwsAdaptiveRateLimiter {
    fn name(&self) -> &str {
        "aws-adaptive"
    }
    fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        let t = secs(now);
        self.init(t);
        if !self.enabled {
            return None;
        }
        self.refill(t);
        let short = self.cost - self.current_capacity;
        if short <= 0.0 {
            return None;
        }
        let wait = short / self.fill_rate;
        if wait < 1e-9 {
            return None;
        }
        let ns = libm::ceil(wait * 1e9).min(u64::MAX as f64) as u64;
        Some(now.saturating_add(Duration::from_nanos(ns.max(1))))
    }
    fn try_acquire(&mut self, now: Instant) -> Result<(), Instant> {
        self.acquire_secs(secs(now)).map_err(|wait| {
            // Round the wait up to a whole nanosecond so the retry finds the
            // token (rounding down would re-check just short of it).
            let ns = libm::ceil(wait * 1e9).min(u64::MAX as f64) as u64;
            now.saturating_add(Duration::from_nanos(ns.max(1)))
        })
    }
    fn on_sample(&mut self, now: Instant, sample: &AttemptSample) {
        match sample.outcome {
            SampleOutcome::Cancelled => {}
            o => self.update(secs(now), o == SampleOutcome::Throttled),
        }
    }
}
