//! Envoy's gradient controller on synthetic samples, timers driven by hand.

mod common;
use common::*;
use pool_core::Instant;
use pool_core::SampleOutcome::Cancelled;
use pool_tuning::env::{TestEnv, Tuner};
use pool_tuning::{EnvoyGradient, EnvoyParams};

fn small() -> EnvoyParams {
    EnvoyParams {
        request_count: 5,
        update_interval_ms: 100,
        min_rtt_interval_ms: 1_000,
        jitter_percent: 0.0,
        ..EnvoyParams::default()
    }
}

fn feed(e: &mut EnvoyGradient, env: &mut TestEnv, s: S) {
    env.now = s.end();
    e.sample(env, &s.build());
}

fn tick(e: &mut EnvoyGradient, env: &mut TestEnv, at: u64) {
    env.now = ms(at);
    e.tick(env);
}

/// Runs the first minRTT window: samples (start, latency) 0/10, 10/12, 20/8,
/// 30/11, 40/9 ms → p50 (3rd of 5) = 10 ms, done at 49 ms.
fn first_window(e: &mut EnvoyGradient, env: &mut TestEnv) {
    for (start, lat) in [(0, 10), (10, 12), (20, 8), (30, 11), (40, 9)] {
        feed(e, env, S::ok(start, lat, 1));
    }
}

#[test]
fn starts_pinned_at_min_concurrency_and_measures_min_rtt() {
    let mut e = EnvoyGradient::new(small());
    let mut env = TestEnv::new(3);
    assert_eq!(e.initial(), Some(3));
    assert!(e.in_min_rtt_window());
    // A cancelled attempt is no latency sample.
    feed(&mut e, &mut env, S::ok(0, 1, 1).outcome(Cancelled));
    first_window(&mut e, &mut env);
    assert!(!e.in_min_rtt_window());
    assert_eq!(e.min_rtt_us(), 10_000);
    assert_eq!(
        env.set_limits,
        vec![3],
        "the deferred limit (3) is restored"
    );
    assert_eq!(env.wakes, vec![ms(149)], "sample timer re-armed at +100 ms");
    assert_eq!(e.next_min_rtt_at(), Some(ms(1_049)));
}

#[test]
fn updates_the_limit_by_the_gradient_every_interval() {
    let mut e = EnvoyGradient::new(small());
    let mut env = TestEnv::new(3);
    first_window(&mut e, &mut env);
    for start in [100, 110, 120] {
        feed(&mut e, &mut env, S::ok(start, 10, 3));
    }
    // gradient = (10 + 2.5) / 10 = 1.25; 3*1.25 = 3.75; + sqrt(3.75) = 5.686 → 5.
    tick(&mut e, &mut env, 149);
    assert_eq!(e.limit(), 5);
    for start in [150, 160, 170] {
        feed(&mut e, &mut env, S::ok(start, 20, 5));
    }
    // gradient = 12.5 / 20 = 0.625; 5*0.625 = 3.125; + 1.768 = 4.893 → 4.
    tick(&mut e, &mut env, 249);
    assert_eq!(e.sample_rtt_us(), 20_000);
    assert_eq!(e.limit(), 4);
    // No samples: no update.
    tick(&mut e, &mut env, 349);
    assert_eq!(env.set_limits, vec![3, 5, 4]);
    // Each tick re-arms the next one exactly once.
    assert_eq!(env.wakes, vec![ms(149), ms(249), ms(349), ms(449)]);
}

#[test]
fn gradient_is_clamped_to_two_and_the_limit_to_max() {
    let mut e = EnvoyGradient::new(EnvoyParams {
        max_concurrency_limit: 7,
        ..small()
    });
    let mut env = TestEnv::new(3);
    first_window(&mut e, &mut env);
    feed(&mut e, &mut env, S::ok(100, 1, 3));
    // gradient = clamp(12.5 / 1, .., 2.0) = 2: 6 + sqrt(6) = 8.45 → 8 → max 7.
    tick(&mut e, &mut env, 149);
    assert_eq!(e.limit(), 7);
}

#[test]
fn periodic_min_rtt_window_pins_the_limit_and_ignores_older_requests() {
    let mut e = EnvoyGradient::new(small());
    let mut env = TestEnv::new(3);
    first_window(&mut e, &mut env);
    for start in [100, 110, 120] {
        feed(&mut e, &mut env, S::ok(start, 10, 3));
    }
    tick(&mut e, &mut env, 149); // → 5
    for t in (249..1049).step_by(100) {
        tick(&mut e, &mut env, t);
    }
    // At 1049 ms both timers are due: the (empty) sample reset, then the window.
    tick(&mut e, &mut env, 1_049);
    assert!(e.in_min_rtt_window());
    assert_eq!(e.limit(), 3);
    // Started before the window: ignored, even though it ends inside it.
    for _ in 0..5 {
        feed(&mut e, &mut env, S::ok(1_000, 60, 3));
    }
    assert!(e.in_min_rtt_window());
    for i in 0..5 {
        feed(&mut e, &mut env, S::ok(1_100 + i, 20, 3));
    }
    assert!(!e.in_min_rtt_window());
    assert_eq!(e.min_rtt_us(), 20_000);
    assert_eq!(e.limit(), 5, "the remembered limit is restored");
    assert_eq!(*env.set_limits.last().unwrap(), 5);
}

#[test]
fn five_updates_at_the_minimum_force_a_new_window() {
    let mut e = EnvoyGradient::new(small());
    let mut env = TestEnv::new(3);
    first_window(&mut e, &mut env);
    let mut t = 149;
    for round in 1..=5 {
        feed(&mut e, &mut env, S::ok(t - 40, 100, 3));
        // gradient 0.5: 1.5 + 1.22 = 2.72 → 2 → clamped to 3, the minimum.
        tick(&mut e, &mut env, t);
        assert_eq!(e.in_min_rtt_window(), round == 5, "after update {round}");
        t += 100;
    }
}

#[test]
fn jittered_window_interval_comes_from_the_rng() {
    let mut e = EnvoyGradient::new(EnvoyParams {
        request_count: 1,
        ..EnvoyParams::default()
    });
    let mut env = TestEnv::new(3).with_seed(42);
    feed(&mut e, &mut env, S::ok(0, 10, 1));
    let next = e.next_min_rtt_at().expect("scheduled");
    // interval + rand % ceil(60 000 * 0.15) ms.
    assert!(
        next >= ms(10 + 60_000) && next < ms(10 + 69_000),
        "{next:?}"
    );
    // Same seed, same schedule.
    let mut e2 = EnvoyGradient::new(EnvoyParams {
        request_count: 1,
        ..EnvoyParams::default()
    });
    let mut env2 = TestEnv::new(3).with_seed(42);
    feed(&mut e2, &mut env2, S::ok(0, 10, 1));
    assert_eq!(e2.next_min_rtt_at(), Some(next));
}

#[test]
fn fixed_min_rtt_never_probes() {
    let mut e = EnvoyGradient::new(EnvoyParams {
        fixed_min_rtt_ms: Some(10),
        ..small()
    });
    let mut env = TestEnv::new(3);
    assert!(!e.in_min_rtt_window());
    feed(&mut e, &mut env, S::ok(0, 10, 3));
    assert_eq!(env.wakes, vec![ms(110)]);
    tick(&mut e, &mut env, 110);
    assert_eq!(e.limit(), 5);
    assert_eq!(e.next_min_rtt_at(), None::<Instant>);
}
