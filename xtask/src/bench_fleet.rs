//! `cargo xtask bench-fleet`: wall time of the built-in fleet scenario stretched
//! to one virtual hour (50 clients, 5,500 GET/s in total), median of 3 runs.
//!
//! A plain timing, not a criterion sample: one run is tens of millions of engine
//! calls, so run-to-run noise is small next to the target (≤ 15 s on the 2-core
//! development machine). `cargo xtask` builds the dev profile (debug assertions,
//! overflow checks), so unless `--here` is given the command re-runs itself as
//! `cargo run --profile fleet`: a release build with fat LTO and one codegen
//! unit (root `Cargo.toml`), so the engine's entry points inline into
//! pool-sim's event loop as they would in any application built that way. The
//! criterion bench (`cargo bench -p pool-sim --bench sim`) ends with the same
//! timing in the plain `bench` profile, for comparison.

use pool_sim::scenario::Scenario;
use pool_sim::{run_with, RunOptions};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Scenario to time (a built-in name or a TOML file).
    #[arg(
        long,
        default_value = "fleet-50-one-prefix",
        value_name = "NAME_OR_FILE"
    )]
    scenario: String,
    /// Virtual duration (s) the scenario is stretched to.
    #[arg(long, default_value_t = 3_600.0)]
    duration: f64,
    /// Runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seed of every run (the runs are identical, only the wall time varies).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Time in this process even if it is a debug build (no optimised re-run).
    #[arg(long)]
    here: bool,
}

pub fn run(a: Args) -> Result<(), String> {
    if cfg!(debug_assertions) && !a.here {
        return in_fleet_profile(&a);
    }
    let sc = Scenario::load(&a.scenario).map_err(|e| e.to_string())?;
    let opts = RunOptions {
        duration_s: Some(a.duration),
        ..RunOptions::default()
    };
    let mut walls = Vec::new();
    for i in 0..a.runs.max(1) {
        let t0 = Instant::now();
        let r = run_with(&sc, a.seed, &opts).map_err(|e| format!("{}: {e}", sc.name))?;
        let wall = t0.elapsed().as_secs_f64();
        let c = r.conservation;
        println!(
            "run {}: {:.2} s wall, {} ops ({:.0} ops/s of wall), {} clients, {} virtual s, goodput {:.1} ops/s, 503 {:.2} %",
            i + 1,
            wall,
            c.submitted,
            c.submitted as f64 / wall,
            sc.clients,
            a.duration,
            r.goodput.ops_per_s,
            r.rate_503 * 100.0
        );
        walls.push(wall);
    }
    walls.sort_by(f64::total_cmp);
    println!(
        "bench-fleet {}: median wall {:.2} s of {} runs (min {:.2} s, max {:.2} s)",
        sc.name,
        walls[walls.len() / 2],
        walls.len(),
        walls[0],
        walls[walls.len() - 1]
    );
    Ok(())
}

/// Runs `bench-fleet --here` with the same arguments from a `fleet`-profile build.
fn in_fleet_profile(a: &Args) -> Result<(), String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("Cargo.toml"))
        .ok_or("xtask has no parent directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench-fleet: timing an optimised build (cargo run --profile fleet; --here to skip)");
    let status = Command::new(cargo)
        .arg("run")
        .args(["--profile", "fleet"])
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", "xtask", "--", "bench-fleet", "--here"])
        .args(["--scenario", &a.scenario])
        .args(["--duration", &a.duration.to_string()])
        .args(["--runs", &a.runs.to_string()])
        .args(["--seed", &a.seed.to_string()])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the optimised run failed ({status})"))
    }
}
