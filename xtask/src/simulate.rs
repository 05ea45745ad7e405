//! `cargo xtask simulate`: the strategy study (scenarios × strategies ×
//! seeds against an oracle of fixed limits, see [`crate::study`]), or with
//! `--json` / `--csv` the reports of single runs.

use crate::study;
use pool_sim::pool_tuning::StrategySpec;
use pool_sim::scenario::{builtin_names, Scenario};
use pool_sim::{run_with, run_with_strategy, Report, RunOptions, ScenarioStrategy};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A built-in scenario name or a path to a TOML file (repeatable). Default:
    /// every built-in study scenario (calibration ones too with --calibration).
    #[arg(long = "scenario", value_name = "NAME_OR_FILE")]
    scenarios: Vec<String>,
    /// A strategy name or spec, e.g. `aimd` or `vegas(alpha=3)` or
    /// `flagship+aws-adaptive@partition` (repeatable). Default: every built-in
    /// strategy with its defaults (`fixed`: the scenario's own limit).
    #[arg(long = "strategy", value_name = "NAME_OR_SPEC")]
    strategies: Vec<String>,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds, from --seed on (default: 3 for the study, 1 with --json/--csv).
    #[arg(long)]
    seeds: Option<u64>,
    /// Print the report of the single run (one scenario, at most one strategy,
    /// one seed) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print one CSV row per run (with a header) instead of running the study.
    #[arg(long)]
    csv: bool,
    /// Output directory: the study's summary.json, summary.csv and SVG plots
    /// (default target/opspool-study/); with --json/--csv each run's report and
    /// time series.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Quick study: one seed and a coarse oracle sweep.
    #[arg(long)]
    quick: bool,
    /// Also regenerate docs/tuning-study.md from the study's numbers.
    #[arg(long)]
    write_docs: bool,
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
    let strategies = parse_strategies(&a.strategies)?;
    let single = a.json || a.csv;
    let n_seeds = match (a.quick, a.seeds) {
        (true, _) => 1,
        (false, Some(n)) => n.max(1),
        (false, None) if single => 1,
        (false, None) => 3,
    };
    let seeds: Vec<u64> = (0..n_seeds).map(|i| a.seed.wrapping_add(i)).collect();
    if !single {
        let strategies = if strategies.is_empty() {
            parse_strategies(&StrategySpec::NAMES.map(String::from))?
        } else {
            strategies
        };
        let out = a
            .out
            .unwrap_or_else(|| study::workspace_root().join("target").join("opspool-study"));
        return study::run(&study::Plan {
            scenarios,
            strategies,
            seeds,
            quick: a.quick,
            out,
            write_docs: a.write_docs,
        });
    }
    if a.json {
        if scenarios.len() != 1 || seeds.len() != 1 || strategies.len() > 1 {
            return Err(
                "--json needs exactly one --scenario, at most one --strategy and one seed".into(),
            );
        }
        let r = match strategies.first() {
            Some((_, st)) => run_with_strategy(&scenarios[0], seeds[0], st, &RunOptions::default()),
            None => pool_sim::run(&scenarios[0], seeds[0]),
        }
        .map_err(|e| e.to_string())?;
        println!("{}", r.to_json());
        return write_out(&a.out, &r);
    }
    println!("{}", pool_sim::report::CSV_HEADER);
    let own = [(String::from("(scenario's own)"), None)];
    let choices: Vec<(String, Option<ScenarioStrategy>)> = if strategies.is_empty() {
        own.to_vec()
    } else {
        strategies.into_iter().map(|(l, s)| (l, Some(s))).collect()
    };
    for sc in &scenarios {
        for (label, st) in &choices {
            for &seed in &seeds {
                let r = match st {
                    Some(st) => run_with_strategy(sc, seed, st, &RunOptions::default()),
                    None => run_with(sc, seed, &RunOptions::default()),
                }
                .map_err(|e| format!("{} × {label} seed {seed}: {e}", sc.name))?;
                println!("{}", r.csv_row());
                write_out(&a.out, &r)?;
            }
        }
    }
    Ok(())
}

/// Parses `--strategy` values; an unknown name lists the valid ones.
fn parse_strategies(given: &[String]) -> Result<Vec<(String, ScenarioStrategy)>, String> {
    given
        .iter()
        .map(|g| {
            g.parse::<ScenarioStrategy>()
                .map(|s| (g.clone(), s))
                .map_err(|e| format!("--strategy {g}: {e}"))
        })
        .collect()
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
