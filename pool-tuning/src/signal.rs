//! Shared vocabulary: how a finished attempt counts for a loss/latency
//! algorithm, the in-flight figure to use, and clamping to two sets of bounds.

use crate::env::Env;
use core::time::Duration;
use pool_core::{AttemptSample, SampleOutcome};

/// What one attempt means to a Netflix-style limit algorithm.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A normal response: its latency is a valid RTT sample.
    Rtt,
    /// Overload: a throttle (503 SlowDown) or a timeout. Netflix `onDropped`.
    Drop,
    /// Says nothing about load (transient network error, caller cancel, lost
    /// hedge). Netflix `onIgnore`: no sample at all.
    Ignore,
}

/// The mapping every built-in latency/loss strategy uses.
///
/// * `Success` and `Permanent` (a 404 is a normal, timely answer) → [`Signal::Rtt`];
/// * `Throttled` and `TimedOut` → [`Signal::Drop`];
/// * `Transient` (5xx, connection reset: often instant, would fake a tiny RTT)
///   and `Cancelled` (no answer) → [`Signal::Ignore`].
pub fn classify(outcome: SampleOutcome) -> Signal {
    match outcome {
        SampleOutcome::Success | SampleOutcome::Permanent => Signal::Rtt,
        SampleOutcome::Throttled | SampleOutcome::TimedOut => Signal::Drop,
        SampleOutcome::Transient | SampleOutcome::Cancelled => Signal::Ignore,
    }
}

/// The in-flight count Netflix passes to `onSample` (in flight when the request
/// started, itself included). For the global scope it is exact
/// (`in_flight_at_start`); a class or partition scope only knows its in-flight
/// count now, so it uses that plus the finished attempt itself.
pub fn inflight(env: &dyn Env, sample: &AttemptSample) -> u32 {
    if env.is_global() {
        sample.in_flight_at_start
    } else {
        env.in_flight().saturating_add(1)
    }
}

/// A duration in nanoseconds as `f64` (exact below 2^53 ns ≈ 104 days).
pub fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// A duration in seconds as `f64`.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Clamps `x` to the strategy's own `[min, max]` and then to the engine's
/// bounds (which win when the two disagree), never below 1.
pub fn clamp_limit(x: u32, own: (u32, u32), env: &dyn Env) -> u32 {
    let (lo, hi) = effective_bounds(own, env);
    x.clamp(lo, hi)
}

/// The intersection of a strategy's bounds and the engine's, as `(lo, hi)`
/// with `1 <= lo <= hi`. If they do not overlap, the engine's bound nearest to
/// the strategy's range is used.
pub fn effective_bounds(own: (u32, u32), env: &dyn Env) -> (u32, u32) {
    let (emin, emax) = env.bounds();
    let emin = emin.max(1);
    let emax = emax.max(emin);
    let lo = own.0.clamp(emin, emax);
    let hi = own.1.clamp(lo, emax);
    (lo, hi)
}

/// `f64 → u32` by truncation (Java's `(int)` cast on a non-negative double),
/// saturating; NaN gives 0.
pub fn trunc_u32(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= u32::MAX as f64 {
        u32::MAX
    } else {
        x as u32
    }
}
