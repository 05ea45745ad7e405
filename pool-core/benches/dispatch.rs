//! Dispatch overhead of the async pool against bare tokio limiters.
//!
//! 100k ops at concurrency 100, priorities 0–9, each op's body a single
//! `tokio::task::yield_now().await` (so ops really wait for slots), all submitted
//! at once and driven from one task on a current-thread runtime:
//! * `pool` — `Pool::run` futures in a `FuturesUnordered`, through a new pool per
//!   iteration (built outside the measurement; the old one is torn down in the
//!   next iteration);
//! * `pool_reused` — the same through one pool kept for the whole run, as an
//!   application keeps its pool (after the first iteration the engine hands out
//!   recycled slots in the previous burst's completion order, so memory is
//!   touched less sequentially than with a fresh pool);
//! * `semaphore_inline` — a `tokio::sync::Semaphore` acquired inside each future;
//! * `semaphore_spawn` — acquire, then `tokio::spawn` per op;
//! * `buffer_unordered` — `buffer_unordered(100)`, no limit object (the floor);
//! * `priority_semaphore` — a minimal limiter that honours the same priorities
//!   (a mutex over one FIFO of waiters per priority, as the engine's queue keeps
//!   them; one binary heap over all 100k waiters costs about twice as much) and
//!   does nothing else: no clock, no aging, no metrics, no retries. Beside
//!   `semaphore_inline` it shows what waking ops by priority costs by itself.
//!
//! Group `dispatch_parts` splits `pool` into parts, each for the same 100k ops:
//! * `engine_sync` — the submits and completions made directly on an [`Engine`]
//!   (no futures, no clock): the engine's share;
//! * `clock_reads` — the two clock reads `pool` makes per op (submit and attempt
//!   end), through the tokio runtime adapter;
//! * `histogram_records` — the four latency records the engine makes per op
//!   (queue wait, attempt, end-to-end, service), on histograms shaped like the
//!   default metrics config's.
//!
//! The last two are fixed costs of timing every op: compared with
//! `semaphore_inline` in the same run they show how much of the budget they take.
//!
//! Run: `cargo bench -p pool-core --bench dispatch`.

use criterion::black_box;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use futures_util::stream::{self, FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use pool_core::pool::{Runtime, TokioRuntime};
use pool_core::{
    AttemptOutcome, Decision, Engine, EngineConfig, Instant, MetricsConfig, OpOptions, Pool,
    RunOptions,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use tokio::sync::Semaphore;
use tokio::task::yield_now;

const OPS: usize = 100_000;
const LIMIT: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

async fn run_pool(pool: &Pool) {
    let mut ops: FuturesUnordered<_> = (0..OPS)
        .map(|i| {
            pool.run(RunOptions::new().priority((i % 10) as i32), |_| async {
                yield_now().await;
                Ok::<(), ()>(())
            })
        })
        .collect();
    while let Some(r) = ops.next().await {
        assert!(r.is_ok());
    }
}

async fn run_semaphore_inline() {
    let sem = Semaphore::new(LIMIT);
    let mut ops: FuturesUnordered<_> = (0..OPS)
        .map(|_| async {
            let _permit = sem.acquire().await.expect("open");
            yield_now().await;
        })
        .collect();
    while ops.next().await.is_some() {}
}

async fn run_semaphore_spawn() {
    let sem = Arc::new(Semaphore::new(LIMIT));
    let mut ops: FuturesUnordered<_> = (0..OPS)
        .map(|_| {
            let sem = Arc::clone(&sem);
            async move {
                let permit = sem.acquire_owned().await.expect("open");
                tokio::spawn(async move {
                    yield_now().await;
                    drop(permit);
                })
                .await
                .expect("task");
            }
        })
        .collect();
    while ops.next().await.is_some() {}
}

async fn run_buffer_unordered() {
    let n = stream::iter(0..OPS)
        .map(|_| async { yield_now().await })
        .buffer_unordered(LIMIT)
        .count()
        .await;
    assert_eq!(n, OPS);
}

/// A counting limiter that grants permits to the highest priority waiter first
/// (FIFO among equals): the least a priority-honouring pool does per op.
struct PrioritySemaphore(Mutex<Waiters>);

struct Waiters {
    permits: usize,
    /// Waiter slots by priority, highest first, each in arrival order.
    queue: BTreeMap<Reverse<i32>, VecDeque<usize>>,
    /// Per waiter slot: its waker and whether it was granted a permit.
    slots: Vec<(Option<Waker>, bool)>,
    free: Vec<usize>,
}

impl PrioritySemaphore {
    fn new(permits: usize) -> Self {
        PrioritySemaphore(Mutex::new(Waiters {
            permits,
            queue: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }))
    }

    /// Waits for a permit at `priority`; the guard gives it back.
    async fn acquire(&self, priority: i32) -> PriorityPermit<'_> {
        let mut slot = None;
        poll_fn(|cx| {
            let mut w = self.0.lock().expect("not poisoned");
            let w = &mut *w;
            match slot {
                None if w.permits > 0 && w.queue.is_empty() => {
                    w.permits -= 1;
                    Poll::Ready(())
                }
                None => {
                    let s = w.free.pop().unwrap_or_else(|| {
                        w.slots.push((None, false));
                        w.slots.len() - 1
                    });
                    w.slots[s] = (Some(cx.waker().clone()), false);
                    w.queue.entry(Reverse(priority)).or_default().push_back(s);
                    slot = Some(s);
                    Poll::Pending
                }
                Some(s) if w.slots[s].1 => {
                    w.slots[s] = (None, false);
                    w.free.push(s);
                    Poll::Ready(())
                }
                Some(s) => {
                    w.slots[s].0 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        PriorityPermit(self)
    }
}

/// A granted permit (the bench never drops a waiting acquire, so cancellation
/// is not handled).
struct PriorityPermit<'a>(&'a PrioritySemaphore);

impl Drop for PriorityPermit<'_> {
    fn drop(&mut self) {
        let mut w = self.0 .0.lock().expect("not poisoned");
        let next = w.queue.first_entry().and_then(|mut e| {
            let s = e.get_mut().pop_front();
            if e.get().is_empty() {
                e.remove();
            }
            s
        });
        match next {
            Some(s) => {
                w.slots[s].1 = true;
                if let Some(waker) = w.slots[s].0.take() {
                    waker.wake();
                }
            }
            None => w.permits += 1,
        }
    }
}

async fn run_priority_semaphore() {
    let sem = PrioritySemaphore::new(LIMIT);
    let mut ops: FuturesUnordered<_> = (0..OPS)
        .map(|i| {
            let sem = &sem;
            async move {
                let _permit = sem.acquire((i % 10) as i32).await;
                yield_now().await;
            }
        })
        .collect();
    while ops.next().await.is_some() {}
}

fn config() -> EngineConfig {
    EngineConfig::builder()
        .limit(LIMIT as u32)
        .build()
        .expect("config")
}

/// The engine alone: submit everything, then complete the oldest running
/// attempt until every op resolved.
fn engine_sync() {
    let mut e = Engine::new(config()).expect("config");
    let t = Instant::ZERO;
    let mut running = VecDeque::with_capacity(LIMIT);
    let pull = |e: &mut Engine, running: &mut VecDeque<_>| {
        let mut resolved = 0;
        while let Some(d) = e.poll_decision() {
            match d {
                Decision::Start { attempt, .. } => running.push_back(attempt),
                Decision::Resolved { .. } => resolved += 1,
                _ => {}
            }
        }
        resolved
    };
    for i in 0..OPS {
        let opts = OpOptions::default().priority((i % 10) as i32);
        e.submit(t, opts).expect("accepted");
        pull(&mut e, &mut running);
    }
    let mut done = 0;
    while let Some(a) = running.pop_front() {
        e.attempt_finished(t, a, AttemptOutcome::Success, 0);
        done += pull(&mut e, &mut running);
    }
    assert_eq!(done, OPS);
}

/// What `pool` spends on reading the clock: two reads per op.
fn clock_reads(clock: &TokioRuntime) {
    let mut last = Instant::ZERO;
    for _ in 0..2 * OPS {
        last = last.max(black_box(clock.now()));
    }
    black_box(last);
}

/// What the engine spends on latency histograms: four records per op, into
/// histograms with the default metrics range and precision.
fn histogram_records(hs: &mut [Histogram<u64>; 4]) {
    for i in 0..OPS as u64 {
        // Microsecond values spread like a busy pool's (tens to thousands).
        let v = black_box(20 + (i * 7919) % 5_000);
        for h in hs.iter_mut() {
            h.saturating_record(v);
        }
    }
}

fn dispatch(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(OPS as u64));
    g.sample_size(10);
    g.bench_function("pool", |b| {
        b.iter_batched(
            || {
                let _guard = rt.enter();
                Pool::new(config()).expect("pool")
            },
            |pool| rt.block_on(run_pool(&pool)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("semaphore_inline", |b| {
        b.iter(|| rt.block_on(run_semaphore_inline()))
    });
    g.bench_function("semaphore_spawn", |b| {
        b.iter(|| rt.block_on(run_semaphore_spawn()))
    });
    g.bench_function("buffer_unordered", |b| {
        b.iter(|| rt.block_on(run_buffer_unordered()))
    });
    g.bench_function("priority_semaphore", |b| {
        b.iter(|| rt.block_on(run_priority_semaphore()))
    });
    let pool = {
        let _guard = rt.enter();
        Pool::new(config()).expect("pool")
    };
    g.bench_function("pool_reused", |b| b.iter(|| rt.block_on(run_pool(&pool))));
    g.finish();

    let mut g = c.benchmark_group("dispatch_parts");
    g.throughput(Throughput::Elements(OPS as u64));
    g.sample_size(10);
    g.bench_function("engine_sync", |b| b.iter(engine_sync));
    let clock = {
        let _guard = rt.enter();
        TokioRuntime::current().expect("inside the runtime")
    };
    g.bench_function("clock_reads", |b| {
        b.iter(|| {
            let _guard = rt.enter();
            clock_reads(&clock)
        })
    });
    let m = MetricsConfig::default();
    let shape =
        Histogram::<u64>::new_with_bounds(1, m.histogram_max_ms * 1_000, m.significant_figures)
            .expect("default histogram bounds");
    let mut hs = std::array::from_fn(|_| shape.clone());
    g.bench_function("histogram_records", |b| {
        b.iter(|| histogram_records(&mut hs))
    });
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
