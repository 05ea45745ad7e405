//! `Gradient2`: limit follows the ratio of a long-term RTT average to the
//! current RTT.
//!
//! Source: Netflix `concurrency-limits` `limit/Gradient2Limit.java` and
//! `limit/measurement/ExpAvgMeasurement.java` (commit `78a74b9`); anchors §1.1.
//! Defaults: `initial_limit = 20`, `min_limit = 20`, `max_concurrency = 200`,
//! `smoothing = 0.2`, `queue_size = 4` (a constant), `long_window = 600`,
//! `rtt_tolerance = 1.5`.
//!
//! ```text
//! short = rtt;  long = ema.add(rtt)       # mean of the first 10, then EMA 2/(600+1)
//! if long / short > 2: ema.value *= 0.95  # recover fast after an overload ends
//! if inflight < L / 2: keep L             # app-limited
//! gradient = clamp(rtt_tolerance * long / short, 0.5, 1.0)
//! new = L * gradient + queue_size
//! L = clamp(L * (1 - smoothing) + new * smoothing, min_limit, max_concurrency)
//! ```
//! As the current code behaves: `shortWindow` and `driftMultiplier` are no-op
//! builder options, so the "short RTT" is simply the incoming sample, which in
//! Netflix's own examples is the aggregate of a `WindowedLimit` (1 s window,
//! ≥ 10 samples, mean RTT, max in-flight). That decorator is **on by default
//! here** (`window = true`) because that is how Gradient2 is meant to be fed;
//! `window = false` feeds it every attempt. `didDrop` is ignored (issue #176):
//! a throttle's or timeout's RTT is used like any other. During the 10-sample
//! warm-up the `0.95` decay is overwritten by the next mean (as in Java). Known
//! drift: under modest overload (gradient ≈ 0.8) the `+queue_size` term keeps
//! the limit growing (PR #134 discussion). The engine gets `floor(L)`.

use crate::env::{controller_via_tuner, Env, Tuner};
use crate::signal::{clamp_limit, effective_bounds, trunc_u32};
use crate::window::{observe, Observation, Window, WindowConfig};
use pool_core::AttemptSample;
use serde::{Deserialize, Serialize};

/// [`Gradient2`] parameters (Netflix defaults; windowed by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gradient2Params {
    /// Starting limit.
    pub initial_limit: u32,
    /// Lower bound.
    pub min_limit: u32,
    /// Upper bound.
    pub max_concurrency: u32,
    /// Weight of the new value, in `(0, 1]`.
    pub smoothing: f64,
    /// The constant queue allowance added each update.
    pub queue_size: u32,
    /// EMA window (samples) of the long RTT.
    pub long_window: u32,
    /// Tolerated `short / long` RTT ratio (≥ 1).
    pub rtt_tolerance: f64,
    /// Aggregate samples in a Netflix `WindowedLimit` first.
    #[serde(with = "crate::window::setting")]
    pub window: Option<WindowConfig>,
}

impl Default for Gradient2Params {
    fn default() -> Self {
        Gradient2Params {
            initial_limit: 20,
            min_limit: 20,
            max_concurrency: 200,
            smoothing: 0.2,
            queue_size: 4,
            long_window: 600,
            rtt_tolerance: 1.5,
            window: Some(WindowConfig::default()),
        }
    }
}

impl Gradient2Params {
    /// Checks the values (Java: tolerance ≥ 1).
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rtt_tolerance >= 1.0 && self.rtt_tolerance.is_finite()) {
            return Err(format!(
                "rtt_tolerance must be >= 1.0 (got {})",
                self.rtt_tolerance
            ));
        }
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(format!(
                "smoothing must be in (0, 1] (got {})",
                self.smoothing
            ));
        }
        if self.min_limit == 0 || self.min_limit > self.max_concurrency {
            return Err(format!(
                "need 1 <= min_limit <= max_concurrency (got {} and {})",
                self.min_limit, self.max_concurrency
            ));
        }
        if self.long_window == 0 {
            return Err("long_window must be >= 1".into());
        }
        if let Some(w) = &self.window {
            w.validate()?;
        }
        Ok(())
    }
}

/// Netflix `ExpAvgMeasurement(window, warmup)`.
#[derive(Debug, Clone)]
pub struct ExpAvg {
    value: f64,
    sum: f64,
    count: u32,
    window: u32,
    warmup: u32,
}

impl ExpAvg {
    /// An empty average.
    pub fn new(window: u32, warmup: u32) -> Self {
        ExpAvg {
            value: 0.0,
            sum: 0.0,
            count: 0,
            window,
            warmup,
        }
    }
    /// Adds a sample and returns the new value.
    pub fn add(&mut self, x: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.sum += x;
            self.value = self.sum / f64::from(self.count);
        } else {
            let f = 2.0 / (f64::from(self.window) + 1.0);
            self.value = self.value * (1.0 - f) + x * f;
        }
        self.value
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        self.value
    }
    /// Scales the value (Java `update(v -> v * k)`).
    pub fn scale(&mut self, k: f64) {
        self.value *= k;
    }
}

/// Netflix Gradient2. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Gradient2 {
    p: Gradient2Params,
    estimate: f64,
    long_rtt: ExpAvg,
    window: Option<Window>,
}

impl Gradient2 {
    /// A controller with these parameters.
    pub fn new(p: Gradient2Params) -> Self {
        Gradient2 {
            estimate: f64::from(p.initial_limit.max(1)),
            long_rtt: ExpAvg::new(p.long_window, 10),
            window: p.window.map(Window::new),
            p,
        }
    }

    /// The real-valued limit estimate.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// The long-RTT average, ns.
    pub fn long_rtt_ns(&self) -> f64 {
        self.long_rtt.get()
    }

    /// One Netflix `_update`, returning the new integer limit.
    pub fn update(&mut self, env: &dyn Env, o: Observation) -> u32 {
        let est = self.estimate;
        let queue = f64::from(self.p.queue_size);
        let short = o.rtt_ns.max(1) as f64;
        let long = self.long_rtt.add(short);
        if long / short > 2.0 {
            self.long_rtt.scale(0.95);
        }
        if f64::from(o.inflight) < est / 2.0 {
            return trunc_u32(est);
        }
        let gradient = (self.p.rtt_tolerance * long / short).clamp(0.5, 1.0);
        let new = est * gradient + queue;
        let new = est * (1.0 - self.p.smoothing) + new * self.p.smoothing;
        let (lo, hi) = effective_bounds((self.p.min_limit, self.p.max_concurrency), env);
        self.estimate = new
            .clamp(
                f64::from(self.p.min_limit),
                f64::from(self.p.max_concurrency),
            )
            .clamp(f64::from(lo), f64::from(hi));
        trunc_u32(self.estimate)
    }
}

impl Default for Gradient2 {
    fn default() -> Self {
        Gradient2::new(Gradient2Params::default())
    }
}

impl Tuner for Gradient2 {
    fn name(&self) -> &str {
        "gradient2"
    }
    fn initial(&self) -> Option<u32> {
        Some(trunc_u32(self.estimate).max(1))
    }
    fn sample(&mut self, env: &mut dyn Env, sample: &AttemptSample) {
        if let Some(o) = observe(self.window.as_mut(), env, sample) {
            let l = self.update(env, o);
            let l = clamp_limit(l, (self.p.min_limit, self.p.max_concurrency), env);
            env.set_limit(l);
        }
    }
    fn overridden(&mut self, limit: u32) {
        self.estimate = f64::from(limit);
    }
}

controller_via_tuner!(Gradient2);
