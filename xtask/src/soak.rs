//! `cargo xtask soak`: many ops through the simulator with random faults; exits
//! non-zero unless every op is accounted for exactly once.

use pool_sim::scenario::Scenario;
use pool_sim::{run_with, RunOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Top-level ops to push through (multipart parts come on top).
    #[arg(long, default_value_t = 10_000_000)]
    ops: u64,
    /// Seed of the first round (each round uses the next).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Check engine invariants after every engine call (slower).
    #[arg(long)]
    check: bool,
}

/// Top-level ops per round: bounded so memory stays flat however long the soak.
const ROUND: u64 = 200_000;
const CLIENTS: u64 = 4;

/// One round's scenario: every fault, cancels, rejections, hedges, uploads.
fn round_scenario(ops: u64) -> Result<Scenario, String> {
    // Per client: a third in a batch at t = 0 (fills the bounded queue, so some
    // are rejected) and the rest in a closed loop with caller cancels.
    let per_client = ops / CLIENTS;
    let batch = (per_client / 3).max(1);
    let closed = (per_client - batch).max(1);
    let src = format!(
        r#"
name = "soak"
duration_s = 5
drain_s = 3600
clients = {CLIENTS}
sample_interval_ms = 60000

[pool]
limit = 64
timeout_ms = 800
max_queued = 10000

[pool.hedge]
min_samples = 200

[s3]
max_connections = 48
read_rate = 3000
write_rate = 2000

[s3.faults]
server_error_prob = 0.02
reset_prob = 0.01
stall_prob = 0.002

[[s3.brownout]]
start_s = 2
end_s = 4
factor = 4

[[s3.capacity_step]]
at_s = 3
factor = 0.3
prefix = "hot"

[[workload]]
kind = "batch"
ops = {batch}

[[workload.mix]]
class = "get"
size = "4 KiB"
prefix = "hot/"

[[workload]]
kind = "closed"
users = 64
ops = {closed}
cancel_prob = 0.02
cancel_after_ms = 30

[[workload.mix]]
class = "get"
weight = 8
size = "4 KiB"
size_max = "1 MiB"
prefixes = 4
priority = 1

[[workload.mix]]
class = "put"
weight = 2
size = "64 KiB"
priority = 5

[[workload.mix]]
class = "head"

[[workload.mix]]
class = "delete"
idempotent = false

[[workload.mix]]
class = "list"
weight = 0.5

[[workload.mix]]
class = "copy"
weight = 0.5
size = "1 MiB"

[[workload.mix]]
class = "put"
weight = 0.2
size = "3 MiB"
part_size = "1 MiB"
"#
    );
    Scenario::parse("soak", &src).map_err(|e| e.to_string())
}

pub fn run(a: Args) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    let mut left = a.ops;
    let mut round = 0u64;
    let mut total = pool_sim::report::Conservation::default();
    let (mut attempts, mut s503, mut retries, mut timeouts, mut hedges) = (0, 0, 0, 0, 0);
    let opts = RunOptions {
        check_invariants: a.check,
        series: false,
        ..RunOptions::default()
    };
    while left > 0 {
        let n = left.clamp(CLIENTS, ROUND);
        let sc = round_scenario(n)?;
        let seed = a.seed.wrapping_add(round);
        let r =
            run_with(&sc, seed, &opts).map_err(|e| format!("round {round} (seed {seed}): {e}"))?;
        let c = r.conservation;
        if !c.ok || c.submitted != c.succeeded + c.failed + c.cancelled + c.rejected {
            return Err(format!(
                "round {round} (seed {seed}): ops lost or double-counted: {c:?}"
            ));
        }
        total.submitted += c.submitted;
        total.succeeded += c.succeeded;
        total.failed += c.failed;
        total.cancelled += c.cancelled;
        total.rejected += c.rejected;
        attempts += r.engine.started;
        s503 += r.server.slow_down;
        retries += r.engine.retried;
        timeouts += r.engine.timed_out;
        hedges += r.engine.hedged;
        left -= n.min(left);
        round += 1;
    }
    let t = &total;
    println!(
        "soak: {} rounds, {} ops submitted (parts included), {} succeeded, {} failed, {} cancelled, {} rejected",
        round, t.submitted, t.succeeded, t.failed, t.cancelled, t.rejected
    );
    println!(
        "      {attempts} attempts, {s503} x 503, {retries} retries, {timeouts} timeouts, {hedges} hedges; {:.1} s wall",
        t0.elapsed().as_secs_f64()
    );
    if t.submitted != t.succeeded + t.failed + t.cancelled + t.rejected {
        return Err("ops lost or double-counted".into());
    }
    println!("soak: every op accounted for exactly once");
    Ok(())
}
