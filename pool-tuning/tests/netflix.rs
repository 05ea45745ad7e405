//! Netflix-family strategies on synthetic sample sequences, with the expected
//! limits worked out by hand from the formulas in each module's docs.

mod common;
use common::*;
use pool_core::SampleOutcome::{Cancelled, Permanent, Throttled, TimedOut, Transient};
use pool_tuning::env::{TestEnv, Tuner};
use pool_tuning::gradient2::ExpAvg;
use pool_tuning::vegas::log10_root;
use pool_tuning::window::{Window, WindowConfig};
use pool_tuning::*;

fn feed(t: &mut dyn Tuner, env: &mut TestEnv, s: S) {
    env.now = s.end();
    t.sample(env, &s.build());
}

#[test]
fn fixed_sets_its_limit_once_and_ignores_samples() {
    let mut f = Fixed::new(7);
    let mut env = TestEnv::new(7);
    assert_eq!(f.initial(), Some(7));
    feed(&mut f, &mut env, S::ok(0, 10, 7).outcome(Throttled));
    feed(&mut f, &mut env, S::ok(0, 10_000, 7));
    assert!(env.set_limits.is_empty());
    assert_eq!(Fixed::new(0).limit(), 1, "a zero limit is raised to 1");
}

#[test]
fn aimd_adds_one_near_the_limit_and_backs_off_by_the_ratio() {
    let mut a = Aimd::new(AimdParams {
        min_limit: 1,
        ..AimdParams::default()
    });
    let mut env = TestEnv::new(20);
    assert_eq!(a.initial(), Some(20));
    // inflight*2 >= L: 10*2 >= 20 → 21.
    feed(&mut a, &mut env, S::ok(0, 10, 10));
    // 5*2 < 21: unchanged (an update is still reported).
    feed(&mut a, &mut env, S::ok(0, 10, 5));
    // 11*2 >= 21 → 22.
    feed(&mut a, &mut env, S::ok(0, 10, 11));
    // Throttle: floor(22*0.9) = floor(19.8) = 19.
    feed(&mut a, &mut env, S::ok(0, 10, 11).outcome(Throttled));
    // Timeout: floor(19*0.9) = floor(17.1) = 17.
    feed(&mut a, &mut env, S::ok(0, 10, 11).outcome(TimedOut));
    // RTT 6 s > timeout 5 s is a drop: floor(17*0.9) = floor(15.3) = 15.
    feed(&mut a, &mut env, S::ok(0, 6_000, 11));
    // Transient errors and cancels say nothing: no update at all.
    feed(&mut a, &mut env, S::ok(0, 1, 11).outcome(Transient));
    feed(&mut a, &mut env, S::ok(0, 1, 11).outcome(Cancelled));
    // A permanent error is a normal answer: 8*2 >= 15 → 16.
    feed(&mut a, &mut env, S::ok(0, 10, 8).outcome(Permanent));
    assert_eq!(env.set_limits, vec![21, 21, 22, 19, 17, 15, 16]);
}

#[test]
fn aimd_respects_its_own_and_the_engine_bounds() {
    // Defaults: min 20, so a drop from 20 stays at 20.
    let mut a = Aimd::default();
    let mut env = TestEnv::new(20);
    feed(&mut a, &mut env, S::ok(0, 10, 10).outcome(Throttled));
    assert_eq!(env.set_limits, vec![20]);
    // At max 200: +1 is clamped.
    let mut a = Aimd::new(AimdParams {
        initial_limit: 200,
        ..AimdParams::default()
    });
    feed(&mut a, &mut env, S::ok(0, 10, 200));
    assert_eq!(a.limit(), 200);
    // The engine's bounds win: max 20 caps the strategy's 21.
    let mut a = Aimd::default();
    let mut env = TestEnv::new(20);
    env.bounds = (1, 20);
    feed(&mut a, &mut env, S::ok(0, 10, 20));
    assert_eq!(env.set_limits, vec![20]);
}

#[test]
fn aimd_override_continues_from_the_manual_limit() {
    let mut a = Aimd::new(AimdParams {
        min_limit: 1,
        ..AimdParams::default()
    });
    let mut env = TestEnv::new(20);
    a.overridden(50);
    feed(&mut a, &mut env, S::ok(0, 10, 30));
    assert_eq!(env.set_limits, vec![51]);
}

#[test]
fn log10_root_matches_netflix_lookup() {
    let cases = [
        (0, 1),
        (1, 1),
        (9, 1),
        (10, 1),
        (99, 1),
        (100, 2),
        (999, 2),
        (1000, 3),
        (12_345, 4),
    ];
    for (x, want) in cases {
        assert_eq!(log10_root(x), want, "L10({x})");
    }
}

#[test]
fn vegas_follows_the_queue_estimate() {
    let mut v = Vegas::default();
    let mut env = TestEnv::new(20);
    // First sample only sets rtt_noload = 100 ms.
    feed(&mut v, &mut env, S::ok(0, 100, 20));
    assert_eq!(v.rtt_noload_ns(), 100_000_000);
    // queue = ceil(20*(1-100/100)) = 0 <= threshold L10(20)=1: L + beta = 20 + 6 = 26.
    feed(&mut v, &mut env, S::ok(0, 100, 20));
    // queue = ceil(26*(1-100/125)) = ceil(5.2) = 6: not <= 1, not < alpha 3, not > beta 6: keep.
    feed(&mut v, &mut env, S::ok(0, 125, 26));
    // queue = ceil(26*0.5) = 13 > 6: decrease 26 - 1 = 25.
    feed(&mut v, &mut env, S::ok(0, 200, 26));
    // A drop always decreases: 25 - 1 = 24.
    feed(&mut v, &mut env, S::ok(0, 100, 26).outcome(Throttled));
    // App-limited (5*2 < 24): keep.
    feed(&mut v, &mut env, S::ok(0, 300, 5));
    // A faster sample only lowers rtt_noload.
    feed(&mut v, &mut env, S::ok(0, 50, 24));
    assert_eq!(v.rtt_noload_ns(), 50_000_000);
    assert_eq!(env.set_limits, vec![20, 26, 26, 25, 24, 24, 24]);
    assert!(close(v.estimate(), 24.0));
}

#[test]
fn vegas_uses_log10_steps_at_larger_limits_and_smoothing() {
    let mut v = Vegas::new(VegasParams {
        initial_limit: 150,
        ..VegasParams::default()
    });
    let mut env = TestEnv::new(150);
    feed(&mut v, &mut env, S::ok(0, 100, 150));
    // L10(150) = 2: beta = 12 → 162.
    feed(&mut v, &mut env, S::ok(0, 100, 150));
    assert!(close(v.estimate(), 162.0));
    // queue = ceil(162*(1-100/105)) = ceil(7.714) = 8: alpha 6 <= 8 <= beta 12: keep.
    feed(&mut v, &mut env, S::ok(0, 105, 150));
    // queue = ceil(162*(1-100/102)) = ceil(3.18) = 4 < alpha 6: increase by L10 = 2 → 164.
    feed(&mut v, &mut env, S::ok(0, 102, 150));
    assert!(close(v.estimate(), 164.0));

    // smoothing 0.5: 0.5*20 + 0.5*26 = 23.
    let mut v = Vegas::new(VegasParams {
        smoothing: 0.5,
        ..VegasParams::default()
    });
    feed(&mut v, &mut env, S::ok(0, 100, 20));
    feed(&mut v, &mut env, S::ok(0, 100, 20));
    assert!(close(v.estimate(), 23.0));

    // Fixed alpha/beta: alpha 1, beta 2, queue 6 > beta → decrease 26 → 25.
    let mut v = Vegas::new(VegasParams {
        alpha: Some(1),
        beta: Some(2),
        ..VegasParams::default()
    });
    feed(&mut v, &mut env, S::ok(0, 100, 20));
    feed(&mut v, &mut env, S::ok(0, 100, 20)); // queue 0 <= 1: 20 + beta 2 = 22
    assert!(close(v.estimate(), 22.0));
    feed(&mut v, &mut env, S::ok(0, 200, 22)); // queue 11 > 2: 22 - 1 = 21
    assert!(close(v.estimate(), 21.0));
}

#[test]
fn vegas_reprobes_the_noload_rtt_periodically() {
    // probe_multiplier 1, L = 2: jitter in [0.5, 1) gives a threshold in [1, 2),
    // so the second sample is always a probe that resets rtt_noload to itself.
    let mut v = Vegas::new(VegasParams {
        initial_limit: 2,
        probe_multiplier: 1,
        ..VegasParams::default()
    });
    let mut env = TestEnv::new(2).with_seed(7);
    feed(&mut v, &mut env, S::ok(0, 100, 2));
    assert_eq!(v.rtt_noload_ns(), 100_000_000);
    feed(&mut v, &mut env, S::ok(0, 300, 2));
    assert_eq!(
        v.rtt_noload_ns(),
        300_000_000,
        "probe takes the sample as no-load RTT"
    );
}

#[test]
fn gradient2_follows_the_netflix_update_sample_by_sample() {
    let mut g = Gradient2::new(Gradient2Params {
        min_limit: 1,
        window: None,
        ..Gradient2Params::default()
    });
    let mut env = TestEnv::new(20);
    // (rtt ms, inflight) → (estimate, long-RTT EMA value in ns), from the formula.
    let steps: [((u64, u32), (f64, f64)); 6] = [
        ((100, 20), (20.8, 100e6)),
        ((100, 20), (21.6, 100e6)),
        // long = 166.67 ms, gradient = 1.5*0.5556 = 0.8333: the +4 queue term still grows L.
        ((300, 21), (21.680000000000003, 166_666_666.666_666_66)),
        ((1000, 21), (20.583000000000006, 375e6)),
        // App-limited (5 < L/2): keep L, but the sample still enters the EMA:
        // long = 1600/5 = 320 ms, and 320/100 > 2 scales it by 0.95 → 304 ms.
        ((100, 5), (20.583000000000006, 304e6)),
        // Still warming up, the mean overwrites the decay: 1610/6 = 268.3 ms;
        // long/short = 26.8 > 2 scales it by 0.95; gradient clamps to 1.
        ((10, 20), (21.383000000000006, 254_916_666.666_666_66)),
    ];
    for ((rtt, inflight), (est, long)) in steps {
        feed(&mut g, &mut env, S::ok(0, rtt, inflight));
        assert!(
            close(g.estimate(), est),
            "estimate {} != {est}",
            g.estimate()
        );
        assert!(
            close(g.long_rtt_ns(), long),
            "long {} != {long}",
            g.long_rtt_ns()
        );
    }
    assert_eq!(env.set_limits, vec![20, 21, 21, 20, 20, 21]);
}

#[test]
fn gradient2_ignores_drops_and_clamps_to_min_limit() {
    // Default min_limit 20: the 0.5 gradient cannot take it below 20.
    let mut g = Gradient2::new(Gradient2Params {
        window: None,
        ..Gradient2Params::default()
    });
    let mut env = TestEnv::new(20);
    feed(&mut g, &mut env, S::ok(0, 100, 20).outcome(Throttled));
    // A throttle is an ordinary RTT sample to Gradient2 (Netflix issue #176).
    assert!(close(g.estimate(), 20.8));
    feed(&mut g, &mut env, S::ok(0, 10_000, 20));
    assert!(g.estimate() >= 20.0);
}

#[test]
fn exp_avg_is_a_mean_for_ten_samples_then_an_ema() {
    let mut e = ExpAvg::new(600, 10);
    for _ in 0..10 {
        e.add(100.0);
    }
    // 100 + (200-100) * 2/601.
    assert!(close(e.add(200.0), 100.332_778_702_163_05));
}

#[test]
fn window_hands_on_one_aggregate_per_ready_window() {
    let mut w = Window::new(WindowConfig::default());
    // The first sample closes the empty initial window (not ready: 1 < 10 samples)
    // and schedules the next close at end + clamp(2*10 ms, 1 s, 1 s) = 1.01 s.
    assert_eq!(w.add(ms(0), ms(10) - ms(0), 3, false), None);
    // Samples 1..=10 end at 110..1010 ms (not after 1.01 s).
    for i in 1..=10u64 {
        let rtt = if i == 5 { 30 } else { 10 };
        let r = w.add(ms(100 * i), ms(rtt) - ms(0), i as u32, i == 7);
        assert_eq!(r, None, "sample {i}");
    }
    // Sample 11 ends at 1011 ms > 1010 ms: the window of 11 samples closes.
    let agg = w
        .add(ms(1001), ms(10) - ms(0), 2, false)
        .expect("ready window");
    // Mean of ten 10 ms and one 30 ms = 130/11 ms, in whole ns.
    assert_eq!(agg.rtt_ns, 130_000_000 / 11);
    assert_eq!(agg.max_inflight, 10);
    assert!(agg.did_drop);
    // Samples under 100 µs are discarded.
    assert_eq!(
        w.add(ms(2000), core::time::Duration::from_micros(50), 1, true),
        None
    );
}

#[test]
fn percentile_window_tracks_the_nearest_rank_of_the_first_size_samples() {
    let mut w = Window::new(WindowConfig {
        percentile: Some(0.9),
        ..WindowConfig::default()
    });
    assert_eq!(w.add(ms(0), ms(1) - ms(0), 1, false), None);
    // 12 samples inside the window; only the first 10 are kept (Java's array).
    for i in 1..=12u64 {
        assert_eq!(w.add(ms(10 * i), ms(i) - ms(0), 1, false), None);
    }
    let agg = w.add(ms(1000), ms(50) - ms(0), 1, false);
    // Kept: 1..=10 ms (the 50 ms closer is ignored too: the array is full).
    // round(10*0.9) - 1 = index 8 → 9 ms.
    assert_eq!(agg.map(|a| a.rtt_ns), Some(9_000_000));
}

#[test]
fn windowed_aimd_updates_once_per_window() {
    let mut a = Aimd::new(AimdParams {
        min_limit: 1,
        window: Some(WindowConfig::default()),
        ..AimdParams::default()
    });
    let mut env = TestEnv::new(20);
    feed(&mut a, &mut env, S::ok(0, 10, 20));
    for i in 1..=10 {
        feed(&mut a, &mut env, S::ok(100 * i, 10, 20));
    }
    assert!(env.set_limits.is_empty(), "no window closed yet");
    feed(&mut a, &mut env, S::ok(1001, 10, 20).outcome(Throttled));
    // One update with the window's OR of drops: floor(20*0.9) = 18.
    assert_eq!(env.set_limits, vec![18]);
}
