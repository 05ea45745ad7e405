//! Regression tests for the seed's engine flaws (reference §12, F1–F44): one test
//! per flaw that concerns scheduling, lifecycle, retries, timeouts, limits, metrics
//! accounting or events, each showing what the engine does instead. Everything runs
//! on engine time (no sleeps), so every test is deterministic.
//!
//! Flaws owned by another layer (not tested here):
//! * F12 (TaskExecutor is nominal, two batch APIs): the async `Pool` (one trait, one batch API).
//! * F17 (priority unreachable from the S3 API): `pool-s3`.
//! * F19 (retry matching on names/messages): `pool-s3`'s error classifier; the engine
//!   only ever sees a typed [`ErrorClass`].
//! * F27 (per-task heap metrics): nowhere — no layer samples the heap per op.
//! * F28 (memory signal is heap ÷ host RAM): `pool-tuning` and the driver feeding
//!   `Engine::set_external_input`.
//! * F34, F35 (tuner unwired, naive controller): `pool-tuning` and `pool-s3`.
//! * F36, F37, F39, F41 (LIST bypass, HEAD-per-key deletes, event forwarding, socket
//!   cap): `pool-s3`.
//! * F38 (unbounded batch fan-out): the async `Pool` / `pool-s3` batch APIs.
//! * F40 (no global coordination): the shared in-flight limit and fairness between
//!   clients belong to the async `Pool`/`pool-s3`; only its request-rate part is an
//!   engine concern (`f40_partition_request_rate_is_enforced`).
//! * F42 (disconnect neither drains nor stops): `pool-s3` / async `Pool`.
//! * F43 (config churn across layers): `pool-s3`; the engine's part, one strict
//!   config, is `engine_config_json_rejects_unknown_fields`.
//! * F44 (test hygiene): this file is the answer (engine time, concrete asserts).
//!
//! F1–F3 also have an async half (the `drain`/`pause` futures) in the async `Pool`;
//! here we test the engine facts those futures are built on.

mod common;
use common::*;
use core::time::Duration;
use pool_core::retry::{QuotaConfig, RetryConfig};
use pool_core::*;
use std::sync::{Arc, Mutex, Once};

fn d(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

const OK: AttemptOutcome = AttemptOutcome::Success;

fn fail(e: AttemptError) -> AttemptOutcome {
    AttemptOutcome::Failed(e)
}

fn transient() -> AttemptOutcome {
    fail(AttemptError::transient())
}

/// Every op submitted is resolved exactly once or still live.
fn assert_conserved(e: &Engine) {
    let c = e.metrics().counters();
    let ended = c.succeeded + c.failed + c.cancelled + c.rejected;
    assert_eq!(c.submitted, ended + e.live_ops() as u64, "{c:?}");
}

type EventLog = Arc<Mutex<Vec<Event>>>;

fn observe(h: &mut Harness) -> EventLog {
    let log = EventLog::default();
    let sink = log.clone();
    h.engine
        .set_observer(Box::new(move |_: Instant, e: &Event| {
            sink.lock().unwrap().push(*e)
        }));
    log
}

fn count(log: &EventLog, pred: impl Fn(&Event) -> bool) -> usize {
    log.lock().unwrap().iter().filter(|e| pred(e)).count()
}

/// `(op, delay)` of every retry scheduled among `decisions`, taken at `now`.
fn retries(decisions: &[Decision], now: Instant) -> Vec<(OpId, Duration)> {
    decisions
        .iter()
        .filter_map(|d| match *d {
            Decision::RetryScheduled { op, at } => Some((op, at - now)),
            _ => None,
        })
        .collect()
}

fn no_quota() -> RetryConfig {
    RetryConfig {
        quota: None,
        ..RetryConfig::default()
    }
}

fn failed_why(r: &Resolution) -> Option<NoRetry> {
    match *r {
        Resolution::Failed {
            cause: FailureCause::AttemptFailed { why, .. },
            ..
        } => Some(why),
        _ => None,
    }
}

// ----- lifecycle and liveness ------------------------------------------------------

/// F1: "`drain()` while paused with queued work never returns and starves the event
/// loop." We: `drain_status()` says `PausedWithWork` and no timer is pending, so a
/// drain can report instead of spinning; after `resume` it is `Busy`, then `Idle`.
#[test]
fn f01_drain_while_paused_reports_instead_of_spinning() {
    let mut h = Harness::with_limit(2);
    assert_eq!(h.engine.drain_status(), DrainStatus::Idle);
    h.engine.pause(h.now);
    let ops = [
        h.submit(OpOptions::default()),
        h.submit(OpOptions::default()),
    ];
    assert!(h.running.is_empty(), "paused: nothing starts");
    assert_eq!(h.engine.drain_status(), DrainStatus::PausedWithWork);
    assert_eq!(h.engine.poll_timeout(), None, "nothing to wake up for");
    h.engine.resume(h.now);
    h.pump();
    assert_eq!(h.running.len(), 2);
    assert_eq!(h.engine.drain_status(), DrainStatus::Busy);
    for op in ops {
        h.finish_op(op, OK);
    }
    assert_eq!(h.engine.drain_status(), DrainStatus::Idle);
}

/// F2: "`drain()` and `pause()` reject with a task's error." We: an op's failure
/// is only that op's resolution; pause, lifecycle and drain status are untouched.
#[test]
fn f02_op_errors_never_surface_in_pause_or_drain() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    h.engine.pause(h.now);
    h.finish_op(a, fail(AttemptError::permanent()));
    assert_eq!(failed_why(&h.resolved[&a]), Some(NoRetry::Permanent));
    assert!(!h.resolved.contains_key(&b));
    assert!(h.engine.is_paused());
    assert_eq!(h.engine.lifecycle(), Lifecycle::Open);
    assert_eq!(h.engine.drain_status(), DrainStatus::PausedWithWork);
}

/// F3: "`pause()` resolves when the *first* active task finishes." We: a paused
/// engine is quiet only when every running attempt has ended (`running_attempts()`
/// is 0 and the drain status leaves `Busy`).
#[test]
fn f03_pause_quiesces_only_after_every_running_attempt() {
    let mut h = Harness::with_limit(3);
    let ops: Vec<_> = (0..4).map(|_| h.submit(OpOptions::default())).collect();
    h.engine.pause(h.now);
    h.finish_op(ops[0], OK);
    assert_eq!(h.engine.running_attempts(), 2);
    assert_eq!(h.engine.drain_status(), DrainStatus::Busy);
    assert!(
        h.running_of(ops[3]).is_empty(),
        "paused: the freed slot stays free"
    );
    h.finish_op(ops[1], OK);
    assert_eq!(h.engine.drain_status(), DrainStatus::Busy);
    h.finish_op(ops[2], OK);
    assert_eq!(h.engine.running_attempts(), 0);
    assert_eq!(h.engine.drain_status(), DrainStatus::PausedWithWork);
}

/// F4: "`enqueue()` after `stop()` returns a promise that never settles." We:
/// `SubmitError::Closed` at once, after shutdown (graceful or finished) and abort,
/// and the refused op is neither counted nor live.
#[test]
fn f04_submit_after_shutdown_fails_at_once() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    h.engine.shutdown(h.now);
    assert_eq!(h.engine.lifecycle(), Lifecycle::ShuttingDown);
    let refused = h.engine.submit(h.now, OpOptions::default());
    assert_eq!(refused, Err(SubmitError::Closed));
    h.finish_op(a, OK);
    assert_eq!(h.engine.lifecycle(), Lifecycle::Closed);
    let refused = h.engine.submit(h.now, OpOptions::default());
    assert_eq!(refused, Err(SubmitError::Closed));
    assert_eq!(h.engine.metrics().counters().submitted, 1);
    assert_eq!(h.engine.live_ops(), 0);
    assert!(h.pump().is_empty(), "a refused op gets no decision");

    let mut h = Harness::with_limit(1);
    h.engine.abort(h.now);
    let refused = h.engine.submit(h.now, OpOptions::default());
    assert_eq!(refused, Err(SubmitError::Closed));
    assert_eq!(h.engine.lifecycle(), Lifecycle::Closed);
}

/// F5: "`stop()` does not stop retries; no graceful close." We: `abort` cancels an
/// op waiting out its backoff (its quota is refunded, it never starts again) and
/// ignores a late report from a cancelled attempt; `shutdown` is the graceful mode
/// that still finishes (and retries) accepted work.
#[test]
fn f05_abort_stops_retries() {
    let mut h = Harness::with_limit(2);
    let backing_off = h.submit(OpOptions::default());
    let running = h.submit(OpOptions::default());
    h.finish_op(backing_off, transient());
    assert_eq!(h.engine.waiting_retry(), 1);
    assert_eq!(h.engine.retry_quota_available(), Some(486));
    let late = h.running_of(running)[0];
    h.engine.abort(h.now);
    h.pump();
    let aborted = |attempts| Resolution::Cancelled {
        attempts,
        cause: CancelCause::Aborted,
    };
    assert_eq!(h.resolved[&backing_off], aborted(1));
    assert_eq!(h.resolved[&running], aborted(1));
    assert!(h.log.contains(&Decision::Cancel {
        attempt: late,
        reason: CancelReason::Aborted
    }));
    assert!(!h.engine.attempt_finished(h.now, late, transient(), 0));
    h.advance_to(ms(60_000));
    assert_eq!(h.starts.len(), 2, "no attempt after abort");
    assert_eq!(h.engine.waiting_retry(), 0);
    assert_eq!(h.engine.retry_quota_available(), Some(500), "refunded");
    assert_eq!(h.engine.metrics().counters().retried, 1);

    // Graceful: shutdown lets the accepted op retry and finish.
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    h.engine.shutdown(h.now);
    h.finish_op(a, transient());
    h.advance_to(ms(1_000));
    h.finish_op(a, OK);
    assert_eq!(h.resolved[&a], Resolution::Succeeded { attempts: 2 });
    assert_eq!(h.engine.lifecycle(), Lifecycle::Closed);
}

/// F6: "`stop()` rejects queued promises that fire-and-forget callers never
/// observe." We: every op aborted gets exactly one typed `Resolved` decision
/// (`Cancelled { cause: Aborted }`) and one `Cancelled` event; a caller's cancel is
/// told apart (`CancelCause::Caller`).
#[test]
fn f06_cancellation_is_typed_and_observable() {
    let mut h = Harness::with_limit(1);
    let events = observe(&mut h);
    let mine = h.submit(OpOptions::default());
    let queued: Vec<_> = (0..3).map(|_| h.submit(OpOptions::default())).collect();
    assert!(h.engine.cancel(h.now, mine));
    h.pump();
    assert_eq!(
        h.resolved[&mine],
        Resolution::Cancelled {
            attempts: 1,
            cause: CancelCause::Caller
        }
    );
    h.engine.abort(h.now);
    h.pump();
    for op in &queued[1..] {
        let r = Resolution::Cancelled {
            attempts: 0,
            cause: CancelCause::Aborted,
        };
        assert_eq!(h.resolved[op], r);
    }
    let resolved = |op| {
        h.log
            .iter()
            .filter(|d| matches!(d, Decision::Resolved { op: o, .. } if *o == op))
            .count()
    };
    assert!(queued.iter().all(|&op| resolved(op) == 1));
    let aborted = count(&events, |e| {
        matches!(
            e,
            Event::Cancelled {
                cause: CancelCause::Aborted,
                ..
            }
        )
    });
    // queued[0] took the slot `mine` freed: its running attempt is cancelled too.
    assert_eq!(aborted, 3);
    assert_eq!(h.engine.metrics().counters().cancelled, 4);
    assert_conserved(&h.engine);
}

/// F7: "`setConcurrency(NaN)` or a non-numeric value is accepted and the pool
/// stalls." We: one validated path; 0, out-of-bounds limits and NaN/infinite rates
/// are a `ConfigError` naming the field, and the engine keeps working unchanged.
#[test]
fn f07_zero_or_invalid_limit_is_an_error() {
    let err = EngineConfig::builder().limit(0).build().unwrap_err();
    assert_eq!(err.field, "limit");
    let cfg = EngineConfig {
        limit: 0,
        ..EngineConfig::default()
    };
    assert_eq!(Engine::new(cfg).unwrap_err().field, "limit");

    let mut h = Harness::with_limit(1);
    let ops: Vec<_> = (0..3).map(|_| h.submit(OpOptions::default())).collect();
    for bad in [0, 10_001, u32::MAX] {
        assert_eq!(h.engine.set_limit(h.now, bad).unwrap_err().field, "limit");
    }
    assert_eq!(h.engine.limit(), 1);
    let bounds = |h: &mut Harness, lo, hi| h.engine.set_limit_bounds(h.now, lo, hi);
    assert_eq!(bounds(&mut h, 0, 5).unwrap_err().field, "min_limit");
    assert_eq!(bounds(&mut h, 6, 5).unwrap_err().field, "min_limit");
    assert_eq!(h.engine.limit_bounds(), (1, 10_000));
    let p = h.engine.partition("bucket/a");
    let e = h.engine.set_partition_limit(p, Some(0)).unwrap_err();
    assert_eq!(e.field, "partition.limit");
    let e = h.engine.set_class_limit(OpClass::GET, Some(0)).unwrap_err();
    assert_eq!(e.field, "class.limit");
    for per_second in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
        let r = Some(RateLimit {
            per_second,
            burst: 1.0,
        });
        let e = h.engine.set_class_rate(OpClass::GET, r).unwrap_err();
        assert_eq!(e.field, "class.rate");
        let e = h.engine.set_partition_rate(p, r).unwrap_err();
        assert_eq!(e.field, "partition.rate");
    }
    // Still working: a valid raise starts the waiting ops at once.
    h.engine.set_limit(h.now, 3).unwrap();
    h.pump();
    assert!(ops.iter().all(|&op| h.running_of(op).len() == 1));
}

/// F8: "A backoff sleep holds a concurrency slot." We: an op backing off holds no
/// slot (another op runs in it, or it stays free) and re-enters the queue with its
/// original, aged priority, ahead of ops submitted after it.
#[test]
fn f08_backoff_holds_no_slot() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    let hint = AttemptError::transient().with_retry_after(d(400));
    h.finish_op(a, fail(hint));
    assert!(h
        .log
        .contains(&Decision::RetryScheduled { op: a, at: ms(400) }));
    assert_eq!(h.running_of(b).len(), 1, "b got a's slot at once");
    assert_eq!((h.engine.in_flight(), h.engine.waiting_retry()), (1, 1));
    h.advance_to(ms(100));
    h.finish_op(b, OK);
    assert_eq!((h.engine.in_flight(), h.engine.queued()), (0, 0));
    assert_eq!(h.engine.waiting_retry(), 1, "a waits without a slot");
    h.advance_to(ms(200));
    let x = h.submit(OpOptions::default());
    let y = h.submit(OpOptions::default());
    h.advance_to(ms(500));
    h.finish_op(x, OK);
    // a's key dates from its submit at 0, y's from 200 ms: a goes first.
    assert_eq!(h.started_ops(), vec![a, b, x, a]);
    h.finish_op(a, OK);
    assert_eq!(h.started_ops().last(), Some(&y));
}

static QUIET_BOOM: Once = Once::new();

/// Keeps the deliberate observer panics out of the test output; every other panic
/// still reaches the previous hook.
fn silence_observer_boom() {
    QUIET_BOOM.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"observer boom") {
                prev(info);
            }
        }));
    });
}

/// F9: "Listener exceptions corrupt accounting." We: observer panics are caught
/// after the state change and only counted (`observer_panics`); every op is still
/// counted once and resolved once.
#[test]
fn f09_panicking_observer_cannot_corrupt_counts() {
    silence_observer_boom();
    let mut h = Harness::with_limit(2);
    let seen = EventLog::default();
    let sink = seen.clone();
    h.engine
        .set_observer(Box::new(move |_: Instant, e: &Event| {
            sink.lock().unwrap().push(*e);
            if matches!(
                e,
                Event::Started { .. } | Event::Succeeded { .. } | Event::Failed { .. }
            ) {
                std::panic::panic_any("observer boom");
            }
        }));
    let ok = h.submit(OpOptions::default());
    let retried = h.submit(OpOptions::default());
    let bad = h.submit(OpOptions::default());
    h.finish_op(ok, OK);
    h.finish_op(retried, transient());
    h.finish_op(bad, fail(AttemptError::permanent()));
    h.advance_to(ms(1_000));
    h.finish_op(retried, OK);
    let c = *h.engine.metrics().counters();
    let want = (3, 4, 2, 1, 1, 7);
    let got = (c.submitted, c.started, c.succeeded, c.failed, c.retried);
    assert_eq!((got.0, got.1, got.2, got.3, got.4, c.observer_panics), want);
    assert_eq!(h.resolved.len(), 3);
    assert_eq!(h.resolved[&retried], Resolution::Succeeded { attempts: 2 });
    // Events after a panicking one are still delivered.
    assert_eq!(count(&seen, |e| matches!(e, Event::Drained)), 1);
    assert_conserved(&h.engine);
}

/// F10: "`pool:drained` is emitted twice." We: once per busy period, when the last
/// op resolves; ticks, pause/resume and shutdown add none.
#[test]
fn f10_drained_event_fires_once() {
    let mut h = Harness::with_limit(2);
    let events = observe(&mut h);
    let drained = |ev: &EventLog| count(ev, |e| matches!(e, Event::Drained));
    let a = h.submit(OpOptions::default());
    let b = h.submit(OpOptions::default());
    h.finish_op(a, OK);
    assert_eq!(drained(&events), 0);
    h.finish_op(b, OK);
    assert_eq!(drained(&events), 1);
    h.advance_to(ms(10));
    h.engine.pause(h.now);
    h.engine.resume(h.now);
    assert_eq!(drained(&events), 1);
    let c = h.submit(OpOptions::default());
    h.finish_op(c, OK);
    assert_eq!(drained(&events), 2, "one per busy period");
    h.engine.shutdown(h.now);
    assert_eq!(drained(&events), 2);
    assert_eq!(count(&events, |e| matches!(e, Event::Closed)), 1);
}

/// F11: "Dispatch semantics changed between versions." Ours, specified: eager
/// dispatch — an op that finds a free slot starts inside `submit`; priority orders
/// only the ops that wait. At limit 1 the burst 0, 5, 10 runs 0, 10, 5.
#[test]
fn f11_dispatch_is_eager_and_priority_orders_waiting_ops() {
    let mut h = Harness::with_limit(1);
    let p0 = h
        .engine
        .submit(h.now, OpOptions::default().priority(0))
        .unwrap();
    let first = h.engine.poll_decision();
    assert!(matches!(first, Some(Decision::Start { attempt, .. }) if attempt.op == p0));
    h.running.insert(AttemptId { op: p0, number: 1 }, false);
    h.starts.push(AttemptId { op: p0, number: 1 });
    let p5 = h.submit(OpOptions::default().priority(5));
    let p10 = h.submit(OpOptions::default().priority(10));
    h.finish_op(p0, OK);
    h.finish_op(p10, OK);
    assert_eq!(h.started_ops(), vec![p0, p10, p5]);
}

/// F13: "Nested enqueue deadlocks." We: a child names its parent and runs on the
/// parent's slot while all slots are held; when the parent ends first the child
/// keeps that slot. Nothing stalls and the limit is never exceeded.
#[test]
fn f13_nested_submit_cannot_deadlock() {
    let mut h = Harness::with_limit(2);
    let p1 = h.submit(OpOptions::default());
    let p2 = h.submit(OpOptions::default());
    let q = h.submit(OpOptions::default());
    let c1a = h.submit(OpOptions::default().parent(p1));
    let c1b = h.submit(OpOptions::default().parent(p1));
    let c2 = h.submit(OpOptions::default().parent(p2));
    let check = |h: &Harness, running: u32, queued: u64| {
        assert!(h.engine.in_flight() <= 2);
        assert_eq!(h.engine.running_attempts(), running);
        assert_eq!(h.engine.queued(), queued);
    };
    check(&h, 4, 2);
    assert_eq!((h.running_of(c1a).len(), h.running_of(c2).len()), (1, 1));
    h.finish_op(c1a, OK);
    assert_eq!(h.running_of(c1b).len(), 1, "next child on p1's slot");
    check(&h, 4, 1);
    h.finish_op(p1, OK);
    // c1b inherits p1's slot; q still waits.
    check(&h, 3, 1);
    assert_eq!(h.engine.in_flight(), 2);
    h.finish_op(c2, OK);
    h.finish_op(p2, OK);
    assert_eq!(h.running_of(q).len(), 1);
    check(&h, 2, 0);
    h.finish_op(c1b, OK);
    h.finish_op(q, OK);
    assert_eq!(h.resolved.len(), 6);
    assert!(h.resolved.values().all(Resolution::is_success));
    assert_eq!((h.engine.in_flight(), h.engine.live_ops()), (0, 0));
}

// ----- priority and fairness -------------------------------------------------------

/// A tiny deterministic generator (xorshift64*), so the tests need no RNG crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
    }
}

/// F14: "Aging on a binary heap breaks the heap property: an aged priority-0 task
/// (effective 3) was dequeued before a priority-2 task (effective 5)." We: every
/// dispatch picks the waiting op with the highest effective priority *at that
/// moment* (`priority + waited / 250 ms`, uncapped; FIFO on ties), checked against
/// a brute-force model over hundreds of random arrivals and completions.
#[test]
fn f14_heap_order_valid_under_aging() {
    const Q_MS: i64 = 250;
    let mut h = Harness::with_limit(1);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut current = h.submit(OpOptions::default());
    // (op, priority, enqueued ms, submit order)
    let mut waiting: Vec<(OpId, i64, i64, usize)> = Vec::new();
    let (mut t, mut checked) = (0u64, 0);
    for order in 0..2_000 {
        t += rng.below(120);
        h.advance_to(ms(t));
        if rng.below(2) == 0 && !waiting.is_empty() {
            // Effective priority scaled by the quantum: p·q + waited (exact integers).
            let now = t as i64;
            let best = *waiting
                .iter()
                .max_by_key(|&&(_, p, at, ord)| (p * Q_MS + (now - at), -(ord as i64)))
                .unwrap();
            h.finish_op(current, OK);
            current = *h.started_ops().last().unwrap();
            assert_eq!(current, best.0, "at {t} ms, waiting {waiting:?}");
            waiting.retain(|w| w.0 != best.0);
            checked += 1;
        } else {
            let p = rng.below(21) as i64;
            let op = h.submit(OpOptions::default().priority(p as i32));
            waiting.push((op, p, t as i64, order));
        }
    }
    assert!(checked > 500, "only {checked} dispatches checked");
}

/// F15: "The bonus is capped at +3, so any priority gap above 3 starves forever."
/// We: aging is uncapped. A priority-0 op facing a priority-10 000 op arriving
/// every second starts after exactly 10 000 × 250 ms = 2 500 s (the tie at that
/// instant goes to the older op), and not a moment earlier.
#[test]
fn f15_any_priority_gap_is_overcome_by_aging() {
    const GAP: i32 = 10_000;
    let mut h = Harness::with_limit(1);
    let mut running = h.submit(OpOptions::default().priority(GAP));
    let low = h.submit(OpOptions::default());
    let mut started_at = None;
    for k in 1..=3_000u64 {
        h.advance_to(ms(k * 1_000));
        h.submit(OpOptions::default().priority(GAP));
        h.finish_op(running, OK);
        running = *h.started_ops().last().unwrap();
        if running == low {
            started_at = Some(k);
            break;
        }
    }
    assert_eq!(started_at, Some(2_500));
}

/// F16: "The aging multiplier goes the wrong way: aging is slowest when waits are
/// longest." We: a fixed quantum, whatever the waits. After a minute of queueing a
/// priority-0 op submitted at 0 still ranks exactly like 40 priority points per
/// 10 s: above a priority-40 op submitted at 10.001 s, below one at 9.999 s.
#[test]
fn f16_aging_rate_is_fixed_whatever_the_queue_waits() {
    let mut h = Harness::with_limit(1);
    let blocker = h.submit(OpOptions::default());
    let low = h.submit(OpOptions::default());
    h.advance_to(ms(9_999));
    let before = h.submit(OpOptions::default().priority(40));
    h.advance_to(ms(10_001));
    let after = h.submit(OpOptions::default().priority(40));
    h.advance_to(ms(60_000));
    h.finish_op(blocker, OK);
    h.finish_op(before, OK);
    h.finish_op(low, OK);
    assert_eq!(h.started_ops(), vec![blocker, before, low, after]);
}

/// Starvation under load: a priority-0 op submitted while priority-100 ops keep the
/// pool saturated (arrivals match the service rate, backlog never empties) starts
/// within 100 × 250 ms of its submit, plus slack for the backlog ahead of it.
#[test]
fn starvation_low_priority_starts_within_the_aging_bound() {
    const SERVICE_MS: u64 = 100;
    const LIMIT: u32 = 4;
    const ARRIVAL_EVERY_MS: u64 = 25; // 40/s in = 4 slots × 10/s out
    const LOW_AT_MS: u64 = 1_000;
    let bound = ms(LOW_AT_MS + 100 * 250 + 1_000);
    let mut h = Harness::with_limit(LIMIT);
    let high = || OpOptions::default().priority(100);
    for _ in 0..8 {
        h.submit(high());
    }
    let mut ends: Vec<(Instant, AttemptId)> = Vec::new();
    let mut seen = 0;
    let mut low = None;
    let mut low_started = None;
    let mut t = 0;
    while t <= 40_000 && low_started.is_none() {
        h.advance_to(ms(t));
        let due: Vec<_> = ends.iter().filter(|e| e.0 <= h.now).map(|e| e.1).collect();
        ends.retain(|e| e.0 > h.now);
        for a in due {
            h.finish(a, OK);
        }
        if t % ARRIVAL_EVERY_MS == 0 {
            h.submit(high());
        }
        if t == LOW_AT_MS {
            low = Some(h.submit(OpOptions::default()));
        }
        for a in &h.starts[seen..] {
            ends.push((h.now + d(SERVICE_MS), *a));
            if Some(a.op) == low {
                low_started = Some(h.now);
            }
        }
        seen = h.starts.len();
        if low_started.is_none() {
            assert_eq!(h.engine.in_flight(), LIMIT, "saturated at {t} ms");
            assert!(h.engine.queued() >= 1, "backlog at {t} ms");
        }
        t += 5;
    }
    let started = low_started.expect("low-priority op never started");
    assert!(started <= bound, "started at {started:?}, bound {bound:?}");
    // It did wait for aging: it only overtakes ops arriving after 1 s + 25 s.
    assert!(started >= ms(LOW_AT_MS + 25_000), "started at {started:?}");
}

// ----- bounded queue, config, serde ------------------------------------------------

/// `max_queued`: when the queue is full the lowest priority loses — the new op
/// (`SubmitError::QueueFull`) if nothing queued is lower, else the newest of the
/// lowest queued ops (resolved `Rejected`). Counts conserve throughout.
#[test]
fn bounded_queue_rejects_the_lowest_priority_and_counts_conserve() {
    let mut h = Harness::new(
        EngineConfig::builder()
            .limit(1)
            .max_queued(3)
            .build()
            .unwrap(),
    );
    let events = observe(&mut h);
    let r = h.submit(OpOptions::default());
    let a = h.submit(OpOptions::default().priority(5));
    let b = h.submit(OpOptions::default().priority(5));
    let c = h.submit(OpOptions::default().priority(1));
    let full = h.engine.submit(h.now, OpOptions::default().priority(1));
    assert_eq!(full, Err(SubmitError::QueueFull));
    assert_conserved(&h.engine);
    let e = h.submit(OpOptions::default().priority(9));
    let rejected = Resolution::Rejected {
        cause: RejectCause::QueueFull,
    };
    assert_eq!(h.resolved.get(&c), Some(&rejected));
    let full = h.engine.submit(h.now, OpOptions::default().priority(5));
    assert_eq!(full, Err(SubmitError::QueueFull));
    let g = h.submit(OpOptions::default().priority(7));
    assert_eq!(h.resolved.get(&b), Some(&rejected), "newest of the lowest");
    assert!(!h.resolved.contains_key(&a));
    assert_eq!(h.engine.queued(), 3);
    assert_conserved(&h.engine);
    for op in [r, e, g, a] {
        h.finish_op(op, OK);
    }
    assert_eq!(h.started_ops(), vec![r, e, g, a]);
    let k = *h.engine.metrics().counters();
    assert_eq!((k.submitted, k.succeeded, k.rejected), (8, 4, 4));
    assert_eq!(count(&events, |e| matches!(e, Event::Rejected { .. })), 2);
    assert_conserved(&h.engine);
}

/// Config validation: invalid values are a `ConfigError` whose `field` is the
/// dotted path of the culprit — never a panic or a pool that silently stalls.
#[test]
fn config_validation_names_the_field() {
    let rate = |per_second, burst| Some(RateLimit { per_second, burst });
    let scope = |limit, rate| ScopeLimits { limit, rate };
    let base = EngineConfig::default;
    let cases: Vec<(EngineConfig, &str)> = vec![
        (
            EngineConfig {
                partition_rate: rate(f64::NAN, 1.0),
                ..base()
            },
            "partition_rate.per_second",
        ),
        (
            EngineConfig {
                partition_rate: rate(0.0, 1.0),
                ..base()
            },
            "partition_rate.per_second",
        ),
        (
            EngineConfig {
                partition_rate: rate(10.0, f64::NAN),
                ..base()
            },
            "partition_rate.burst",
        ),
        (
            EngineConfig {
                classes: [("get".to_string(), scope(None, rate(f64::INFINITY, 1.0)))].into(),
                ..base()
            },
            "classes.get.rate.per_second",
        ),
        (
            EngineConfig {
                partitions: [("b/p".to_string(), scope(Some(0), None))].into(),
                ..base()
            },
            "partitions.b/p.limit",
        ),
        (
            EngineConfig {
                min_limit: 5,
                max_limit: 2,
                limit: 3,
                ..base()
            },
            "min_limit",
        ),
        (
            EngineConfig {
                timeout_ms: Some(1_000),
                deadline_ms: Some(500),
                ..base()
            },
            "deadline_ms",
        ),
        (
            EngineConfig {
                aging_ms: Some(0),
                ..base()
            },
            "aging_ms",
        ),
        (
            EngineConfig {
                max_queued: Some(0),
                ..base()
            },
            "max_queued",
        ),
        (
            EngineConfig {
                hedge: Some(HedgeConfig {
                    quantile: f64::NAN,
                    ..HedgeConfig::default()
                }),
                ..base()
            },
            "hedge.quantile",
        ),
        (
            EngineConfig {
                retry: RetryConfig {
                    max_attempts: 0,
                    ..RetryConfig::default()
                },
                ..base()
            },
            "retry.max_attempts",
        ),
    ];
    for (cfg, field) in cases {
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(field), "{err}");
        assert_eq!(Engine::new(cfg).unwrap_err().field, field);
    }
    let err = EngineConfig::builder()
        .timeout(d(1_000))
        .deadline(d(999))
        .build()
        .unwrap_err();
    assert_eq!(err.field, "deadline_ms");
    // Per op, the same rule: the deadline cannot be shorter than the timeout.
    let mut h = Harness::with_limit(1);
    let opts = OpOptions::default().timeout(d(100)).deadline(d(50));
    match h.engine.submit(h.now, opts) {
        Err(SubmitError::InvalidOptions { field, .. }) => assert_eq!(field, "deadline"),
        r => panic!("{r:?}"),
    }
}

/// Serde: `EngineConfig` read from a file rejects unknown fields at every level
/// (a typo is an error, not a silently ignored setting); omitted fields default.
#[test]
fn engine_config_json_rejects_unknown_fields() {
    let parse = serde_json::from_str::<EngineConfig>;
    let cfg = parse(r#"{"limit": 4, "aging_ms": 100, "retry": {"max_attempts": 5}}"#).unwrap();
    assert_eq!(
        (cfg.limit, cfg.aging_ms, cfg.retry.max_attempts),
        (4, Some(100), 5)
    );
    assert_eq!(cfg.timeout_ms, None);
    assert_eq!(cfg.retry.throttle_base_ms, 1_000);
    assert_eq!(cfg.validate(), Ok(()));
    for bad in [
        r#"{"limit": 4, "concurency": 8}"#,
        r#"{"retry": {"max_attemps": 2}}"#,
        r#"{"partition_rate": {"per_second": 10, "brust": 2}}"#,
        r#"{"classes": {"get": {"limt": 2}}}"#,
        r#"{"metrics": {"window": 5}}"#,
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{bad}: {err}");
    }
    // Parsing is not validating: the engine still refuses a zero timeout.
    let zero = parse(r#"{"timeout_ms": 0}"#).unwrap();
    assert_eq!(Engine::new(zero).unwrap_err().field, "timeout_ms");
}

// ----- retries ---------------------------------------------------------------------

/// F18: "Production retries every error (404, 403, 400 retried 3 times)." We:
/// permanent errors fail after one attempt with no retry scheduled, counted or
/// charged; transient and throttling errors are retried.
#[test]
fn f18_permanent_errors_are_not_retried() {
    let mut h = Harness::with_limit(3);
    let perm = h.submit(OpOptions::default());
    let trans = h.submit(OpOptions::default());
    let thr = h.submit(OpOptions::default());
    h.finish_op(perm, fail(AttemptError::permanent()));
    assert_eq!(h.resolved[&perm].attempts(), 1);
    assert_eq!(failed_why(&h.resolved[&perm]), Some(NoRetry::Permanent));
    assert!(retries(&h.log, h.now).is_empty());
    assert_eq!(h.engine.metrics().counters().retried, 0);
    assert_eq!(h.engine.retry_quota_available(), Some(500));
    h.finish_op(trans, transient());
    h.finish_op(thr, fail(AttemptError::throttled()));
    let retried: Vec<_> = retries(&h.log, h.now).iter().map(|r| r.0).collect();
    assert_eq!(retried, vec![trans, thr]);
    // A permanent error on a retry ends it too.
    h.advance_to(ms(30_000));
    h.finish_op(trans, fail(AttemptError::permanent()));
    assert_eq!(failed_why(&h.resolved[&trans]), Some(NoRetry::Permanent));
    assert_eq!(h.resolved[&trans].attempts(), 2);
}

/// Fails every running attempt of `ops` with `outcome` at `h.now`; returns the delays.
fn fail_all(h: &mut Harness, ops: &[OpId], outcome: AttemptOutcome) -> Vec<Duration> {
    let mut out = Vec::new();
    for &op in ops {
        let a = h.running_of(op)[0];
        h.engine.attempt_finished(h.now, a, outcome, 0);
        h.running.remove(&a);
        let ds = h.pump();
        out.extend(retries(&ds, h.now).into_iter().map(|r| r.1));
    }
    assert_eq!(out.len(), ops.len(), "every failure was retried");
    out
}

fn mean(v: &[Duration]) -> f64 {
    v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64
}

/// F20: "Throttling gets *shorter* backoff (delay halved for SlowDown)." We: full
/// jitter over `base × 2^i` with a 1 s base for throttling and 50 ms otherwise, so
/// throttled ops back off ~20× longer, and each retry's range doubles.
#[test]
fn f20_throttling_backs_off_longer_than_transient() {
    let cfg = EngineConfig::builder()
        .limit(1_000)
        .retry(no_quota())
        .build();
    let mut h = Harness::new(cfg.unwrap());
    let ops: Vec<_> = (0..100).map(|_| h.submit(OpOptions::default())).collect();
    let transient1 = fail_all(&mut h, &ops, transient());
    h.advance_to(ms(100));
    let transient2 = fail_all(&mut h, &ops, transient());
    let thr: Vec<_> = (0..100).map(|_| h.submit(OpOptions::default())).collect();
    let throttled1 = fail_all(&mut h, &thr, fail(AttemptError::throttled()));
    assert!(transient1.iter().all(|&x| x <= d(50)), "{transient1:?}");
    assert!(transient2.iter().all(|&x| x <= d(100)), "{transient2:?}");
    assert!(throttled1.iter().all(|&x| x <= d(1_000)), "{throttled1:?}");
    let (m1, m2, mt) = (mean(&transient1), mean(&transient2), mean(&throttled1));
    assert!(mt > 10.0 * m1, "throttled mean {mt} vs transient {m1}");
    assert!(m2 > 1.3 * m1, "second retry {m2} vs first {m1}");
}

/// F21: "Pressure makes retries faster (capped at 250 ms) and then skips them —
/// after counting them." We: backoff ignores queue pressure (the same seed gives the
/// same delays in an idle and an overloaded pool, well above 250 ms for
/// throttling); retries are bounded by the AWS retry quota; a refused retry is
/// neither scheduled, counted nor charged.
#[test]
fn f21_retries_under_pressure_are_bounded_by_quota_and_not_counted_when_refused() {
    let throttled = || fail(AttemptError::throttled());
    let mut idle = Harness::with_limit(100);
    let ops: Vec<_> = (0..20).map(|_| idle.submit(OpOptions::default())).collect();
    let calm = fail_all(&mut idle, &ops, throttled());
    let mut busy = Harness::with_limit(2);
    for _ in 0..2002 {
        busy.submit(OpOptions::default());
    }
    assert_eq!(busy.engine.queued(), 2000, "1000× the limit waits");
    let mut pressured = Vec::new();
    for _ in 0..20 {
        let op = busy.running.keys().next().unwrap().op;
        pressured.extend(fail_all(&mut busy, &[op], throttled()));
    }
    assert_eq!(pressured, calm, "pressure does not change backoff");
    assert!(pressured.iter().any(|&x| x > d(250)), "{pressured:?}");
    assert_eq!(busy.engine.metrics().counters().retried, 20);

    // Quota of 28 with transient retries costing 14: two retries, then refused.
    let quota = QuotaConfig {
        capacity: 28,
        ..QuotaConfig::default()
    };
    let retry = RetryConfig {
        quota: Some(quota),
        ..RetryConfig::default()
    };
    let mut h = Harness::new(
        EngineConfig::builder()
            .limit(3)
            .retry(retry)
            .build()
            .unwrap(),
    );
    let events = observe(&mut h);
    let ops: Vec<_> = (0..3).map(|_| h.submit(OpOptions::default())).collect();
    for &op in &ops {
        h.finish_op(op, transient());
    }
    let retried: Vec<_> = retries(&h.log, h.now).iter().map(|r| r.0).collect();
    assert_eq!(retried, ops[..2].to_vec());
    assert_eq!(
        failed_why(&h.resolved[&ops[2]]),
        Some(NoRetry::QuotaExhausted)
    );
    assert_eq!(h.resolved[&ops[2]].attempts(), 1);
    assert_eq!(h.engine.metrics().counters().retried, 2);
    assert_eq!(
        count(&events, |e| matches!(e, Event::RetryScheduled { .. })),
        2
    );
    assert_eq!(h.engine.retry_quota_available(), Some(0));
}

/// F22: "Hidden floors and defaults: minDelay 50 overrides a smaller retryDelay,
/// retryDelay 0 is impossible, jitter is only ±10%." We: a zero base is valid and
/// retries at once; a 1 ms base really waits ≤ 1 ms; jitter is full (0..cap).
#[test]
fn f22_no_hidden_floor_zero_base_allowed() {
    let with_base = |ms| RetryConfig {
        transient_base_ms: ms,
        ..no_quota()
    };
    let cfg = EngineConfig::builder().limit(1).retry(with_base(0)).build();
    let mut h = Harness::new(cfg.unwrap());
    let a = h.submit(OpOptions::default());
    let ds = {
        let at = h.running_of(a)[0];
        h.engine.attempt_finished(h.now, at, transient(), 0);
        h.running.remove(&at);
        h.pump()
    };
    assert_eq!(retries(&ds, h.now), vec![(a, Duration::ZERO)]);
    assert_eq!(h.running_of(a)[0].number, 2, "restarted in the same step");

    let cfg = EngineConfig::builder()
        .limit(100)
        .retry(with_base(1))
        .build();
    let mut h = Harness::new(cfg.unwrap());
    let ops: Vec<_> = (0..100).map(|_| h.submit(OpOptions::default())).collect();
    let delays = fail_all(&mut h, &ops, transient());
    assert!(delays.iter().all(|&x| x <= d(1)), "{delays:?}");

    let cfg = EngineConfig::builder().limit(100).retry(no_quota()).build();
    let mut h = Harness::new(cfg.unwrap());
    let ops: Vec<_> = (0..100).map(|_| h.submit(OpOptions::default())).collect();
    let delays = fail_all(&mut h, &ops, fail(AttemptError::throttled()));
    let (lo, hi) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    assert!(*lo < d(100) && *hi > d(900), "jitter spans {lo:?}..{hi:?}");
}

// ----- timeouts and deadlines ------------------------------------------------------

/// F23: "There is no per-task overall deadline (worst case 4 × 30 s + 7 s, plus
/// unbounded queue wait)." We: the deadline runs from submit and covers queue
/// wait, attempts and backoff; a retry whose backoff would end past it is refused
/// (`DeadlineTooClose`, quota refunded).
#[test]
fn f23_deadline_covers_queue_wait_and_backoff() {
    let deadline_failed = |r: &Resolution| {
        matches!(
            r,
            Resolution::Failed {
                cause: FailureCause::DeadlineExceeded,
                ..
            }
        )
    };
    // Queue wait counts: 200 ms queued + 100 ms running = 300 ms deadline.
    let mut h = Harness::with_limit(1);
    let blocker = h.submit(OpOptions::default());
    let x = h.submit(OpOptions::default().deadline(d(300)));
    h.advance_to(ms(200));
    h.finish_op(blocker, OK);
    let attempt = h.running_of(x)[0];
    h.advance_to(ms(299));
    assert!(h.engine.is_live(x));
    h.advance_to(ms(300));
    assert!(deadline_failed(&h.resolved[&x]));
    assert!(h.log.contains(&Decision::Cancel {
        attempt,
        reason: CancelReason::DeadlineExceeded
    }));

    // Backoff counts: fails at 100, backs off to 250, waits in the queue, dies at 1 s.
    let mut h = Harness::with_limit(1);
    let x = h.submit(OpOptions::default().deadline(d(1_000)));
    h.advance_to(ms(50));
    let y = h.submit(OpOptions::default());
    h.advance_to(ms(100));
    h.finish_op(x, fail(AttemptError::transient().with_retry_after(d(150))));
    assert_eq!(h.running_of(y).len(), 1);
    h.advance_to(ms(999));
    assert_eq!((h.engine.queued(), h.engine.is_live(x)), (1, true));
    h.advance_to(ms(1_000));
    assert!(deadline_failed(&h.resolved[&x]));
    assert_eq!(h.resolved[&x].attempts(), 1);

    // A backoff that would overrun the deadline is refused up front, and refunded.
    let cfg = EngineConfig::builder().limit(1).deadline(d(300)).build();
    let mut h = Harness::new(cfg.unwrap());
    let x = h.submit(OpOptions::default());
    h.advance_to(ms(100));
    h.finish_op(
        x,
        fail(AttemptError::transient().with_retry_after(d(5_000))),
    );
    assert_eq!(failed_why(&h.resolved[&x]), Some(NoRetry::DeadlineTooClose));
    assert_eq!(h.engine.retry_quota_available(), Some(500));
    assert_eq!(h.engine.metrics().counters().retried, 0);
}

/// F24: "Timeouts don't cancel: the retry overlaps the zombie, 2 in flight at
/// concurrency 1." We: the timeout first tells the driver to drop the attempt
/// (`Cancel { TimedOut }`), and only then frees its slot or schedules the retry; a
/// late report from the dropped attempt is ignored. Never two at once.
#[test]
fn f24_timeout_cancels_before_retry_no_overlap() {
    let cfg = EngineConfig::builder().limit(1).timeout(d(100)).build();
    let mut h = Harness::new(cfg.unwrap());
    let slow = h.submit(OpOptions::default());
    let other = h.submit(OpOptions::default());
    let first = h.running_of(slow)[0];
    for t in (0..=3_000).step_by(5) {
        h.advance_to(ms(t));
        if let Some(&a) = h.running_of(other).first() {
            h.finish(a, OK);
        }
        assert!(h.running.len() <= 1 && h.engine.running_attempts() <= 1);
        assert!(h.engine.in_flight() <= 1);
    }
    let pos = |want: Decision| h.log.iter().position(|x| *x == want).unwrap();
    let cancel = pos(Decision::Cancel {
        attempt: first,
        reason: CancelReason::TimedOut,
    });
    let other_start = pos(Decision::Start {
        attempt: AttemptId {
            op: other,
            number: 1,
        },
        hedge: false,
    });
    assert!(cancel < other_start, "slot handed on only after the cancel");
    match h.resolved[&slow] {
        Resolution::Failed {
            attempts: 3,
            cause: FailureCause::AttemptFailed {
                timed_out: true, ..
            },
        } => {}
        r => panic!("{r:?}"),
    }
    let before = *h.engine.metrics().counters();
    assert!(!h.engine.attempt_finished(h.now, first, OK, 0));
    assert_eq!(
        *h.engine.metrics().counters(),
        before,
        "late report ignored"
    );
    assert_eq!(before.timed_out, 3);
}

/// F25: "`timeout: 0` means fail immediately in one version, no timeout in the
/// other." We: `Option`, where `None` (the default) is no timeout, and zero is
/// refused as a value (per op and in config).
#[test]
fn f25_timeout_none_means_no_timeout() {
    assert_eq!(EngineConfig::default().timeout_ms, None);
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    assert_eq!(h.engine.poll_timeout(), None);
    h.advance_to(ms(10 * 3_600_000));
    assert_eq!(h.running_of(a).len(), 1, "still running after 10 h");
    h.finish_op(a, OK);
    assert_eq!(h.resolved[&a], Resolution::Succeeded { attempts: 1 });
    let zero = h
        .engine
        .submit(h.now, OpOptions::default().timeout(Duration::ZERO));
    match zero {
        Err(SubmitError::InvalidOptions { field, .. }) => assert_eq!(field, "timeout"),
        r => panic!("{r:?}"),
    }
    let cfg = EngineConfig {
        timeout_ms: Some(0),
        ..EngineConfig::default()
    };
    assert_eq!(cfg.validate().unwrap_err().field, "timeout_ms");
}

/// F26: "`TimeoutError` is retryable by default and counts as transient (halved
/// delay), so slow operations are re-issued aggressively." We: a timed-out attempt
/// may have reached the server, so a non-idempotent op fails (`NotIdempotent`);
/// idempotent ops retry, and a non-idempotent one retries only on proof that the
/// request was never sent.
#[test]
fn f26_non_idempotent_not_retried_after_timeout() {
    let cfg = EngineConfig::builder().limit(3).timeout(d(100)).build();
    let mut h = Harness::new(cfg.unwrap());
    let put = h.submit(OpOptions::default().not_idempotent());
    let get = h.submit(OpOptions::default());
    let unsent = h.submit(OpOptions::default().not_idempotent());
    h.advance_to(ms(50));
    h.finish_op(unsent, fail(AttemptError::transient().not_sent()));
    h.advance_to(ms(100));
    let want = FailureCause::AttemptFailed {
        last: ErrorClass::Transient,
        timed_out: true,
        why: NoRetry::NotIdempotent,
    };
    assert_eq!(
        h.resolved[&put],
        Resolution::Failed {
            attempts: 1,
            cause: want
        }
    );
    let retried: Vec<_> = retries(&h.log, h.now).iter().map(|r| r.0).collect();
    assert_eq!(retried, vec![unsent, get]);
}

// ----- metrics -----------------------------------------------------------------------

/// F29: "Inconsistent error rates; success after a retry counts as an error;
/// `execution` is last-attempt only; cancelled tasks pollute metrics as zero-time
/// failures." We: an op that succeeds after a retry is a success; cancelled ops
/// count as cancelled only and stay out of the latency histograms and the window;
/// cancelled attempts stay out of attempt latency; service time spans all attempts.
#[test]
fn f29_cancelled_ops_do_not_pollute_latency() {
    let mut h = Harness::with_limit(1);
    let s = h.submit(OpOptions::default());
    let queued = h.submit(OpOptions::default());
    let running = h.submit(OpOptions::default());
    h.advance_to(ms(10));
    assert!(h.engine.cancel(h.now, queued));
    h.advance_to(ms(100));
    h.finish_op(s, fail(AttemptError::transient().with_retry_after(d(100))));
    assert_eq!(h.running_of(running).len(), 1);
    h.advance_to(ms(150));
    assert!(h.engine.cancel(h.now, running));
    h.pump();
    h.advance_to(ms(200));
    h.advance_to(ms(300));
    h.finish_op(s, OK);
    let snap = h.engine.snapshot();
    let c = snap.counters;
    let got = (
        c.succeeded,
        c.failed,
        c.cancelled,
        c.retried,
        c.attempt_failures,
    );
    assert_eq!(got, (1, 0, 2, 1, 1));
    assert_eq!(snap.window.error_rate, 0.0);
    assert!((snap.window.completed_per_sec - 0.1).abs() < 1e-9);
    let class = snap.class(OpClass::DEFAULT).unwrap();
    assert_eq!(class.end_to_end.count, 1);
    assert!(class.end_to_end.min >= 299_000, "{}", class.end_to_end.min);
    assert_eq!(class.service.count, 1);
    assert!(class.service.min >= 299_000, "service spans both attempts");
    // s's two 100 ms attempts; the 50 ms cancelled attempt is left out.
    assert_eq!(class.attempt_latency.count, 2);
    assert!(class.attempt_latency.min >= 99_000);
}

/// F30: "RollingWindow reports 1000/s for a single fresh event." We: rates always
/// divide by the full (configurable) window.
#[test]
fn f30_window_rate_divides_by_full_window() {
    let mut h = Harness::with_limit(1);
    let a = h.submit(OpOptions::default());
    h.advance_to(ms(1));
    h.finish_op(a, OK);
    let w = h.engine.metrics().window(ms(1));
    assert_eq!(w.window_ms, 10_000);
    assert!((w.completed_per_sec - 0.1).abs() < 1e-9, "{w:?}");

    let metrics = MetricsConfig {
        window_ms: 1_000,
        ..MetricsConfig::default()
    };
    let mut h = Harness::new(EngineConfig {
        metrics,
        ..EngineConfig::default()
    });
    let a = h.submit(OpOptions::default());
    h.finish_op(a, OK);
    let w = h.engine.snapshot().window;
    assert_eq!(w.window_ms, 1_000);
    assert!((w.completed_per_sec - 1.0).abs() < 1e-9, "{w:?}");
    assert_eq!(h.engine.metrics().window(ms(1_000)).completed_per_sec, 0.0);
}

/// Runs `n` ops one after another, each taking `1 + i % 500` ms.
fn run_ops(h: &mut Harness, n: u64) {
    for i in 0..n {
        let op = h.submit(OpOptions::default());
        h.advance_to(h.now + d(1 + i % 500));
        h.finish_op(op, OK);
    }
}

/// F31: "Aggregate metrics copy and sort up to 1000 samples three times per call;
/// caps are hard-coded." We: fixed-memory histograms — after the distinct latencies
/// have been seen, doubling the ops doubles the counts but adds no bucket.
#[test]
fn f31_metrics_memory_bounded() {
    let mut h = Harness::with_limit(1);
    run_ops(&mut h, 5_000);
    let buckets = |h: &Harness| {
        let s = h.engine.snapshot();
        let c = s.class(OpClass::DEFAULT).unwrap().clone();
        (
            c.attempt_latency.buckets.len(),
            c.end_to_end.buckets.len(),
            c.attempt_latency.count,
        )
    };
    let (a1, e1, n1) = buckets(&h);
    run_ops(&mut h, 5_000);
    let (a2, e2, n2) = buckets(&h);
    assert_eq!((n1, n2), (5_000, 10_000));
    assert_eq!((a2, e2), (a1, e1), "no growth with the number of ops");
    assert!(a1 <= 500, "{a1} buckets for 500 distinct latencies");
}

/// F32: "The defaults mean detailed metrics are silently off." We: the default
/// config records counters and histograms.
#[test]
fn f32_metrics_on_by_default() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.submit(OpOptions::default());
    h.advance_to(ms(20));
    h.finish_op(a, OK);
    let s = h.engine.snapshot();
    assert_eq!(s.counters.succeeded, 1);
    let class = s.class(OpClass::DEFAULT).unwrap();
    assert_eq!(
        (class.attempt_latency.count, class.end_to_end.count),
        (1, 1)
    );
    assert!(class.attempt_latency.p50 >= 19_000);
}

/// F33: "TaskManager `processedItems` grows without bound." We: a resolved op
/// leaves no per-op state behind.
#[test]
fn f33_resolved_ops_are_not_retained() {
    let mut h = Harness::with_limit(4);
    let first = h.submit(OpOptions::default());
    h.finish_op(first, OK);
    run_ops(&mut h, 2_000);
    assert!(!h.engine.is_live(first));
    assert_eq!((h.engine.live_ops(), h.engine.queued()), (0, 0));
    assert_eq!(h.engine.waiting_retry(), 0);
}

/// F40 (engine part): "No request-rate limit (S3 limits are per prefix per
/// second)." We: a partition's token bucket paces starts; other partitions are
/// not slowed down by it.
#[test]
fn f40_partition_request_rate_is_enforced() {
    let mut h = Harness::with_limit(1_000);
    let hot = h.engine.partition("bucket/hot");
    let cold = h.engine.partition("bucket/cold");
    let rate = RateLimit {
        per_second: 100.0,
        burst: 10.0,
    };
    h.engine.set_partition_rate(hot, Some(rate)).unwrap();
    for _ in 0..500 {
        h.submit(OpOptions::default().partition(hot));
    }
    let colds: Vec<_> = (0..50)
        .map(|_| h.submit(OpOptions::default().partition(cold)))
        .collect();
    assert!(colds.iter().all(|&op| h.running_of(op).len() == 1));
    assert_eq!(h.running.len(), 60, "burst of 10 + all 50 cold");
    h.advance_to(ms(1_000));
    let hot_started = h.running.len() - 50;
    assert!((109..=110).contains(&hot_started), "{hot_started} in 1 s");
}

// ----- engine bugs found (ignored until the engine is fixed) ------------------------

/// Extreme aging quanta are refused by validation (they would overflow the queue
/// key); the largest accepted one (a day) still keeps priority order.
#[test]
fn huge_aging_quantum_is_refused_and_a_day_keeps_priority_order() {
    for aging_ms in [u64::MAX, 1 << 62, 10_000_000_000_000] {
        let cfg = EngineConfig {
            limit: 1,
            aging_ms: Some(aging_ms),
            ..EngineConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "aging_ms");
    }
    let cfg = EngineConfig {
        limit: 1,
        aging_ms: Some(86_400_000),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let blocker = h.submit(OpOptions::default());
    h.submit(OpOptions::default().priority(i32::MIN));
    let high = h.submit(OpOptions::default().priority(i32::MAX));
    h.finish_op(blocker, OK);
    assert_eq!(h.started_ops(), vec![blocker, high]);
}

/// A per-attempt timeout longer than ~71.6 minutes is silently cut to
/// `u32::MAX` µs (the op record stores µs in a u32), so a 2 h timeout for a huge
/// copy fires after 71.6 min. It should either work or be refused by validation.
#[test]
fn long_timeout_is_not_truncated() {
    let cfg = EngineConfig::builder()
        .limit(1)
        .timeout(Duration::from_secs(2 * 3_600))
        .build()
        .unwrap();
    let mut h = Harness::new(cfg);
    let a = h.submit(OpOptions::default());
    h.advance_to(ms(72 * 60_000));
    assert!(
        !h.log.iter().any(|d| matches!(d, Decision::Cancel { .. })),
        "a 2 h timeout fired before 72 min"
    );
    assert_eq!(h.running_of(a).len(), 1);
}

/// A grandchild that borrows a *borrowed* child's slot keeps a slot when the
/// child ends first: the loan passes to the grandchild (lender stays the
/// grandparent), and when the grandparent ends the grandchild owns the slot, so
/// no other op starts beside it at limit 1.
#[test]
fn grandchild_keeps_the_slot_when_its_parent_and_grandparent_end() {
    let mut h = Harness::with_limit(1);
    let parent = h.submit(OpOptions::default());
    let child = h.submit(OpOptions::default().parent(parent));
    let grandchild = h.submit(OpOptions::default().parent(child));
    assert_eq!(h.engine.running_attempts(), 3, "all nested on one slot");
    h.finish_op(child, OK);
    h.finish_op(parent, OK);
    assert_eq!(h.running_of(grandchild).len(), 1);
    let other = h.submit(OpOptions::default());
    assert!(
        h.running_of(other).is_empty(),
        "grandchild still runs, so the only slot is taken (in_flight {})",
        h.engine.in_flight()
    );
}

/// The bounded queue only ever rejects ops that never started: an op back from
/// backoff was admitted already, is not evicted, and does not count against
/// `max_queued` (so the queue may briefly hold more than the bound).
#[test]
fn bounded_queue_never_evicts_a_requeued_retry() {
    let cfg = EngineConfig::builder().limit(1).max_queued(1).build();
    let mut h = Harness::new(cfg.unwrap());
    let x = h.submit(OpOptions::default());
    h.finish_op(x, fail(AttemptError::transient().with_retry_after(d(100))));
    let y = h.submit(OpOptions::default());
    assert_eq!(h.running_of(y).len(), 1);
    h.advance_to(ms(100));
    assert_eq!(h.engine.queued(), 1, "x is back in the queue");
    let z = h.submit(OpOptions::default().priority(10));
    assert!(!h.resolved.contains_key(&x), "x is not evicted");
    assert_eq!(h.engine.queued(), 2, "x (retry) and z (fresh) both wait");
    // The bound still holds for fresh ops: a lower-priority newcomer is refused.
    assert_eq!(
        h.engine.submit(h.now, OpOptions::default().priority(0)),
        Err(SubmitError::QueueFull)
    );
    h.finish_op(y, OK);
    h.finish_op(z, OK);
    h.finish_op(x, OK);
    assert_eq!(h.engine.retry_quota_available(), Some(500));
}
