//! The AWS CUBIC client rate limiter: the SDKs' shared test vector (botocore /
//! Go v2 / smithy-rs `test_client_sending_rates`) plus hand-worked buckets.

mod common;
use common::*;
use core::time::Duration;
use pool_core::{Instant, RateGate, SampleOutcome};
use pool_tuning::{AwsAdaptiveParams, AwsAdaptiveRateLimiter};

fn close_rel(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn matches_the_sdk_sending_rate_vector() {
    // (t, throttled, measured rate, fill rate): every 0.2 s from the zeroed state.
    let rows: [(f64, bool, f64, f64); 17] = [
        (0.2, false, 0.0, 0.5),
        (0.4, false, 0.0, 0.5),
        (0.6, false, 4.800000000000001, 0.5),
        (0.8, false, 4.800000000000001, 0.5),
        (1.0, false, 4.16, 0.5),
        (1.2, false, 4.16, 0.6912),
        (1.4, false, 4.16, 1.0975999999999997),
        (1.6, false, 5.632000000000001, 1.6384000000000005),
        (1.8, false, 5.632000000000001, 2.3328),
        (2.0, true, 4.3264, 3.0284799999999996),
        (2.2, false, 4.3264, 3.48663917347026),
        (2.4, false, 4.3264, 3.821874416040255),
        (2.6, false, 5.66528, 4.053385727709987),
        (2.8, false, 5.66528, 4.200373108479454),
        (3.0, false, 4.333056, 4.282036558348658),
        (3.2, true, 4.333056, 2.99742559084406),
        (3.4, false, 4.333056, 3.4522263943863463),
    ];
    let mut r = AwsAdaptiveRateLimiter::zeroed();
    for (i, (t, throttled, measured, fill)) in rows.into_iter().enumerate() {
        // The vector's clock is a sum of 200 ms `Duration`s: exact values.
        let t_exact = Duration::from_millis(200 * (i as u64 + 1)).as_secs_f64();
        assert_eq!(t_exact, t);
        r.update(t, throttled);
        assert!(
            close_rel(r.measured_rate(), measured),
            "t={t}: measured {}",
            r.measured_rate()
        );
        assert!(
            close_rel(r.fill_rate(), fill),
            "t={t}: fill {}",
            r.fill_rate()
        );
    }
    assert!(r.enabled());
}

#[test]
fn disabled_until_the_first_throttle_then_paces_by_the_bucket() {
    let mut r = AwsAdaptiveRateLimiter::zeroed();
    // Disabled: every send goes at once.
    for _ in 0..100 {
        assert_eq!(r.acquire(0.5), Ok(()));
    }
    // A throttle at t = 1: bucket 1.0 > 0, rate = 1 response / 1 s;
    // measured = 0.8*1 = 0.8; new = 0.8*0.7 = 0.56 (< 2*0.8);
    // fill = max(0.56, 0.5) = 0.56; max capacity = max(0.56, 1) = 1; capacity 0.
    r.update(1.0, true);
    assert!(close_rel(r.fill_rate(), 0.56));
    assert!(close_rel(r.max_capacity(), 1.0));
    assert_eq!(r.capacity(), 0.0);
    // Need 1 token, have 0: wait (1 - 0) / 0.56 = 1.7857 s.
    let wait = r.acquire(1.0).unwrap_err();
    assert!((wait.as_secs_f64() - 1.0 / 0.56).abs() < 1e-9);
    // At t = 2.8 the bucket holds min(1, 1.8*0.56 = 1.008) = 1: granted, 0 left.
    assert_eq!(r.acquire(2.8), Ok(()));
    assert!(r.capacity().abs() < 1e-12);
}

#[test]
fn cubic_recovery_follows_the_published_curve() {
    // From W_max = 10 at t = 5 (the SDK's "calculated rate with successes"
    // vector): rate(t) = 0.4 (t - 5 - K)^3 + 10, K = cbrt(10*0.3/0.4).
    let k = libm::cbrt(10.0 * 0.3 / 0.4);
    for (t, want) in [(5.0, 7.0), (6.0, 9.64893600966), (7.0, 10.000030849917364)] {
        let got: f64 = 0.4 * (t - 5.0f64 - k).powi(3) + 10.0;
        assert!((got - want).abs() < 1e-9, "t={t}: {got}");
    }
}

#[test]
fn lazy_start_is_the_sdk_constructor_at_the_first_call() {
    // ClientRateLimiter::new(t0): measured 0.5, bucket floor(t0), last throttle t0.
    let mut r = AwsAdaptiveRateLimiter::new(AwsAdaptiveParams::default());
    assert_eq!(r.acquire(10.3), Ok(()));
    assert_eq!(r.measured_rate(), 0.5);
    // First response at 10.6: bucket 10.5 > 10: rate = 1/0.5 = 2;
    // measured = 0.8*2 + 0.2*0.5 = 1.7.
    r.update(10.6, false);
    assert!(close_rel(r.measured_rate(), 1.7));
}

#[test]
fn as_a_rate_gate_it_counts_responses_and_returns_a_retry_time() {
    let mut g = AwsAdaptiveRateLimiter::zeroed();
    let throttled = S::ok(0, 1_000, 1).outcome(SampleOutcome::Throttled).build();
    let cancelled = S::ok(0, 1_000, 1).outcome(SampleOutcome::Cancelled).build();
    g.on_sample(ms(1_000), &cancelled);
    assert!(!g.enabled(), "a cancel is no response");
    g.on_sample(ms(1_000), &throttled);
    assert!(g.enabled());
    let at = g.try_acquire(ms(1_000)).unwrap_err();
    // 1 / 0.56 s, rounded up to the nanosecond.
    let expect = ms(1_000) + Duration::from_nanos(libm::ceil(1e9 / 0.56) as u64);
    assert_eq!(at, expect);
    assert_eq!(g.try_acquire(at), Ok(()));
    assert_eq!(g.name(), "aws-adaptive");
}

#[test]
fn one_limiter_per_partition_from_the_factory() {
    let mut f = AwsAdaptiveRateLimiter::factory(AwsAdaptiveParams::default());
    let mut a = f("bucket/a");
    let mut b = f("bucket/b");
    let t = S::ok(0, 1_000, 1).outcome(SampleOutcome::Throttled).build();
    a.on_sample(ms(1_000), &t);
    assert!(a.try_acquire(ms(1_000)).is_err(), "a was throttled");
    assert_eq!(b.try_acquire(ms(1_000)), Ok(()), "b is independent");
    let _ = Instant::ZERO;
}
