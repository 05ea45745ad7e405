//! With the AWS SDKs' adaptive rate limiter attached to the pool, S3's
//! SlowDown answers lower the rate at which requests are sent.

use crate::common::{bucket, client, data, pool, start, Fault, Rule};
use pool_core::{AttemptSample, Instant, RateGate, SampleOutcome};
use pool_s3::CallOptions;
use pool_tuning::aws::{AwsAdaptiveParams, AwsAdaptiveRateLimiter};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Debug)]
struct Seen {
    /// Sends the gate made wait.
    refused: u64,
    /// Sends refused before the first throttle (must be none).
    refused_before_throttle: u64,
    /// (measured send rate before, fill rate after) at each throttle.
    throttles: Vec<(f64, f64)>,
}

/// The real limiter, watched.
struct Watched(AwsAdaptiveRateLimiter, Arc<Mutex<Seen>>);

impl RateGate for Watched {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn try_acquire(&mut self, now: Instant) -> Result<(), Instant> {
        let r = self.0.try_acquire(now);
        if r.is_err() {
            let mut s = self.1.lock().unwrap();
            s.refused += 1;
            if s.throttles.is_empty() {
                s.refused_before_throttle += 1;
            }
        }
        r
    }
    fn on_sample(&mut self, now: Instant, sample: &AttemptSample) {
        let before = self.0.measured_rate();
        self.0.on_sample(now, sample);
        if sample.outcome == SampleOutcome::Throttled {
            self.1
                .lock()
                .unwrap()
                .throttles
                .push((before, self.0.fill_rate()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowdowns_lower_the_send_rate_with_the_aws_rate_limiter() {
    let server = start().await;
    let p = pool(8);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let gate = AwsAdaptiveRateLimiter::new(AwsAdaptiveParams::default());
    p.set_rate_gate(Box::new(Watched(gate, Arc::clone(&seen))));
    let c = client(&server, p);
    bucket(&c, "rate").await;
    // Phase 1: unthrottled traffic for over a second, so the limiter has
    // measured the send rate over a few of its 0.5 s buckets.
    let start_at = std::time::Instant::now();
    let mut n = 0u64;
    while start_at.elapsed() < Duration::from_millis(1_200) {
        let c = &c;
        let puts = (0..16).map(|i| async move {
            c.put(
                "rate",
                &format!("a{}", n + i),
                data(64, i),
                CallOptions::new(),
            )
            .await
        });
        for r in futures_util::future::join_all(puts).await {
            r.unwrap();
        }
        n += 16;
    }
    assert_eq!(
        seen.lock().unwrap().refused,
        0,
        "no pacing before a throttle"
    );
    // Phase 2: a burst of SlowDowns, then more traffic.
    server
        .faults
        .add(Rule::new(Fault::SlowDown).method("PUT").times(3));
    let c = &c;
    let puts = (0..40).map(|i| async move {
        c.put("rate", &format!("b{i}"), data(64, i), CallOptions::new())
            .await
    });
    for r in futures_util::future::join_all(puts).await {
        r.unwrap();
    }
    let s = seen.lock().unwrap();
    assert_eq!(s.throttles.len(), 3, "{s:?}");
    assert_eq!(s.refused_before_throttle, 0, "{s:?}");
    // Each throttle cut the allowed rate below what was being sent ...
    for &(measured, fill) in &s.throttles {
        assert!(fill < measured, "{s:?}");
    }
    // ... and the first cut is the SDKs' β = 0.7 of the measured rate.
    let (m, f) = s.throttles[0];
    assert!((f - 0.7 * m).abs() < 1e-6 * m.max(1.0), "{s:?}");
    // Sends were actually held back by the gate.
    assert!(s.refused > 0, "{s:?}");
}
