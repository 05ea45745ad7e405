//! `EnvoyGradient`: Envoy's adaptive-concurrency gradient controller.
//!
//! Source: `envoyproxy/envoy` `source/extensions/filters/http/
//! adaptive_concurrency/controller/gradient_controller.cc` and the filter docs
//! (anchors §2). Defaults: `sample_aggregate_percentile = 50 %`,
//! `max_concurrency_limit = 1000`, `request_count = 50`, `jitter = 15 %`,
//! `min_concurrency = 3`, `buffer = 25 %`; `concurrency_update_interval` has no
//! default in Envoy (docs example 100 ms, used here) and neither has the minRTT
//! `interval` (docs example 60 s, used here).
//!
//! Every `concurrency_update_interval`, on the percentile `sampleRTT` of the
//! latencies collected since the last update:
//! ```text
//! gradient = clamp((minRTT + minRTT * buffer) / sampleRTT, 0.5, 2.0)
//! limit    = L * gradient
//! L_new    = clamp(floor(limit + sqrt(limit)), min_concurrency, max_concurrency_limit)
//! ```
//! (no update when no sample arrived). minRTT window: on start and then every
//! `interval + rand % ceil(interval * jitter)` ms (the RNG is the engine's), the
//! limit is remembered and **pinned to `min_concurrency`**, the samples are
//! cleared, and samples of attempts started before the window are ignored; once
//! `request_count` samples have arrived, `minRTT = percentile(samples)`, the
//! remembered limit is restored, and both timers are re-armed. Setting the
//! limit to `min_concurrency` on 5 consecutive updates outside a window forces
//! a new minRTT window at once. With `fixed_min_rtt_ms`, minRTT is pinned and
//! no window is ever entered (Envoy's `fixed_value`).
//!
//! Every response is a latency sample (Envoy records them all, including 503s
//! and timeouts); a cancelled attempt is not (`cancelLatencySample`).
//! Latencies are whole microseconds, as in Envoy. Two deliberate differences:
//! the percentile is the exact nearest-rank value (`sorted[ceil(p·n) − 1]`)
//! instead of libcircllhist's approximate bins, and the timers start at the
//! first sample (the engine gives a controller no clock before that). Timers
//! are `wake_at` requests. Known issue kept as is: pinning to
//! `min_concurrency` during minRTT windows sheds healthy throughput (#8337).

use crate::env::{controller_via_tuner, Env, Tuner};
use crate::signal::clamp_limit;
use core::time::Duration;
use pool_core::{AttemptSample, Instant, SampleOutcome};
use serde::{Deserialize, Serialize};

/// [`EnvoyGradient`] parameters (Envoy defaults; intervals from the docs example).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvoyParams {
    /// `concurrency_update_interval`, ms.
    pub update_interval_ms: u64,
    /// `min_rtt_calc_params.interval`, ms.
    pub min_rtt_interval_ms: u64,
    /// `min_rtt_calc_params.request_count`.
    pub request_count: u32,
    /// `min_rtt_calc_params.jitter`, percent.
    pub jitter_percent: f64,
    /// `min_rtt_calc_params.buffer`, percent.
    pub buffer_percent: f64,
    /// `min_rtt_calc_params.min_concurrency`.
    pub min_concurrency: u32,
    /// `concurrency_limit_params.max_concurrency_limit`.
    pub max_concurrency_limit: u32,
    /// `sample_aggregate_percentile`, percent.
    pub sample_aggregate_percentile: f64,
    /// `min_rtt_calc_params.fixed_value`, ms: pins minRTT (no probing windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_min_rtt_ms: Option<u64>,
}

impl Default for EnvoyParams {
    fn default() -> Self {
        EnvoyParams {
            update_interval_ms: 100,
            min_rtt_interval_ms: 60_000,
            request_count: 50,
            jitter_percent: 15.0,
            buffer_percent: 25.0,
            min_concurrency: 3,
            max_concurrency_limit: 1000,
            sample_aggregate_percentile: 50.0,
            fixed_min_rtt_ms: None,
        }
    }
}

impl EnvoyParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.update_interval_ms == 0 || self.min_rtt_interval_ms == 0 {
            return Err("update_interval_ms and min_rtt_interval_ms must be > 0".into());
        }
        if self.request_count == 0 {
            return Err("request_count must be >= 1".into());
        }
        for (name, v) in [
            ("jitter_percent", self.jitter_percent),
            ("buffer_percent", self.buffer_percent),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("{name} must be in [0, 100] (got {v})"));
            }
        }
        let p = self.sample_aggregate_percentile;
        if !(p > 0.0 && p <= 100.0) {
            return Err(format!(
                "sample_aggregate_percentile must be in (0, 100] (got {p})"
            ));
        }
        if self.min_concurrency == 0 || self.min_concurrency > self.max_concurrency_limit {
            return Err(format!(
                "need 1 <= min_concurrency <= max_concurrency_limit (got {} and {})",
                self.min_concurrency, self.max_concurrency_limit
            ));
        }
        Ok(())
    }
}

/// Envoy's gradient controller. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct EnvoyGradient {
    p: EnvoyParams,
    limit: u32,
    /// The limit to restore after a minRTT window; 0 outside a window.
    deferred: u32,
    min_rtt_us: u64,
    sample_rtt_us: u64,
    samples: Vec<u64>,
    /// Samples of attempts started before this are ignored (`None`: since start).
    epoch: Option<Instant>,
    consecutive_min: u32,
    next_reset: Option<Instant>,
    next_min_rtt: Option<Instant>,
    armed: Option<Instant>,
    started: bool,
}

impl EnvoyGradient {
    /// A controller with these parameters, in its first minRTT window (or with
    /// the fixed minRTT).
    pub fn new(p: EnvoyParams) -> Self {
        let fixed = p.fixed_min_rtt_ms;
        EnvoyGradient {
            limit: p.min_concurrency,
            deferred: if fixed.is_some() {
                0
            } else {
                p.min_concurrency
            },
            min_rtt_us: fixed.map_or(0, |ms| ms.saturating_mul(1_000)),
            sample_rtt_us: 0,
            samples: Vec::new(),
            epoch: None,
            consecutive_min: 0,
            next_reset: None,
            next_min_rtt: None,
            armed: None,
            started: false,
            p,
        }
    }

    /// The controller's limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }
    /// The current minRTT, µs (0 before the first window ends).
    pub fn min_rtt_us(&self) -> u64 {
        self.min_rtt_us
    }
    /// The last sampleRTT, µs.
    pub fn sample_rtt_us(&self) -> u64 {
        self.sample_rtt_us
    }
    /// When the next minRTT window is due, if scheduled.
    pub fn next_min_rtt_at(&self) -> Option<Instant> {
        self.next_min_rtt
    }
    /// Whether a minRTT window is open.
    pub fn in_min_rtt_window(&self) -> bool {
        self.deferred > 0
    }

    fn percentile(&mut self) -> u64 {
        self.samples.sort_unstable();
        let n = self.samples.len();
        let p = self.p.sample_aggregate_percentile / 100.0;
        let rank = libm::ceil(p * n as f64) as usize;
        let v = self.samples[rank.clamp(1, n) - 1];
        self.samples.clear();
        v
    }

    fn interval(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn jittered(&self, env: &mut dyn Env) -> Duration {
        let ms = self.p.min_rtt_interval_ms;
        if self.p.jitter_percent == 0.0 {
            return Self::interval(ms);
        }
        let range = libm::ceil(ms as f64 * self.p.jitter_percent / 100.0).max(1.0) as u64;
        Self::interval(ms + env.random_u64() % range)
    }

    fn set(&mut self, env: &mut dyn Env, new: u32) {
        let old = self.limit;
        let new = clamp_limit(
            new,
            (self.p.min_concurrency, self.p.max_concurrency_limit),
            env,
        );
        self.limit = new;
        let min = self.p.min_concurrency;
        if !self.in_min_rtt_window() && old == min && new == min {
            self.consecutive_min += 1;
        } else {
            self.consecutive_min = 0;
        }
        if self.consecutive_min >= 5 {
            // Envoy: `min_rtt_calc_timer_->enableTimer(0ms)`.
            self.next_min_rtt = Some(env.now());
        }
        env.set_limit(new);
    }

    fn enter_window(&mut self, env: &mut dyn Env) {
        if self.in_min_rtt_window() || self.p.fixed_min_rtt_ms.is_some() {
            return;
        }
        self.deferred = self.limit.max(1);
        self.set(env, self.p.min_concurrency);
        self.samples.clear();
        self.epoch = Some(env.now());
    }

    fn update_min_rtt(&mut self, env: &mut dyn Env) {
        if !self.samples.is_empty() {
            self.min_rtt_us = self.percentile();
        }
        let restore = self.deferred;
        self.set(env, restore);
        self.deferred = 0;
        let now = env.now();
        self.next_min_rtt = Some(now + self.jittered(env));
        self.next_reset = Some(now + Self::interval(self.p.update_interval_ms));
    }

    fn reset_sample_window(&mut self, env: &mut dyn Env) {
        if self.samples.is_empty() {
            return;
        }
        self.sample_rtt_us = self.percentile().max(1);
        let new = self.new_limit();
        self.set(env, new);
    }

    /// Envoy `calculateNewLimit` from the current minRTT and sampleRTT.
    pub fn new_limit(&self) -> u32 {
        let min_rtt = self.min_rtt_us as f64;
        let buffered = min_rtt + min_rtt * self.p.buffer_percent / 100.0;
        let gradient = (buffered / self.sample_rtt_us.max(1) as f64).clamp(0.5, 2.0);
        let limit = f64::from(self.limit) * gradient;
        let new = crate::signal::trunc_u32(limit + libm::sqrt(limit));
        new.clamp(self.p.min_concurrency, self.p.max_concurrency_limit)
    }

    fn start(&mut self, env: &mut dyn Env) {
        if self.started {
            return;
        }
        self.started = true;
        if !self.in_min_rtt_window() {
            self.next_reset = Some(env.now() + Self::interval(self.p.update_interval_ms));
        }
    }

    /// Requests a wake-up for the earliest pending timer, once.
    fn arm(&mut self, env: &mut dyn Env) {
        let next = match (self.next_reset, self.next_min_rtt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = next {
            if self.armed.is_none_or(|a| t < a) {
                env.wake_at(t);
                self.armed = Some(t);
            }
        }
    }
}

impl Default for EnvoyGradient {
    fn default() -> Self {
        EnvoyGradient::new(EnvoyParams::default())
    }
}

impl Tuner for EnvoyGradient {
    fn name(&self) -> &str {
        "envoy-gradient"
    }
    fn initial(&self) -> Option<u32> {
        Some(self.limit)
    }
    fn sample(&mut self, env: &mut dyn Env, s: &AttemptSample) {
        self.start(env);
        let counted =
            s.outcome != SampleOutcome::Cancelled && self.epoch.is_none_or(|e| s.started_at >= e);
        if counted {
            self.samples
                .push(s.latency().as_micros().min(u128::from(u64::MAX)) as u64);
            if self.in_min_rtt_window() && self.samples.len() >= self.p.request_count as usize {
                self.update_min_rtt(env);
            }
        }
        self.arm(env);
    }
    fn tick(&mut self, env: &mut dyn Env) {
        let now = env.now();
        if self.armed.is_some_and(|a| a <= now) {
            self.armed = None;
        }
        loop {
            let reset_due = self.next_reset.filter(|t| *t <= now);
            let probe_due = self.next_min_rtt.filter(|t| *t <= now);
            match (reset_due, probe_due) {
                (None, None) => break,
                (Some(r), p) if p.is_none_or(|p| r <= p) => {
                    // Envoy's sample-reset timer gives up inside a minRTT window
                    // and is re-armed when the window ends.
                    self.next_reset = None;
                    if !self.in_min_rtt_window() {
                        self.reset_sample_window(env);
                        self.next_reset = Some(now + Self::interval(self.p.update_interval_ms));
                    }
                }
                _ => {
                    self.next_min_rtt = None;
                    self.enter_window(env);
                }
            }
        }
        self.arm(env);
    }
    fn overridden(&mut self, limit: u32) {
        self.limit = limit;
        if self.in_min_rtt_window() {
            self.deferred = limit.max(1);
        }
    }
}

controller_via_tuner!(EnvoyGradient);
