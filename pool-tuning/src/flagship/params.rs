//! [`FlagshipParams`]: every knob of the flagship, with first-version defaults
//! (to be tuned against the simulator's scenario library). The strategy study
//! found better values (`docs/flagship.md`); they are not the defaults yet
//! because `tests/flagship.rs` builds its cases on these.

use serde::{Deserialize, Serialize};

/// Flagship parameters. Times in ms, gains are multipliers of the estimated
/// knee (`bdp = max_rate × min_latency`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlagshipParams {
    /// Starting limit.
    pub initial_limit: u32,
    /// Lower bound.
    pub min_limit: u32,
    /// Upper bound.
    pub max_limit: u32,
    /// Size normalisation: an op costs `1 + bytes / size_ref_bytes` work units,
    /// and its latency is divided by that cost (0 turns normalisation off).
    pub size_ref_bytes: u64,
    /// Completions a measurement round needs before it can end.
    pub min_round_samples: u32,
    /// Shortest round, ms.
    pub min_round_ms: u64,
    /// Rounds the delivery-rate maximum is kept.
    pub rate_window_rounds: u32,
    /// Time the minimum latency is kept, ms.
    pub latency_window_ms: u64,
    /// Startup: limit multiplier per round while the rate keeps growing.
    pub startup_growth: f64,
    /// Startup ends when the rate has not grown by `startup_full_growth` for
    /// this many rounds.
    pub startup_exit_rounds: u32,
    /// The growth that counts as "still growing" in startup.
    pub startup_full_growth: f64,
    /// Startup also ends when a round's latency exceeds the minimum by this ratio.
    pub startup_max_latency_ratio: f64,
    /// Steady-state gain on the knee.
    pub cruise_gain: f64,
    /// Gain of the probe-up round of each cycle.
    pub probe_up_gain: f64,
    /// Gain of the drain round after a probe.
    pub probe_down_gain: f64,
    /// Rounds in one probing cycle (probe up, drain, then cruise).
    pub cycle_rounds: u32,
    /// Enter probe-RTT when no round came within `probe_rtt_slack` of the
    /// minimum latency for this long, ms.
    pub probe_rtt_interval_ms: u64,
    /// Gain during probe-RTT.
    pub probe_rtt_gain: f64,
    /// Shortest probe-RTT phase, ms.
    pub probe_rtt_ms: u64,
    /// A round within `(1 + slack) × min latency` refreshes the minimum.
    pub probe_rtt_slack: f64,
    /// Multiplier on the limit at a throttle or timeout.
    pub throttle_beta: f64,
    /// No second decrease within this time, ms (at least one round).
    pub cooldown_ms: u64,
    /// Growth of the throttle ceiling per clean round.
    pub ceiling_growth: f64,
    /// After a throttle, the ceiling stays below `throttle_mark × limit at the
    /// throttle` for `throttle_memory_ms`, then probes past it.
    pub throttle_mark: f64,
    /// How long a throttle's level is remembered, ms.
    pub throttle_memory_ms: u64,
}

impl Default for FlagshipParams {
    fn default() -> Self {
        FlagshipParams {
            initial_limit: 8,
            min_limit: 1,
            max_limit: 1_000,
            size_ref_bytes: 1 << 20,
            min_round_samples: 4,
            min_round_ms: 10,
            rate_window_rounds: 10,
            latency_window_ms: 10_000,
            startup_growth: 2.0,
            startup_exit_rounds: 2,
            startup_full_growth: 1.25,
            startup_max_latency_ratio: 1.5,
            cruise_gain: 1.1,
            probe_up_gain: 1.3,
            probe_down_gain: 0.85,
            cycle_rounds: 8,
            probe_rtt_interval_ms: 10_000,
            probe_rtt_gain: 0.5,
            probe_rtt_ms: 200,
            probe_rtt_slack: 0.1,
            throttle_beta: 0.8,
            cooldown_ms: 100,
            ceiling_growth: 0.02,
            throttle_mark: 0.95,
            throttle_memory_ms: 30_000,
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
            ("startup_max_latency_ratio", self.startup_max_latency_ratio),
            ("cruise_gain", self.cruise_gain),
            ("probe_up_gain", self.probe_up_gain),
            ("probe_down_gain", self.probe_down_gain),
            ("probe_rtt_gain", self.probe_rtt_gain),
            ("throttle_mark", self.throttle_mark),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a finite number > 0 (got {v})"));
            }
        }
        if self.startup_growth < 1.0 {
            return Err("startup_growth must be >= 1".into());
        }
        if !(self.throttle_beta > 0.0 && self.throttle_beta < 1.0) {
            return Err(format!(
                "throttle_beta must be in (0, 1) (got {})",
                self.throttle_beta
            ));
        }
        for (name, v) in [
            ("ceiling_growth", self.ceiling_growth),
            ("probe_rtt_slack", self.probe_rtt_slack),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number >= 0 (got {v})"));
            }
        }
        if self.cycle_rounds < 2 {
            return Err("cycle_rounds must be >= 2 (probe up, then drain)".into());
        }
        if self.min_round_samples == 0 || self.rate_window_rounds == 0 {
            return Err("min_round_samples and rate_window_rounds must be >= 1".into());
        }
        if self.latency_window_ms == 0 {
            return Err("latency_window_ms must be > 0".into());
        }
        Ok(())
    }
}
