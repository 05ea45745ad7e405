//! `Flagship`: opspool's own controller — a BBR-style knee search on delivered
//! work versus concurrency, with size-normalised latency and a throttle-aware
//! decrease. First version; its parameters ([`FlagshipParams`]) are meant to be
//! tuned against the simulator's scenario library.
//!
//! # Model
//! Little's law: in-flight = throughput × latency. Below the knee of the
//! throughput/concurrency curve, more concurrency buys throughput at constant
//! latency; past it, only latency (bandwidth sharing) or 503s (request-rate
//! throttling). The knee is `bdp = max_rate × min_latency` (BBR's
//! bandwidth-delay product), so the controller estimates both and sets
//! `limit ≈ gain × bdp`.
//!
//! * **Size-normalised work.** S3 ops differ wildly in size, and a 16 MiB GET is
//!   slow because it is big, not because the server is congested (the seed's
//!   flaw, F35; Envoy #42243). Each completed op counts as
//!   `cost = 1 + bytes / size_ref_bytes` work units (default 1 MiB: about the
//!   bytes one connection moves in one first-byte latency), and its latency is
//!   divided by its cost. Then `in-flight ≈ rate(units/s) × latency(s/unit)`
//!   holds whatever the size mix, and for small ops it reduces to ops/s × s.
//! * **Rounds.** A round ends when an op that started after the round began
//!   completes (one "round trip"), with at least `min_round_samples`
//!   completions and `min_round_ms`. Per round: delivery rate = units / round
//!   time, latency = mean normalised latency. Throttled, failed and cancelled
//!   attempts deliver nothing.
//! * **Filters.** `max_rate` = max over the last `rate_window_rounds` rounds;
//!   `min_latency` = min over the last `latency_window_ms`. A round is
//!   *app-limited* when, at some completion in it, the engine's queue was
//!   empty and fewer attempts than the limit were in flight; its rate only
//!   counts if it raises the max, and it never grows the limit. (The queue is
//!   engine-wide, so a per-partition flagship sees other partitions' backlog.)
//!
//! # Phases
//! * **Startup**: the limit grows × `startup_growth` per round while the rate
//!   grows by ≥ `startup_full_growth` (exit after `startup_exit_rounds` rounds
//!   without), or until a round's latency exceeds `startup_max_latency_ratio` ×
//!   the minimum (past the bandwidth knee), or the first throttle.
//! * **Cruise**: a cycle of `cycle_rounds` rounds: one at `probe_up_gain`
//!   (at least one more slot than the knee; look for more throughput: if it exists, `max_rate` rises and so does the
//!   limit next cycle — the knee search), one at `probe_down_gain` (drain the
//!   queue the probe made, and let the latency minimum refresh), the rest at
//!   `cruise_gain`. The cycle starts at a random cruise round (the engine's
//!   RNG) so a fleet of clients does not probe in lock-step.
//! * **Probe-RTT**: when no round came within `probe_rtt_slack` of the latency
//!   minimum for `probe_rtt_interval_ms` (a standing queue may be inflating
//!   every sample), the limit drops to `probe_rtt_gain × bdp` for at least
//!   `probe_rtt_ms` and one round.
//! * The limit never more than doubles in one round.
//!
//! # Throttles and timeouts
//! A `Throttled` (503 SlowDown) or `TimedOut` attempt is congestion that
//! latency cannot show (S3 throttles on request *rate*). The ceiling becomes
//! `throttle_beta × limit` and the limit drops to the lower of that and
//! `cruise_gain × bdp` (the knee measured so far: while everything sent is
//! throttled no round can end, so the controller does not wait for one); no
//! further cut for `max(cooldown_ms, one round)` (a burst of 503s from requests
//! already sent is one event). Only a throttle, not a timeout (which may be a
//! lost request), sets the throttle mark below. The ceiling then grows by `ceiling_growth` per clean round, but
//! for `throttle_memory_ms` it stays under `throttle_mark ×` the limit that was
//! throttled, so the controller settles just below the rate limit instead of
//! oscillating into it; afterwards it probes past it (S3 may have split the
//! prefix and raised the limit). The ceiling disappears once it passes
//! `max_limit`.
//!
//! Deterministic: only the engine's time and RNG are used; no clock, no maps.

mod filters;
mod params;

pub use filters::{MaxByRound, MinByTime};
pub use params::FlagshipParams;

use crate::env::{controller_via_tuner, Env, Tuner};
use crate::signal::{effective_bounds, inflight, trunc_u32};
use core::time::Duration;
use pool_core::{AttemptSample, Instant, SampleOutcome};

/// The controller's phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Exponential growth to find the knee.
    Startup,
    /// Probing cycle; the index of the current round in it.
    Cruise(u32),
    /// Low limit to re-measure the minimum latency, until at least this time.
    ProbeRtt(Instant),
}

#[derive(Debug, Clone, Copy)]
struct Round {
    start: Instant,
    units: f64,
    count: u32,
    latency_sum: f64,
    app_limited: bool,
}

impl Round {
    fn new(start: Instant) -> Self {
        Round {
            start,
            units: 0.0,
            count: 0,
            latency_sum: 0.0,
            app_limited: false,
        }
    }
}

/// The flagship controller. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Flagship {
    p: FlagshipParams,
    limit: f64,
    phase: Phase,
    round: Option<Round>,
    round_no: u64,
    rate: MaxByRound,
    latency: MinByTime,
    full_rate: f64,
    stalled_rounds: u32,
    ceiling: Option<f64>,
    /// (ceiling cap, until when) after a throttle.
    throttle_level: Option<(f64, Instant)>,
    cooldown_until: Instant,
    last_refresh: Option<Instant>,
    last_round_len: Duration,
}

impl Flagship {
    /// A controller with these parameters.
    pub fn new(p: FlagshipParams) -> Self {
        Flagship {
            limit: f64::from(p.initial_limit.max(1)),
            phase: Phase::Startup,
            round: None,
            round_no: 0,
            rate: MaxByRound::new(p.rate_window_rounds),
            latency: MinByTime::new(Duration::from_millis(p.latency_window_ms)),
            full_rate: 0.0,
            stalled_rounds: 0,
            ceiling: None,
            throttle_level: None,
            cooldown_until: Instant::ZERO,
            last_refresh: None,
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
    /// Max delivery rate, work units per second.
    pub fn max_rate(&self) -> Option<f64> {
        self.rate.get()
    }
    /// Min normalised latency, seconds per work unit.
    pub fn min_latency(&self) -> Option<f64> {
        self.latency.get()
    }
    /// The estimated knee, `max_rate × min_latency`.
    pub fn bdp(&self) -> Option<f64> {
        Some(self.rate.get()? * self.latency.get()?)
    }
    /// The ceiling left by the last throttle, if any.
    pub fn ceiling(&self) -> Option<f64> {
        self.ceiling
    }

    /// Work units of an op of `bytes` bytes.
    pub fn cost(&self, bytes: u64) -> f64 {
        if self.p.size_ref_bytes == 0 {
            1.0
        } else {
            1.0 + bytes as f64 / self.p.size_ref_bytes as f64
        }
    }

    fn delivered(&mut self, env: &mut dyn Env, s: &AttemptSample) {
        let now = env.now();
        let cost = self.cost(s.bytes);
        let app_limited = env.queued() == 0 && inflight(env, s) < trunc_u32(self.limit);
        let r = self.round.get_or_insert_with(|| Round::new(s.started_at));
        r.units += cost;
        r.count += 1;
        r.latency_sum += s.latency().as_secs_f64() / cost;
        r.app_limited |= app_limited;
        let ends = s.started_at >= r.start
            && r.count >= self.p.min_round_samples
            && now - r.start >= Duration::from_millis(self.p.min_round_ms);
        if ends {
            let r = *r;
            self.end_round(env, r);
        }
    }

    fn end_round(&mut self, env: &mut dyn Env, r: Round) {
        let now = env.now();
        let len = (now - r.start).max(Duration::from_nanos(1));
        let rate = r.units / len.as_secs_f64();
        let latency = r.latency_sum / f64::from(r.count.max(1));
        self.round_no += 1;
        self.last_round_len = len;
        if !r.app_limited || self.rate.get().is_none_or(|m| rate > m) {
            self.rate.push(self.round_no, rate);
        } else {
            self.rate.expire(self.round_no);
        }
        // "Refreshed" is judged against the minimum as it was before this round,
        // so a minimum that is about to expire is re-measured in probe-RTT
        // rather than silently replaced by an inflated value.
        let prev_min = self.latency.get();
        self.latency.push(now, latency);
        let min_lat = self.latency.get().unwrap_or(latency);
        if prev_min.is_none_or(|m| latency <= m * (1.0 + self.p.probe_rtt_slack)) {
            self.last_refresh = Some(now);
        }
        self.advance_phase(env, r.app_limited, latency, min_lat);
        self.grow_ceiling(now);
        self.round = Some(Round::new(now));
        let target = self.target(r.app_limited);
        self.apply(env, target);
    }

    fn advance_phase(&mut self, env: &mut dyn Env, app_limited: bool, latency: f64, min: f64) {
        let now = env.now();
        match self.phase {
            Phase::Startup => {
                let max = self.rate.get().unwrap_or(0.0);
                if max >= self.full_rate * self.p.startup_full_growth {
                    self.full_rate = max;
                    self.stalled_rounds = 0;
                } else if !app_limited {
                    self.stalled_rounds += 1;
                }
                if self.stalled_rounds >= self.p.startup_exit_rounds
                    || latency > min * self.p.startup_max_latency_ratio
                {
                    self.enter_cruise(env);
                }
            }
            Phase::Cruise(i) => self.phase = Phase::Cruise((i + 1) % self.p.cycle_rounds),
            Phase::ProbeRtt(until) => {
                if now >= until {
                    self.last_refresh = Some(now);
                    self.enter_cruise(env);
                }
            }
        }
        let stale = self
            .last_refresh
            .is_some_and(|t| now - t > Duration::from_millis(self.p.probe_rtt_interval_ms));
        if stale && !matches!(self.phase, Phase::ProbeRtt(_)) {
            let hold = Duration::from_millis(self.p.probe_rtt_ms).max(self.last_round_len);
            self.phase = Phase::ProbeRtt(now + hold);
        }
    }

    fn enter_cruise(&mut self, env: &mut dyn Env) {
        let n = self.p.cycle_rounds;
        // Start on a random cruise round (never on the probe), as BBR does.
        let i = if n > 2 {
            2 + (env.random_u64() % u64::from(n - 2)) as u32
        } else {
            1
        };
        self.phase = Phase::Cruise(i);
    }

    fn grow_ceiling(&mut self, now: Instant) {
        let Some(c) = self.ceiling else { return };
        if now < self.cooldown_until {
            return;
        }
        let mut next = c * (1.0 + self.p.ceiling_growth);
        if let Some((cap, until)) = self.throttle_level {
            if now < until {
                next = next.min(cap.max(c));
            } else {
                self.throttle_level = None;
            }
        }
        self.ceiling = (next < f64::from(self.p.max_limit)).then_some(next);
    }

    /// The limit this round's end asks for, before bounds.
    fn target(&self, app_limited: bool) -> f64 {
        let l = self.limit;
        let bdp = self.bdp();
        let mut t = match self.phase {
            Phase::Startup => l * self.p.startup_growth,
            Phase::Cruise(i) => {
                match (i, bdp) {
                    (_, None) => l,
                    // A probe asks for at least one more slot, or a knee of 1-3
                    // ops could never be probed past (1 × 1.3 rounds to 1).
                    (0, Some(b)) => (b * self.p.probe_up_gain).max(b + 1.0),
                    (1, Some(b)) => b * self.p.probe_down_gain,
                    (_, Some(b)) => b * self.p.cruise_gain,
                }
            }
            Phase::ProbeRtt(_) => bdp.map_or(l, |b| b * self.p.probe_rtt_gain).min(l),
        };
        if app_limited {
            t = t.min(l);
        }
        t = t.min(l * 2.0);
        if let Some(c) = self.ceiling {
            t = t.min(c);
        }
        t
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

    fn congestion(&mut self, env: &mut dyn Env, throttle: bool) {
        let now = env.now();
        if now < self.cooldown_until {
            return;
        }
        let cut = self.limit * self.p.throttle_beta;
        self.ceiling = Some(cut);
        if throttle {
            // A timeout may be a lost request; only a throttle marks a level.
            self.throttle_level = Some((
                self.limit * self.p.throttle_mark,
                now + Duration::from_millis(self.p.throttle_memory_ms),
            ));
        }
        let cooldown = Duration::from_millis(self.p.cooldown_ms).max(self.last_round_len);
        self.cooldown_until = now + cooldown;
        if self.phase == Phase::Startup {
            self.enter_cruise(env);
        }
        // Go straight to the knee when it is below the cut: while everything
        // sent is throttled no round can end, so waiting for one would keep
        // the overload going (startup overshoots by up to 2×).
        let target = self.bdp().map_or(cut, |b| {
            cut.min(b * self.p.cruise_gain)
                .max(f64::from(self.p.min_limit))
        });
        self.apply(env, target);
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
            SampleOutcome::Throttled => self.congestion(env, true),
            SampleOutcome::TimedOut => self.congestion(env, false),
            SampleOutcome::Success | SampleOutcome::Permanent => self.delivered(env, s),
            SampleOutcome::Transient | SampleOutcome::Cancelled => {}
        }
    }
    fn overridden(&mut self, limit: u32) {
        self.limit = f64::from(limit.max(1));
    }
}

controller_via_tuner!(Flagship);
