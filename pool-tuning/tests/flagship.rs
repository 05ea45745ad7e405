//! The flagship on synthetic rounds with hand-worked estimates.

mod common;
use common::*;
use pool_core::SampleOutcome::{Cancelled, Throttled, TimedOut, Transient};
use pool_tuning::env::{TestEnv, Tuner};
use pool_tuning::flagship::Phase;
use pool_tuning::{Flagship, FlagshipParams};

fn params() -> FlagshipParams {
    FlagshipParams {
        initial_limit: 4,
        min_round_samples: 2,
        min_round_ms: 0,
        ..FlagshipParams::default()
    }
}

fn feed(f: &mut Flagship, env: &mut TestEnv, s: S) {
    env.now = s.end();
    f.sample(env, &s.build());
}

/// One round: two ops started at `start_ms`, both taking `lat_ms`, `bytes` each.
fn round(f: &mut Flagship, env: &mut TestEnv, start_ms: u64, lat_ms: u64, bytes: u64) {
    for _ in 0..2 {
        feed(f, env, S::ok(start_ms, lat_ms, 50).bytes(bytes));
    }
}

/// A saturated client (a queue behind it) doing 2 ops of 100 ms per round.
fn startup(f: &mut Flagship, env: &mut TestEnv) {
    env.queued = 100;
    round(f, env, 0, 100, 0);
    round(f, env, 100, 100, 0);
    round(f, env, 200, 100, 0);
}

#[test]
fn startup_doubles_until_the_rate_stops_growing_then_cruises_at_the_knee() {
    let mut f = Flagship::new(params());
    let mut env = TestEnv::new(4);
    assert_eq!(f.initial(), Some(4));
    env.queued = 100;
    // Round 1: 2 units in 0.1 s = 20 units/s, latency 0.1 s/unit. Startup: 4 → 8.
    round(&mut f, &mut env, 0, 100, 0);
    assert_eq!(f.max_rate(), Some(20.0));
    assert_eq!(f.min_latency(), Some(0.1));
    assert_eq!(env.set_limits, vec![8]);
    // Round 2: still 20/s (< 1.25 × 20): one stalled round, 8 → 16.
    round(&mut f, &mut env, 100, 100, 0);
    assert_eq!(f.phase(), Phase::Startup);
    // Round 3: second stalled round → cruise. knee = 20 × 0.1 = 2 ops.
    round(&mut f, &mut env, 200, 100, 0);
    assert!(close(f.bdp().unwrap(), 2.0));
    let Phase::Cruise(i) = f.phase() else {
        panic!("expected cruise, got {:?}", f.phase())
    };
    assert!((2..8).contains(&i), "starts on a cruise round, not a probe");
    // Cruise gain 1.1: 2.2 → 2.
    assert!(close(f.limit(), 2.2));
    assert_eq!(env.set_limits, vec![8, 16, 2]);
}

#[test]
fn large_objects_are_normalised_by_size() {
    let mut f = Flagship::new(params());
    let mut env = TestEnv::new(4);
    startup(&mut f, &mut env);
    // Two 4 MiB GETs of 500 ms: cost 1 + 4 = 5 units each, 0.1 s/unit — the
    // same per-unit latency as the small ops, so no sign of congestion — and
    // 10 units in 0.5 s = 20 units/s: the knee stays 2 (ops of cost 1).
    round(&mut f, &mut env, 300, 500, 4 << 20);
    assert!(close(f.min_latency().unwrap(), 0.1));
    assert!(close(f.bdp().unwrap(), 2.0));
    // A faster server: 2 units in 50 ms = 40 units/s at 0.05 s/unit → knee 2.
    // Probing is what raises it: the max rate doubles, the min latency halves.
    round(&mut f, &mut env, 800, 50, 0);
    assert!(close(f.max_rate().unwrap(), 40.0));
    assert!(close(f.min_latency().unwrap(), 0.05));
}

#[test]
fn the_cycle_probes_up_then_drains() {
    let mut f = Flagship::new(params());
    let mut env = TestEnv::new(4);
    startup(&mut f, &mut env);
    let mut seen = Vec::new();
    let mut t = 300;
    for _ in 0..8 {
        round(&mut f, &mut env, t, 100, 0);
        t += 100;
        if let Phase::Cruise(i) = f.phase() {
            seen.push((i, f.limit()));
        }
    }
    // Every round of the 8-round cycle comes once; knee 2 × gain, and the
    // probe asks for at least one more slot: max(2 × 1.3, 2 + 1) = 3.
    seen.sort_by_key(|&(i, _)| i);
    let want: Vec<(u32, f64)> = (0..8)
        .map(|i| {
            (
                i,
                2.0 * [1.5, 0.85, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1][i as usize],
            )
        })
        .collect();
    assert_eq!(seen.len(), 8);
    for ((i, l), (wi, wl)) in seen.iter().zip(&want) {
        assert_eq!(i, wi);
        assert!(close(*l, *wl), "round {i}: {l} != {wl}");
    }
}

#[test]
fn a_throttle_cuts_once_per_cooldown_and_caps_the_recovery() {
    let mut f = Flagship::new(FlagshipParams {
        initial_limit: 100,
        cooldown_ms: 500,
        ..params()
    });
    let mut env = TestEnv::new(100);
    env.queued = 100;
    // Throttle at t = 1 s: 100 × 0.8 = 80, and startup ends.
    feed(&mut f, &mut env, S::ok(900, 100, 100).outcome(Throttled));
    assert_eq!(env.set_limits, vec![80]);
    assert!(matches!(f.phase(), Phase::Cruise(_)));
    assert_eq!(f.ceiling(), Some(80.0));
    // More 503s from requests already sent, within the 500 ms cooldown: no cut.
    feed(&mut f, &mut env, S::ok(1_000, 100, 100).outcome(Throttled));
    feed(&mut f, &mut env, S::ok(1_200, 200, 100).outcome(TimedOut));
    assert_eq!(env.set_limits, vec![80]);
    // After the cooldown a timeout is a new event: 80 × 0.8 = 64.
    feed(&mut f, &mut env, S::ok(1_501, 100, 100).outcome(TimedOut));
    assert!(close(f.limit(), 64.0));
    // Transient errors and cancels are not congestion.
    feed(&mut f, &mut env, S::ok(2_200, 1, 100).outcome(Transient));
    feed(&mut f, &mut env, S::ok(2_200, 1, 100).outcome(Cancelled));
    assert!(close(f.limit(), 64.0));
}

#[test]
fn the_ceiling_grows_per_clean_round_but_stays_under_the_throttle_mark() {
    let mut f = Flagship::new(FlagshipParams {
        initial_limit: 100,
        cooldown_ms: 500,
        ceiling_growth: 0.1,
        throttle_mark: 0.9,
        ..params()
    });
    let mut env = TestEnv::new(100);
    env.queued = 100;
    feed(&mut f, &mut env, S::ok(900, 100, 100).outcome(Throttled));
    assert_eq!(f.ceiling(), Some(80.0));
    // Clean rounds after the cooldown (t ≥ 1.5 s) grow the ceiling by 10 %
    // each, capped at the mark 0.9 × 100: 80 → 88 → 90 → 90.
    let mut ceilings = Vec::new();
    for t in 1_500..1_503 {
        round(&mut f, &mut env, t, 1, 0);
        ceilings.push(f.ceiling().unwrap());
    }
    assert!(close(ceilings[0], 88.0));
    assert!(close(ceilings[1], 90.0));
    assert!(close(ceilings[2], 90.0));
    // After the memory (30 s) it probes past the mark: 90 → 99.
    round(&mut f, &mut env, 32_000, 1, 0);
    assert!(close(f.ceiling().unwrap(), 99.0));
}

#[test]
fn an_app_limited_round_never_grows_the_limit() {
    let mut f = Flagship::new(params());
    let mut env = TestEnv::new(4);
    // No queue and 1 in flight (< limit 4): app-limited.
    env.queued = 0;
    for _ in 0..2 {
        feed(&mut f, &mut env, S::ok(0, 100, 1));
    }
    assert_eq!(env.set_limits, vec![4]);
    assert_eq!(f.phase(), Phase::Startup);
}

#[test]
fn stale_min_latency_triggers_probe_rtt() {
    let mut f = Flagship::new(params());
    let mut env = TestEnv::new(4);
    startup(&mut f, &mut env);
    // Rounds at twice the minimum latency: after 10 s without a round near the
    // minimum, probe-RTT drops the limit to half the knee for ≥ 200 ms.
    let mut t = 300;
    let mut probes = Vec::new();
    while t < 12_000 {
        round(&mut f, &mut env, t, 200, 0);
        t += 200;
        if let Phase::ProbeRtt(until) = f.phase() {
            probes.push((t, until, f.limit(), f.bdp().unwrap()));
        }
    }
    // Last refresh at 0.3 s (end of startup): the round ending at 10.5 s is the
    // first more than 10 s later.
    let (at, until, limit, bdp) = probes[0];
    assert_eq!(at, 10_500);
    assert_eq!(until, ms(10_700));
    assert!(close(limit, bdp * 0.5), "{limit} vs {bdp}");
    assert_eq!(probes.len(), 1, "one round of probe-RTT, then cruise again");
}

#[test]
fn a_throttle_in_startup_drops_straight_to_the_measured_knee() {
    let mut f = Flagship::new(params());
    let mut env = TestEnv::new(4);
    env.queued = 100;
    round(&mut f, &mut env, 0, 100, 0); // 4 → 8
    round(&mut f, &mut env, 100, 100, 0); // 8 → 16, knee 2
    assert!(close(f.limit(), 16.0));
    // Cut = 16 × 0.8 = 12.8 (the ceiling); the knee × 1.1 = 2.2 is lower.
    feed(&mut f, &mut env, S::ok(250, 10, 16).outcome(Throttled));
    assert_eq!(f.ceiling(), Some(12.8));
    assert!(close(f.limit(), 2.2));
    assert!(matches!(f.phase(), Phase::Cruise(_)));
}
