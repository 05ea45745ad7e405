//! Property tests: random scenarios and fault schedules keep the engine's
//! invariants and lose no op; a seed reproduces its report bit for bit; the
//! scenario parser answers any input with a value or an error, never a panic.

use pool_core::{EngineConfig, HedgeConfig, OpClass};
use pool_sim::scenario::{
    builtin, Brownout, CapacityStep, FaultConfig, OpTemplate, S3Config, Scenario, Workload,
    WorkloadKind,
};
use pool_sim::units::Bytes;
use pool_sim::{run_with, RunOptions};
use proptest::prelude::*;

fn template() -> impl Strategy<Value = OpTemplate> {
    (
        prop::sample::select(OpClass::S3.to_vec()),
        0u64..2_000_000,
        -2i32..3,
        1u32..3,
        any::<bool>(),
        prop::option::of(1u32..4),
        0.1f64..3.0,
    )
        .prop_map(
            |(class, size, priority, prefixes, idem, attempts, weight)| {
                let multipart = class == OpClass::PUT && size > 1_000_000;
                OpTemplate {
                    class,
                    weight,
                    size: Bytes(size),
                    size_max: None,
                    priority,
                    prefix: "p/".into(),
                    prefixes,
                    part_size: multipart.then_some(Bytes(400_000)),
                    idempotent: idem,
                    timeout_ms: None,
                    max_attempts: attempts,
                }
            },
        )
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        0usize..5,
        1u64..60,
        50.0f64..2_000.0,
        1u32..8,
        0.0f64..0.2,
        prop::collection::vec(template(), 1..4),
    )
        .prop_map(|(k, ops, rate, users, cancel, mix)| {
            let kind = [
                WorkloadKind::Batch,
                WorkloadKind::Burst,
                WorkloadKind::Poisson,
                WorkloadKind::Ramp,
                WorkloadKind::Closed,
            ][k];
            Workload {
                kind,
                ops: Some(ops),
                at_s: 0.0,
                every_s: (kind == WorkloadKind::Burst).then_some(0.05),
                rate: Some(rate),
                to_rate: Some(rate / 2.0),
                start_s: 0.0,
                end_s: Some(0.1),
                users: Some(users),
                cancel_prob: cancel,
                cancel_after_ms: 20.0,
                mix,
            }
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1u32..4,
        1u32..40,
        prop::option::of(20u64..400),
        prop::option::of(1u64..50),
        any::<bool>(),
        (0.0f64..0.05, 0.0f64..0.05, 0.0f64..0.02),
        (1.0f64..500.0, prop::option::of(1u32..6)),
        prop::collection::vec(workload(), 1..3),
        any::<bool>(),
    )
        .prop_map(
            |(clients, limit, timeout, max_queued, hedge, faults, s3k, workloads, steps)| {
                let pool = EngineConfig {
                    limit,
                    timeout_ms: timeout,
                    max_queued,
                    hedge: hedge.then(|| HedgeConfig {
                        min_samples: 5,
                        ..HedgeConfig::default()
                    }),
                    ..EngineConfig::default()
                };
                let s3 = S3Config {
                    read_rate: s3k.0,
                    write_rate: s3k.0 / 2.0,
                    max_connections: s3k.1,
                    faults: FaultConfig {
                        server_error_prob: faults.0,
                        reset_prob: faults.1,
                        stall_prob: faults.2,
                        reset_unsent_share: 0.5,
                    },
                    brownouts: vec![Brownout {
                        start_s: 0.02,
                        end_s: Some(0.06),
                        factor: 3.0,
                    }],
                    capacity_steps: if steps {
                        vec![CapacityStep {
                            at_s: 0.03,
                            factor: 0.5,
                            prefix: None,
                        }]
                    } else {
                        vec![]
                    },
                    ..S3Config::default()
                };
                Scenario {
                    name: "prop".into(),
                    description: String::new(),
                    calibration: false,
                    duration_s: 0.1,
                    drain_s: 30.0,
                    clients,
                    sample_interval_ms: Some(10),
                    strategy: None,
                    pool,
                    s3,
                    workloads,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_scenarios_conserve_ops_and_replay(sc in scenario(), seed in any::<u64>()) {
        let opts = RunOptions { check_invariants: true, ..RunOptions::default() };
        let a = run_with(&sc, seed, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let c = a.conservation;
        prop_assert!(c.ok);
        prop_assert_eq!(c.submitted, c.succeeded + c.failed + c.cancelled + c.rejected);
        let b = run_with(&sc, seed, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(a.to_json(), b.to_json());
        // Another seed gives another run (every run draws latencies).
        if c.submitted >= 20 {
            let d = run_with(&sc, seed ^ 0x5EED, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_ne!(a.to_json(), d.to_json());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(src in ".{0,400}") {
        let _ = Scenario::parse("fuzz.toml", &src);
    }

    #[test]
    fn parser_never_panics_on_mutated_builtins(
        which in 0usize..15,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..6),
    ) {
        let names = pool_sim::scenario::builtin_names();
        let mut src: Vec<char> = builtin(names[which % names.len()]).unwrap().chars().collect();
        for (at, op, ch) in edits {
            if src.is_empty() {
                break;
            }
            let i = at.index(src.len());
            match op {
                0 => { src.remove(i); }
                1 => src.insert(i, ch),
                2 => src[i] = ch,
                _ => {
                    // Swap a digit for a big or negative number.
                    let s: String = src.iter().collect();
                    let s = s.replacen(char::is_numeric, "-99999999999", 1);
                    src = s.chars().collect();
                }
            }
        }
        let text: String = src.iter().collect();
        if let Err(e) = Scenario::parse("mutated.toml", &text) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("mutated.toml"), "{}", msg);
        }
    }
}
