//! The flagship on synthetic rounds with hand-worked decisions.

mod common;
use common::*;
use core::time::Duration;
use pool_core::SampleOutcome::{Cancelled, Throttled, TimedOut, Transient};
use pool_tuning::env::{TestEnv, Tuner};
use pool_tuning::flagship::{BurstBudget, KneeTable, Phase};
use pool_tuning::{Flagship, FlagshipParams};

fn params() -> FlagshipParams {
    FlagshipParams {
        initial_limit: 4,
        min_round_samples: 1,
        min_round_ms: 0,
        ..FlagshipParams::default()
    }
}

fn feed(f: &mut Flagship, env: &mut TestEnv, s: S) {
    env.now = s.end();
    f.sample(env, &s.build());
}

/// One round starting at `t` ms (the previous round's end): `n` ops of
/// `lat` ms and `bytes` each, started with `level` in flight. All but the last
/// started just before `t`, so only the last (ending at `t + lat`) closes it:
/// the round lasts `lat` ms and delivers all `n`.
fn round(f: &mut Flagship, env: &mut TestEnv, t: u64, n: u32, level: u32, lat: u64, bytes: u64) {
    for i in 0..n {
        let start = if i + 1 < n { t - 1 } else { t };
        feed(f, env, S::ok(start, lat, level).bytes(bytes));
    }
}

/// A saturated client after a one-op warm-up round (the first round is never
/// a measurement: the limit has just been set).
fn saturated(p: FlagshipParams) -> (Flagship, TestEnv) {
    let mut f = Flagship::new(p);
    let mut env = TestEnv::new(p.initial_limit);
    env.queued = 100;
    feed(&mut f, &mut env, S::ok(0, 100, p.initial_limit));
    (f, env)
}

#[test]
fn startup_doubles_on_settled_rounds_and_stops_at_the_bandwidth_knee() {
    let (mut f, mut env) = saturated(params());
    assert_eq!(f.initial(), Some(4));
    assert_eq!(env.set_limits, vec![4], "the warm-up round holds");
    // 4 ops of 100 ms at level 4: 40 ops/s. Startup doubles: 4 → 8.
    round(&mut f, &mut env, 100, 4, 4, 100, 0);
    let r = f.last_round().unwrap();
    assert!(close(r.level, 4.0) && close(r.rate, 40.0) && close(r.ops_rate, 40.0));
    assert_eq!(env.set_limits, vec![4, 8]);
    // The round right after a jump is a transient: hold, measure the next.
    round(&mut f, &mut env, 200, 8, 8, 100, 0);
    assert_eq!(env.set_limits, vec![4, 8, 8]);
    // Level 8 delivers 80/s (2× for 2×): still growing, 8 → 16.
    round(&mut f, &mut env, 300, 8, 8, 100, 0);
    assert_eq!(env.set_limits, vec![4, 8, 8, 16]);
    assert_eq!(f.phase(), Phase::Startup);
    round(&mut f, &mut env, 400, 8, 16, 100, 0);
    // Level 16 still delivers 80/s (< 1.5 × 80 for a doubling). The table
    // holds (4, 40), (8, 80), (16, 80): the smallest level within 15 % of the
    // best is 8, and 16 ≥ 1.4 × 8 was tried, so the knee caps the limit at
    // 1.5 × 8 = 12. One slow round may be a tail answer, though: startup does
    // not end on it.
    round(&mut f, &mut env, 500, 8, 16, 100, 0);
    assert_eq!(f.phase(), Phase::Startup);
    assert_eq!(f.knee(env.now), Some(8.0));
    assert!(close(f.limit(), 12.0));
    // The move to 12 makes the next round a transient: held.
    round(&mut f, &mut env, 600, 8, 12, 100, 0);
    assert_eq!(f.phase(), Phase::Startup);
    // Level 12 delivers 80/s against the same reference (8, 80): the bar for
    // a 1.5× step is 80 × 1.5^0.585 = 101. Stalled twice: cruise at the cap.
    round(&mut f, &mut env, 700, 8, 12, 100, 0);
    assert_eq!(f.phase(), Phase::Cruise);
    assert!(close(f.limit(), 12.0));
    assert_eq!(env.set_limits.last(), Some(&12));
}

#[test]
fn startup_aims_at_the_documented_request_rate_then_cruises() {
    let (mut f, mut env) = saturated(FlagshipParams {
        startup_max_rate: 100.0,
        ..params()
    });
    // Level 4 at 40 ops/s: 100 ops/s needs 4 × 100 / 40 = 10 ≥ 8, so double.
    round(&mut f, &mut env, 100, 4, 4, 100, 0);
    round(&mut f, &mut env, 200, 8, 8, 100, 0); // hold
                                                // Level 8 at 80 ops/s: 100 ops/s needs 10 (< 16): go straight there.
    round(&mut f, &mut env, 300, 8, 8, 100, 0);
    assert_eq!(env.set_limits, vec![4, 8, 8, 10]);
    round(&mut f, &mut env, 400, 10, 10, 100, 0); // hold
                                                  // Level 10 at 100 ops/s: the target is reached; cruise. Delivery still
                                                  // grew with concurrency, so there is no knee.
    round(&mut f, &mut env, 500, 10, 10, 100, 0);
    assert_eq!(f.phase(), Phase::Cruise);
    assert!(close(f.limit(), 10.0));
    assert_eq!(f.knee(env.now), None);
}

#[test]
fn cruise_grows_per_second_of_saturated_rounds() {
    let (mut f, mut env) = saturated(FlagshipParams {
        startup_max_rate: 40.0,
        growth_per_s: 1.0,
        ..params()
    });
    // 40 ops/s at level 4 is the target already: cruise at 4.
    round(&mut f, &mut env, 100, 4, 4, 100, 0);
    assert_eq!(f.phase(), Phase::Cruise);
    // A settled 500 ms round: 4 × 2^0.5 = 5.66 (< 10 % would be 4.4, so it moved).
    round(&mut f, &mut env, 200, 4, 4, 500, 0);
    assert!(close(f.limit(), 4.0 * 2f64.sqrt()), "{}", f.limit());
    // Moved by more than 10 %: the next round holds.
    round(&mut f, &mut env, 700, 4, 6, 500, 0);
    assert!(close(f.limit(), 4.0 * 2f64.sqrt()));
}

#[test]
fn large_objects_count_for_their_bytes() {
    let (mut f, mut env) = saturated(params());
    assert!(close(f.cost(4 << 20), 5.0));
    // Two 4 MiB GETs in 100 ms: 10 work units, 100 units/s, 20 ops/s.
    round(&mut f, &mut env, 100, 2, 2, 100, 4 << 20);
    let r = f.last_round().unwrap();
    assert!(close(r.rate, 100.0) && close(r.ops_rate, 20.0));
    let plain = Flagship::new(FlagshipParams {
        size_ref_bytes: 0,
        ..params()
    });
    assert!(close(plain.cost(4 << 20), 1.0));
}

#[test]
fn a_throttle_cuts_at_once_then_to_the_measured_capacity() {
    let (mut f, mut env) = (
        Flagship::new(FlagshipParams {
            initial_limit: 100,
            min_round_samples: 10,
            ..params()
        }),
        TestEnv::new(100),
    );
    env.queued = 100;
    // Ten answers at level 100, two of them 503s. The first 503 cuts at once:
    // 100 × 0.9 = 90, and startup ends; the second is in the cooldown.
    feed(&mut f, &mut env, S::ok(0, 100, 100).outcome(Throttled));
    assert_eq!(env.set_limits, vec![90]);
    assert_eq!(f.phase(), Phase::Cruise);
    feed(&mut f, &mut env, S::ok(0, 100, 100).outcome(Throttled));
    for _ in 0..8 {
        feed(&mut f, &mut env, S::ok(0, 100, 100));
    }
    // Little's law on successes: 100 × 8/10 = 80 slots carried them. The
    // limit goes to 0.95 × 80 = 76.
    let (w, at) = f.capacity().unwrap();
    assert!(close(w, 80.0) && at == ms(100));
    assert!(close(f.limit(), 76.0));
    assert_eq!(env.set_limits, vec![90, 76]);
}

#[test]
fn after_a_throttle_the_limit_regrows_on_a_cubic_around_the_capacity() {
    let p = FlagshipParams {
        initial_limit: 100,
        min_round_samples: 10,
        growth_per_s: 0.0,
        ..params()
    };
    let mut f = Flagship::new(p);
    // k = ∛(0.05 / 0.4) = 0.5 s: 0.95 w at once, w at 0.5 s, 1.4 w at 1.5 s.
    assert!(close(f.cubic_target(80.0, 0.0), 76.0));
    assert!(close(f.cubic_target(80.0, 0.5), 80.0));
    assert!(close(f.cubic_target(80.0, 1.5), 112.0));
    let mut env = TestEnv::new(100);
    env.queued = 100;
    feed(&mut f, &mut env, S::ok(0, 100, 100).outcome(Throttled));
    for _ in 0..9 {
        feed(&mut f, &mut env, S::ok(0, 100, 100));
    }
    // w = 100 × 0.9 = 90 at t = 0.1 s; limit min(90, 85.5) = 85.5.
    assert!(close(f.limit(), 85.5));
    // A settled round ending 1.5 s after the throttle: 1.4 × 90 = 126.
    let mut g = |t: u64, lat: u64| {
        for i in 0..10 {
            let start = if i < 9 { t - 1 } else { t };
            feed(&mut f, &mut env, S::ok(start, lat, 85));
        }
    };
    g(100, 1_500);
    assert!(close(f.limit(), 126.0), "{}", f.limit());
}

#[test]
fn a_timeout_cuts_once_per_cooldown_and_leaves_no_memory() {
    let mut f = Flagship::new(FlagshipParams {
        initial_limit: 100,
        cooldown_ms: 500,
        ..params()
    });
    let mut env = TestEnv::new(100);
    feed(&mut f, &mut env, S::ok(0, 1_000, 100).outcome(TimedOut));
    assert!(close(f.limit(), 90.0));
    // Within the cooldown: no second cut.
    feed(&mut f, &mut env, S::ok(100, 1_000, 100).outcome(TimedOut));
    assert!(close(f.limit(), 90.0));
    // After it: 90 × 0.9 = 81. No capacity is remembered.
    feed(&mut f, &mut env, S::ok(600, 1_000, 100).outcome(TimedOut));
    assert!(close(f.limit(), 81.0));
    assert_eq!(f.capacity(), None);
    // Transient errors and cancels are not congestion.
    feed(&mut f, &mut env, S::ok(2_000, 1, 100).outcome(Transient));
    feed(&mut f, &mut env, S::ok(2_000, 1, 100).outcome(Cancelled));
    assert!(close(f.limit(), 81.0));
}

#[test]
fn an_app_limited_round_never_grows_and_trims_to_twice_the_peak() {
    let mut f = Flagship::new(FlagshipParams {
        initial_limit: 16,
        ..params()
    });
    let mut env = TestEnv::new(16);
    // No queue and 3 in flight (< 16): app-limited. 16 → 2 × 3 = 6.
    env.queued = 0;
    feed(&mut f, &mut env, S::ok(0, 100, 3));
    assert_eq!(env.set_limits, vec![6]);
    assert_eq!(f.phase(), Phase::Startup);
}

#[test]
fn the_knee_table_finds_the_smallest_level_near_the_best_rate() {
    let mut k = KneeTable::new(Duration::from_secs(5), 0.1);
    let t = ms(1_000);
    k.record(8.0, 80.0, t);
    k.record(12.0, 100.0, t);
    // Still growing, and no level 1.4× above a candidate: no knee.
    assert_eq!(k.knee(t), None);
    k.record(16.0, 104.0, t);
    // Best 104; 12 delivers 100 ≥ 93.6, but nothing at ≥ 1.4 × 12 = 16.8 was
    // tried yet: not proven.
    assert_eq!(k.knee(t), None);
    k.record(20.0, 102.0, t);
    assert_eq!(k.knee(t), Some(12.0));
    // A repeat measurement at a level is averaged (running mean).
    k.record(12.0, 96.0, t);
    assert_eq!(k.knee(t), Some(12.0));
    // Measurements older than the window are not trusted.
    assert_eq!(k.knee(ms(7_000)), None);
    // A measurement 1.5× off the stored one at its level: the environment
    // changed, so everything older is dropped.
    k.record(20.0, 30.0, ms(2_000));
    assert_eq!(k.best(ms(2_000)), Some(30.0));
    assert_eq!(k.knee(ms(2_000)), None);
}

#[test]
fn a_confirmed_plateau_keeps_the_knee_fresh() {
    let mut k = KneeTable::new(Duration::from_secs(5), 0.1);
    k.record(10.0, 100.0, ms(0));
    k.record(16.0, 100.0, ms(0));
    assert_eq!(k.knee(ms(0)), Some(10.0));
    // Only the level above is re-measured, but it confirms the plateau, so the
    // knee's own measurement is refreshed and does not age out.
    for s in 1..=8 {
        k.record(16.0, 99.0, ms(s * 1_000));
    }
    assert_eq!(k.knee(ms(8_000)), Some(10.0));
}

#[test]
fn startup_takes_a_short_step_when_delivery_grows_less_than_the_level() {
    let (mut f, mut env) = saturated(params());
    // Level 4: 40 ops/s; double to 8 and hold a round.
    round(&mut f, &mut env, 100, 4, 4, 100, 0);
    round(&mut f, &mut env, 200, 8, 8, 100, 0);
    // Level 8 delivers 64/s: 1.6× the rate for 2× the level. Not a stall
    // (≥ 1.5×), but 1.6 < 0.9 × 2 = 1.8, so a bandwidth knee is near: the
    // step is the knee span, 8 × 1.4 = 11.2 → 11, not 16.
    round(&mut f, &mut env, 300, 8, 8, 125, 0);
    let r = f.last_round().unwrap();
    assert!(close(r.rate, 64.0), "{}", r.rate);
    assert!(close(f.limit(), 11.2), "{}", f.limit());
    assert_eq!(env.set_limits, vec![4, 8, 8, 11]);
    assert_eq!(f.phase(), Phase::Startup);
    round(&mut f, &mut env, 425, 11, 11, 100, 0); // hold
                                                  // Level 11 delivers 72/s. The stall bar scales with the step actually
                                                  // taken: 1.5^(log(11/8)/log 2) = 1.5^0.459 = 1.205, so 64 × 1.205 = 77.1
                                                  // was needed. Stalled: cruise. The table holds (4, 40), (8, 64),
                                                  // (11, 72): best 72, smallest level within 15 % (≥ 61.2) is 8, but
                                                  // 11 < 1.4 × 8 = 11.2, so the knee is not proven and the limit stays.
    round(&mut f, &mut env, 525, 9, 11, 125, 0);
    assert_eq!(
        f.phase(),
        Phase::Startup,
        "one stalled round is re-measured"
    );
    round(&mut f, &mut env, 650, 9, 11, 125, 0);
    assert_eq!(f.phase(), Phase::Cruise);
    assert!(close(f.last_round().unwrap().rate, 72.0));
    assert_eq!(f.knee(env.now), None);
    assert!(close(f.limit(), 11.2), "{}", f.limit());
}

#[test]
fn rounds_far_below_the_limit_or_after_an_app_limited_one_are_not_measurements() {
    let mut f = Flagship::new(FlagshipParams {
        initial_limit: 64,
        startup_max_rate: 50.0,
        ..params()
    });
    let mut env = TestEnv::new(64);
    // An idle client (no queue, 30 in flight): app-limited, trimmed to 2 × 30.
    env.queued = 0;
    feed(&mut f, &mut env, S::ok(0, 100, 30));
    assert_eq!(env.set_limits, vec![60]);
    // Load arrives. The first saturated round after an app-limited one is
    // held (its ops started while the level was lower): no growth, nothing
    // recorded.
    env.queued = 100;
    round(&mut f, &mut env, 100, 4, 40, 100, 0);
    assert_eq!(env.set_limits, vec![60, 60]);
    // Level 40 is below 0.8 × 60 = 48: a transient, so not recorded either.
    // 40 ops/s at level 40: the 50 ops/s target needs 40 × 50 / 40 = 50
    // (< 1.1 × 60), so startup ends and the limit stays.
    round(&mut f, &mut env, 200, 4, 40, 100, 0);
    assert_eq!(f.phase(), Phase::Cruise);
    assert_eq!(env.set_limits, vec![60, 60, 60]);
    // At 60 (settled) the table gets its first entry (one level: no knee) and
    // cruise grows 60 × 1.5^0.1 = 62.5 → 62.
    round(&mut f, &mut env, 300, 6, 60, 100, 0);
    assert_eq!(f.knee(env.now), None);
    assert_eq!(f.last_round().map(|r| r.level), Some(60.0));
    assert!(close(f.limit(), 60.0 * 1.5f64.powf(0.1)), "{}", f.limit());
    assert_eq!(env.set_limits, vec![60, 60, 60, 62]);
}

#[test]
fn a_slowdown_at_or_above_the_knee_drops_the_stale_plateau() {
    let mut k = KneeTable::new(Duration::from_secs(5), 0.1);
    k.record(10.0, 100.0, ms(0));
    k.record(16.0, 100.0, ms(0));
    assert_eq!(k.knee(ms(0)), Some(10.0));
    // S3 became 3× slower: a new level above the knee delivers 50 < 100 / 1.5.
    // Kept, the old plateau would be a knee this slow round "confirms"
    // forever; it is dropped instead, and the table starts over.
    k.record(22.0, 50.0, ms(1_000));
    assert_eq!(k.best(ms(1_000)), Some(50.0));
    assert_eq!(k.knee(ms(1_000)), None);
    // Less of a drop (≥ 100 / 1.5) keeps the plateau: noise, or past the knee.
    let mut k = KneeTable::new(Duration::from_secs(5), 0.1);
    k.record(10.0, 100.0, ms(0));
    k.record(16.0, 100.0, ms(0));
    k.record(22.0, 70.0, ms(1_000));
    assert_eq!(k.knee(ms(1_000)), Some(10.0));
}

#[test]
fn a_new_best_above_the_knee_does_not_refresh_it() {
    let mut k = KneeTable::new(Duration::from_secs(5), 0.1);
    k.record(10.0, 100.0, ms(0));
    k.record(16.0, 100.0, ms(0));
    assert_eq!(k.knee(ms(0)), Some(10.0));
    // 16 now delivers 140 > 1.1 × 100: more concurrency paid after all. The
    // two measurements at 16 average to 120; the knee moves up to 16 (the
    // only level within 10 % of 120), and nothing 1.4× above it was tried.
    k.record(16.0, 140.0, ms(1_000));
    assert_eq!(k.best(ms(1_000)), Some(120.0));
    assert_eq!(k.knee(ms(1_000)), None);
}

#[test]
fn the_burst_budget_settles_probes_and_stands_down() {
    // A bucket of 100 req/s holding one second (depth 100); settle at 80.
    let mut b = BurstBudget::new(100.0, 1.0, 0.8, 0.5);
    assert!(b.armed());
    // 0.5 s at 200 ok/s borrows 50: not settled yet.
    b.record(200.0, 0.5, false, ms(500));
    assert!(close(b.borrowed(), 50.0));
    assert_eq!(b.ceiling(ms(500), 1_000.0), None);
    // 0.3 s more borrows 30: 80 = 0.8 × 100, settled at 0.8 s. With 1,000
    // ops to go, what is left to spend is (100 − 80) × 0.8 = 16, so the
    // backlog may run at 100 / (1 − 16 / 1000) = 101.6/s; the probe is at 100.
    b.record(200.0, 0.3, false, ms(800));
    assert!(close(b.ceiling(ms(800), 1_000.0).unwrap(), 100.0 / 0.984));
    // One second later the probe is at 100 × 1.5 = 150.
    assert!(close(b.ceiling(ms(1_800), 1_000.0).unwrap(), 150.0));
    // A backlog of 10 fits in the 16 left: no ceiling.
    assert_eq!(b.ceiling(ms(800), 10.0), None);
    // A slow round (a timeout's cut) pays back 10 but does not restart the
    // probe's clock: still 150 at 1.8 s.
    b.record(50.0, 0.2, false, ms(1_000));
    assert!(close(b.borrowed(), 70.0));
    assert!(close(b.ceiling(ms(1_800), 1_000.0).unwrap(), 150.0));
    // 0.2 s at 300/s would borrow 110 > 100 with no 503: the documented rate
    // is not this server's limit. The budget stands down.
    b.record(300.0, 0.2, false, ms(1_200));
    assert!(!b.armed());
    assert!(close(b.borrowed(), 100.0));
    assert_eq!(b.ceiling(ms(1_200), 1_000.0), None);
    // It re-arms once the borrowing is paid back (1 s idle).
    b.record(0.0, 1.0, false, ms(2_200));
    assert!(b.armed() && b.borrowed() == 0.0);
    // A 503 means the real bucket is empty: stand down, all borrowed.
    b.record(200.0, 0.1, true, ms(2_300));
    assert!(!b.armed());
    assert!(close(b.borrowed(), 100.0));
    // Off: `burst_s = 0`.
    let mut off = BurstBudget::new(100.0, 0.0, 0.8, 0.5);
    off.record(1_000.0, 10.0, false, ms(10_000));
    assert!(!off.armed() && off.ceiling(ms(10_000), 1e6).is_none());
}

#[test]
fn most_of_the_burst_spent_paces_the_limit_at_the_documented_rate() {
    let (mut f, mut env) = saturated(FlagshipParams {
        initial_limit: 20,
        startup_max_rate: 80.0,
        burst_spend: 0.75,
        ..params()
    });
    // A long backlog: the rest of the burst cannot carry it.
    env.queued = 1_000_000;
    // Rounds of 125 ms answers start at 100 + 125 k ms.
    let t = |k: u64| 100 + 125 * k;
    // Level 20 at 160 ok/s: twice the 80/s target, so startup ends at once;
    // every round borrows (160 − 80) × 0.125 = 10 of the burst of 80.
    round(&mut f, &mut env, t(0), 20, 20, 125, 0);
    assert_eq!(f.phase(), Phase::Cruise);
    assert!(close(f.burst().borrowed(), 10.0));
    // Cruise grows 1.5^0.125 per round meanwhile.
    for k in 1..5 {
        round(&mut f, &mut env, t(k), 20, 20, 125, 0);
    }
    assert!(close(f.limit(), 20.0 * 1.5f64.powf(0.5)), "{}", f.limit());
    // The sixth round has borrowed 60 = 0.75 × 80: settled. The limit is
    // paced at the ceiling × mean latency, Little's law for 80 ok/s at
    // 125 ms: 10 (the backlog adds a factor 1 / (1 − 15 / 10⁶)).
    round(&mut f, &mut env, t(5), 20, 20, 125, 0);
    assert!(close(f.burst().borrowed(), 60.0));
    assert!((f.limit() - 10.0).abs() < 0.001, "{}", f.limit());
    assert_eq!(env.set_limits.last(), Some(&10));
    // The ops still in flight from level 20 answer at 160/s (borrowed 70);
    // the probe is 0.125 s old: 80 × 1.5^0.125 = 84.1/s, a limit of 10.5.
    round(&mut f, &mut env, t(6), 20, 20, 125, 0);
    assert!((f.limit() - 10.0 * 1.5f64.powf(0.125)).abs() < 0.001);
    // A timeout's cut (× 0.9) does not hold the probe back: the next round,
    // at 80/s (borrowing nothing), paces at the ceiling again.
    feed(&mut f, &mut env, S::ok(t(7) - 20, 10, 10).outcome(TimedOut));
    assert!(f.limit() < 10.0);
    round(&mut f, &mut env, t(7), 10, 10, 125, 0);
    assert!(close(f.burst().borrowed(), 70.0));
    assert!((f.limit() - 10.0 * 1.5f64.powf(0.25)).abs() < 0.001);
    // A full burst borrowed and no 503 (a split prefix): the budget stands
    // down. The last round moved the limit by more than 10 %, so this one
    // holds; then cruise grows freely again.
    round(&mut f, &mut env, t(8), 20, 20, 125, 0);
    assert!(!f.burst().armed());
    assert!((f.limit() - 10.0 * 1.5f64.powf(0.25)).abs() < 0.001);
    round(&mut f, &mut env, t(9), 20, 20, 125, 0);
    assert!((f.limit() - 10.0 * 1.5f64.powf(0.375)).abs() < 0.001);
}

#[test]
fn params_are_validated() {
    assert!(FlagshipParams::default().validate().is_ok());
    let bad = [
        FlagshipParams {
            throttle_beta: 1.0,
            ..FlagshipParams::default()
        },
        FlagshipParams {
            throttle_margin: 0.0,
            ..FlagshipParams::default()
        },
        FlagshipParams {
            cruise_gain: 0.5,
            ..FlagshipParams::default()
        },
        FlagshipParams {
            startup_linearity: 1.0,
            ..FlagshipParams::default()
        },
        FlagshipParams {
            growth_per_s: f64::NAN,
            ..FlagshipParams::default()
        },
        FlagshipParams {
            min_limit: 5,
            max_limit: 4,
            ..FlagshipParams::default()
        },
    ];
    for p in bad {
        assert!(p.validate().is_err(), "{p:?}");
    }
}
