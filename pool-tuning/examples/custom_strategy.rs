//! A complete user-written concurrency strategy, run on a real `pool_core::Engine`
//! against a tiny synthetic service, next to a built-in one picked by name.
//!
//! Run it with `cargo run -p pool-tuning --example custom_strategy`.
//! `docs/custom-strategy.md` walks through it.

use core::time::Duration;
use pool_core::{
    AttemptError, AttemptId, AttemptOutcome, AttemptSample, ControlContext, Controller, Decision,
    Engine, EngineConfig, Instant, OpOptions, SampleOutcome,
};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------
// The strategy: keep a smoothed latency under a target.
// ---------------------------------------------------------------------------

/// Grows the limit by one while the pool is busy and latency is under
/// `target`; cuts it by 10 % when latency goes over or the server throttles,
/// at most once per `cooldown`.
pub struct TargetLatency {
    target: Duration,
    cooldown: Duration,
    /// Exponentially weighted moving average of successful latencies, seconds.
    ewma: Option<f64>,
    last_cut: Option<Instant>,
}

impl TargetLatency {
    /// A controller aiming at `target` latency.
    pub fn new(target: Duration) -> Self {
        TargetLatency {
            target,
            cooldown: Duration::from_millis(200),
            ewma: None,
            last_cut: None,
        }
    }

    fn cut(&mut self, ctx: &mut ControlContext<'_>) {
        let now = ctx.now();
        if self.last_cut.is_some_and(|t| now - t < self.cooldown) {
            return; // a burst of bad samples is one event
        }
        self.last_cut = Some(now);
        // `set_limit` clamps to the engine's bounds (and never goes below 1).
        ctx.set_limit(ctx.limit() * 9 / 10);
    }
}

impl Controller for TargetLatency {
    fn name(&self) -> &str {
        "target-latency"
    }

    fn initial_limit(&self) -> Option<u32> {
        Some(4)
    }

    fn on_sample(&mut self, ctx: &mut ControlContext<'_>, sample: &AttemptSample) {
        match sample.outcome {
            // Overload signals: back off.
            SampleOutcome::Throttled | SampleOutcome::TimedOut => self.cut(ctx),
            // A normal answer: its latency is a measurement.
            SampleOutcome::Success | SampleOutcome::Permanent => {
                let x = sample.latency().as_secs_f64();
                let ewma = self.ewma.map_or(x, |e| 0.9 * e + 0.1 * x);
                self.ewma = Some(ewma);
                if ewma > self.target.as_secs_f64() {
                    self.cut(ctx);
                } else if sample.in_flight_at_start + 1 >= ctx.limit() {
                    // Only grow when the limit is actually being used.
                    ctx.set_limit(ctx.limit() + 1);
                }
            }
            // Says nothing about load (connection reset, caller cancel, lost hedge).
            SampleOutcome::Transient | SampleOutcome::Cancelled => {}
        }
    }

    fn on_limit_overridden(&mut self, _limit: u32) {
        // Continue from the user's value: the controller reads `ctx.limit()`
        // on every call, so there is nothing to reset.
    }
}

// ---------------------------------------------------------------------------
// A tiny synthetic service and driver loop (pool-core only).
// ---------------------------------------------------------------------------

/// Latency 20 ms up to 16 requests in flight, then growing with the load
/// (bandwidth sharing); beyond 48 in flight the server answers 503 SlowDown.
fn service_latency(in_flight: u32, jitter: f64) -> (Duration, bool) {
    let base = 0.020 * jitter;
    let throttled = in_flight > 48;
    let secs = if throttled {
        base
    } else {
        base * (f64::from(in_flight) / 16.0).max(1.0)
    };
    (Duration::from_secs_f64(secs), throttled)
}

/// Runs `ops` operations through an engine with `controller`; returns
/// (ops per second, final limit).
fn run(
    controller: Box<dyn Controller>,
    ops: usize,
) -> Result<(f64, u32), Box<dyn std::error::Error>> {
    let mut engine = Engine::new(
        EngineConfig::builder()
            .seed(1)
            .limit_bounds(1, 500)
            .build()?,
    )?;
    engine.set_controller(controller);
    let mut now = Instant::ZERO;
    for _ in 0..ops {
        engine.submit(now, OpOptions::default())?;
    }
    // (completion time, attempt, throttled): the driver's "network".
    let mut pending: BTreeSet<(Instant, AttemptId, bool)> = BTreeSet::new();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let (mut succeeded, mut resolved) = (0usize, 0usize);
    while resolved < ops {
        // Carry out the engine's decisions.
        while let Some(d) = engine.poll_decision() {
            match d {
                Decision::Start { attempt, .. } => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let jitter = 0.8 + 0.4 * ((rng >> 11) as f64 / (1u64 << 53) as f64);
                    let (lat, throttled) = service_latency(engine.running_attempts(), jitter);
                    pending.insert((now + lat, attempt, throttled));
                }
                Decision::Cancel { attempt, .. } => pending.retain(|p| p.1 != attempt),
                Decision::Resolved { resolution, .. } => {
                    resolved += 1;
                    succeeded += usize::from(resolution.is_success());
                }
                Decision::RetryScheduled { .. } => {}
            }
        }
        // Advance to the next event: a completion or an engine timer.
        let next_done = pending.first().map(|p| p.0);
        let next = match (next_done, engine.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        now = now.max(next);
        match pending.first().copied() {
            Some((at, attempt, throttled)) if at <= now => {
                pending.remove(&(at, attempt, throttled));
                let outcome = if throttled {
                    AttemptOutcome::Failed(AttemptError::throttled())
                } else {
                    AttemptOutcome::Success
                };
                engine.attempt_finished(now, attempt, outcome, 0);
            }
            _ => engine.tick(now),
        }
    }
    let secs = now.as_nanos() as f64 / 1e9;
    Ok((succeeded as f64 / secs, engine.limit()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ops = 5_000;
    let (rate, limit) = run(Box::new(TargetLatency::new(Duration::from_millis(25))), ops)?;
    println!("target-latency: {rate:6.0} ops/s, final limit {limit}");
    // A built-in strategy, by the name you would put in a config file.
    for name in ["fixed", "aimd", "flagship"] {
        let spec: pool_tuning::StrategySpec = name.parse()?;
        let controller = spec.build()?.controller.ok_or("not a controller")?;
        let (rate, limit) = run(controller, ops)?;
        println!("{name:>14}: {rate:6.0} ops/s, final limit {limit}");
    }
    println!("(the service peaks at 800 ops/s from 16 requests in flight)");
    Ok(())
}
