//! Engine throughput against its floor: a bare binary heap.
//!
//! `engine/submit_dispatch_complete` drives the engine in steady state — limit
//! 100, 100 attempts running, ~10,000 ops queued, priorities 0–9 — and per op
//! does what a driver does: submit one, pull the decisions, complete the oldest
//! running attempt, pull the decisions again (which start the next queued op).
//! `engine/heap_only` pushes and pops the same `(key, seq)` pairs on a
//! `std::collections::BinaryHeap` at the same depth, which is the least any
//! priority queue must do. The ratio of the two is the engine's bookkeeping
//! overhead over its queue.
//!
//! One iteration is 1,000,000 ops (`Throughput::Elements(1_000_000)`), so the
//! reported time divided by 10^6 is the time per op. Each iteration builds and
//! pre-fills its own engine or heap with `iter_custom` and times only the
//! steady-state loop: the pre-fill (10,100 submits) and the drop are not measured.
//! The driver's own bookkeeping (a `VecDeque` of running attempts) is measured
//! with the engine; it is a push and a pop per op.
//!
//! Run: `cargo bench -p pool-core --bench engine`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pool_core::{AttemptId, AttemptOutcome, Decision, Engine, EngineConfig, Instant, OpOptions};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// Ops measured per iteration.
const OPS: u64 = 1_000_000;
/// Concurrency limit: attempts running in steady state.
const LIMIT: u32 = 100;
/// Ops waiting in the queue in steady state.
const DEPTH: u64 = 10_000;
/// Engine time advanced per op, so aging keys differ (1 µs).
const STEP_NS: u64 = 1_000;
/// The engine's default aging quantum (250 ms), in ns: same key formula as its queue.
const AGING_NS: i64 = 250_000_000;

/// A tiny LCG for deterministic priorities 0–9 (the same stream in both benches).
struct Lcg(u64);

impl Lcg {
    fn priority(&mut self) -> i32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % 10) as i32
    }
}

/// An engine in steady state plus the driver's view of what runs.
struct Driver {
    engine: Engine,
    running: VecDeque<AttemptId>,
    now: u64,
    rng: Lcg,
}

impl Driver {
    /// Limit 100, then 100 running and `DEPTH` queued.
    fn prefilled() -> Driver {
        let cfg = EngineConfig::builder()
            .limit(LIMIT)
            .build()
            .expect("valid config");
        let mut d = Driver {
            engine: Engine::new(cfg).expect("valid config"),
            running: VecDeque::with_capacity(LIMIT as usize * 2),
            now: 0,
            rng: Lcg(1),
        };
        for _ in 0..DEPTH + u64::from(LIMIT) {
            d.submit();
        }
        assert_eq!(d.running.len(), LIMIT as usize);
        assert_eq!(d.engine.queued(), DEPTH);
        d
    }

    fn submit(&mut self) {
        self.now += STEP_NS;
        let p = self.rng.priority();
        self.engine
            .submit(
                Instant::from_nanos(self.now),
                OpOptions::default().priority(p),
            )
            .expect("submit");
        self.pump();
    }

    /// Completes the oldest running attempt.
    fn complete(&mut self) {
        let a = self.running.pop_front().expect("an attempt runs");
        let taken = self.engine.attempt_finished(
            Instant::from_nanos(self.now),
            a,
            AttemptOutcome::Success,
            0,
        );
        debug_assert!(taken);
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(d) = self.engine.poll_decision() {
            if let Decision::Start { attempt, .. } = d {
                self.running.push_back(attempt);
            }
        }
    }
}

/// A bare heap with the engine queue's keys, pre-filled to the same depth.
struct HeapOnly {
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    now: u64,
    seq: u32,
    rng: Lcg,
}

impl HeapOnly {
    fn prefilled() -> HeapOnly {
        let mut h = HeapOnly {
            heap: BinaryHeap::new(),
            now: 0,
            seq: 0,
            rng: Lcg(1),
        };
        // Mirror the engine's pre-fill: the first LIMIT ops leave the queue at once.
        for i in 0..DEPTH + u64::from(LIMIT) {
            h.push();
            if i < u64::from(LIMIT) {
                black_box(h.heap.pop());
            }
        }
        assert_eq!(h.heap.len() as u64, DEPTH);
        h
    }

    fn push(&mut self) {
        self.now += STEP_NS;
        self.seq = self.seq.wrapping_add(1);
        let p = i64::from(self.rng.priority());
        let key = self.now as i64 - p * AGING_NS;
        self.heap.push(Reverse((key, self.seq)));
    }
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    // One iteration is a million ops (~0.1–1 s): flat sampling keeps each sample
    // at one or a few iterations instead of criterion's 1+2+…+n ramp.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(OPS));

    g.bench_function("submit_dispatch_complete", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut d = Driver::prefilled();
                let start = std::time::Instant::now();
                for _ in 0..OPS {
                    d.submit();
                    d.complete();
                }
                total += start.elapsed();
                assert_eq!(d.engine.queued(), DEPTH);
                black_box(&d.engine);
            }
            total
        })
    });

    g.bench_function("heap_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut h = HeapOnly::prefilled();
                let start = std::time::Instant::now();
                for _ in 0..OPS {
                    h.push();
                    black_box(h.heap.pop());
                }
                total += start.elapsed();
                black_box(&h.heap);
            }
            total
        })
    });

    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
