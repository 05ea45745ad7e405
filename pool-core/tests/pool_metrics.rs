//! Feature `metrics`: `Pool::export_metrics` publishes counters, gauges and
//! latency histograms through the `metrics` facade, labelled by pool and class.
//! A small hand-written recorder (`pool_util/recorder.rs`) keeps every value
//! for the assertions.
#![cfg(feature = "metrics")]

mod pool_util;
use pool_core::*;
use pool_util::recorder::TestRecorder;
use pool_util::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::time::sleep;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test(start_paused = true)]
async fn counters_gauges_and_histograms_by_class() {
    let rec = TestRecorder::new("test");
    let _local = ::metrics::set_default_local_recorder(&rec);
    let p = pool_with(cfg(2).max_attempts(3));
    p.export_metrics("test");
    assert!(close(rec.gauge("pool_limit"), 2.0));

    // GET: one attempt of 10 ms.
    let get = p.run(RunOptions::new().class(OpClass::GET), |_| async {
        sleep(ms(10)).await;
        Ok::<_, Oops>(())
    });
    // PUT: throttled twice, then succeeds.
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let put = p.run_classified(
        RunOptions::new().class(OpClass::PUT),
        |_: &Oops| AttemptError::throttled(),
        move |_| {
            let n = t.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                sleep(ms(5)).await;
                if n < 3 {
                    Err(Oops("slow down"))
                } else {
                    Ok(())
                }
            }
        },
    );
    let (g, u) = tokio::join!(get, put);
    g.unwrap();
    u.unwrap();
    // LIST: times out on every attempt.
    let list = p
        .run(
            RunOptions::new()
                .class(OpClass::LIST)
                .timeout(ms(20))
                .max_attempts(1),
            |_| async {
                sleep(ms(1_000)).await;
                Ok::<_, Oops>(())
            },
        )
        .await;
    assert!(matches!(list, Err(PoolError::TimedOut { .. })));

    assert_eq!(rec.counter("pool_ops_submitted_total", "get"), 1);
    assert_eq!(rec.counter("pool_ops_started_total", "get"), 1);
    assert_eq!(rec.counter("pool_attempts_total", "get"), 1);
    assert_eq!(rec.counter("pool_ops_succeeded_total", "get"), 1);
    assert_eq!(rec.counter("pool_ops_succeeded_total", "put"), 1);
    assert_eq!(rec.counter("pool_attempts_total", "put"), 3);
    assert_eq!(rec.counter("pool_ops_started_total", "put"), 1);
    assert_eq!(rec.counter("pool_retries_total", "put"), 2);
    assert_eq!(rec.counter("pool_attempts_throttled_total", "put"), 2);
    assert_eq!(rec.counter("pool_ops_failed_total", "list"), 1);
    assert_eq!(rec.counter("pool_attempts_timed_out_total", "list"), 1);

    let get_attempts = rec.samples("pool_attempt_duration_seconds", "get");
    assert_eq!(get_attempts.len(), 1);
    assert!(close(get_attempts[0], 0.010), "{get_attempts:?}");
    assert_eq!(rec.samples("pool_attempt_duration_seconds", "put").len(), 3);
    let put_ops = rec.samples("pool_op_duration_seconds", "put");
    assert_eq!(put_ops.len(), 1);
    assert!(
        put_ops[0] >= 0.015,
        "three 5 ms attempts plus backoff: {put_ops:?}"
    );
    // A timed-out attempt has no duration sample; the failed op has one.
    assert!(rec
        .samples("pool_attempt_duration_seconds", "list")
        .is_empty());
    assert_eq!(rec.samples("pool_op_duration_seconds", "list").len(), 1);

    assert!(close(rec.gauge("pool_in_flight"), 0.0));
    assert!(close(rec.gauge("pool_queued"), 0.0));
    p.set_limit(5).unwrap();
    assert!(close(rec.gauge("pool_limit"), 5.0));
}

#[tokio::test(start_paused = true)]
async fn gauges_follow_the_queue_and_refused_submits_count_as_rejected() {
    let rec = TestRecorder::new("test");
    let _local = ::metrics::set_default_local_recorder(&rec);
    let p = pool_with(cfg(1).max_queued(1));
    p.export_metrics("test");
    let slow = |_| async {
        sleep(ms(50)).await;
        Ok::<_, Oops>(())
    };
    let running = tokio::spawn(p.run(RunOptions::new(), slow));
    settle().await;
    let queued = tokio::spawn(p.run(RunOptions::new(), slow));
    settle().await;
    assert!(close(rec.gauge("pool_in_flight"), 1.0));
    assert!(close(rec.gauge("pool_queued"), 1.0));
    // Same priority and the queue is full: refused at submit.
    let refused = p.run(RunOptions::new(), slow).await;
    assert!(matches!(refused, Err(PoolError::Rejected)));
    assert_eq!(rec.counter("pool_ops_rejected_total", "default"), 1);
    assert_eq!(rec.counter("pool_ops_submitted_total", "default"), 3);
    running.await.unwrap().unwrap();
    queued.await.unwrap().unwrap();
    assert!(close(rec.gauge("pool_in_flight"), 0.0));
    assert_eq!(rec.counter("pool_ops_succeeded_total", "default"), 2);
}
