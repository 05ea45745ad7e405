//! Netflix `WindowedLimit`: aggregates samples into time windows and hands one
//! aggregate sample per window to the limit algorithm behind it.
//!
//! Source: `concurrency-limits-core/.../limit/WindowedLimit.java` with
//! `ImmutableAverageSampleWindow` / `ImmutablePercentileSampleWindow`.
//!
//! ```text
//! on sample (start, rtt, inflight, drop):
//!     if rtt < min_rtt_threshold: discard
//!     window += sample          # min rtt, mean (or percentile) rtt, max inflight, OR of drops
//!     end = start + rtt
//!     if end > next_update:
//!         w = window; window = new
//!         next_update = end + clamp(2 * w.min_rtt, min_window, max_window)
//!         if w.count >= size: delegate.on_sample(start, w.tracked_rtt, w.max_inflight, w.drop)
//! ```
//! Defaults: `min_window = max_window = 1 s`, `size = 10` (must be ≥ 10),
//! `min_rtt_threshold = 100 µs`, average RTT. The percentile window keeps the
//! first `size` samples only (later ones in the same window are ignored, as in
//! Java) and tracks `sorted[round(n·p) − 1]`.

use crate::env::Env;
use crate::signal::{classify, inflight, Signal};
use core::time::Duration;
use pool_core::{AttemptSample, Instant};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Window settings (Netflix `WindowedLimit.Builder` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Shortest window, ms (≥ 100).
    pub min_window_ms: u64,
    /// Longest window, ms (≥ 100).
    pub max_window_ms: u64,
    /// Samples a window needs before it is handed on (≥ 10).
    pub size: u32,
    /// Samples faster than this (µs) are discarded.
    pub min_rtt_threshold_us: u64,
    /// `None`: mean RTT; `Some(p)`: the `p` percentile (0 < p ≤ 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            min_window_ms: 1_000,
            max_window_ms: 1_000,
            size: 10,
            min_rtt_threshold_us: 100,
            percentile: None,
        }
    }
}

impl WindowConfig {
    /// Checks the Java builder's preconditions.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_window_ms < 100 || self.max_window_ms < 100 {
            return Err("window min/max time must be >= 100 ms".into());
        }
        if self.min_window_ms > self.max_window_ms {
            return Err("window min_window_ms must be <= max_window_ms".into());
        }
        if self.size < 10 {
            return Err(format!("window size must be >= 10 (got {})", self.size));
        }
        if let Some(p) = self.percentile {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("window percentile must be in (0, 1] (got {p})"));
            }
        }
        Ok(())
    }
}

/// One window's aggregate, as handed to the limit algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    /// Mean (or percentile) RTT of the window, ns.
    pub rtt_ns: u64,
    /// Largest in-flight count seen.
    pub max_inflight: u32,
    /// Whether any sample was a drop.
    pub did_drop: bool,
}

#[derive(Debug, Clone, Default)]
struct Acc {
    min_rtt: Option<u64>,
    sum: u128,
    max_inflight: u32,
    count: u32,
    did_drop: bool,
    rtts: Vec<u64>,
}

/// The windowing state. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Window {
    cfg: WindowConfig,
    next_update_ns: u64,
    acc: Acc,
}

impl Window {
    /// An empty window; the first sample closes it at once (as in Java, where
    /// `nextUpdateTime` starts at 0).
    pub fn new(cfg: WindowConfig) -> Self {
        Window {
            cfg,
            next_update_ns: 0,
            acc: Acc::default(),
        }
    }

    /// Adds a sample; returns the aggregate when a ready window closes.
    pub fn add(
        &mut self,
        start: Instant,
        rtt: Duration,
        inflight: u32,
        did_drop: bool,
    ) -> Option<Aggregate> {
        let rtt_ns = pool_core::time::duration_nanos(rtt);
        if rtt_ns < self.cfg.min_rtt_threshold_us.saturating_mul(1_000) {
            return None;
        }
        self.push(rtt_ns, inflight, did_drop);
        let end = start.as_nanos().saturating_add(rtt_ns);
        if end <= self.next_update_ns {
            return None;
        }
        let w = core::mem::take(&mut self.acc);
        let min_rtt = w.min_rtt.unwrap_or(u64::MAX);
        let span = min_rtt.saturating_mul(2).clamp(
            self.cfg.min_window_ms * 1_000_000,
            self.cfg.max_window_ms * 1_000_000,
        );
        self.next_update_ns = end.saturating_add(span);
        if w.min_rtt.is_none() || w.count < self.cfg.size {
            return None;
        }
        Some(Aggregate {
            rtt_ns: self.tracked(&w),
            max_inflight: w.max_inflight,
            did_drop: w.did_drop,
        })
    }

    fn push(&mut self, rtt_ns: u64, inflight: u32, did_drop: bool) {
        let a = &mut self.acc;
        if self.cfg.percentile.is_some() {
            // Java's percentile window has a fixed array of `size` slots and
            // ignores samples once it is full.
            if a.count >= self.cfg.size {
                return;
            }
            a.rtts.push(rtt_ns);
        }
        a.min_rtt = Some(a.min_rtt.map_or(rtt_ns, |m| m.min(rtt_ns)));
        a.sum += u128::from(rtt_ns);
        a.max_inflight = a.max_inflight.max(inflight);
        a.count += 1;
        a.did_drop |= did_drop;
    }

    fn tracked(&self, w: &Acc) -> u64 {
        match self.cfg.percentile {
            None => (w.sum / u128::from(w.count.max(1))) as u64,
            Some(p) => {
                let mut v = w.rtts.clone();
                v.sort_unstable();
                // Java: (int) Math.round(n * p) - 1, i.e. floor(n·p + 0.5) − 1.
                let rank = libm::floor(v.len() as f64 * p + 0.5) as usize;
                v[rank.clamp(1, v.len()) - 1]
            }
        }
    }
}

/// One observation as Netflix's `Limit.onSample` receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// RTT in ns (at least 1: Java rejects 0).
    pub rtt_ns: u64,
    /// In-flight count (see [`crate::signal::inflight`]).
    pub inflight: u32,
    /// Whether it counts as a drop.
    pub did_drop: bool,
}

/// Turns an attempt into the observation a Netflix limit sees: ignored
/// outcomes give nothing, and with a window only a closing window's aggregate
/// comes out.
pub fn observe(
    window: Option<&mut Window>,
    env: &dyn Env,
    sample: &AttemptSample,
) -> Option<Observation> {
    let did_drop = match classify(sample.outcome) {
        Signal::Ignore => return None,
        Signal::Drop => true,
        Signal::Rtt => false,
    };
    let inflight = inflight(env, sample);
    let obs = match window {
        None => Observation {
            rtt_ns: pool_core::time::duration_nanos(sample.latency()),
            inflight,
            did_drop,
        },
        Some(w) => {
            let a = w.add(sample.started_at, sample.latency(), inflight, did_drop)?;
            Observation {
                rtt_ns: a.rtt_ns,
                inflight: a.max_inflight,
                did_drop: a.did_drop,
            }
        }
    };
    Some(Observation {
        rtt_ns: obs.rtt_ns.max(1),
        ..obs
    })
}

/// Serde for an optional window: `false` (none), `true` (defaults) or a table.
pub mod setting {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Flag(bool),
        Table(WindowConfig),
    }

    /// Serialises `None` as `false`, the defaults as `true`, else a table.
    pub fn serialize<S: Serializer>(w: &Option<WindowConfig>, s: S) -> Result<S::Ok, S::Error> {
        match w {
            None => s.serialize_bool(false),
            Some(c) if *c == WindowConfig::default() => s.serialize_bool(true),
            Some(c) => c.serialize(s),
        }
    }

    /// Accepts `true`, `false` or a table of [`WindowConfig`] fields.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WindowConfig>, D::Error> {
        match Repr::deserialize(d) {
            Ok(Repr::Flag(false)) => Ok(None),
            Ok(Repr::Flag(true)) => Ok(Some(WindowConfig::default())),
            Ok(Repr::Table(c)) => Ok(Some(c)),
            Err(_) => Err(serde::de::Error::custom(
                "window must be true, false or a table of min_window_ms, max_window_ms, \
                 size, min_rtt_threshold_us, percentile",
            )),
        }
    }
}
