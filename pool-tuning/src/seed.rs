//! `SeedAdaptiveTuning`: a faithful port of s3db.js `AdaptiveTuning`, so s3db.js
//! users can see what it does to their workload today.
//!
//! Source: `forattini-dev/s3db.js` `src/concerns/adaptive-tuning.js`
//! (`2fb959a`), wired as `TasksPool` does at HEAD; specification
//! `s3db-operations-pool.md` §2.4 and §7. Defaults: `min_concurrency = 1`,
//! `max_concurrency = 100`, `target_latency = 200 ms`,
//! `target_memory_percent = 0.7` (a fraction), `adjustment_interval = 5000 ms`;
//! hard-coded: windows of 100 samples, ≥ 10 samples before acting, history of
//! 100 adjustments (`metrics()` shows the last 10).
//!
//! ```text
//! initial = max(min, floor(tier(total_mb) * used_factor * 0.5))   # NOT clamped to max
//!     tier: <512 MB → 2, <1 GiB → 5, <2 GiB → 10, <4 GiB → 20, <8 GiB → 30, else 50
//!     used = (total − free) / total; > 0.8 → tier = max(1, floor(tier·0.5)),
//!                                    > 0.7 → tier = max(1, floor(tier·0.7))
//! per resolved op: latencies += execution ms (the successful attempt; 0 if it
//!     failed); memory += memory fraction; throughput += min(len, 10); keep 100
//! every interval (needs ≥ 10 samples; L, M = means):
//!     M > mem_target               → −ceil(0.20·c)  "memory pressure"
//!     L > 1.5·target               → −ceil(0.10·c)  "high latency"
//!     L < 0.5·target, M < 0.8·mem_target → +ceil(0.20·c)  "scale up"
//!     L > 1.2·target               → −ceil(0.05·c)  "slight latency increase"
//!     c = max(min, min(max, c + delta))
//! after each resolved op (HEAD `_applyTunedConcurrency`): if c differs from the
//!     last value applied and from the limit in force, set the limit to c.
//! ```
//!
//! # Quirks, ported on purpose (do not fix them here)
//! * **F28, memory signal.** The seed reads `heapUsed / os.totalmem()`, process
//!   heap over *host* RAM (≈ 0.0002 on a 23.5 GB host), so the memory rule
//!   practically never fires. Here the fraction is the driver's
//!   [`external input`](pool_core::Engine::set_external_input), read at each
//!   record exactly where the seed sampled its heap; with no input it reads 0,
//!   which is what the seed's signal effectively is. The initial value depends
//!   on host RAM (`host_total_mb`, `host_free_mb`; default 16 GiB with half free,
//!   giving 25), and is cgroup-blind in the seed.
//! * **F34, wiring.** At bea69df2 nothing pushed the tuner's value into the
//!   pool; at HEAD `TasksPool` polls it after every completion. This port does
//!   what HEAD does: an interval's decision reaches the engine at the next
//!   resolved op, and a manual limit stays until the tuner's value changes.
//!   The seed's `setInterval` runs from construction; the engine gives a
//!   controller no clock before its first call, so ticks run at multiples of
//!   the interval from the engine's epoch (time zero), armed at the first call.
//! * **F35, naivety.** Throughput is a constant `min(n, 10)` and unused; error
//!   rate, queue wait and retries are ignored; there is no cooldown and the
//!   window is not reset after a step, so the same 100 samples keep cutting
//!   (25 → 22 → 19 → 17 → 15 → 13 → 11 → 9 → 8 with no new data);
//!   `last_adjustment` is never read; the initial value is not clamped to
//!   `max_concurrency`; zero-valued options fall back to the defaults (JS
//!   `||`); a large object's long transfer reads as high latency and shrinks
//!   concurrency; typical S3 latencies below 100 ms drive it straight to max.
//! * Failed and cancelled ops record a latency of 0 (execution is only set on
//!   success, F29). Rejected ops (queue full) never reached the seed's pool
//!   and are not recorded.

use crate::env::{controller_via_tuner, Env, Tuner};
use core::fmt;
use pool_core::{AttemptSample, Instant, OpId, OpSample, Resolution, SampleOutcome};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const WINDOW: usize = 100;
const MIN_SAMPLES: usize = 10;
const HISTORY: usize = 100;

/// [`SeedAdaptiveTuning`] parameters (the seed's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeedParams {
    /// `minConcurrency` (0 means the default, as JS `||` does).
    pub min_concurrency: u32,
    /// `maxConcurrency` (0 means the default).
    pub max_concurrency: u32,
    /// `targetLatency`, ms (0 means the default).
    pub target_latency_ms: f64,
    /// `targetMemoryPercent`, a fraction (0 means the default).
    pub target_memory_percent: f64,
    /// `adjustmentInterval`, ms (0 means the default).
    pub adjustment_interval_ms: u64,
    /// `os.totalmem()` in MB, for the initial value.
    pub host_total_mb: f64,
    /// `os.freemem()` in MB, for the initial value.
    pub host_free_mb: f64,
}

impl Default for SeedParams {
    fn default() -> Self {
        SeedParams {
            min_concurrency: 1,
            max_concurrency: 100,
            target_latency_ms: 200.0,
            target_memory_percent: 0.7,
            adjustment_interval_ms: 5_000,
            host_total_mb: 16_384.0,
            host_free_mb: 8_192.0,
        }
    }
}

impl SeedParams {
    /// Rejects negative or non-finite numbers (0 is allowed: it means "default").
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("target_latency_ms", self.target_latency_ms),
            ("target_memory_percent", self.target_memory_percent),
            ("host_total_mb", self.host_total_mb),
            ("host_free_mb", self.host_free_mb),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a finite number >= 0 (got {v})"));
            }
        }
        if self.host_total_mb <= 0.0 {
            return Err("host_total_mb must be > 0".into());
        }
        Ok(())
    }

    /// The options as the seed's constructor resolves them (`x || default`).
    pub fn resolved(&self) -> SeedParams {
        let d = SeedParams::default();
        let or = |v: f64, dv: f64| if v == 0.0 || v.is_nan() { dv } else { v };
        SeedParams {
            min_concurrency: if self.min_concurrency == 0 {
                d.min_concurrency
            } else {
                self.min_concurrency
            },
            max_concurrency: if self.max_concurrency == 0 {
                d.max_concurrency
            } else {
                self.max_concurrency
            },
            target_latency_ms: or(self.target_latency_ms, d.target_latency_ms),
            target_memory_percent: or(self.target_memory_percent, d.target_memory_percent),
            adjustment_interval_ms: if self.adjustment_interval_ms == 0 {
                d.adjustment_interval_ms
            } else {
                self.adjustment_interval_ms
            },
            ..*self
        }
    }
}

/// Why an adjustment was made (the seed's `reason`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// Mean memory above target (the fraction).
    MemoryPressure(f64),
    /// Mean latency above 1.5 × target (ms).
    HighLatency(f64),
    /// Latency under half the target and memory under 80 % of target.
    ScaleUp,
    /// Mean latency above 1.2 × target.
    SlightIncrease,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::MemoryPressure(m) => write!(f, "memory pressure ({:.1}%)", m * 100.0),
            Reason::HighLatency(l) => write!(f, "high latency ({l:.0}ms)"),
            Reason::ScaleUp => f.write_str("good performance, scaling up"),
            Reason::SlightIncrease => f.write_str("slight latency increase"),
        }
    }
}

/// One history entry (`concurrencyHistory`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjustment {
    /// When it was made.
    pub at: Instant,
    /// Concurrency before.
    pub old: u32,
    /// Concurrency after.
    pub new: u32,
    /// Why.
    pub reason: Reason,
    /// Mean latency, ms.
    pub avg_latency: f64,
    /// Mean memory fraction.
    pub avg_memory: f64,
    /// Mean "throughput" (a constant, F35).
    pub avg_throughput: f64,
}

/// `getMetrics()`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedMetrics {
    /// Current concurrency.
    pub current: u32,
    /// Mean latency, ms (0 with no samples).
    pub avg_latency: f64,
    /// Mean memory fraction.
    pub avg_memory: f64,
    /// Mean throughput.
    pub avg_throughput: f64,
    /// The last 10 adjustments.
    pub history: Vec<Adjustment>,
}

/// The s3db.js tuner. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SeedAdaptiveTuning {
    p: SeedParams,
    current: u32,
    latencies: VecDeque<f64>,
    memory: VecDeque<f64>,
    throughputs: VecDeque<f64>,
    history: VecDeque<Adjustment>,
    last_adjustment: Option<Instant>,
    monitoring: bool,
    next_tick: Option<Instant>,
    armed: Option<Instant>,
    last_applied: Option<u32>,
    success: Option<(OpId, f64)>,
}

fn mean(v: &VecDeque<f64>) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn push_capped(v: &mut VecDeque<f64>, x: f64) {
    v.push_back(x);
    if v.len() > WINDOW {
        v.pop_front();
    }
}

impl SeedAdaptiveTuning {
    /// A tuner with these options (resolved as the seed does), monitoring on.
    pub fn new(p: SeedParams) -> Self {
        let p = p.resolved();
        let current = Self::suggest_initial(p.host_total_mb, p.host_free_mb, p.min_concurrency);
        SeedAdaptiveTuning {
            p,
            current,
            latencies: VecDeque::new(),
            memory: VecDeque::new(),
            throughputs: VecDeque::new(),
            history: VecDeque::new(),
            last_adjustment: None,
            monitoring: true,
            next_tick: None,
            armed: None,
            last_applied: Some(current),
            success: None,
        }
    }

    /// `suggestInitial()` for a host with `total_mb` MB of RAM, `free_mb` free.
    pub fn suggest_initial(total_mb: f64, free_mb: f64, min: u32) -> u32 {
        let used = (total_mb - free_mb) / total_mb;
        let mut s: f64 = if total_mb < 512.0 {
            2.0
        } else if total_mb < 1024.0 {
            5.0
        } else if total_mb < 2048.0 {
            10.0
        } else if total_mb < 4096.0 {
            20.0
        } else if total_mb < 8192.0 {
            30.0
        } else {
            50.0
        };
        if used > 0.8 {
            s = libm::floor(s * 0.5).max(1.0);
        } else if used > 0.7 {
            s = libm::floor(s * 0.7).max(1.0);
        }
        (libm::floor(s * 0.5) as u32).max(min)
    }

    /// The options in force.
    pub fn params(&self) -> &SeedParams {
        &self.p
    }
    /// `getConcurrency()`.
    pub fn concurrency(&self) -> u32 {
        self.current
    }
    /// Sets the current concurrency as the seed's tests do
    /// (`tuner.currentConcurrency = n`): no clamping, no history entry.
    pub fn set_current(&mut self, n: u32) {
        self.current = n;
    }
    /// The latency window, ms.
    pub fn latencies(&self) -> &VecDeque<f64> {
        &self.latencies
    }
    /// The memory window (fractions).
    pub fn memory_usages(&self) -> &VecDeque<f64> {
        &self.memory
    }
    /// The throughput window.
    pub fn throughputs(&self) -> &VecDeque<f64> {
        &self.throughputs
    }
    /// All kept adjustments (at most 100).
    pub fn history(&self) -> &VecDeque<Adjustment> {
        &self.history
    }
    /// When the last adjustment happened (kept, never read, as in the seed).
    pub fn last_adjustment(&self) -> Option<Instant> {
        self.last_adjustment
    }
    /// Whether the interval timer is running (`intervalId` not null).
    pub fn is_monitoring(&self) -> bool {
        self.monitoring
    }
    /// `stop()`: no more interval ticks.
    pub fn stop(&mut self) {
        self.monitoring = false;
        self.next_tick = None;
    }

    /// `recordTaskMetrics`: one task's latency (ms) and the memory fraction.
    pub fn record(&mut self, latency_ms: f64, memory_fraction: f64) {
        self.latencies.push_back(latency_ms);
        self.memory.push_back(memory_fraction);
        if self.latencies.len() > WINDOW {
            self.latencies.pop_front();
            self.memory.pop_front();
        }
        let recent = self.latencies.len().min(10) as f64;
        push_capped(&mut self.throughputs, recent / 1000.0 * 1000.0);
    }

    /// `adjust()`: the new concurrency, or `None` when nothing changed.
    pub fn adjust(&mut self, now: Instant) -> Option<u32> {
        if self.latencies.len() < MIN_SAMPLES {
            return None;
        }
        let (l, m, t) = (
            mean(&self.latencies),
            mean(&self.memory),
            mean(&self.throughputs),
        );
        let c = f64::from(self.current);
        let target = self.p.target_latency_ms;
        let mem_target = self.p.target_memory_percent;
        let (delta, reason) = if m > mem_target {
            (-libm::ceil(c * 0.2), Reason::MemoryPressure(m))
        } else if l > target * 1.5 {
            (-libm::ceil(c * 0.1), Reason::HighLatency(l))
        } else if l < target * 0.5 && m < mem_target * 0.8 {
            (libm::ceil(c * 0.2), Reason::ScaleUp)
        } else if l > target * 1.2 {
            (-libm::ceil(c * 0.05), Reason::SlightIncrease)
        } else {
            return None;
        };
        if delta == 0.0 {
            return None;
        }
        let (min, max) = (
            f64::from(self.p.min_concurrency),
            f64::from(self.p.max_concurrency),
        );
        // JS: Math.max(min, Math.min(max, c + delta)) — not a clamp when min > max.
        let new = (c + delta).min(max).max(min) as u32;
        if new == self.current {
            return None;
        }
        let old = self.current;
        self.current = new;
        self.last_adjustment = Some(now);
        self.history.push_back(Adjustment {
            at: now,
            old,
            new,
            reason,
            avg_latency: l,
            avg_memory: m,
            avg_throughput: t,
        });
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
        Some(new)
    }

    /// `getMetrics()`.
    pub fn metrics(&self) -> SeedMetrics {
        let skip = self.history.len().saturating_sub(10);
        SeedMetrics {
            current: self.current,
            avg_latency: mean(&self.latencies),
            avg_memory: mean(&self.memory),
            avg_throughput: mean(&self.throughputs),
            history: self.history.iter().skip(skip).copied().collect(),
        }
    }

    /// The interval as a duration.
    fn interval_ns(&self) -> u64 {
        self.p.adjustment_interval_ms.saturating_mul(1_000_000)
    }

    /// Arms the interval timer at the next multiple of the interval after `now`.
    fn arm(&mut self, env: &mut dyn Env) {
        if !self.monitoring {
            return;
        }
        let now = env.now().as_nanos();
        let iv = self.interval_ns().max(1);
        let due = self.next_tick.get_or_insert_with(|| {
            Instant::from_nanos((now / iv).saturating_add(1).saturating_mul(iv))
        });
        let due = *due;
        if self.armed != Some(due) {
            env.wake_at(due);
            self.armed = Some(due);
        }
    }
}

impl Default for SeedAdaptiveTuning {
    fn default() -> Self {
        SeedAdaptiveTuning::new(SeedParams::default())
    }
}

impl Tuner for SeedAdaptiveTuning {
    fn name(&self) -> &str {
        "s3db-adaptive"
    }
    fn initial(&self) -> Option<u32> {
        Some(self.current)
    }
    fn sample(&mut self, env: &mut dyn Env, s: &AttemptSample) {
        if s.outcome == SampleOutcome::Success {
            self.success = Some((s.attempt.op, s.latency().as_nanos() as f64 / 1e6));
        }
        self.arm(env);
    }
    fn op_resolved(&mut self, env: &mut dyn Env, op: &OpSample) {
        self.arm(env);
        let latency = match op.resolution {
            Resolution::Rejected { .. } => return,
            Resolution::Succeeded { .. } => match self.success.take() {
                Some((id, ms)) if id == op.op => ms,
                _ => 0.0,
            },
            _ => 0.0,
        };
        let memory = env.external_input().unwrap_or(0.0);
        self.record(latency, memory);
        let c = self.current;
        // The engine clamps every limit to its bounds; clamping here too keeps
        // the "differs from the limit in force" test meaningful.
        let (lo, hi) = env.bounds();
        let applied = c.clamp(lo.max(1), hi.max(lo.max(1)));
        if c > 0 && Some(c) != self.last_applied && applied != env.limit() {
            env.set_limit(applied);
            self.last_applied = Some(c);
        }
    }
    fn tick(&mut self, env: &mut dyn Env) {
        let now = env.now();
        match self.next_tick {
            Some(due) if due <= now && self.monitoring => {
                self.adjust(now);
                let iv = self.interval_ns().max(1);
                // setInterval cadence; a late wake-up skips the missed periods.
                let next = (now.as_nanos() / iv).saturating_add(1).saturating_mul(iv);
                self.next_tick = Some(Instant::from_nanos(next));
                self.armed = None;
                self.arm(env);
            }
            _ => {}
        }
    }
}

controller_via_tuner!(SeedAdaptiveTuning);
