//! Pool control and observation: limits, pause/resume, drain, shutdown, abort,
//! stats, metrics and events. Seed conformance ids (P…, S…) and flaw ids (F…) are
//! in the test names; docs/conformance.md maps them.

mod pool_util;
use pool_core::pool::WaitError;
use pool_core::*;
use pool_util::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::time::{sleep, Instant as TokioInstant};

/// Spawns an op sleeping `d` that logs its id when it starts.
fn spawn_sleeper(
    p: &Pool,
    id: u32,
    d: u64,
    starts: &Log<u32>,
) -> tokio::task::JoinHandle<Result<u32, PoolError<Oops>>> {
    let (p, starts) = (p.clone(), starts.clone());
    tokio::spawn(async move {
        p.run(RunOptions::new(), move |_| {
            let starts = starts.clone();
            async move {
                starts.push(id);
                sleep(ms(d)).await;
                Ok(id)
            }
        })
        .await
    })
}

#[tokio::test(start_paused = true)]
async fn p01_p02_defaults_and_custom_settings_read_back() {
    let p = pool_with(EngineConfig::builder());
    assert_eq!(p.limit(), 10);
    let c = p.inspect(|e| e.config().clone());
    assert_eq!((c.retry.max_attempts, c.timeout_ms), (3, None));
    let p = pool_with(cfg(7).max_attempts(5).timeout(ms(250)));
    let c = p.inspect(|e| e.config().clone());
    assert_eq!(
        (p.limit(), c.retry.max_attempts, c.timeout_ms),
        (7, 5, Some(250))
    );
}

#[tokio::test(start_paused = true)]
async fn p03_an_invalid_limit_is_refused_at_construction() {
    let r = EngineConfig::builder().limit(0).build();
    assert!(r.is_err(), "limit 0 is an error, not silently 10");
}

#[tokio::test(start_paused = true)]
async fn p24_pause_holds_queued_ops_until_resume() {
    let p = pool(2);
    let starts = Log::default();
    let ops: Vec<_> = (1..=3).map(|i| spawn_sleeper(&p, i, 50, &starts)).collect();
    settle().await;
    p.pause();
    sleep(ms(100)).await;
    assert_eq!(starts.get(), [1, 2], "the third stays queued while paused");
    assert_eq!(p.stats().queued, 1);
    p.resume();
    for op in ops {
        op.await.unwrap().unwrap();
    }
    assert_eq!(starts.get(), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn p25_s07_pause_and_resume_flip_at_once_and_ops_still_run() {
    let p = pool(2);
    p.pause();
    assert!(p.is_paused() && p.stats().paused);
    p.resume();
    assert!(!p.is_paused());
    let v = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(1) })
        .await;
    assert_eq!(v.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn p26_s08_abort_cancels_queued_ops_with_a_typed_error() {
    let p = pool(1);
    let starts = Log::default();
    let running = spawn_sleeper(&p, 1, 1000, &starts);
    let queued = spawn_sleeper(&p, 2, 10, &starts);
    settle().await;
    p.abort();
    let cancelled = |r: Result<u32, PoolError<Oops>>| {
        matches!(
            r,
            Err(PoolError::Cancelled {
                cause: CancelCause::Aborted
            })
        )
    };
    assert!(cancelled(queued.await.unwrap()));
    assert!(
        cancelled(running.await.unwrap()),
        "running attempts are dropped too"
    );
    assert_eq!(starts.get(), [1]);
    assert_ne!(p.stats().lifecycle, Lifecycle::Open);
}

#[tokio::test(start_paused = true)]
async fn p27_drain_waits_for_every_op() {
    let p = pool(2);
    let starts = Log::default();
    let ops: Vec<_> = (1..=3).map(|i| spawn_sleeper(&p, i, 50, &starts)).collect();
    settle().await;
    let t0 = TokioInstant::now();
    p.drain().await.unwrap();
    assert_eq!(elapsed(t0), ms(100));
    assert_eq!(p.stats().live_ops, 0);
    for op in ops {
        assert!(op.is_finished());
    }
}

#[tokio::test(start_paused = true)]
async fn p28_p29_p30_s09_counters_after_successes_failures_and_retries() {
    let p = pool(2);
    for _ in 0..3 {
        p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
            .await
            .unwrap();
    }
    let s = p.stats();
    assert_eq!((s.counters.succeeded, s.counters.failed), (3, 0));
    assert_eq!((s.queued, s.in_flight), (0, 0));
    // One final failure after retries counts once as failed.
    let r = p
        .run(RunOptions::new(), |_| async { Err::<(), _>(Oops("x")) })
        .await;
    assert!(r.is_err());
    let s = p.stats();
    assert_eq!(s.counters.failed, 1);
    assert_eq!(s.counters.retried, 2);
    // Two failures then a success: two more retries.
    let n = Arc::new(AtomicU32::new(0));
    p.run(RunOptions::new(), move |_| {
        let k = n.fetch_add(1, Ordering::SeqCst);
        async move {
            if k < 2 {
                Err(Oops("flaky"))
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(p.stats().counters.retried, 4);
}

#[tokio::test(start_paused = true)]
async fn p31_p46_metrics_snapshot_has_latency_histograms() {
    let p = pool(2);
    for _ in 0..3 {
        p.run(RunOptions::new(), |_| async {
            sleep(ms(20)).await;
            Ok::<_, Oops>(())
        })
        .await
        .unwrap();
    }
    let m = p.metrics();
    let c = m.class(OpClass::DEFAULT).expect("default class seen");
    assert_eq!(c.end_to_end.count, 3);
    assert!(
        c.attempt_latency.quantile(0.95) >= 20_000,
        "{} us",
        c.attempt_latency.unit
    );
    assert_eq!(m.counters.succeeded, 3);
}

/// Collects every event of a pool.
fn record(p: &Pool) -> Log<Event> {
    let log = Log::default();
    let l = log.clone();
    p.add_observer(Box::new(move |_at: Instant, e: &Event| l.push(*e)));
    log
}

fn count(log: &Log<Event>, f: impl Fn(&Event) -> bool) -> usize {
    log.get().iter().filter(|e| f(e)).count()
}

#[tokio::test(start_paused = true)]
async fn p32_to_p36_op_events_fire_once_each() {
    let p = pool(2);
    let log = record(&p);
    p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(1) })
        .await
        .unwrap();
    assert_eq!(count(&log, |e| matches!(e, Event::Started { .. })), 1);
    assert_eq!(count(&log, |e| matches!(e, Event::Succeeded { .. })), 1);
    let r = p
        .run(RunOptions::new(), |_| async { Err::<(), _>(Oops("x")) })
        .await;
    assert!(r.is_err());
    assert_eq!(count(&log, |e| matches!(e, Event::Failed { .. })), 1);
    assert_eq!(
        count(&log, |e| matches!(e, Event::RetryScheduled { .. })),
        2
    );
    assert_eq!(count(&log, |e| matches!(e, Event::Drained)), 2);
}

#[tokio::test(start_paused = true)]
async fn p37_p38_p39_lifecycle_events_fire_at_the_call() {
    let p = pool(2);
    let log = record(&p);
    p.pause();
    assert_eq!(log.get().last(), Some(&Event::Paused));
    p.resume();
    assert_eq!(log.get().last(), Some(&Event::Resumed));
    p.abort();
    assert!(log.get().contains(&Event::Aborted));
}

#[tokio::test(start_paused = true)]
async fn events_also_arrive_through_a_subscription() {
    let p = pool(2);
    let mut rx = p.subscribe(64);
    p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some((_, e)) = rx.try_recv() {
        seen.push(e);
    }
    assert!(matches!(seen[0], Event::Queued { .. }), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, Event::Succeeded { .. })));
    assert_eq!(rx.lagged(), 0);
    // A slow reader loses the oldest events, never slows the pool.
    let mut small = p.subscribe(2);
    for _ in 0..3 {
        p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
            .await
            .unwrap();
    }
    assert!(small.lagged() > 0);
    assert!(small.recv().await.is_some());
}

#[tokio::test(start_paused = true)]
async fn p40_p41_changing_the_limit_mid_flight_completes_everything() {
    for (from, to) in [(2, 5), (5, 2)] {
        let p = pool(from);
        let gauge = Gauge::default();
        let ops: Vec<_> = (0..10)
            .map(|_| {
                let (p, g) = (p.clone(), gauge.clone());
                tokio::spawn(async move {
                    p.run(RunOptions::new(), move |_| {
                        let live = g.enter();
                        async move {
                            let _live = live;
                            sleep(ms(10)).await;
                            Ok::<_, Oops>(())
                        }
                    })
                    .await
                })
            })
            .collect();
        settle().await;
        assert_eq!(gauge.current(), from as usize);
        p.set_limit(to).unwrap();
        settle().await;
        if to > from {
            assert_eq!(gauge.current(), to as usize, "raising starts more at once");
        }
        for op in ops {
            op.await.unwrap().unwrap();
        }
        assert_eq!(gauge.max(), from.max(to) as usize);
    }
}

#[tokio::test(start_paused = true)]
async fn p42_s06_f7_an_invalid_limit_is_an_error_and_changes_nothing() {
    let p = pool(3);
    assert!(p.set_limit(0).is_err());
    assert!(p.set_limit(20_000).is_err(), "above the max bound");
    assert_eq!(p.limit(), 3);
    p.set_limit_bounds(2, 4).unwrap();
    assert!(p.set_limit(5).is_err());
    assert!(p.set_limit_bounds(0, 4).is_err());
    assert!(p.set_limit_bounds(5, 4).is_err());
    assert_eq!(p.limit_bounds(), (2, 4));
}

#[tokio::test(start_paused = true)]
async fn s05_get_and_set_the_limit() {
    let p = pool(3);
    assert_eq!(p.limit(), 3);
    p.set_limit(5).unwrap();
    assert_eq!(p.limit(), 5);
}

#[tokio::test(start_paused = true)]
async fn f1_drain_while_paused_with_queued_work_returns_instead_of_hanging() {
    let p = pool(1);
    let starts = Log::default();
    let _a = spawn_sleeper(&p, 1, 50, &starts);
    let _b = spawn_sleeper(&p, 2, 50, &starts);
    settle().await;
    p.pause();
    // One attempt still runs: drain waits for it, then reports why it stops.
    let t0 = TokioInstant::now();
    assert_eq!(p.drain().await, Err(WaitError::PausedWithWork));
    assert_eq!(elapsed(t0), ms(50));
    p.resume();
    p.drain().await.unwrap();
    assert_eq!(starts.get(), [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn f2_drain_never_fails_because_an_op_failed() {
    let p = pool(2);
    let failing = tokio::spawn({
        let p = p.clone();
        async move {
            p.run(RunOptions::new().max_attempts(1), |_| async {
                sleep(ms(5)).await;
                Err::<(), _>(Oops("x"))
            })
            .await
        }
    });
    settle().await;
    assert_eq!(p.drain().await, Ok(()));
    assert!(failing.await.unwrap().is_err());
}

#[tokio::test(start_paused = true)]
async fn f3_drain_after_pause_waits_for_every_running_attempt() {
    let p = pool(3);
    let starts = Log::default();
    let _ops: Vec<_> = [10, 30, 60]
        .iter()
        .enumerate()
        .map(|(i, &d)| spawn_sleeper(&p, i as u32, d, &starts))
        .collect();
    settle().await;
    p.pause();
    let t0 = TokioInstant::now();
    // Nothing is queued, so it ends when the last (not the first) attempt does.
    assert_eq!(p.drain().await, Ok(()));
    assert_eq!(elapsed(t0), ms(60));
}

#[tokio::test(start_paused = true)]
async fn f4_run_after_shutdown_is_refused_at_once() {
    let p = pool(2);
    p.shutdown().await.unwrap();
    let r = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
        .await;
    assert!(matches!(r, Err(PoolError::ShutDown)));
    let p = pool(2);
    p.abort();
    let r = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
        .await;
    assert!(matches!(r, Err(PoolError::ShutDown)));
}

#[tokio::test(start_paused = true)]
async fn f5_abort_stops_retries_and_shutdown_finishes_accepted_work() {
    // Abort during a backoff: no further attempt ever starts.
    let p = pool(1);
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let op = tokio::spawn({
        let p = p.clone();
        async move {
            p.run(RunOptions::new().max_attempts(10), move |_| {
                n2.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(Oops("x")) }
            })
            .await
        }
    });
    settle().await;
    assert_eq!(p.stats().waiting_retry, 1);
    p.abort();
    assert!(matches!(
        op.await.unwrap(),
        Err(PoolError::Cancelled {
            cause: CancelCause::Aborted
        })
    ));
    sleep(ms(60_000)).await;
    assert_eq!(n.load(Ordering::SeqCst), 1);

    // Graceful shutdown: queued work still runs, new work is refused.
    let p = pool(1);
    let starts = Log::default();
    let ops: Vec<_> = (1..=3).map(|i| spawn_sleeper(&p, i, 10, &starts)).collect();
    settle().await;
    let t0 = TokioInstant::now();
    p.shutdown().await.unwrap();
    assert_eq!(elapsed(t0), ms(30));
    for op in ops {
        op.await.unwrap().unwrap();
    }
    assert_eq!(p.stats().lifecycle, Lifecycle::Closed);
}

#[tokio::test(start_paused = true)]
async fn f6_cancellation_of_fire_and_forget_ops_is_typed_and_harmless() {
    let p = pool(1);
    let starts = Log::default();
    let _running = spawn_sleeper(&p, 1, 1000, &starts);
    // Nobody awaits these results: dropping them must not leak or panic.
    let forgotten: Vec<_> = (2..5).map(|i| spawn_sleeper(&p, i, 10, &starts)).collect();
    settle().await;
    p.abort();
    settle().await;
    drop(forgotten);
    assert_eq!(p.stats().live_ops, 0);
    assert_eq!(p.stats().counters.cancelled, 4);
}

#[tokio::test(start_paused = true)]
async fn f9_a_panicking_observer_does_not_corrupt_counts() {
    let p = pool(2);
    p.add_observer(Box::new(|_: Instant, e: &Event| {
        if matches!(e, Event::Succeeded { .. } | Event::Started { .. }) {
            panic!("listener bug");
        }
    }));
    let log = record(&p);
    for _ in 0..3 {
        p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
            .await
            .unwrap();
    }
    let s = p.stats();
    assert_eq!((s.counters.succeeded, s.counters.failed), (3, 0));
    assert!(s.counters.observer_panics >= 6);
    // Later observers still saw every event.
    assert_eq!(count(&log, |e| matches!(e, Event::Succeeded { .. })), 3);
}

#[tokio::test(start_paused = true)]
async fn f10_drained_fires_once_per_idle_period_and_drain_adds_none() {
    let p = pool(2);
    let log = record(&p);
    let ops = (0..3).map(|_| {
        p.run(RunOptions::new(), |_| async {
            sleep(ms(5)).await;
            Ok::<_, Oops>(())
        })
    });
    futures_util::future::join_all(ops).await;
    p.drain().await.unwrap();
    p.drain().await.unwrap();
    assert_eq!(count(&log, |e| matches!(e, Event::Drained)), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_lets_queued_work_finish() {
    let p = pool(1);
    let done = Arc::new(AtomicU32::new(0));
    let ops: Vec<_> = (0..3)
        .map(|_| {
            let d = done.clone();
            tokio::spawn(p.run(RunOptions::new().timeout(ms(1000)), move |_| {
                let d = d.clone();
                async move {
                    sleep(ms(10)).await;
                    d.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Oops>(())
                }
            }))
        })
        .collect();
    drop(p);
    for op in ops {
        op.await.unwrap().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn one_pool_is_shared_by_many_clients_and_threads() {
    // Two "clients" holding clones share one limit (the coordination the seed
    // lacks, F40).
    let p = pool(3);
    let gauge = Gauge::default();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (p, g) = (p.clone(), gauge.clone());
            tokio::spawn(async move {
                let ops = (0..5).map(|_| {
                    let g = g.clone();
                    p.run(RunOptions::new(), move |_| {
                        let live = g.enter();
                        async move {
                            let _live = live;
                            sleep(ms(10)).await;
                            Ok::<_, Oops>(())
                        }
                    })
                });
                futures_util::future::join_all(ops).await
            })
        })
        .collect();
    for c in clients {
        assert!(c.await.unwrap().iter().all(Result::is_ok));
    }
    assert_eq!(gauge.max(), 3);
}

#[test]
fn the_pool_works_on_a_multi_thread_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let p = pool(4);
        let gauge = Gauge::default();
        let ops: Vec<_> = (0..200)
            .map(|i| {
                let (p, g) = (p.clone(), gauge.clone());
                tokio::spawn(async move {
                    p.run(RunOptions::new().priority(i % 3), move |_| {
                        let live = g.enter();
                        async move {
                            let _live = live;
                            tokio::task::yield_now().await;
                            Ok::<_, Oops>(i)
                        }
                    })
                    .await
                })
            })
            .collect();
        for (i, op) in ops.into_iter().enumerate() {
            assert_eq!(op.await.unwrap().unwrap(), i as i32);
        }
        assert!(gauge.max() <= 4);
        p.shutdown().await.unwrap();
    });
}

#[tokio::test(start_paused = true)]
async fn the_driver_task_ends_when_the_pool_is_dropped_and_idle() {
    let p = pool(2);
    let op = p.run(RunOptions::new(), |_| async {
        sleep(ms(5)).await;
        Ok::<_, Oops>(())
    });
    settle().await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    assert_eq!(tasks(), 1, "the driver");
    drop(p);
    settle().await;
    assert_eq!(tasks(), 1, "an op future still exists: it may submit");
    op.await.unwrap();
    settle().await;
    assert_eq!(tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn m03_m04_a_fresh_pool_is_empty_with_zero_counters() {
    let p = pool(2);
    let s = p.stats();
    assert_eq!(
        (s.queued, s.in_flight, s.live_ops, s.paused),
        (0, 0, 0, false)
    );
    assert_eq!(s.lifecycle, Lifecycle::Open);
    assert_eq!(s.counters, Default::default());
}
