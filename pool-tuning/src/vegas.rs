//! `Vegas`: TCP-Vegas-style queue estimate from the no-load RTT.
//!
//! Source: Netflix `concurrency-limits` `limit/VegasLimit.java` (commit
//! `78a74b9`); anchors §1.1. Defaults: `initial_limit = 20`,
//! `max_concurrency = 1000`, `smoothing = 1.0`, `probe_multiplier = 30`, and,
//! with `L10(x) = max(1, floor(log10 x))` (`Log10RootIntFunction`):
//! `alpha(L) = 3·L10(L)`, `beta(L) = 6·L10(L)`, `threshold(L) = L10(L)`,
//! `increase(L) = L + L10(L)`, `decrease(L) = L − L10(L)`. (The Java class doc
//! still says `alpha = max(3, 10 % of L)`; the code uses the log10 functions.)
//!
//! ```text
//! probe_count += 1
//! if jitter * probe_multiplier * L <= probe_count:    # jitter ~ U[0.5, 1), redrawn
//!     rtt_noload = rtt; probe_count = 0; keep L        # periodic re-probe
//! elif rtt_noload == 0 or rtt < rtt_noload: rtt_noload = rtt; keep L
//! else:
//!     queue = ceil(L * (1 - rtt_noload / rtt))
//!     if drop:                   new = decrease(L)
//!     elif inflight * 2 < L:     keep L                # app-limited
//!     elif queue <= threshold:   new = L + beta(L)
//!     elif queue < alpha(L):     new = increase(L)
//!     elif queue > beta(L):      new = decrease(L)
//!     else:                      keep L
//!     L = (1 - smoothing) * L + smoothing * clamp(new, 1, max_concurrency)
//! ```
//! `L` is a real number; the engine gets `floor(L)`. The alpha/beta/threshold
//! functions take `floor(L)`. The probe jitter comes from the engine's seeded
//! RNG, drawn at the first sample (Java draws it in the constructor). A zero
//! RTT (Java throws) is taken as 1 ns. Drops are throttles and timeouts (see
//! [`crate::signal::classify`]). `alpha`/`beta` may be fixed numbers instead
//! (the Java builder's `alpha(int)` / `beta(int)`).

use crate::env::{controller_via_tuner, unit_f64, Env, Tuner};
use crate::signal::{clamp_limit, effective_bounds, trunc_u32};
use crate::window::{observe, Observation, Window, WindowConfig};
use pool_core::AttemptSample;
use serde::{Deserialize, Serialize};

/// [`Vegas`] parameters (Netflix defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VegasParams {
    /// Starting limit.
    pub initial_limit: u32,
    /// Upper bound.
    pub max_concurrency: u32,
    /// Weight of the new value, in `(0, 1]`.
    pub smoothing: f64,
    /// A fixed alpha instead of `3·L10(L)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<u32>,
    /// A fixed beta instead of `6·L10(L)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<u32>,
    /// Re-probe the no-load RTT every `jitter · probe_multiplier · L` samples.
    pub probe_multiplier: u32,
    /// Aggregate samples in a Netflix `WindowedLimit` first.
    #[serde(with = "crate::window::setting")]
    pub window: Option<WindowConfig>,
}

impl Default for VegasParams {
    fn default() -> Self {
        VegasParams {
            initial_limit: 20,
            max_concurrency: 1000,
            smoothing: 1.0,
            alpha: None,
            beta: None,
            probe_multiplier: 30,
            window: None,
        }
    }
}

impl VegasParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(format!(
                "smoothing must be in (0, 1] (got {})",
                self.smoothing
            ));
        }
        if self.initial_limit == 0 || self.max_concurrency == 0 {
            return Err("initial_limit and max_concurrency must be >= 1".into());
        }
        if self.probe_multiplier == 0 {
            return Err("probe_multiplier must be >= 1".into());
        }
        if let Some(w) = &self.window {
            w.validate()?;
        }
        Ok(())
    }
}

/// `Log10RootIntFunction`: `max(1, floor(log10 x))`, and 1 for `x = 0`.
pub fn log10_root(x: u32) -> u32 {
    if x == 0 {
        1
    } else {
        x.ilog10().max(1)
    }
}

/// Netflix Vegas. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Vegas {
    p: VegasParams,
    estimate: f64,
    rtt_noload_ns: u64,
    probe_count: u64,
    probe_jitter: Option<f64>,
    window: Option<Window>,
}

impl Vegas {
    /// A controller with these parameters.
    pub fn new(p: VegasParams) -> Self {
        Vegas {
            estimate: f64::from(p.initial_limit.max(1)),
            rtt_noload_ns: 0,
            probe_count: 0,
            probe_jitter: None,
            window: p.window.map(Window::new),
            p,
        }
    }

    /// The real-valued limit estimate.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// The current no-load RTT, ns (0 before the first sample).
    pub fn rtt_noload_ns(&self) -> u64 {
        self.rtt_noload_ns
    }

    fn alpha(&self, l: u32) -> u32 {
        self.p.alpha.unwrap_or(3 * log10_root(l))
    }

    fn beta(&self, l: u32) -> u32 {
        self.p.beta.unwrap_or(6 * log10_root(l))
    }

    /// One Netflix `_update`, returning the new integer limit.
    pub fn update(&mut self, env: &mut dyn Env, o: Observation) -> u32 {
        let jitter = match self.probe_jitter {
            Some(j) => j,
            None => self.redraw_jitter(env),
        };
        self.probe_count += 1;
        let rtt = o.rtt_ns.max(1);
        if jitter * f64::from(self.p.probe_multiplier) * self.estimate <= self.probe_count as f64 {
            self.redraw_jitter(env);
            self.probe_count = 0;
            self.rtt_noload_ns = rtt;
            return trunc_u32(self.estimate);
        }
        if self.rtt_noload_ns == 0 || rtt < self.rtt_noload_ns {
            self.rtt_noload_ns = rtt;
            return trunc_u32(self.estimate);
        }
        self.update_estimate(env, rtt, o.inflight, o.did_drop)
    }

    fn redraw_jitter(&mut self, env: &mut dyn Env) -> f64 {
        // Java: ThreadLocalRandom.nextDouble(0.5, 1).
        let j = 0.5 + 0.5 * unit_f64(env);
        self.probe_jitter = Some(j);
        j
    }

    fn update_estimate(&mut self, env: &dyn Env, rtt: u64, inflight: u32, drop: bool) -> u32 {
        let est = self.estimate;
        let l = trunc_u32(est);
        let queue = libm::ceil(est * (1.0 - self.rtt_noload_ns as f64 / rtt as f64));
        let l10 = f64::from(log10_root(l));
        let new = if drop {
            est - l10
        } else if f64::from(inflight) * 2.0 < est {
            return l;
        } else if queue <= f64::from(log10_root(l)) {
            est + f64::from(self.beta(l))
        } else if queue < f64::from(self.alpha(l)) {
            est + l10
        } else if queue > f64::from(self.beta(l)) {
            est - l10
        } else {
            return l;
        };
        let new = new.clamp(1.0, f64::from(self.p.max_concurrency));
        let smoothed = (1.0 - self.p.smoothing) * est + self.p.smoothing * new;
        let (lo, hi) = effective_bounds((1, self.p.max_concurrency), env);
        self.estimate = smoothed.clamp(f64::from(lo), f64::from(hi));
        trunc_u32(self.estimate)
    }
}

impl Default for Vegas {
    fn default() -> Self {
        Vegas::new(VegasParams::default())
    }
}

impl Tuner for Vegas {
    fn name(&self) -> &str {
        "vegas"
    }
    fn initial(&self) -> Option<u32> {
        Some(trunc_u32(self.estimate).max(1))
    }
    fn sample(&mut self, env: &mut dyn Env, sample: &AttemptSample) {
        if let Some(o) = observe(self.window.as_mut(), env, sample) {
            let l = self.update(env, o);
            let l = clamp_limit(l, (1, self.p.max_concurrency), env);
            env.set_limit(l);
        }
    }
    fn overridden(&mut self, limit: u32) {
        self.estimate = f64::from(limit);
    }
}

controller_via_tuner!(Vegas);
