//! `Flagship`: opspool's own controller — an online knee search on delivered
//! work versus concurrency, with a throttle response that measures the
//! server's capacity (Little's law on successes) and probes back CUBIC-style.
//!
//! # Measurements
//! * **Rounds.** A round ends when an op that started after the round began
//!   completes, with at least `min_round_samples` answers (successes and
//!   throttles), `min_round_ms`, and at least the round's mean answer latency
//!   (so the in-flight ops turn over once: shorter windows measure noise).
//!   Per round: the *level* (mean in-flight count when its answers started),
//!   the *delivery rate* (work units per second), successful ops per second
//!   and the throttled share.
//! * **Size-normalised work.** An op delivers `1 + bytes / size_ref_bytes`
//!   units, so a 16 MiB GET counts for its bytes and a HEAD for its request
//!   (seed flaw F35: large objects must not look like congestion).
//! * **Settled rounds.** Right after the limit moved by more than 10 %, or
//!   after an app-limited round, a round's rate lags its level (its ops
//!   started at another level), so such a round is not a measurement: startup
//!   and cruise hold the limit for it and measure the next one. A round whose
//!   level is below 0.8× the limit is still filling up and is not recorded
//!   in the knee table either (a false knee there once capped the limit for
//!   good after a latency shift).
//! * **App-limited** rounds (at some completion the queue was empty and fewer
//!   attempts than the limit were in flight) say nothing about capacity: they
//!   never grow the limit, and trim it to twice the peak in-flight count.
//!
//! # The knee ([`KneeTable`])
//! Each settled, saturated, unthrottled round records `(level, rate)`. The
//! knee is the smallest level whose rate is within `knee_tolerance` of the
//! best, once a level ≥ 1.4× higher ([`KNEE_SPAN`]) was measured — the
//! study's own oracle, run online. The limit stays ≤ `cruise_gain × knee`;
//! every round at or above the knee that buys no more than the plateau keeps
//! the knee fresh, so it does not age out while the limit sits above it; one
//! that delivers 1.5× less than the best means the server slowed down, and
//! the table starts over (else the slower round would keep a stale knee
//! fresh for good). No latency floor is
//! involved: S3 latency is lognormal, so a minimum of noisy samples sinks a
//! BDP estimate (the first flagship's failure), and a floor measured before a
//! slowdown starves the limit after it. While delivery grows with concurrency
//! (latency-bound work) there is no knee.
//!
//! # Growth
//! * **Startup**: × `startup_growth` per settled saturated round, ending when
//!   a settled round's rate grew less than `startup_full_growth` per
//!   `startup_growth` of level over the last one (`full^(log(ratio)/log(growth))`
//!   for the level ratio really stepped: the bandwidth knee) in two settled
//!   rounds in a row (one slow round can be a tail answer), or at the first
//!   throttle. A step whose rate grew less than `startup_linearity ×` its
//!   level ratio (the knee is near) is followed by a step of only the knee
//!   span, so the round that proves the knee overshoots it by 1.4×, not 2×. It aims no
//!   higher than `startup_max_rate` successful ops/s (Little's law:
//!   `level × max_rate / ops_rate`) and ends there: S3 documents 5,500 GET/s
//!   per prefix, and past it a token bucket's burst hides the overload for a
//!   second, so a doubling search would overshoot into a 503 storm.
//! * **Cruise**: `limit × (1 + growth_per_s)^dt` per settled saturated round
//!   of `dt` seconds, or after a throttle (below) the CUBIC curve if higher.
//!
//! # The burst budget ([`BurstBudget`])
//! Above `startup_max_rate` a prefix lends its bucket's burst
//! (`burst_s` seconds of the rate). The budget tracks what was borrowed,
//! `∫ (ok rate − startup_max_rate) dt`; once `burst_spend` of it is gone the
//! limit is *paced*: `ceiling × mean latency` (Little's law), the ceiling
//! starting at `startup_max_rate` and growing `growth_per_s` per second (a
//! probe that finds a partition split), or higher when the backlog (queued +
//! in flight) can drain on what is left of the burst. A full burst borrowed
//! with no 503 retires the budget (the documented rate is not the limit
//! here); so does a 503 (the throttle response below takes over). It re-arms
//! once the borrowing is paid back.
//!
//! # Throttles and timeouts
//! A 503 is congestion that latency cannot show (S3 throttles on request
//! rate, and a token bucket's burst hides it at first). At the first 503 the
//! limit drops to `throttle_beta ×` itself (once per cooldown). At the end of
//! a round with throttles, Little's law gives the slots that carried
//! successes, `w = level × ok / (ok + throttled)`: the capacity. The limit
//! drops to `throttle_margin × w`, then regrows on
//! `w × (1 + cubic_c × (t − k)³)`, `k = ∛((1 − throttle_margin) / cubic_c)`
//! (`t`: seconds since): flat near `w`, where the throttle was, then faster,
//! so a raised limit (a partition split) is found in seconds. `w` is forgotten
//! after `throttle_memory_ms`. A timeout cuts by `timeout_beta` (once per
//! cooldown) and leaves no memory: it may be one lost request.
//!
//! Deterministic: only the engine's time is used; no clock, no maps.

mod burst;
mod knee;
mod params;

pub use burst::BurstBudget;
pub use knee::{KneeTable, KNEE_SPAN};
pub use params::FlagshipParams;

use crate::env::{controller_via_tuner, Env, Tuner};
use crate::signal::{effective_bounds, inflight, trunc_u32};
use core::time::Duration;
use pool_core::{AttemptSample, Instant, SampleOutcome};

/// The controller's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Exponential growth to find the knee.
    Startup,
    /// Steady state: knee cap, slow growth, throttle response.
    Cruise,
}

/// What one round measured (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundStats {
    /// Mean in-flight count at the start of its answers.
    pub level: f64,
    /// Work units delivered per second.
    pub rate: f64,
    /// Successful ops per second.
    pub ops_rate: f64,
    /// Throttled share of its answers.
    pub throttled: f64,
    /// Mean answer latency, seconds.
    pub latency: f64,
    /// Whether it was app-limited.
    pub app_limited: bool,
}

#[derive(Debug, Clone, Copy)]
struct Round {
    start: Instant,
    units: f64,
    ok: u32,
    throttled: u32,
    level_sum: f64,
    latency_sum: f64,
    peak: u32,
    app_limited: bool,
}

impl Round {
    fn new(start: Instant) -> Self {
        Round {
            start,
            units: 0.0,
            ok: 0,
            throttled: 0,
            level_sum: 0.0,
            latency_sum: 0.0,
            peak: 0,
            app_limited: false,
        }
    }
    fn answers(&self) -> u32 {
        self.ok + self.throttled
    }
}

/// The flagship controller. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Flagship {
    p: FlagshipParams,
    limit: f64,
    phase: Phase,
    round: Option<Round>,
    last: Option<RoundStats>,
    /// The last settled startup round's `(level, delivery rate)`.
    prev: Option<(f64, f64)>,
    /// Whether the limit moved by more than 10 % at the last round's end
    /// (the next round is then a transient, not a measurement).
    moved: bool,
    /// Startup saw one stalled round and is measuring the level again.
    stall_seen: bool,
    knee: KneeTable,
    burst: BurstBudget,
    /// Capacity `w` (slots) measured at the last throttle, and when.
    capacity: Option<(f64, Instant)>,
    cooldown_until: Instant,
    last_round_len: Duration,
}

impl Flagship {
    /// A controller with these parameters.
    pub fn new(p: FlagshipParams) -> Self {
        Flagship {
            limit: f64::from(p.initial_limit.max(1)),
            phase: Phase::Startup,
            round: None,
            last: None,
            prev: None,
            moved: true,
            stall_seen: false,
            knee: KneeTable::new(Duration::from_millis(p.knee_window_ms), p.knee_tolerance),
            burst: BurstBudget::new(p.startup_max_rate, p.burst_s, p.burst_spend, p.growth_per_s),
            capacity: None,
            cooldown_until: Instant::ZERO,
            last_round_len: Duration::ZERO,
            p,
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// The real-valued limit.
    pub fn limit(&self) -> f64 {
        self.limit
    }
    /// The last round's measurements.
    pub fn last_round(&self) -> Option<RoundStats> {
        self.last
    }
    /// The knee level as of `now`, if one was found.
    pub fn knee(&self, now: Instant) -> Option<f64> {
        self.knee.knee(now)
    }
    /// The burst budget (how much of the prefix's burst is borrowed).
    pub fn burst(&self) -> &BurstBudget {
        &self.burst
    }
    /// The capacity (slots) measured at the last throttle, and when.
    pub fn capacity(&self) -> Option<(f64, Instant)> {
        self.capacity
    }

    /// Work units of an op of `bytes` bytes.
    pub fn cost(&self, bytes: u64) -> f64 {
        if self.p.size_ref_bytes == 0 {
            1.0
        } else {
            1.0 + bytes as f64 / self.p.size_ref_bytes as f64
        }
    }

    /// The CUBIC regrowth target `t` seconds after a throttle measured `w`.
    pub fn cubic_target(&self, w: f64, t: f64) -> f64 {
        let k = libm::cbrt((1.0 - self.p.throttle_margin) / self.p.cubic_c);
        w * (1.0 + self.p.cubic_c * libm::pow(t - k, 3.0))
    }

    fn answer(&mut self, env: &mut dyn Env, s: &AttemptSample, throttled: bool) {
        let now = env.now();
        let level = inflight(env, s);
        let app_limited = env.queued() == 0 && level < trunc_u32(self.limit);
        let cost = self.cost(s.bytes);
        let latency = s.latency().as_secs_f64();
        let r = self.round.get_or_insert_with(|| Round::new(s.started_at));
        if throttled {
            r.throttled += 1;
        } else {
            r.ok += 1;
            r.units += cost;
        }
        r.level_sum += f64::from(level);
        r.latency_sum += latency;
        r.peak = r.peak.max(level);
        r.app_limited |= app_limited;
        // At least one mean latency long, so each round sees the in-flight
        // ops turn over once: shorter windows measure noise, not rate.
        let len = now - r.start;
        let ends = s.started_at >= r.start
            && r.answers() >= self.p.min_round_samples
            && len >= Duration::from_millis(self.p.min_round_ms)
            && len.as_secs_f64() >= r.latency_sum / f64::from(r.answers());
        if ends {
            let done = *r;
            self.round = Some(Round::new(now));
            self.end_round(env, done);
        }
    }

    fn end_round(&mut self, env: &mut dyn Env, r: Round) {
        let now = env.now();
        let len = (now - r.start).max(Duration::from_nanos(1));
        let dt = len.as_secs_f64();
        let n = f64::from(r.answers().max(1));
        let stats = RoundStats {
            level: r.level_sum / n,
            rate: r.units / dt,
            ops_rate: f64::from(r.ok) / dt,
            throttled: f64::from(r.throttled) / n,
            latency: r.latency_sum / n,
            app_limited: r.app_limited,
        };
        self.last = Some(stats);
        self.last_round_len = len;
        let mut l = self.limit;
        if r.throttled > 0 {
            // Little's law on successes: the slots the server actually served.
            let w = stats.level * (1.0 - stats.throttled);
            self.capacity = Some((w, now));
            l = l.min(w * self.p.throttle_margin);
            self.phase = Phase::Cruise;
        } else if r.app_limited {
            l = l.min(f64::from(r.peak) * 2.0);
        } else {
            // Only settled rounds at the limit measure it: a level well below
            // it is still filling up (its ops started lower).
            if !self.moved && stats.level >= 0.8 * self.limit {
                self.knee.record(stats.level, stats.rate, now);
            }
            l = match self.phase {
                Phase::Startup => self.startup(l, &stats),
                Phase::Cruise => self.cruise(l, dt, now),
            };
        }
        // Most of the prefix's burst is spent: pace at the ceiling (Little's
        // law), which probes upward on its own clock, so timeout cuts do not
        // hold the limit below the rate while a split may wait above it.
        self.burst.record(stats.ops_rate, dt, r.throttled > 0, now);
        let backlog = env.queued() as f64 + f64::from(env.in_flight());
        if let Some(c) = self
            .burst
            .ceiling(now, backlog)
            .filter(|_| stats.latency > 0.0)
        {
            let paced = c * stats.latency;
            l = if r.app_limited { l.min(paced) } else { paced };
            self.phase = Phase::Cruise;
        }
        if let Some(k) = self.knee(now) {
            l = l.min(k * self.p.cruise_gain);
        }
        // After an app-limited round the next one's ops started at a lower
        // level: a transient like a limit move.
        self.moved = (l - self.limit).abs() > 0.1 * self.limit || r.app_limited;
        self.apply(env, l);
    }

    fn startup(&mut self, l: f64, s: &RoundStats) -> f64 {
        if self.moved {
            // Right after a jump a round's rate lags its level: measure the
            // next, settled round instead.
            return l;
        }
        let prev = self.prev;
        // Full growth is `startup_full_growth` per `startup_growth` of level,
        // scaled to the level growth this step really made (a shorter step
        // must not read as a stall).
        let stalled = prev.is_some_and(|(lv, r)| {
            let steps = libm::log(s.level / lv) / libm::log(self.p.startup_growth);
            s.level > lv && s.rate < r * libm::pow(self.p.startup_full_growth, steps)
        });
        if stalled && !self.stall_seen {
            // One slow round can be noise (a tail answer in a small round):
            // measure the same level once more against the same reference.
            self.stall_seen = true;
            return l;
        }
        self.stall_seen = false;
        self.prev = Some((s.level, s.rate));
        if stalled {
            self.phase = Phase::Cruise;
            return l;
        }
        // Delivery that grew less than in proportion to the level says a
        // bandwidth knee is near: the next step is only as large as the
        // knee proof needs, so proving it overshoots it by less.
        let linear = prev.is_none_or(|(lv, r)| {
            s.level <= lv || (s.rate / r) >= self.p.startup_linearity * (s.level / lv)
        });
        let growth = if linear {
            self.p.startup_growth
        } else {
            self.p.startup_growth.min(KNEE_SPAN)
        };
        // Little's law: the level that would carry `startup_max_rate` ops/s.
        let to_rate = if s.ops_rate > 0.0 {
            s.level * self.p.startup_max_rate / s.ops_rate
        } else {
            f64::INFINITY
        };
        let next = l * growth;
        if to_rate >= next {
            return next;
        }
        if to_rate < l * 1.1 {
            self.phase = Phase::Cruise;
            return l;
        }
        to_rate
    }

    fn cruise(&mut self, l: f64, dt: f64, now: Instant) -> f64 {
        if self.moved {
            // Measure the level just reached before moving on.
            return l;
        }
        let steady = l * libm::pow(1.0 + self.p.growth_per_s, dt);
        let memory = Duration::from_millis(self.p.throttle_memory_ms);
        match self.capacity {
            Some((w, at)) if now - at <= memory => {
                let cubic = self.cubic_target(w, (now - at).as_secs_f64());
                steady.max(cubic.min(l * 2.0))
            }
            _ => {
                self.capacity = None;
                steady
            }
        }
    }

    fn apply(&mut self, env: &mut dyn Env, target: f64) {
        let (lo, hi) = effective_bounds((self.p.min_limit, self.p.max_limit), env);
        let t = if target.is_finite() {
            target
        } else {
            self.limit
        };
        self.limit = t.clamp(f64::from(lo), f64::from(hi));
        let l = trunc_u32(libm::round(self.limit)).clamp(lo, hi);
        env.set_limit(l);
    }

    /// A throttle or timeout: cut at once, at most once per cooldown.
    fn cut(&mut self, env: &mut dyn Env, beta: f64) {
        let now = env.now();
        if now < self.cooldown_until {
            return;
        }
        let cooldown = Duration::from_millis(self.p.cooldown_ms).max(self.last_round_len);
        self.cooldown_until = now + cooldown;
        self.phase = Phase::Cruise;
        let l = self.limit * beta;
        self.apply(env, l);
    }
}

impl Default for Flagship {
    fn default() -> Self {
        Flagship::new(FlagshipParams::default())
    }
}

impl Tuner for Flagship {
    fn name(&self) -> &str {
        "flagship"
    }
    fn initial(&self) -> Option<u32> {
        Some(trunc_u32(self.limit).max(1))
    }
    fn sample(&mut self, env: &mut dyn Env, s: &AttemptSample) {
        match s.outcome {
            SampleOutcome::Throttled => {
                self.cut(env, self.p.throttle_beta);
                self.answer(env, s, true);
            }
            SampleOutcome::TimedOut => self.cut(env, self.p.timeout_beta),
            SampleOutcome::Success | SampleOutcome::Permanent => self.answer(env, s, false),
            SampleOutcome::Transient | SampleOutcome::Cancelled => {}
        }
    }
    fn overridden(&mut self, limit: u32) {
        self.limit = f64::from(limit.max(1));
    }
}

controller_via_tuner!(Flagship);
