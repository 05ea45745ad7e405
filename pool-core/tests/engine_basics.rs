//! Basic engine behaviour, driven step by step.

mod common;
use common::*;
use core::time::Duration;
use pool_core::*;

#[test]
fn limit_caps_starts_and_completion_frees_a_slot() {
    let mut h = Harness::with_limit(2);
    let ops: Vec<_> = (0..4).map(|_| h.submit(OpOptions::default())).collect();
    assert_eq!(h.running.len(), 2);
    assert_eq!(h.engine.queued(), 2);
    h.finish_op(ops[0], AttemptOutcome::Success);
    assert_eq!(h.running.len(), 2);
    assert_eq!(h.started_ops(), ops[..3].to_vec());
    assert_eq!(h.resolved[&ops[0]], Resolution::Succeeded { attempts: 1 });
}

#[test]
fn priority_orders_waiting_ops_and_fifo_breaks_ties() {
    let mut h = Harness::with_limit(1);
    let first = h.submit(OpOptions::default());
    let low = h.submit(OpOptions::default().priority(0));
    let high = h.submit(OpOptions::default().priority(10));
    let high2 = h.submit(OpOptions::default().priority(10));
    h.finish_op(first, AttemptOutcome::Success);
    h.finish_op(high, AttemptOutcome::Success);
    h.finish_op(high2, AttemptOutcome::Success);
    assert_eq!(h.started_ops(), vec![first, high, high2, low]);
}

#[test]
fn transient_failure_retries_after_backoff_without_holding_a_slot() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    h.finish_op(a, AttemptOutcome::Failed(AttemptError::transient()));
    // While `a` backs off, `b` holds the only slot.
    assert_eq!(h.running_of(b).len(), 1);
    assert_eq!(h.engine.waiting_retry(), 1);
    h.finish_op(b, AttemptOutcome::Success);
    h.advance_to(ms(10_000));
    let run = h.running_of(a);
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].number, 2);
    h.finish_op(a, AttemptOutcome::Success);
    assert_eq!(h.resolved[&a], Resolution::Succeeded { attempts: 2 });
}

#[test]
fn permanent_error_fails_at_once() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    h.finish_op(a, AttemptOutcome::Failed(AttemptError::permanent()));
    match h.resolved[&a] {
        Resolution::Failed {
            attempts: 1,
            cause:
                FailureCause::AttemptFailed {
                    why: NoRetry::Permanent,
                    ..
                },
        } => {}
        r => panic!("{r:?}"),
    }
}

#[test]
fn attempts_are_capped() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    for _ in 0..3 {
        h.finish_op(a, AttemptOutcome::Failed(AttemptError::transient()));
        h.advance_to(h.now + Duration::from_secs(30));
    }
    match h.resolved[&a] {
        Resolution::Failed {
            attempts: 3,
            cause:
                FailureCause::AttemptFailed {
                    why: NoRetry::AttemptsExhausted,
                    ..
                },
        } => {}
        r => panic!("{r:?}"),
    }
}

#[test]
fn timeout_cancels_then_late_completion_is_ignored() {
    let mut h = Harness::new(
        EngineConfig::builder()
            .limit(1)
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let a = h.submit(OpOptions::default());
    let first = h.running_of(a)[0];
    h.advance_to(ms(100));
    assert!(h.log.contains(&Decision::Cancel {
        attempt: first,
        reason: CancelReason::TimedOut
    }));
    assert!(h.running_of(a).is_empty(), "no overlap with the retry");
    assert!(!h
        .engine
        .attempt_finished(h.now, first, AttemptOutcome::Success, 0));
    h.advance_to(ms(5_000));
    // Every retry also timed out: three attempts, never two at once.
    assert_eq!(h.starts.iter().filter(|s| s.op == a).count(), 3);
    match h.resolved[&a] {
        Resolution::Failed {
            attempts: 3,
            cause: FailureCause::AttemptFailed {
                timed_out: true, ..
            },
        } => {}
        r => panic!("{r:?}"),
    }
}

#[test]
fn cancel_queued_and_running() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    assert!(h.engine.cancel(h.now, b));
    h.pump();
    assert!(matches!(
        h.resolved[&b],
        Resolution::Cancelled { attempts: 0, .. }
    ));
    assert!(h.engine.cancel(h.now, a));
    h.pump();
    assert!(matches!(
        h.resolved[&a],
        Resolution::Cancelled { attempts: 1, .. }
    ));
    assert!(!h.engine.cancel(h.now, a));
    assert_eq!(h.engine.in_flight(), 0);
}

#[test]
fn child_borrows_parent_slot_when_all_slots_are_taken() {
    let mut h = Harness::with_limit(1);
    let parent = h.submit(OpOptions::default());
    let child = h.submit(OpOptions::default().parent(parent));
    assert_eq!(
        h.running_of(child).len(),
        1,
        "child runs on the parent's slot"
    );
    assert_eq!(h.engine.in_flight(), 1);
    h.finish_op(child, AttemptOutcome::Success);
    h.finish_op(parent, AttemptOutcome::Success);
    assert_eq!(h.engine.live_ops(), 0);
    assert_eq!(h.engine.in_flight(), 0);
}

#[test]
fn partition_limit_skips_full_partition_only() {
    let mut h = Harness::with_limit(10);
    let hot = h.engine.partition("bucket/hot");
    let cold = h.engine.partition("bucket/cold");
    h.engine.set_partition_limit(hot, Some(1)).unwrap();
    let h1 = h.submit(OpOptions::default().partition(hot).priority(5));
    let h2 = h.submit(OpOptions::default().partition(hot).priority(5));
    let c1 = h.submit(OpOptions::default().partition(cold));
    assert_eq!(h.running_of(h1).len(), 1);
    assert!(h.running_of(h2).is_empty());
    assert_eq!(h.running_of(c1).len(), 1);
    h.finish_op(h1, AttemptOutcome::Success);
    assert_eq!(h.running_of(h2).len(), 1);
}

#[test]
fn rate_limit_paces_starts() {
    let mut h = Harness::with_limit(10);
    h.engine
        .set_class_rate(
            OpClass::GET,
            Some(RateLimit {
                per_second: 10.0,
                burst: 1.0,
            }),
        )
        .unwrap();
    let ops: Vec<_> = (0..3)
        .map(|_| h.submit(OpOptions::default().class(OpClass::GET)))
        .collect();
    assert_eq!(h.running.len(), 1);
    h.advance_to(ms(100));
    assert_eq!(h.running.len(), 2);
    h.advance_to(ms(200));
    assert_eq!(h.running.len(), 3);
    let _ = ops;
}

#[test]
fn deadline_fails_a_queued_op() {
    let mut h = Harness::with_limit(1);
    let _a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default().deadline(Duration::from_millis(50)));
    h.advance_to(ms(60));
    assert!(matches!(
        h.resolved[&b],
        Resolution::Failed {
            cause: FailureCause::DeadlineExceeded,
            ..
        }
    ));
}

#[test]
fn shutdown_refuses_new_work_and_finishes_old() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    h.engine.shutdown(h.now);
    assert_eq!(
        h.engine.submit(h.now, OpOptions::default()),
        Err(SubmitError::Closed)
    );
    h.finish_op(a, AttemptOutcome::Success);
    h.finish_op(b, AttemptOutcome::Success);
    assert_eq!(h.engine.lifecycle(), Lifecycle::Closed);
}

#[test]
fn abort_cancels_everything() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    h.engine.abort(h.now);
    h.pump();
    assert!(matches!(
        h.resolved[&a],
        Resolution::Cancelled {
            cause: CancelCause::Aborted,
            ..
        }
    ));
    assert!(matches!(
        h.resolved[&b],
        Resolution::Cancelled {
            cause: CancelCause::Aborted,
            ..
        }
    ));
    assert_eq!(h.engine.lifecycle(), Lifecycle::Closed);
}

#[test]
fn hedge_starts_second_attempt_and_loser_is_cancelled() {
    let cfg = EngineConfig::builder()
        .limit(10)
        .hedge(HedgeConfig {
            quantile: 0.5,
            min_samples: 10,
            budget_percent: 100.0,
            min_delay_ms: 1,
        })
        .build()
        .unwrap();
    let mut h = Harness::new(cfg);
    // Teach the class its latency: 10 ms.
    for _ in 0..20 {
        let op = h.submit(OpOptions::default());
        h.advance_to(h.now + Duration::from_millis(10));
        h.finish_op(op, AttemptOutcome::Success);
    }
    let slow = h.submit(OpOptions::default());
    h.advance_to(h.now + Duration::from_millis(50));
    let running = h.running_of(slow);
    assert_eq!(running.len(), 2, "hedged");
    h.finish(running[1], AttemptOutcome::Success);
    assert!(h.log.contains(&Decision::Cancel {
        attempt: running[0],
        reason: CancelReason::LostHedge
    }));
    assert!(h.resolved[&slow].is_success());
}

#[test]
fn children_of_live_ops_are_accepted_during_graceful_shutdown() {
    let mut h = Harness::with_limit(1);
    let parent = h.submit(OpOptions::default());
    h.engine.shutdown(h.now);
    let child = h.engine.submit(h.now, OpOptions::default().parent(parent));
    assert!(child.is_ok(), "{child:?}");
    assert_eq!(
        h.engine.submit(h.now, OpOptions::default()),
        Err(SubmitError::Closed)
    );
    h.engine.abort(h.now);
    assert_eq!(
        h.engine.submit(h.now, OpOptions::default().parent(parent)),
        Err(SubmitError::Closed)
    );
}

/// Counts what a controller is fed.
struct Counting(std::sync::Arc<std::sync::Mutex<(u32, u32)>>);

impl pool_core::Controller for Counting {
    fn on_sample(&mut self, _: &mut pool_core::ControlContext<'_>, _: &pool_core::AttemptSample) {
        self.0.lock().unwrap().0 += 1;
    }
    fn on_op_resolved(&mut self, _: &mut pool_core::ControlContext<'_>, _: &pool_core::OpSample) {
        self.0.lock().unwrap().1 += 1;
    }
}

#[test]
fn an_unsampled_coordinator_feeds_no_latency_anywhere_but_is_counted() {
    let fed = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
    let mut h = Harness::with_limit(4);
    h.engine.set_controller(Box::new(Counting(fed.clone())));
    // A coordinator that runs for a minute, and one ordinary 10 ms op.
    let coordinator = h.submit(OpOptions::default().unsampled());
    let plain = h.submit(OpOptions::default());
    h.advance_to(h.now + Duration::from_millis(10));
    h.finish_op(plain, AttemptOutcome::Success);
    h.advance_to(h.now + Duration::from_secs(60));
    h.finish_op(coordinator, AttemptOutcome::Success);
    assert!(h.resolved[&coordinator].is_success());
    assert_eq!(
        *fed.lock().unwrap(),
        (1, 1),
        "only the plain op is a sample"
    );
    let snap = h.engine.snapshot();
    assert_eq!(snap.counters.succeeded, 2);
    let class = &snap.classes[0];
    assert_eq!(class.attempt_latency.count, 1);
    assert_eq!(class.end_to_end.count, 1);
    assert!(
        class.attempt_latency.max < 20_000,
        "the minute-long attempt stayed out"
    );
}
