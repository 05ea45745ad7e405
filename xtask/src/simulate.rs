//! `cargo xtask simulate`: run scenarios and print their reports.
//!
//! The strategy study (scenarios × strategies × seeds, oracle, scores) builds on
//! these same flags; for now every run uses the scenario's fixed limit.

use pool_sim::scenario::{builtin_names, Scenario};
use pool_sim::{run_with, Report, RunOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A built-in scenario name or a path to a TOML file (repeatable). Default:
    /// every built-in study scenario (calibration ones too with --calibration).
    #[arg(long = "scenario", value_name = "NAME_OR_FILE")]
    scenarios: Vec<String>,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds, from --seed on.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Print the report of the single run as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print one CSV row per run (with a header) instead of the table.
    #[arg(long)]
    csv: bool,
    /// Also write each run's report (JSON) and time series (CSV) into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Quick mode: one seed.
    #[arg(long)]
    quick: bool,
    /// Include the calibration scenarios when no --scenario is given.
    #[arg(long)]
    calibration: bool,
    /// List the built-in scenarios and exit.
    #[arg(long)]
    list: bool,
}

pub fn run(a: Args) -> Result<(), String> {
    if a.list {
        for name in builtin_names() {
            let sc = Scenario::load(name).map_err(|e| e.to_string())?;
            let tag = if sc.calibration { " [calibration]" } else { "" };
            println!("{name}{tag}: {}", sc.description);
        }
        return Ok(());
    }
    let mut scenarios = Vec::new();
    if a.scenarios.is_empty() {
        for name in builtin_names() {
            let sc = Scenario::load(name).map_err(|e| e.to_string())?;
            if a.calibration || !sc.calibration {
                scenarios.push(sc);
            }
        }
    } else {
        for s in &a.scenarios {
            scenarios.push(Scenario::load(s).map_err(|e| e.to_string())?);
        }
    }
    let seeds: Vec<u64> = (0..if a.quick { 1 } else { a.seeds.max(1) })
        .map(|i| a.seed.wrapping_add(i))
        .collect();
    if a.json {
        if scenarios.len() != 1 || seeds.len() != 1 {
            return Err("--json needs exactly one --scenario and one seed".into());
        }
        let r = pool_sim::run(&scenarios[0], seeds[0]).map_err(|e| e.to_string())?;
        println!("{}", r.to_json());
        return write_out(&a.out, &r);
    }
    if a.csv {
        println!("{}", pool_sim::report::CSV_HEADER);
    } else {
        println!(
            "{:<24} {:>4} {:>10} {:>10} {:>9} {:>9} {:>7} {:>6} {:>7} {:>8} {:>9} {:>8}",
            "scenario",
            "seed",
            "ops/s",
            "MB/s",
            "svc p50",
            "svc p99",
            "503 %",
            "err %",
            "retries",
            "timeouts",
            "virtual s",
            "wall ms"
        );
    }
    for sc in &scenarios {
        for &seed in &seeds {
            let t0 = std::time::Instant::now();
            let r = run_with(sc, seed, &RunOptions::default())
                .map_err(|e| format!("{} seed {seed}: {e}", sc.name))?;
            let wall = t0.elapsed().as_secs_f64() * 1e3;
            if a.csv {
                println!("{}", r.csv_row());
            } else {
                print_line(&r, wall);
            }
            write_out(&a.out, &r)?;
        }
    }
    Ok(())
}

fn print_line(r: &Report, wall_ms: f64) {
    let ms = |us: u64| us as f64 / 1e3;
    println!(
        "{:<24} {:>4} {:>10.1} {:>10.1} {:>9.1} {:>9.1} {:>7.2} {:>6.2} {:>7} {:>8} {:>9.2} {:>8.0}",
        r.scenario,
        r.seed,
        r.goodput.ops_per_s,
        r.goodput.bytes_per_s / 1e6,
        ms(r.latency.service.p50),
        ms(r.latency.service.p99),
        r.rate_503 * 100.0,
        r.error_rate * 100.0,
        r.engine.retried,
        r.engine.timed_out,
        r.elapsed_s,
        wall_ms
    );
}

fn write_out(dir: &Option<PathBuf>, r: &Report) -> Result<(), String> {
    let Some(dir) = dir else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stem = format!("{}-seed{}", r.scenario, r.seed);
    let write = |name: String, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(format!("{stem}.json"), r.to_json())?;
    write(format!("{stem}-series.csv"), r.series_csv())
}
