//! Properties: every strategy keeps the limit within the engine's bounds and
//! never panics, whatever the samples (NaN-free, but extreme latencies, sizes,
//! in-flight counts and inputs); the compact spelling round-trips.

mod common;
use common::*;
use pool_core::{Instant, RateGate, Resolution, SampleOutcome};
use pool_tuning::env::{TestEnv, Tuner};
use pool_tuning::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Ev {
    Sample {
        gap_ns: u64,
        latency_ns: u64,
        outcome: u8,
        in_flight: u32,
        bytes: u64,
    },
    Resolved {
        gap_ns: u64,
        ok: bool,
    },
    Tick {
        gap_ns: u64,
    },
    Override(u32),
    Load {
        in_flight: u32,
        queued: u64,
        external: Option<f64>,
    },
}

fn outcome(i: u8) -> SampleOutcome {
    use SampleOutcome::*;
    [
        Success, Throttled, Transient, Permanent, TimedOut, Cancelled,
    ][usize::from(i % 6)]
}

fn gap() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..10, 0u64..1_000_000_000, 0u64..1u64 << 40]
}

fn latency() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1_000, 1_000_000u64..1_000_000_000, 0u64..1u64 << 50]
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        6 => (gap(), latency(), any::<u8>(), any::<u32>(), any::<u64>()).prop_map(
            |(gap_ns, latency_ns, outcome, in_flight, bytes)| Ev::Sample {
                gap_ns, latency_ns, outcome, in_flight, bytes
            }
        ),
        2 => (gap(), any::<bool>()).prop_map(|(gap_ns, ok)| Ev::Resolved { gap_ns, ok }),
        2 => gap().prop_map(|gap_ns| Ev::Tick { gap_ns }),
        1 => (1u32..20_000).prop_map(Ev::Override),
        1 => (any::<u32>(), 0u64..3, proptest::option::of(-1e12f64..1e12)).prop_map(
            |(in_flight, queued, external)| Ev::Load { in_flight, queued, external }
        ),
    ]
}

fn controllers() -> Vec<Box<dyn Tuner>> {
    vec![
        Box::new(Fixed::new(10)),
        Box::new(Aimd::default()),
        Box::new(Aimd::new(AimdParams {
            min_limit: 1,
            window: Some(WindowConfig::default()),
            ..Default::default()
        })),
        Box::new(Vegas::default()),
        Box::new(Vegas::new(VegasParams {
            smoothing: 0.3,
            probe_multiplier: 1,
            ..Default::default()
        })),
        Box::new(Gradient2::default()),
        Box::new(Gradient2::new(Gradient2Params {
            window: None,
            min_limit: 1,
            ..Default::default()
        })),
        Box::new(EnvoyGradient::default()),
        Box::new(EnvoyGradient::new(EnvoyParams {
            request_count: 1,
            min_rtt_interval_ms: 1,
            update_interval_ms: 1,
            ..Default::default()
        })),
        Box::new(SeedAdaptiveTuning::new(SeedParams {
            adjustment_interval_ms: 1,
            ..Default::default()
        })),
        Box::new(Flagship::default()),
        Box::new(Flagship::new(FlagshipParams {
            min_round_samples: 1,
            min_round_ms: 0,
            cooldown_ms: 0,
            ..Default::default()
        })),
    ]
}

fn run(t: &mut dyn Tuner, bounds: (u32, u32), seed: u64, evs: &[Ev]) -> Result<(), TestCaseError> {
    let mut env = TestEnv::new(t.initial().unwrap_or(10).clamp(bounds.0, bounds.1)).with_seed(seed);
    env.bounds = bounds;
    env.queued = 1;
    let mut now: u64 = 0;
    let mut op = 0u64;
    for e in evs {
        match *e {
            Ev::Sample {
                gap_ns,
                latency_ns,
                outcome: o,
                in_flight,
                bytes,
            } => {
                now = now.saturating_add(gap_ns).min(1 << 62);
                let start = now;
                now = now.saturating_add(latency_ns).min(1 << 62);
                op += 1;
                let s = S {
                    op,
                    start_ns: start,
                    latency_ns: now - start,
                    outcome: outcome(o),
                    in_flight,
                    bytes,
                };
                env.now = Instant::from_nanos(now);
                t.sample(&mut env, &s.build());
            }
            Ev::Resolved { gap_ns, ok } => {
                now = now.saturating_add(gap_ns).min(1 << 62);
                env.now = Instant::from_nanos(now);
                let r = if ok {
                    succeeded()
                } else {
                    Resolution::Cancelled {
                        attempts: 0,
                        cause: pool_core::CancelCause::Caller,
                    }
                };
                let o = op_sample(op, env.now, r);
                t.op_resolved(&mut env, &o);
            }
            Ev::Tick { gap_ns } => {
                now = now.saturating_add(gap_ns).min(1 << 62);
                env.now = Instant::from_nanos(now);
                t.tick(&mut env);
            }
            Ev::Override(l) => {
                let l = l.clamp(bounds.0, bounds.1);
                env.limit = l;
                t.overridden(l);
            }
            Ev::Load {
                in_flight,
                queued,
                external,
            } => {
                env.in_flight = in_flight;
                env.queued = queued;
                env.external = external;
            }
        }
        for &l in &env.set_limits {
            prop_assert!(
                l >= bounds.0 && l <= bounds.1,
                "{}: limit {l} outside {bounds:?}",
                t.name()
            );
        }
        env.set_limits.clear();
        for &w in &env.wakes {
            prop_assert!(
                w >= Instant::from_nanos(now),
                "{}: wake-up in the past",
                t.name()
            );
        }
        env.wakes.clear();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn controllers_stay_within_bounds_and_never_panic(
        min in 1u32..64,
        span in 0u32..5_000,
        seed in any::<u64>(),
        evs in proptest::collection::vec(ev(), 1..300),
    ) {
        for mut t in controllers() {
            run(t.as_mut(), (min, min + span), seed, &evs)?;
        }
    }

    #[test]
    fn the_aws_gate_never_panics_and_waits_forward(
        steps in proptest::collection::vec((gap(), any::<u8>(), any::<bool>()), 1..400),
    ) {
        let mut g = AwsAdaptiveRateLimiter::default();
        let mut now: u64 = 0;
        for (gap_ns, o, acquire) in steps {
            now = now.saturating_add(gap_ns).min(1 << 62);
            let t = Instant::from_nanos(now);
            if acquire {
                if let Err(at) = g.try_acquire(t) {
                    prop_assert!(at > t);
                }
            } else {
                let s = S { op: 1, start_ns: 0, latency_ns: now, outcome: outcome(o), in_flight: 1, bytes: 0 };
                g.on_sample(t, &s.build());
                if g.enabled() {
                    prop_assert!(g.fill_rate() >= 0.5 && g.max_capacity() >= 1.0);
                    prop_assert!(g.capacity() >= 0.0 && g.capacity() <= g.max_capacity());
                }
            }
        }
    }

    #[test]
    fn compact_spelling_round_trips(
        a in 0.5f64..0.999, m in 1u32..50, alpha in proptest::option::of(0u32..20),
        g in 0.01f64..10.0, size in 0u64..(1 << 40),
    ) {
        let specs = [
            StrategySpec::Aimd(AimdParams { backoff_ratio: a, min_limit: m, ..Default::default() }),
            StrategySpec::Vegas(VegasParams { alpha, smoothing: a, ..Default::default() }),
            StrategySpec::Flagship(FlagshipParams { cruise_gain: g, size_ref_bytes: size, ..Default::default() }),
        ];
        for s in specs {
            let text = s.to_string();
            prop_assert_eq!(text.parse::<StrategySpec>().unwrap(), s, "{}", text);
        }
    }
}
