//! Memory the engine keeps per queued op, measured with a counting allocator.
//!
//! Budget: at most 128 bytes of live heap per queued op (default options, default
//! config), at 10^4, 10^5 and 10^6 queued ops. Cancelling everything must give the
//! memory back to a bounded high-water mark that does not grow cycle after cycle,
//! and dropping the engine must free everything.
//!
//! The counter is per thread, so tests running in parallel (and the test harness)
//! do not disturb each other: each engine lives and dies on its test's thread. It
//! counts the sizes requested from the allocator, not malloc's own per-chunk
//! overhead (negligible here: the engine's allocations are few and large).
//!
//! See the figures with `cargo test -p pool-core --test bookkeeping -- --nocapture`.

use pool_core::{Decision, Engine, EngineConfig, OpId, OpOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Live bytes allocated (minus freed) by this thread. `const` and without a
    /// destructor, so reaching it from inside the allocator never allocates.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: during thread teardown the slot may be gone; that memory is not ours.
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to `System`; we only count sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The per-queued-op budget, in bytes.
const BUDGET: f64 = 128.0;
/// Concurrency limit: with it, all but 10 of the submitted ops stay queued.
const LIMIT: u32 = 10;

/// What the driver saw while pulling decisions.
#[derive(Default)]
struct Seen {
    started: Vec<pool_core::AttemptId>,
    resolved: usize,
}

/// Pulls every pending decision, as a driver does after each call. `started` is
/// pre-sized by the callers so it never allocates while memory is measured.
fn pump(engine: &mut Engine, seen: &mut Seen) {
    while let Some(d) = engine.poll_decision() {
        match d {
            Decision::Start { attempt, .. } => seen.started.push(attempt),
            Decision::Resolved { .. } => seen.resolved += 1,
            Decision::Cancel { .. } | Decision::RetryScheduled { .. } => {}
        }
    }
}

/// An engine at limit 10 that has already run a few default-class ops, so the
/// per-class metrics (histograms), the first slab pages and the decision buffer
/// exist before anything is measured.
fn warmed_engine() -> Engine {
    let cfg = EngineConfig::builder()
        .limit(LIMIT)
        .build()
        .expect("config");
    let mut engine = Engine::new(cfg).expect("engine");
    let mut seen = Seen::default();
    let t = engine.now();
    for _ in 0..2 * LIMIT {
        engine.submit(t, OpOptions::default()).expect("submit");
        pump(&mut engine, &mut seen);
    }
    while let Some(a) = seen.started.pop() {
        engine.attempt_finished(t, a, pool_core::AttemptOutcome::Success, 0);
        pump(&mut engine, &mut seen);
    }
    assert_eq!(engine.live_ops(), 0, "warm-up ops all resolved");
    engine
}

/// Submits `n` default ops and returns the live-byte growth it caused.
fn submit_n(engine: &mut Engine, ids: &mut Vec<OpId>, seen: &mut Seen, n: usize) -> isize {
    let t = engine.now();
    let before = live();
    for _ in 0..n {
        ids.push(engine.submit(t, OpOptions::default()).expect("submit"));
        pump(engine, seen);
    }
    let grew = live() - before;
    assert_eq!(engine.queued(), (n - LIMIT as usize) as u64);
    grew
}

/// Cancels every op in `ids` (queued and running alike), pulling decisions as it goes.
fn cancel_all(engine: &mut Engine, ids: &mut Vec<OpId>, seen: &mut Seen) {
    let t = engine.now();
    // Newest first, so queued ops are cancelled while queued (in submission order
    // each cancelled running op would start the next queued one).
    for id in ids.drain(..).rev() {
        assert!(engine.cancel(t, id), "{id:?} was live");
        pump(engine, seen);
        seen.started.clear();
    }
    assert_eq!(engine.live_ops(), 0);
    assert_eq!(engine.queued(), 0);
}

/// Bytes per queued op after submitting `n` ops; prints it and checks the budget.
fn per_op_bytes(n: usize) {
    let mut ids = Vec::with_capacity(n);
    let mut seen = Seen {
        started: Vec::with_capacity(2 * LIMIT as usize),
        resolved: 0,
    };
    let mut engine = warmed_engine();
    let grew = submit_n(&mut engine, &mut ids, &mut seen, n);
    let queued = engine.queued();
    // Charged to the queued ops only (the running ten's records are in `grew` too).
    let per_op = grew as f64 / queued as f64;
    println!(
        "bookkeeping: {n} ops submitted ({queued} queued, {LIMIT} running): +{grew} live bytes = {per_op:.2} B per queued op (budget {BUDGET})"
    );
    assert!(
        per_op <= BUDGET,
        "{per_op:.2} bytes per queued op at {queued} queued, budget {BUDGET}"
    );
}

#[test]
fn per_queued_op_at_10k() {
    per_op_bytes(10_000);
}

#[test]
fn per_queued_op_at_100k() {
    per_op_bytes(100_000);
}

#[test]
fn per_queued_op_at_1m() {
    per_op_bytes(1_000_000);
}

/// Submit-then-cancel three times, then submit-then-abort: what stays allocated is
/// the high-water capacity of the first cycle (the engine keeps its slab pages, free
/// list and lane heap capacity for reuse) and does not grow; dropping the engine
/// frees everything.
#[test]
fn cancel_and_abort_give_memory_back_without_growth() {
    const N: usize = 100_000;
    let mut ids = Vec::with_capacity(N);
    let mut seen = Seen {
        started: Vec::with_capacity(2 * LIMIT as usize),
        resolved: 0,
    };
    // Everything is printed at the end: a captured `println!` grows the test
    // harness's output buffer on this thread, which the counter would see.
    let mut grew = [0isize; 3];
    let mut kept = [0isize; 3];
    let before_engine = live();
    let mut engine = warmed_engine();
    let idle = live();
    for cycle in 0..3 {
        grew[cycle] = submit_n(&mut engine, &mut ids, &mut seen, N);
        seen.resolved = 0;
        cancel_all(&mut engine, &mut ids, &mut seen);
        assert_eq!(seen.resolved, N, "every op resolved once");
        kept[cycle] = live() - idle;
    }

    submit_n(&mut engine, &mut ids, &mut seen, N);
    seen.resolved = 0;
    engine.abort(engine.now());
    pump(&mut engine, &mut seen);
    assert_eq!(seen.resolved, N, "abort resolved every op once");
    assert_eq!(engine.live_ops(), 0);
    let kept_after_abort = live() - idle;

    drop(engine);
    let leaked = live() - before_engine;

    for cycle in 0..3 {
        println!(
            "bookkeeping: cycle {}: +{} B for {N} ops, {} B kept after cancelling all ({:.1} B per op of the peak)",
            cycle + 1,
            grew[cycle],
            kept[cycle],
            kept[cycle] as f64 / N as f64
        );
    }
    println!(
        "bookkeeping: after abort: {kept_after_abort} B kept ({} B more than after cancelling)",
        kept_after_abort - kept[0]
    );
    println!("bookkeeping: after dropping the engine: {leaked} B still live");

    // Bounded: what stays is spare capacity within the per-op budget of the peak.
    assert!(
        kept[0] as f64 <= BUDGET * N as f64,
        "kept {} B after cancelling {N} ops",
        kept[0]
    );
    // No growth across cycles (a few KiB of slack for buffer capacity jitter).
    for cycle in 1..3 {
        assert!(
            kept[cycle] <= kept[0] + 16 * 1024,
            "cycle {} kept {} B, cycle 1 kept {} B: memory grows across cycles",
            cycle + 1,
            kept[cycle],
            kept[0]
        );
    }
    // Abort resolves all N ops in one call, so the decision buffer holds N
    // `Resolved` decisions before the driver can pull them, and keeps that
    // capacity afterwards: allow one decision's worth (32 B, generously) per op.
    assert!(
        kept_after_abort as f64 <= kept[0] as f64 + 32.0 * N as f64,
        "abort kept {kept_after_abort} B, cancel kept {} B",
        kept[0]
    );
    assert_eq!(leaked, 0, "dropping the engine frees everything");
}

/// The worst case: just past a doubling of the lane heap, whose capacity is then
/// twice its length (2 x 16 B per entry) on top of the 88 B op record: 120 B.
/// (Before the op record lost its stored queue key it was 96 B, and this case
/// measured 128.03 B — over budget.)
#[test]
fn per_queued_op_just_past_a_heap_doubling() {
    for queued in [(1 << 16) + 1, (1 << 17) + 1, (1 << 20) + 1] {
        per_op_bytes(queued + LIMIT as usize);
    }
}
