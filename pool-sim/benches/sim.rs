//! Group `sim`: the simulator's cost per op next to the engine's own.
//!
//! - `closed_loop_small_get`: 1 M GETs of 4 KiB at limit 100 through the whole
//!   simulator (S3 model, event loop, the real engine). Throughput = ops/s of wall.
//! - `engine_submit_dispatch_complete`: the same 1 M ops through the engine alone
//!   (submit, start, finish in FIFO order, same config): the baseline. The
//!   simulator's goal is at most 3× this per op.
//!
//! After the criterion group, a plain timing (median of 3) of the built-in fleet
//! scenario stretched to one virtual hour (50 clients, 5,500 GET/s in total);
//! set `SIM_BENCH_SKIP_FLEET_HOUR=1` to skip it.

use criterion::{criterion_group, Criterion, Throughput};
use pool_core::{AttemptOutcome, Decision, Engine, EngineConfig, Instant, OpOptions};
use pool_sim::{run_with, RunOptions, Scenario};
use std::collections::VecDeque;
use std::hint::black_box;

const OPS: u64 = 1_000_000;
const LIMIT: u32 = 100;

fn pool_config() -> EngineConfig {
    EngineConfig {
        limit: LIMIT,
        timeout_ms: Some(2_000),
        ..EngineConfig::default()
    }
}

fn small_get_scenario() -> Scenario {
    let src = format!(
        r#"
name = "bench-small-get"
duration_s = 1
[pool]
limit = {LIMIT}
timeout_ms = 2000
[[workload]]
kind = "batch"
ops = {OPS}
[[workload.mix]]
class = "get"
size = "4 KiB"
prefixes = 4
"#
    );
    Scenario::parse("bench", &src).expect("bench scenario parses")
}

/// The engine alone: submit everything, then finish attempts in start order,
/// 10 µs apart, pulling decisions after every call.
fn engine_only() -> u64 {
    let mut e = Engine::new(pool_config()).expect("valid config");
    let mut running = VecDeque::with_capacity(LIMIT as usize);
    let mut done = 0u64;
    let mut now = Instant::ZERO;
    let drain = |e: &mut Engine, running: &mut VecDeque<_>, done: &mut u64| {
        while let Some(d) = e.poll_decision() {
            match d {
                Decision::Start { attempt, .. } => running.push_back(attempt),
                Decision::Resolved { .. } => *done += 1,
                _ => {}
            }
        }
    };
    for _ in 0..OPS {
        e.submit(now, OpOptions::default()).expect("submit");
        drain(&mut e, &mut running, &mut done);
    }
    while let Some(a) = running.pop_front() {
        now = now + core::time::Duration::from_micros(10);
        e.attempt_finished(now, a, AttemptOutcome::Success, 4096);
        drain(&mut e, &mut running, &mut done);
    }
    done
}

fn bench(c: &mut Criterion) {
    let sc = small_get_scenario();
    let opts = RunOptions {
        series: false,
        ..RunOptions::default()
    };
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.throughput(Throughput::Elements(OPS));
    g.bench_function("closed_loop_small_get", |b| {
        b.iter(|| {
            let r = run_with(&sc, 1, &opts).expect("run");
            black_box(r.conservation.succeeded)
        })
    });
    g.bench_function("engine_submit_dispatch_complete", |b| {
        b.iter(|| black_box(engine_only()))
    });
    g.finish();
}

/// Wall time of the fleet scenario over one virtual hour, median of 3.
fn fleet_hour() {
    if std::env::var_os("SIM_BENCH_SKIP_FLEET_HOUR").is_some() {
        return;
    }
    let sc = Scenario::load("fleet-50-one-prefix").expect("built-in");
    let opts = RunOptions {
        duration_s: Some(3_600.0),
        ..RunOptions::default()
    };
    let mut walls = Vec::new();
    let mut ops = 0;
    for _ in 0..3 {
        let t0 = std::time::Instant::now();
        let r = run_with(&sc, 1, &opts).expect("fleet run");
        walls.push(t0.elapsed().as_secs_f64());
        ops = r.conservation.submitted;
    }
    walls.sort_by(f64::total_cmp);
    println!(
        "sim/fleet_one_hour: {ops} ops (50 clients, 1 virtual hour): median wall {:.2} s of 3 runs ({:.2?}), {:.0} ops/s",
        walls[1],
        walls,
        ops as f64 / walls[1]
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    fleet_hour();
}
