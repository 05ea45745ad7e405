//! Every registry strategy on a real engine against a tiny synthetic service:
//! all ops resolve, limits stay in bounds, and the same seed gives the same
//! limit trace (determinism).

mod common;
use common::*;
use core::time::Duration;
use pool_core::{AttemptError, AttemptId, AttemptOutcome, EngineConfig, Instant, OpOptions};
use pool_tuning::{StrategySpec, TuningConfig};
use std::collections::BTreeSet;

/// A service whose latency grows past `knee` in flight (bandwidth sharing) and
/// which throttles beyond `cap` in flight.
struct Run {
    trace: Vec<(u64, u32)>,
    succeeded: usize,
    end: Instant,
}

fn run(cfg: &TuningConfig, seed: u64, ops: usize) -> Run {
    let (knee, cap, base_ms) = (16u32, 48u32, 20.0f64);
    let mut d = Driver::new(
        EngineConfig::builder()
            .seed(seed)
            .limit_bounds(1, 500)
            .build()
            .unwrap(),
    );
    cfg.apply(&mut d.engine).unwrap();
    d.engine.set_external_input(Some(0.1));
    let mut done: BTreeSet<(Instant, AttemptId, bool)> = BTreeSet::new();
    let mut lcg = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut trace = Vec::new();
    d.submit(ops, OpOptions::default());
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 2_000_000, "no progress");
        // Give every newly started attempt a completion time.
        let started: Vec<AttemptId> = d
            .running
            .keys()
            .filter(|a| !done.iter().any(|(_, b, _)| b == *a))
            .copied()
            .collect();
        let running = d.engine.running_attempts();
        for a in started {
            lcg = lcg
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jitter = 0.8 + 0.4 * ((lcg >> 11) as f64 / (1u64 << 53) as f64);
            let throttled = running > cap;
            let ms = base_ms * jitter * (f64::from(running) / f64::from(knee)).max(1.0);
            let ms = if throttled { base_ms * jitter } else { ms };
            done.insert((d.now + Duration::from_secs_f64(ms / 1e3), a, throttled));
        }
        let next_done = done.iter().next().map(|e| e.0);
        let next = match (next_done, d.engine.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => break,
            },
        };
        if d.engine.live_ops() == 0 {
            break;
        }
        d.advance_to(next);
        while let Some(&(t, a, throttled)) = done.iter().next() {
            if t > d.now {
                break;
            }
            done.remove(&(t, a, throttled));
            if d.running.remove(&a).is_some() {
                let out = if throttled {
                    AttemptOutcome::Failed(AttemptError::throttled())
                } else {
                    AttemptOutcome::Success
                };
                d.engine.attempt_finished(d.now, a, out, 64 << 10);
                d.pump();
            }
        }
        trace.push((d.now.as_nanos(), d.engine.limit()));
    }
    let succeeded = d.resolved.iter().filter(|(_, r)| r.is_success()).count();
    assert_eq!(d.resolved.len(), ops, "{cfg}: every op resolves once");
    Run {
        trace,
        succeeded,
        end: d.now,
    }
}

fn configs() -> Vec<TuningConfig> {
    let mut v: Vec<TuningConfig> = StrategySpec::all_defaults()
        .into_iter()
        .map(TuningConfig::single)
        .collect();
    v.push("flagship+aws-adaptive".parse().unwrap());
    v.push("vegas@partition+aws-adaptive@partition".parse().unwrap());
    v
}

#[test]
fn every_strategy_runs_on_an_engine_deterministically() {
    for cfg in configs() {
        let a = run(&cfg, 7, 1_500);
        let b = run(&cfg, 7, 1_500);
        assert_eq!(a.trace, b.trace, "{cfg}: same seed, same decisions");
        assert!(
            a.trace.iter().all(|&(_, l)| (1..=500).contains(&l)),
            "{cfg}"
        );
        assert!(a.succeeded > 0, "{cfg}");
        assert!(a.end > Instant::ZERO);
    }
}

#[test]
#[ignore = "diagnostic: prints one strategy's limit trace (STRATEGY env var)"]
fn print_trace() {
    let cfg: TuningConfig = std::env::var("STRATEGY")
        .unwrap_or("flagship".into())
        .parse()
        .unwrap();
    let r = run(&cfg, 7, 6_000);
    let mut last = u64::MAX;
    for (t, l) in r.trace {
        let slot = t / 50_000_000;
        if slot != last {
            last = slot;
            println!("{:8.3}s limit {l}", t as f64 / 1e9);
        }
    }
}

#[test]
#[ignore = "diagnostic: prints each strategy's throughput on the synthetic service"]
fn print_synthetic_scores() {
    for cfg in configs() {
        let r = run(&cfg, 7, 6_000);
        let secs = r.end.as_nanos() as f64 / 1e9;
        let limits: Vec<u32> = r.trace.iter().map(|x| x.1).collect();
        let mean = limits.iter().map(|&l| f64::from(l)).sum::<f64>() / limits.len() as f64;
        println!(
            "{:40} {:7.0} ops/s  succeeded {}  mean limit {mean:6.1}  last {}",
            cfg.to_string(),
            r.succeeded as f64 / secs,
            r.succeeded,
            limits.last().unwrap()
        );
    }
}
