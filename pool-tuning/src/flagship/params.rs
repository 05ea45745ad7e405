//! [`FlagshipParams`]: every knob of the flagship. The defaults are the values
//! the strategy study selected (`docs/flagship.md` has the evidence).

use serde::{Deserialize, Serialize};

/// Flagship parameters. Times in ms; rates per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlagshipParams {
    /// Starting limit. 22, not 16: startup spends two rounds per step, and
    /// with multi-second rounds (128 MiB multipart uploads: 16 uploads use
    /// ~60 % of the NIC) the first step costs ~4 % of a 6 s batch; higher
    /// starts overshoot `bulk-download-16mib`'s knee (~28) and its p99.
    pub initial_limit: u32,
    /// Lower bound.
    pub min_limit: u32,
    /// Upper bound.
    pub max_limit: u32,
    /// Size normalisation: an op delivers `1 + bytes / size_ref_bytes` work
    /// units (0 turns normalisation off: every op is one unit).
    pub size_ref_bytes: u64,
    /// Completions a measurement round needs before it can end.
    pub min_round_samples: u32,
    /// Shortest round, ms.
    pub min_round_ms: u64,
    /// Startup: limit multiplier per round while the delivery rate keeps up.
    pub startup_growth: f64,
    /// Startup ends when a round's delivery rate grew by less than this factor
    /// over the previous round's (more concurrency stopped paying).
    pub startup_full_growth: f64,
    /// Startup grows by `startup_growth` only while a settled round's delivery
    /// rate grew at least this share of in proportion to its level (latency-
    /// bound work); otherwise a bandwidth knee is near and it grows by the
    /// knee span (1.4×), the smallest step that can prove the knee.
    pub startup_linearity: f64,
    /// Startup also ends once successful ops per second reach this rate (S3's
    /// documented per-prefix GET rate): beyond it a throttle bucket's burst can
    /// hide the overload for a second, so growth slows to `growth_per_s`.
    pub startup_max_rate: f64,
    /// Cruise: relative growth of the limit per second of saturated rounds.
    pub growth_per_s: f64,
    /// Depth of the request-rate bucket behind `startup_max_rate`, in seconds
    /// of that rate (S3: one second, model §4). The flagship tracks how much
    /// of it it has borrowed (0 turns the tracking off).
    pub burst_s: f64,
    /// Once this share of the burst is borrowed, the success rate is held near
    /// `startup_max_rate` (growing by `growth_per_s`) instead of running the
    /// bucket dry into a wave of 503s.
    pub burst_spend: f64,
    /// Relative delivery-rate tolerance of the knee: the knee is the smallest
    /// concurrency level within this share of the best rate.
    pub knee_tolerance: f64,
    /// The limit stays at most `cruise_gain ×` the knee level (once a higher
    /// level showed no more delivery).
    pub cruise_gain: f64,
    /// How long a level's delivery-rate measurement is trusted, ms.
    pub knee_window_ms: u64,
    /// At a throttle the limit drops at once to `throttle_beta ×` itself (then
    /// the round's end sets it from the measured success share).
    pub throttle_beta: f64,
    /// After a throttled round the limit is `throttle_margin ×` the slots that
    /// carried successes (Little's law on the measured capacity).
    pub throttle_margin: f64,
    /// Regrowth after a throttle, CUBIC-style relative to that capacity `w`:
    /// `w × (1 + cubic_c × (t − k)³)` with `t` in seconds since the throttle.
    pub cubic_c: f64,
    /// How long a throttle's capacity is remembered, ms.
    pub throttle_memory_ms: u64,
    /// Multiplier on the limit at a timeout (an attempt the engine gave up on).
    pub timeout_beta: f64,
    /// No second cut within this time, ms (at least one round).
    pub cooldown_ms: u64,
}

impl Default for FlagshipParams {
    fn default() -> Self {
        FlagshipParams {
            initial_limit: 22,
            min_limit: 1,
            max_limit: 1_000,
            size_ref_bytes: 1 << 20,
            min_round_samples: 16,
            min_round_ms: 10,
            startup_growth: 2.0,
            startup_full_growth: 1.5,
            startup_linearity: 0.9,
            startup_max_rate: 5_500.0,
            growth_per_s: 0.5,
            burst_s: 1.0,
            burst_spend: 0.8,
            knee_tolerance: 0.15,
            cruise_gain: 1.5,
            knee_window_ms: 5_000,
            throttle_beta: 0.9,
            throttle_margin: 0.95,
            cubic_c: 0.4,
            throttle_memory_ms: 30_000,
            timeout_beta: 0.9,
            cooldown_ms: 100,
        }
    }
}

impl FlagshipParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_limit == 0 || self.min_limit > self.max_limit {
            return Err(format!(
                "need 1 <= min_limit <= max_limit (got {} and {})",
                self.min_limit, self.max_limit
            ));
        }
        if self.initial_limit == 0 {
            return Err("initial_limit must be >= 1".into());
        }
        let positive = [
            ("startup_growth", self.startup_growth),
            ("startup_full_growth", self.startup_full_growth),
            ("startup_max_rate", self.startup_max_rate),
            ("cruise_gain", self.cruise_gain),
            ("cubic_c", self.cubic_c),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a finite number > 0 (got {v})"));
            }
        }
        if self.startup_growth < 1.0 || self.cruise_gain < 1.0 {
            return Err("startup_growth and cruise_gain must be >= 1".into());
        }
        for (name, v) in [
            ("throttle_beta", self.throttle_beta),
            ("throttle_margin", self.throttle_margin),
            ("timeout_beta", self.timeout_beta),
            ("knee_tolerance", self.knee_tolerance),
            ("startup_linearity", self.startup_linearity),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(format!("{name} must be in (0, 1) (got {v})"));
            }
        }
        if !(self.growth_per_s.is_finite() && self.growth_per_s >= 0.0) {
            return Err(format!(
                "growth_per_s must be a finite number >= 0 (got {})",
                self.growth_per_s
            ));
        }
        if !(self.burst_s.is_finite() && self.burst_s >= 0.0) {
            return Err(format!(
                "burst_s must be a finite number >= 0 (got {})",
                self.burst_s
            ));
        }
        if !(self.burst_spend > 0.0 && self.burst_spend <= 1.0) {
            return Err(format!(
                "burst_spend must be in (0, 1] (got {})",
                self.burst_spend
            ));
        }
        if self.min_round_samples == 0 {
            return Err("min_round_samples must be >= 1".into());
        }
        if self.knee_window_ms == 0 {
            return Err("knee_window_ms must be > 0".into());
        }
        Ok(())
    }
}
