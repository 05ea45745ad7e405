//! `Aimd`: additive increase, multiplicative decrease on loss.
//!
//! Source: Netflix `concurrency-limits` `limit/AIMDLimit.java` (commit
//! `78a74b9`); anchors §1.1. Defaults: `min_limit = 20`, `initial_limit = 20`,
//! `max_limit = 200`, `backoff_ratio = 0.9` (must be in `[0.5, 1.0)`),
//! `timeout = 5 s`.
//!
//! ```text
//! if drop or rtt > timeout:  L = floor(L * backoff_ratio)
//! elif inflight * 2 >= L:    L = L + 1
//! L = clamp(L, min_limit, max_limit)
//! ```
//! A drop is a throttle (503 SlowDown) or an engine timeout; transient errors
//! and cancels are ignored (see [`crate::signal::classify`]). `inflight` is the
//! in-flight count when the attempt started, itself included (as Netflix
//! records it at acquire). The limit is an integer: the `floor` is Java's
//! `(int)` cast. Optionally the samples go through a Netflix `WindowedLimit`
//! first (`window`, off by default as in Netflix's `AIMDLimit`).

use crate::env::{controller_via_tuner, Env, Tuner};
use crate::signal::{clamp_limit, trunc_u32};
use crate::window::{observe, Observation, Window, WindowConfig};
use pool_core::AttemptSample;
use serde::{Deserialize, Serialize};

/// [`Aimd`] parameters (Netflix defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AimdParams {
    /// Starting limit.
    pub initial_limit: u32,
    /// Lower bound.
    pub min_limit: u32,
    /// Upper bound.
    pub max_limit: u32,
    /// Multiplier on a drop, in `[0.5, 1.0)`.
    pub backoff_ratio: f64,
    /// An RTT above this (ms) counts as a drop.
    pub timeout_ms: u64,
    /// Aggregate samples in a Netflix `WindowedLimit` first.
    #[serde(with = "crate::window::setting")]
    pub window: Option<WindowConfig>,
}

impl Default for AimdParams {
    fn default() -> Self {
        AimdParams {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            backoff_ratio: 0.9,
            timeout_ms: 5_000,
            window: None,
        }
    }
}

impl AimdParams {
    /// Checks the Java builder's preconditions (plus `min <= max`).
    pub fn validate(&self) -> Result<(), String> {
        if !(0.5..1.0).contains(&self.backoff_ratio) {
            return Err(format!(
                "backoff_ratio must be in [0.5, 1.0) (got {})",
                self.backoff_ratio
            ));
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be > 0".into());
        }
        if self.min_limit == 0 || self.min_limit > self.max_limit {
            return Err(format!(
                "need 1 <= min_limit <= max_limit (got {} and {})",
                self.min_limit, self.max_limit
            ));
        }
        if let Some(w) = &self.window {
            w.validate()?;
        }
        Ok(())
    }
}

/// Netflix AIMD. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Aimd {
    p: AimdParams,
    limit: u32,
    window: Option<Window>,
}

impl Aimd {
    /// A controller with these parameters (validate them first; out-of-range
    /// values are used as given).
    pub fn new(p: AimdParams) -> Self {
        Aimd {
            limit: p.initial_limit.max(1),
            window: p.window.map(Window::new),
            p,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// One Netflix `_update`, returning the new limit.
    pub fn update(&mut self, env: &dyn Env, o: Observation) -> u32 {
        let timeout_ns = self.p.timeout_ms.saturating_mul(1_000_000);
        let mut l = self.limit;
        if o.did_drop || o.rtt_ns > timeout_ns {
            l = trunc_u32(f64::from(l) * self.p.backoff_ratio);
        } else if u64::from(o.inflight) * 2 >= u64::from(l) {
            l = l.saturating_add(1);
        }
        self.limit = clamp_limit(l, (self.p.min_limit, self.p.max_limit), env);
        self.limit
    }
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd::new(AimdParams::default())
    }
}

impl Tuner for Aimd {
    fn name(&self) -> &str {
        "aimd"
    }
    fn initial(&self) -> Option<u32> {
        Some(self.limit)
    }
    fn sample(&mut self, env: &mut dyn Env, sample: &AttemptSample) {
        if let Some(o) = observe(self.window.as_mut(), env, sample) {
            let l = self.update(env, o);
            env.set_limit(l);
        }
    }
    fn overridden(&mut self, limit: u32) {
        self.limit = limit;
    }
}

controller_via_tuner!(Aimd);
