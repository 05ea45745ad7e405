//! `Pool::run`: values, errors, ordering, limits, retries, timeouts, panics,
//! cancellation, hedges and child ops. Seed conformance ids (P…) and flaw ids
//! (F…) are in the test names; docs/conformance.md maps them.

mod pool_util;
use pool_core::pool::{AttemptCtx, Classifier};
use pool_core::*;
use pool_util::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::time::{sleep, Instant as TokioInstant};

#[tokio::test(start_paused = true)]
async fn p05_run_resolves_with_the_value() {
    let p = pool(10);
    let v = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(42) })
        .await;
    assert_eq!(v.unwrap(), 42);
}

#[tokio::test(start_paused = true)]
async fn p06_structured_results_come_back_whole() {
    let p = pool(10);
    let v = p
        .run(RunOptions::new(), |_| async {
            Ok::<_, Oops>(vec![("a".to_string(), 1), ("b".to_string(), 2)])
        })
        .await;
    assert_eq!(v.unwrap(), vec![("a".to_string(), 1), ("b".to_string(), 2)]);
}

#[tokio::test(start_paused = true)]
async fn p07_a_ready_future_body_is_fine() {
    let p = pool(10);
    let v = p
        .run(RunOptions::new(), |_| std::future::ready(Ok::<_, Oops>(42)))
        .await;
    assert_eq!(v.unwrap(), 42);
}

#[tokio::test(start_paused = true)]
async fn p08_concurrent_runs_resolve_to_their_own_values() {
    let p = pool(10);
    let (a, b, c) = tokio::join!(
        p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(1) }),
        p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(2) }),
        p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(3) }),
    );
    assert_eq!([a.unwrap(), b.unwrap(), c.unwrap()], [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn p09_p10_limit_two_starts_in_order_and_never_exceeds_two() {
    let p = pool(2);
    let starts = Log::default();
    let gauge = Gauge::default();
    let durations = [100, 50, 25, 25];
    let ops = durations.iter().enumerate().map(|(i, &d)| {
        let (starts, gauge) = (starts.clone(), gauge.clone());
        p.run(RunOptions::new(), move |_| {
            let (starts, gauge) = (starts.clone(), gauge.clone());
            async move {
                let _live = gauge.enter();
                starts.push(i + 1);
                sleep(ms(d)).await;
                Ok::<_, Oops>(i + 1)
            }
        })
    });
    let results: Vec<_> = futures_util::future::join_all(ops).await;
    let values: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, [1, 2, 3, 4]);
    assert_eq!(starts.get(), [1, 2, 3, 4]);
    assert_eq!(gauge.max(), 2);
}

#[tokio::test(start_paused = true)]
async fn p11_a_large_limit_with_few_ops_works() {
    let p = pool(100);
    let ops = (0..3).map(|i| p.run(RunOptions::new(), move |_| async move { Ok::<_, Oops>(i) }));
    let r: Vec<_> = futures_util::future::join_all(ops).await;
    assert_eq!(
        r.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[tokio::test(start_paused = true)]
async fn p12_a_high_priority_op_jumps_the_queue() {
    let p = pool(1);
    let starts = Log::default();
    let mut handles = Vec::new();
    for i in 0..5 {
        let (p, starts) = (p.clone(), starts.clone());
        handles.push(tokio::spawn(async move {
            p.run(RunOptions::new().priority(0), move |_| {
                let starts = starts.clone();
                async move {
                    starts.push(i);
                    sleep(ms(20)).await;
                    Ok::<_, Oops>(())
                }
            })
            .await
        }));
    }
    sleep(ms(5)).await;
    let s = starts.clone();
    let high = p.run(RunOptions::new().priority(100), move |_| {
        let s = s.clone();
        async move {
            s.push(100);
            Ok::<_, Oops>(())
        }
    });
    high.await.unwrap();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    // The first low op was already running; the high one goes next.
    assert_eq!(starts.get(), [0, 100, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn p13_equal_priority_starts_fifo() {
    let p = pool(1);
    let starts = Log::default();
    let ops = (1..=4).map(|i| {
        let starts = starts.clone();
        p.run(RunOptions::new(), move |_| {
            let starts = starts.clone();
            async move {
                starts.push(i);
                sleep(ms(1)).await;
                Ok::<_, Oops>(())
            }
        })
    });
    futures_util::future::join_all(ops).await;
    assert_eq!(starts.get(), [1, 2, 3, 4]);
}

/// An op body failing `fails` times, then succeeding; counts attempts.
fn flaky(
    fails: u32,
    attempts: Arc<AtomicU32>,
) -> impl FnMut(
    AttemptCtx,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<&'static str, Oops>> + Send>,
> {
    move |ctx| {
        let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(ctx.attempt(), n, "the closure is called once per attempt");
        Box::pin(async move {
            if n <= fails {
                Err(Oops("Always fails"))
            } else {
                Ok("success")
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn p14_fails_twice_then_succeeds_after_three_attempts() {
    let p = pool(2);
    let n = Arc::new(AtomicU32::new(0));
    let r = p.run(RunOptions::new(), flaky(2, n.clone())).await;
    assert_eq!(r.unwrap(), "success");
    assert_eq!(n.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn p15_p16_always_failing_returns_the_last_error_after_backoffs() {
    let p = pool(2);
    let times = Log::default();
    let t0 = TokioInstant::now();
    let t = times.clone();
    let r = p
        .run(RunOptions::new(), move |_| {
            t.push(elapsed(t0));
            async { Err::<(), _>(Oops("Always fails")) }
        })
        .await;
    match r {
        Err(PoolError::Failed {
            attempts: 3,
            last,
            why: NoRetry::AttemptsExhausted,
            ..
        }) => assert_eq!(last, Oops("Always fails")),
        other => panic!("{other:?}"),
    }
    // Retries wait out a backoff: attempts are spread in time, never back to back.
    let t = times.get();
    assert_eq!(t.len(), 3);
    assert!(t[1] > t[0] && t[2] > t[1], "{t:?}");
}

/// Errors whose name is "NetworkError" are transient; everything else permanent
/// (the seed's `retryableErrors: ['NetworkError']`).
struct ByName;
impl Classifier<Oops> for ByName {
    fn classify(&self, e: &Oops) -> AttemptError {
        if e.0 == "NetworkError" {
            AttemptError::transient()
        } else {
            AttemptError::permanent()
        }
    }
}

#[tokio::test(start_paused = true)]
async fn p17_a_permanent_error_is_not_retried() {
    let p = pool(2);
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let r = p
        .run_classified(RunOptions::new(), ByName, move |_| {
            n2.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Oops("ValidationError")) }
        })
        .await;
    assert!(matches!(
        r,
        Err(PoolError::Failed { attempts: 1, why: NoRetry::Permanent, ref last, .. }) if last.0 == "ValidationError"
    ));
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn p18_a_transient_error_is_retried_up_to_max_attempts() {
    let p = pool_with(cfg(2).max_attempts(4));
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let r = p
        .run_classified(RunOptions::new(), ByName, move |_| {
            n2.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Oops("NetworkError")) }
        })
        .await;
    assert_eq!(r.unwrap_err().attempts(), 4);
    assert_eq!(n.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn p19_per_op_max_attempts_overrides_the_pool() {
    let p = pool(2);
    let n = Arc::new(AtomicU32::new(0));
    let r = p
        .run(RunOptions::new().max_attempts(6), flaky(100, n.clone()))
        .await;
    assert_eq!(r.unwrap_err().attempts(), 6);
    assert_eq!(n.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn p20_a_timeout_fails_the_op_with_timed_out() {
    let p = pool_with(cfg(2).timeout(ms(50)).max_attempts(1));
    let t0 = TokioInstant::now();
    let r = p
        .run(RunOptions::new(), |_| async {
            sleep(ms(200)).await;
            Ok::<_, Oops>(())
        })
        .await;
    assert!(
        matches!(r, Err(PoolError::TimedOut { attempts: 1, .. })),
        "{r:?}"
    );
    assert!(r.unwrap_err().to_string().contains("timed out"));
    assert_eq!(elapsed(t0), ms(50));
}

#[tokio::test(start_paused = true)]
async fn p21_a_fast_op_under_a_timeout_resolves() {
    let p = pool_with(cfg(2).timeout(ms(1000)));
    let r = p
        .run(RunOptions::new(), |_| async {
            sleep(ms(10)).await;
            Ok::<_, Oops>(7)
        })
        .await;
    assert_eq!(r.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn p22_many_short_ops_resolve_and_leave_nothing_behind() {
    let p = pool_with(cfg(2).timeout(ms(1000)));
    let ops = (0..10).map(|i| {
        p.run(RunOptions::new(), move |_| async move {
            sleep(ms(1)).await;
            Ok::<_, Oops>(i)
        })
    });
    let r = futures_util::future::join_all(ops).await;
    assert!(r.iter().all(Result::is_ok));
    let s = p.stats();
    assert_eq!((s.live_ops, s.in_flight, s.queued), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn p23_a_per_op_timeout_overrides_the_pool() {
    let p = pool_with(cfg(2).timeout(ms(1000)).max_attempts(1));
    let t0 = TokioInstant::now();
    let r = p
        .run(RunOptions::new().timeout(ms(50)), |_| async {
            sleep(ms(200)).await;
            Ok::<_, Oops>(())
        })
        .await;
    assert!(matches!(r, Err(PoolError::TimedOut { .. })), "{r:?}");
    assert_eq!(elapsed(t0), ms(50));
}

#[tokio::test(start_paused = true)]
async fn p43_p44_an_error_reaches_the_caller() {
    let p = pool(2);
    let r = p
        .run(RunOptions::new().max_attempts(1), |_| async {
            Err::<(), _>(Oops("boom"))
        })
        .await;
    assert_eq!(r.unwrap_err().source_error(), Some(&Oops("boom")));
}

#[tokio::test(start_paused = true)]
async fn p45_the_last_attempts_error_is_surfaced() {
    let p = pool(2);
    let errs = ["first", "second", "Final error"];
    let r = p
        .run(RunOptions::new(), move |ctx| async move {
            Err::<(), _>(Oops(errs[ctx.attempt() as usize - 1]))
        })
        .await;
    let e = r.unwrap_err();
    assert_eq!(e.attempts(), 3);
    assert_eq!(e.source_error(), Some(&Oops("Final error")));
}

#[tokio::test(start_paused = true)]
async fn f24_timeout_drops_attempt_future_before_retry() {
    // Limit 1: the timed-out attempt must be gone (its future dropped) before the
    // retry starts, so real work never exceeds the limit (the seed ran 2 at once).
    let p = pool_with(cfg(1).timeout(ms(50)).max_attempts(2));
    let gauge = Gauge::default();
    let seen_at_start = Log::default();
    let (g, s) = (gauge.clone(), seen_at_start.clone());
    let r = p
        .run(RunOptions::new(), move |ctx| {
            s.push(g.current());
            let live = g.enter();
            async move {
                let _live = live;
                if ctx.attempt() == 1 {
                    std::future::pending::<()>().await;
                }
                Ok::<_, Oops>(ctx.attempt())
            }
        })
        .await;
    assert_eq!(r.unwrap(), 2);
    assert_eq!(seen_at_start.get(), [0, 0]);
    assert_eq!(gauge.max(), 1);
    assert_eq!(gauge.current(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_panic_becomes_the_ops_error_and_frees_its_slot() {
    let p = pool(1);
    let r = p
        .run(RunOptions::new(), |_| async {
            if true {
                panic!("kaboom");
            }
            Ok::<(), Oops>(())
        })
        .await;
    match r {
        Err(PoolError::Panicked { message }) => assert_eq!(message, "kaboom"),
        other => panic!("{other:?}"),
    }
    // Not retried, slot freed, the pool keeps working.
    assert_eq!(p.stats().counters.started, 1);
    let v = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(1) })
        .await;
    assert_eq!(v.unwrap(), 1);
    assert_eq!(p.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_closure_is_caught_too() {
    let p = pool(1);
    let r: Result<(), PoolError<Oops>> = p
        .run(
            RunOptions::new(),
            |_| -> std::future::Ready<Result<(), Oops>> { panic!("closure") },
        )
        .await;
    assert!(matches!(r, Err(PoolError::Panicked { .. })));
    assert_eq!(p.stats().live_ops, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_queued_ops_future_removes_it() {
    let p = pool(1);
    let blocker = tokio::spawn({
        let p = p.clone();
        async move {
            p.run(RunOptions::new(), |_| async {
                sleep(ms(100)).await;
                Ok::<_, Oops>(())
            })
            .await
        }
    });
    settle().await;
    let ran = Arc::new(AtomicU32::new(0));
    let r2 = ran.clone();
    let queued = p.run(RunOptions::new(), move |_| {
        r2.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Oops>(()) }
    });
    // Poll it once (submits), then drop it.
    let mut queued = Box::pin(queued);
    assert!(poll_once(&mut queued).await.is_pending());
    assert_eq!(p.stats().queued, 1);
    drop(queued);
    assert_eq!(p.stats().queued, 0);
    assert_eq!(p.stats().counters.cancelled, 1);
    blocker.await.unwrap().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_running_ops_future_drops_the_attempt_and_frees_the_slot() {
    let p = pool(1);
    let gauge = Gauge::default();
    let g = gauge.clone();
    let mut running = Box::pin(p.run(RunOptions::new(), move |_| {
        let live = g.enter();
        async move {
            let _live = live;
            std::future::pending::<Result<(), Oops>>().await
        }
    }));
    assert!(poll_once(&mut running).await.is_pending());
    assert_eq!((gauge.current(), p.stats().in_flight), (1, 1));
    drop(running);
    assert_eq!((gauge.current(), p.stats().in_flight), (0, 0));
    let v = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(5) })
        .await;
    assert_eq!(v.unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_drops_the_attempt_and_says_deadline_exceeded() {
    let p = pool(1);
    let gauge = Gauge::default();
    let g = gauge.clone();
    let t0 = TokioInstant::now();
    let r = p
        .run(RunOptions::new().deadline(ms(100)), move |_| {
            let live = g.enter();
            async move {
                let _live = live;
                sleep(ms(1000)).await;
                Ok::<_, Oops>(())
            }
        })
        .await;
    assert!(
        matches!(r, Err(PoolError::DeadlineExceeded { .. })),
        "{r:?}"
    );
    assert_eq!(elapsed(t0), ms(100));
    assert_eq!(gauge.current(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_cancellation_signal_fires_when_the_attempt_times_out() {
    let p = pool_with(cfg(1).timeout(ms(30)).max_attempts(1));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let r = p
        .run(RunOptions::new(), move |ctx| {
            let sig = ctx.cancellation();
            assert!(!sig.is_cancelled());
            if let Some(tx) = tx.take() {
                // Work handed to another task learns about the cancel.
                tokio::spawn(async move {
                    sig.cancelled().await;
                    let _ = tx.send(());
                });
            }
            std::future::pending::<Result<(), Oops>>()
        })
        .await;
    assert!(matches!(r, Err(PoolError::TimedOut { .. })));
    rx.await.expect("signal fired");
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_rejects_the_lowest_priority() {
    let p = pool_with(cfg(1).max_queued(1));
    let slow = |_| async {
        sleep(ms(50)).await;
        Ok::<_, Oops>(())
    };
    let running = tokio::spawn(p.run(RunOptions::new(), slow));
    settle().await;
    let mut low = Box::pin(p.run(RunOptions::new().priority(0), slow));
    assert!(poll_once(&mut low).await.is_pending());
    // Same priority: the newcomer is refused at once.
    let same = p.run(RunOptions::new().priority(0), slow).await;
    assert!(matches!(same, Err(PoolError::Rejected)));
    // Higher priority: the queued low one is evicted instead.
    let high = tokio::spawn(p.run(RunOptions::new().priority(5), slow));
    assert!(matches!(low.await, Err(PoolError::Rejected)));
    running.await.unwrap().unwrap();
    high.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn invalid_options_are_an_error_not_a_stall() {
    let p = pool(1);
    let r = p
        .run(RunOptions::new().timeout(ms(0)), |_| async {
            Ok::<_, Oops>(())
        })
        .await;
    assert!(matches!(
        r,
        Err(PoolError::InvalidOptions {
            field: "timeout",
            ..
        })
    ));
    let r = p
        .run(RunOptions::new().max_attempts(0), |_| async {
            Ok::<_, Oops>(())
        })
        .await;
    assert!(matches!(
        r,
        Err(PoolError::InvalidOptions {
            field: "max_attempts",
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_partition_limit_applies_per_key() {
    let p = pool(10);
    p.set_partition_limit("bucket-a", Some(1)).unwrap();
    let (a, b) = (Gauge::default(), Gauge::default());
    let op = |key: &'static str, g: Gauge| {
        p.run(RunOptions::new().partition(key), move |_| {
            let live = g.enter();
            async move {
                let _live = live;
                sleep(ms(10)).await;
                Ok::<_, Oops>(())
            }
        })
    };
    let ops: Vec<_> = (0..4)
        .map(|_| op("bucket-a", a.clone()))
        .chain((0..4).map(|_| op("bucket-b", b.clone())))
        .collect();
    futures_util::future::join_all(ops).await;
    assert_eq!((a.max(), b.max()), (1, 4));
}

#[tokio::test(start_paused = true)]
async fn f13_child_ops_do_not_deadlock_when_all_slots_taken() {
    // Every slot is held by a parent that waits for its children: the children
    // borrow their parent's slot instead of waiting for a free one.
    let p = pool(2);
    let parents = (0..2).map(|i| {
        p.run(RunOptions::new(), move |ctx| async move {
            let mut sum = 0;
            for j in 0..3 {
                sum += ctx
                    .run(RunOptions::new(), move |_| async move {
                        sleep(ms(5)).await;
                        Ok::<_, Oops>(i * 10 + j)
                    })
                    .await
                    .map_err(|_| Oops("child failed"))?;
            }
            Ok::<_, Oops>(sum)
        })
    });
    let r = tokio::time::timeout(ms(10_000), futures_util::future::join_all(parents))
        .await
        .expect("no deadlock");
    let sums: Vec<_> = r.into_iter().map(Result::unwrap).collect();
    assert_eq!(sums, [3, 33]);
    assert_eq!(p.stats().live_ops, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_runs_beside_the_slow_attempt_and_the_loser_is_dropped() {
    let hedge = HedgeConfig {
        quantile: 0.5,
        min_samples: 5,
        budget_percent: 100.0,
        min_delay_ms: 5,
    };
    let p = pool_with(cfg(4).hedge(hedge));
    // Teach the engine that attempts take ~10 ms.
    for _ in 0..20 {
        p.run(RunOptions::new(), |_| async {
            sleep(ms(10)).await;
            Ok::<_, Oops>(0)
        })
        .await
        .unwrap();
    }
    let gauge = Gauge::default();
    let g = gauge.clone();
    let t0 = TokioInstant::now();
    let r = p
        .run(RunOptions::new(), move |ctx| {
            let live = g.enter();
            async move {
                let _live = live;
                if ctx.is_hedge() {
                    sleep(ms(10)).await;
                } else {
                    std::future::pending::<()>().await;
                }
                Ok::<_, Oops>(ctx.attempt())
            }
        })
        .await;
    assert_eq!(r.unwrap(), 2, "the hedge (attempt 2) won");
    assert_eq!(gauge.max(), 2, "both attempts ran at once");
    assert_eq!(gauge.current(), 0, "the slow attempt was dropped");
    assert!(elapsed(t0) < ms(100));
    assert_eq!(p.stats().counters.hedged, 1);
}
