//! The op future reads its mail without the pool's lock when it can (see
//! `pool/mailbox.rs`). These tests hammer that path from several threads, and
//! move op futures between tasks, checking that every op resolves exactly once
//! and the pool ends empty. A generous timeout only turns a hang into a failure.

mod pool_util;
use futures_util::stream::{FuturesUnordered, StreamExt};
use pool_core::*;
use pool_util::*;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::yield_now;

const HANG: Duration = Duration::from_secs(120);

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .expect("runtime")
}

#[test]
fn many_tasks_on_many_threads_resolve_every_op_once() {
    let rt = multi_thread();
    rt.block_on(async {
        // Short backoffs and no retry quota: every failed-once op is retried.
        let retry = RetryConfig {
            quota: None,
            transient_base_ms: 1,
            ..RetryConfig::default()
        };
        let p = Pool::new(cfg(8).retry(retry).build().expect("config")).expect("pool");
        let ok = Arc::new(AtomicU64::new(0));
        let attempts = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let p = p.clone();
            let ok = ok.clone();
            let attempts = attempts.clone();
            tasks.push(tokio::spawn(async move {
                let mut ops = FuturesUnordered::new();
                for i in 0..2_000u64 {
                    let attempts = attempts.clone();
                    let opts = RunOptions::new().priority((i % 7) as i32);
                    let tries = Arc::new(AtomicU32::new(0));
                    ops.push(p.run(opts, move |_| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let n = tries.fetch_add(1, Ordering::Relaxed);
                        async move {
                            for _ in 0..(i + t) % 4 {
                                yield_now().await;
                            }
                            // Every tenth op fails once (a retry later).
                            if i % 10 == 0 && n == 0 {
                                Err(Oops("once"))
                            } else {
                                Ok(i)
                            }
                        }
                    }));
                }
                while let Some(r) = ops.next().await {
                    r.expect("every op succeeds in the end");
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let all = async {
            for t in tasks {
                t.await.expect("task");
            }
        };
        tokio::time::timeout(HANG, all).await.expect("no hang");
        assert_eq!(ok.load(Ordering::Relaxed), 16_000);
        assert_eq!(attempts.load(Ordering::Relaxed), 16_000 + 1_600);
        let s = p.stats();
        assert_eq!((s.live_ops, s.in_flight, s.queued), (0, 0, 0));
        assert_eq!(s.counters.succeeded, 16_000);
        assert_eq!(s.counters.retried, 1_600);
    });
}

#[test]
fn dropping_ops_from_other_threads_while_they_start_leaks_nothing() {
    let rt = multi_thread();
    rt.block_on(async {
        let p = Pool::new(cfg(4).build().expect("config")).expect("pool");
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..500u64 {
                    let op = p.run(RunOptions::new(), |_| async {
                        for _ in 0..3 {
                            yield_now().await;
                        }
                        Ok::<_, Oops>(())
                    });
                    // Race the op against a few yields: it is dropped queued,
                    // just started, or running.
                    let spins = (i + t) % 5;
                    tokio::select! {
                        r = op => r.expect("ok"),
                        _ = async { for _ in 0..spins { yield_now().await } } => {}
                    }
                }
            }));
        }
        let all = async {
            for t in tasks {
                t.await.expect("task");
            }
        };
        tokio::time::timeout(HANG, all).await.expect("no hang");
        tokio::time::timeout(HANG, p.drain())
            .await
            .expect("no hang")
            .expect("drained");
        let s = p.stats();
        assert_eq!((s.live_ops, s.in_flight, s.queued), (0, 0, 0));
        // An op whose future lost the race before its first poll was never
        // submitted; every submitted one resolved exactly once.
        assert!(s.counters.submitted > 3_000, "{:?}", s.counters);
        assert_eq!(
            s.counters.succeeded + s.counters.cancelled,
            s.counters.submitted
        );
        assert!(s.counters.cancelled > 0 && s.counters.succeeded > 0);
    });
}

/// On a pool of one slot: an op holding the slot for 10 ms (in its own task),
/// and an op queued behind it that this task polled once (so this task's waker
/// is the one registered).
async fn queued_behind_a_holder(
    p: &Pool,
) -> (
    tokio::task::JoinHandle<Result<(), PoolError<Oops>>>,
    std::pin::Pin<Box<impl std::future::Future<Output = Result<i32, PoolError<Oops>>> + Send>>,
) {
    let holder = tokio::spawn(p.run(RunOptions::new(), |_| async {
        tokio::time::sleep(ms(10)).await;
        Ok::<_, Oops>(())
    }));
    settle().await;
    let mut queued = Box::pin(p.run(RunOptions::new(), |_| async { Ok::<_, Oops>(7) }));
    assert!(poll_once(&mut queued).await.is_pending());
    (holder, queued)
}

#[tokio::test(start_paused = true)]
async fn an_op_future_moved_to_another_task_is_woken_there() {
    let p = pool(1);
    let (holder, queued) = queued_behind_a_holder(&p).await;
    // Finished in another task: it must register that task's waker.
    let moved = tokio::spawn(queued);
    holder.await.unwrap().unwrap();
    assert_eq!(moved.await.unwrap().unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn an_op_future_moved_after_it_started_is_woken_there() {
    let p = pool(1);
    let mut running = Box::pin(p.run(RunOptions::new().timeout(ms(50)), |_| async {
        tokio::time::sleep(ms(1_000)).await;
        Ok::<_, Oops>(())
    }));
    assert!(poll_once(&mut running).await.is_pending());
    let moved = tokio::spawn(running);
    // Only the timeout (fired by the pool's driver) can end it now.
    let r = moved.await.unwrap();
    assert!(matches!(r, Err(PoolError::TimedOut { .. })), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn a_start_that_lands_while_the_future_moves_between_tasks_is_not_lost() {
    let p = pool(1);
    let (holder, queued) = queued_behind_a_holder(&p).await;
    // The slot frees and the start is delivered while nobody polls `queued`;
    // then a different task (another waker) polls it first.
    holder.await.unwrap().unwrap();
    let moved = tokio::spawn(queued);
    let r = tokio::time::timeout(Duration::from_secs(3600), moved).await;
    assert_eq!(r.expect("started, not lost").unwrap().unwrap(), 7);
}
