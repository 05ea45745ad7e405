//! s3db.js AdaptiveTuning, group A of the seed's test suite
//! (`s3db-operations-pool.md` §10), as tests of the faithful port, plus the
//! quirks the port keeps on purpose (F28, F34, F35). The mapping is in
//! `docs/conformance.md`, section A.

mod common;
use common::*;
use pool_core::{
    AttemptError, AttemptOutcome, AttemptSample, ControlContext, Controller, EngineConfig,
    OpOptions, OpSample, Resolution,
};
use pool_tuning::env::{TestEnv, Tuner};
use pool_tuning::seed::{Reason, SeedAdaptiveTuning, SeedParams};
use std::sync::{Arc, Mutex};

fn tuner() -> SeedAdaptiveTuning {
    SeedAdaptiveTuning::new(SeedParams::default())
}

/// `n` records of `latency` ms with memory fraction `mem`.
fn records(t: &mut SeedAdaptiveTuning, n: usize, latency: f64, mem: f64) {
    for _ in 0..n {
        t.record(latency, mem);
    }
}

#[test]
fn a01_defaults() {
    let p = *tuner().params();
    assert_eq!(p.min_concurrency, 1);
    assert_eq!(p.max_concurrency, 100);
    assert_eq!(p.target_latency_ms, 200.0);
    assert_eq!(p.target_memory_percent, 0.7);
    assert_eq!(p.adjustment_interval_ms, 5_000);
}

#[test]
fn a02_custom_values_are_stored() {
    let t = SeedAdaptiveTuning::new(SeedParams {
        min_concurrency: 2,
        max_concurrency: 50,
        target_latency_ms: 100.0,
        target_memory_percent: 0.5,
        adjustment_interval_ms: 1_000,
        ..SeedParams::default()
    });
    let p = t.params();
    assert_eq!(
        (
            p.min_concurrency,
            p.max_concurrency,
            p.adjustment_interval_ms
        ),
        (2, 50, 1_000)
    );
    assert_eq!((p.target_latency_ms, p.target_memory_percent), (100.0, 0.5));
}

#[test]
fn a03_initial_is_positive_and_within_bounds() {
    let t = SeedAdaptiveTuning::new(SeedParams {
        max_concurrency: 50,
        ..SeedParams::default()
    });
    // 16 GiB host, half free: tier 50 → 25.
    assert_eq!(t.concurrency(), 25);
    assert_eq!(t.initial(), Some(25));
}

#[test]
fn a04_monitoring_starts_with_the_first_call() {
    let mut t = tuner();
    assert!(t.is_monitoring());
    let mut env = TestEnv::new(25);
    env.now = ms(1_234);
    t.sample(&mut env, &S::ok(1_200, 34, 1).build());
    // The interval timer: next multiple of 5 s after the first call.
    assert_eq!(env.wakes, vec![ms(5_000)]);
    // Later calls do not ask again.
    t.sample(&mut env, &S::ok(1_200, 34, 1).build());
    assert_eq!(env.wakes.len(), 1);
}

#[test]
fn a05_suggest_initial_is_positive_and_at_least_min() {
    for (total, free) in [
        (100.0, 90.0),
        (600.0, 10.0),
        (3_000.0, 1_000.0),
        (64_000.0, 1.0),
    ] {
        let s = SeedAdaptiveTuning::suggest_initial(total, free, 1);
        assert!(s >= 1);
        assert!(SeedAdaptiveTuning::suggest_initial(total, free, 7) >= 7);
    }
}

#[test]
fn a06_512mb_host_suggests_at_most_2() {
    // 512 MB is not < 512: tier 5, used 0.5: floor(5*0.5) = 2.
    assert_eq!(SeedAdaptiveTuning::suggest_initial(512.0, 256.0, 1), 2);
}

#[test]
fn a07_16gb_host_suggests_more_than_10() {
    // tier 50 (HEAD: 20, so ≥ 10 there), used 0.5: 25.
    assert_eq!(
        SeedAdaptiveTuning::suggest_initial(16_384.0, 8_192.0, 1),
        25
    );
}

#[test]
fn a08_busy_4gb_host_suggests_less_than_20() {
    // 4096 MB: tier 30; used 0.9 > 0.8: floor(15) = 15; then floor(7.5) = 7.
    assert_eq!(SeedAdaptiveTuning::suggest_initial(4_096.0, 400.0, 1), 7);
}

#[test]
fn a09_one_record_is_kept() {
    let mut t = tuner();
    t.record(150.0, 0.0);
    assert_eq!(
        t.latencies().iter().copied().collect::<Vec<_>>(),
        vec![150.0]
    );
}

#[test]
fn a10_windows_cap_at_100() {
    let mut t = tuner();
    for i in 0..150 {
        t.record(f64::from(i), 0.0);
    }
    assert_eq!(t.latencies().len(), 100);
    assert_eq!(t.memory_usages().len(), 100);
    assert_eq!(t.latencies().front(), Some(&50.0), "oldest dropped first");
}

#[test]
fn a11_memory_fraction_comes_from_the_external_input() {
    let mut t = tuner();
    let mut env = TestEnv::new(25);
    env.external = Some(0.42);
    t.op_resolved(
        &mut env,
        &op_sample(
            1,
            ms(10),
            Resolution::Cancelled {
                attempts: 1,
                cause: pool_core::CancelCause::Caller,
            },
        ),
    );
    assert_eq!(t.memory_usages().back(), Some(&0.42));
    assert!((0.0..=1.0).contains(&0.42));
}

#[test]
fn a12_throughput_recorded_per_record() {
    let mut t = tuner();
    t.record(10.0, 0.0);
    assert_eq!(t.throughputs().len(), 1);
}

#[test]
fn a13_fewer_than_10_samples_no_adjustment() {
    let mut t = tuner();
    records(&mut t, 9, 1_000.0, 0.0);
    assert_eq!(t.adjust(ms(0)), None);
}

#[test]
fn a14_memory_pressure_cuts_20_percent() {
    // Heap 3 GB of 4 GB → 0.75 > 0.7: -ceil(0.2*25) = -5.
    let mut t = tuner();
    records(&mut t, 10, 100.0, 0.75);
    assert_eq!(t.adjust(ms(0)), Some(20));
    assert!(matches!(t.history()[0].reason, Reason::MemoryPressure(_)));
    assert_eq!(t.history()[0].reason.to_string(), "memory pressure (75.0%)");
}

#[test]
fn a15_high_latency_cuts_10_percent() {
    // 350 > 1.5*200: -ceil(2.5) = -3.
    let mut t = tuner();
    records(&mut t, 10, 350.0, 0.0);
    assert_eq!(t.adjust(ms(0)), Some(22));
    assert_eq!(t.history()[0].reason.to_string(), "high latency (350ms)");
}

#[test]
fn a16_low_latency_and_memory_scale_up_20_percent() {
    // 80 < 100 and memory 0.1 < 0.56: +ceil(5) = +5.
    let mut t = tuner();
    records(&mut t, 10, 80.0, 0.1);
    assert_eq!(t.adjust(ms(0)), Some(30));
    assert_eq!(t.history()[0].reason, Reason::ScaleUp);
}

#[test]
fn a17_slight_latency_increase_cuts_5_percent() {
    // 250 in (240, 300]: -ceil(1.25) = -2.
    let mut t = tuner();
    records(&mut t, 10, 250.0, 0.0);
    assert_eq!(t.adjust(ms(0)), Some(23));
    assert_eq!(t.history()[0].reason, Reason::SlightIncrease);
}

#[test]
fn a18_dead_band_no_change() {
    // 100 ≤ 190 ≤ 240: no rule fires (strengthened: exactly no change).
    let mut t = tuner();
    records(&mut t, 10, 190.0, 0.0);
    assert_eq!(t.adjust(ms(0)), None);
    assert_eq!(t.concurrency(), 25);
}

#[test]
fn a19_cut_stops_at_min() {
    // 1000 MB host with 900 free: tier 5 → 2. 500 ms: -ceil(0.2) = -1 → 1; then
    // -ceil(0.1) = -1 → max(1, 0) = 1: no change.
    let mut t = SeedAdaptiveTuning::new(SeedParams {
        host_total_mb: 1_000.0,
        host_free_mb: 900.0,
        ..SeedParams::default()
    });
    assert_eq!(t.concurrency(), 2);
    records(&mut t, 10, 500.0, 0.0);
    assert_eq!(t.adjust(ms(0)), Some(1));
    assert_eq!(t.adjust(ms(0)), None);
    assert_eq!(t.concurrency(), 1);
}

#[test]
fn a20_growth_stops_at_max() {
    let mut t = SeedAdaptiveTuning::new(SeedParams {
        max_concurrency: 50,
        ..SeedParams::default()
    });
    t.set_current(48);
    records(&mut t, 10, 50.0, 0.0);
    // 48 + ceil(9.6) = 58 → 50.
    assert_eq!(t.adjust(ms(0)), Some(50));
}

#[test]
fn a21_adjustment_history_entry() {
    let mut t = tuner();
    records(&mut t, 10, 350.0, 0.25);
    t.adjust(ms(7));
    let h = t.history()[0];
    assert_eq!((h.at, h.old, h.new), (ms(7), 25, 22));
    assert_eq!(h.avg_latency, 350.0);
    assert_eq!(h.avg_memory, 0.25);
    assert_eq!(h.avg_throughput, 5.5, "mean of min(n, 10) for n = 1..=10");
    assert_eq!(t.last_adjustment(), Some(ms(7)));
}

#[test]
fn a22_history_capped_at_100() {
    let mut t = tuner();
    records(&mut t, 10, 350.0, 0.0);
    for i in 0..150 {
        // Alternate direction so every call changes the value.
        t.set_current(if i % 2 == 0 { 50 } else { 60 });
        t.adjust(ms(i));
    }
    assert_eq!(t.history().len(), 100);
}

/// The seed tuner behind a lock, so a test can read it while an engine owns it.
struct Shared(Arc<Mutex<SeedAdaptiveTuning>>);

impl Controller for Shared {
    fn name(&self) -> &str {
        "s3db-adaptive"
    }
    fn initial_limit(&self) -> Option<u32> {
        self.0.lock().unwrap().initial_limit()
    }
    fn on_sample(&mut self, ctx: &mut ControlContext<'_>, s: &AttemptSample) {
        self.0.lock().unwrap().on_sample(ctx, s)
    }
    fn on_op_resolved(&mut self, ctx: &mut ControlContext<'_>, op: &OpSample) {
        self.0.lock().unwrap().on_op_resolved(ctx, op)
    }
    fn on_tick(&mut self, ctx: &mut ControlContext<'_>) {
        self.0.lock().unwrap().on_tick(ctx)
    }
}

fn engine_with(t: SeedAdaptiveTuning) -> (Driver, Arc<Mutex<SeedAdaptiveTuning>>) {
    let shared = Arc::new(Mutex::new(t));
    let mut d = Driver::new(EngineConfig::default());
    d.engine.set_controller(Box::new(Shared(shared.clone())));
    (d, shared)
}

#[test]
fn a23_timer_adjusts_every_interval_on_an_engine() {
    // Strengthened from "still defined after 150 ms": with a 50 ms interval and
    // 20 ms ops (< 100 ms: scale up), it adjusts at 50, 100 and 150 ms, and each
    // value reaches the engine at the next completion (HEAD's polling).
    let (mut d, t) = engine_with(SeedAdaptiveTuning::new(SeedParams {
        adjustment_interval_ms: 50,
        ..SeedParams::default()
    }));
    assert_eq!(d.engine.limit(), 25);
    let mut limits = Vec::new();
    for step in 0..4u64 {
        d.advance_to(ms(step * 50 + 5));
        d.submit(12, OpOptions::default());
        d.advance_to(ms(step * 50 + 25));
        d.finish_all(AttemptOutcome::Success, 0);
        limits.push(d.engine.limit());
    }
    // 25 → +5 = 30 (at 50 ms) → +6 = 36 (100 ms) → +ceil(7.2) = 44 (150 ms).
    assert_eq!(limits, vec![25, 30, 36, 44]);
    assert_eq!(t.lock().unwrap().history().len(), 3);
}

#[test]
fn a24_stop_ends_the_ticks() {
    let mut t = tuner();
    records(&mut t, 10, 50.0, 0.0);
    t.stop();
    assert!(!t.is_monitoring());
    let mut env = TestEnv::new(25);
    t.sample(&mut env, &S::ok(0, 10, 1).build());
    assert!(env.wakes.is_empty(), "no timer after stop");
    env.now = ms(5_000);
    t.tick(&mut env);
    assert_eq!(t.concurrency(), 25, "a stale wake-up does nothing");
}

#[test]
fn a25_a32_concurrency_is_current_and_positive() {
    let mut t = tuner();
    assert_eq!(t.concurrency(), 25);
    records(&mut t, 10, 50.0, 0.0);
    t.adjust(ms(0));
    assert_eq!(t.concurrency(), t.metrics().current);
    assert!(t.concurrency() > 0);
}

#[test]
fn a26_metrics_fields() {
    let mut t = tuner();
    records(&mut t, 10, 120.0, 0.3);
    let m = t.metrics();
    assert_eq!(m.current, 25);
    assert_eq!(m.avg_latency, 120.0);
    assert!((m.avg_memory - 0.3).abs() < 1e-12);
    assert_eq!(m.avg_throughput, 5.5);
    assert!(m.history.is_empty());
}

#[test]
fn a27_metrics_with_no_samples() {
    let m = tuner().metrics();
    assert_eq!(
        (m.avg_latency, m.avg_memory, m.avg_throughput),
        (0.0, 0.0, 0.0)
    );
    assert!(m.history.is_empty());
    assert_eq!(m.current, 25);
}

#[test]
fn a28_metrics_history_last_10() {
    let mut t = tuner();
    records(&mut t, 10, 350.0, 0.0);
    for i in 0..15 {
        t.set_current(60);
        t.adjust(ms(i));
    }
    let m = t.metrics();
    assert_eq!(m.history.len(), 10);
    assert_eq!(m.history[0].at, ms(5), "the most recent ten");
}

#[test]
fn a29_zero_latencies_keep_concurrency_positive() {
    let mut t = tuner();
    records(&mut t, 100, 0.0, 0.0);
    for i in 0..50 {
        t.adjust(ms(i));
    }
    assert_eq!(
        t.concurrency(),
        100,
        "0 ms reads as fast: straight to max (F35)"
    );
}

#[test]
fn a30_ten_second_latencies_keep_concurrency_positive() {
    let mut t = tuner();
    records(&mut t, 100, 10_000.0, 0.0);
    for i in 0..50 {
        t.adjust(ms(i));
    }
    assert_eq!(t.concurrency(), 1);
}

#[test]
fn a31_random_records() {
    let mut t = tuner();
    let mut env = TestEnv::new(25).with_seed(31);
    for _ in 0..200 {
        let lat = (pool_tuning::env::unit_f64(&mut env) * 1_000.0).floor();
        let mem = pool_tuning::env::unit_f64(&mut env);
        t.record(lat, mem);
    }
    assert_eq!(t.latencies().len(), 100);
    assert!(t.metrics().avg_latency >= 0.0);
}

#[test]
fn a33_engine_op_samples_are_accepted() {
    // The engine's full per-op record (with a retry): the recorded latency is
    // the successful attempt's execution time, excluding queue wait and backoff.
    let (mut d, t) = engine_with(tuner());
    d.engine.set_external_input(Some(0.5));
    d.submit(1, OpOptions::default());
    d.advance_to(ms(10));
    d.finish_all(AttemptOutcome::Failed(AttemptError::transient()), 0);
    // Step until the backoff ends and the retry starts.
    let mut at = 10;
    while d.running.is_empty() && at < 30_000 {
        at += 1;
        d.advance_to(ms(at));
    }
    assert_eq!(d.running.len(), 1, "retried");
    let start = *d.running.values().next().unwrap();
    d.advance_to(start + core::time::Duration::from_millis(30));
    d.finish_all(AttemptOutcome::Success, 0);
    let t = t.lock().unwrap();
    assert_eq!(
        t.latencies().iter().copied().collect::<Vec<_>>(),
        vec![30.0]
    );
    assert_eq!(t.memory_usages().back(), Some(&0.5));
}

#[test]
fn f35_the_same_samples_keep_cutting() {
    // No cooldown, no window reset: 8 calls with no new data.
    let mut t = tuner();
    records(&mut t, 100, 350.0, 0.0);
    let seq: Vec<u32> = (0..8).filter_map(|i| t.adjust(ms(i))).collect();
    assert_eq!(seq, vec![22, 19, 17, 15, 13, 11, 9, 8]);
}

#[test]
fn f35_initial_not_clamped_and_zero_options_fall_back() {
    let t = SeedAdaptiveTuning::new(SeedParams {
        max_concurrency: 10,
        ..SeedParams::default()
    });
    assert_eq!(
        t.concurrency(),
        25,
        "not clamped to max (the engine clamps it)"
    );
    let t = SeedAdaptiveTuning::new(SeedParams {
        min_concurrency: 0,
        target_latency_ms: 0.0,
        adjustment_interval_ms: 0,
        ..SeedParams::default()
    });
    let p = t.params();
    assert_eq!((p.min_concurrency, p.adjustment_interval_ms), (1, 5_000));
    assert_eq!(p.target_latency_ms, 200.0);
}

#[test]
fn f35_large_objects_read_as_congestion() {
    // A 16 MiB GET takes ~330 ms unloaded: the tuner cuts although nothing is
    // congested.
    let mut t = tuner();
    records(&mut t, 10, 330.0, 0.0);
    assert_eq!(t.adjust(ms(0)), Some(22));
}

#[test]
fn f28_without_external_input_memory_reads_zero() {
    let mut t = tuner();
    let mut env = TestEnv::new(25);
    for i in 0..10 {
        t.op_resolved(&mut env, &op_sample(i, ms(1), succeeded()));
    }
    assert!(t.memory_usages().iter().all(|m| *m == 0.0));
    // Failed ops record 0 ms (execution is only set on success, F29).
    assert!(t.latencies().iter().all(|l| *l == 0.0));
}

#[test]
fn f34_decisions_reach_the_engine_at_the_next_completion_and_manual_limits_stay() {
    let mut t = tuner();
    let mut env = TestEnv::new(25);
    records(&mut t, 10, 50.0, 0.0);
    env.now = ms(4_000);
    t.sample(&mut env, &S::ok(3_990, 10, 1).build()); // arms the timer for 5 s
                                                      // The tick adjusts (25 → 30) but does not set the limit.
    env.now = ms(5_000);
    t.tick(&mut env);
    assert_eq!(t.concurrency(), 30);
    assert!(env.set_limits.is_empty());
    t.op_resolved(
        &mut env,
        &op_sample(
            9,
            ms(5_001),
            Resolution::Failed {
                attempts: 1,
                cause: pool_core::FailureCause::DeadlineExceeded,
            },
        ),
    );
    assert_eq!(env.set_limits, vec![30]);
    // A manual limit stays while the tuner's value is unchanged.
    env.limit = 7;
    t.op_resolved(&mut env, &op_sample(10, ms(5_002), succeeded()));
    assert_eq!(env.set_limits, vec![30]);
}
