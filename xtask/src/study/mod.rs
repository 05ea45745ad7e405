//! The strategy study: scenarios × strategies × seeds, an oracle sweep of
//! fixed limits per scenario and seed, scores, and the outputs (terminal
//! table, `summary.json`, `summary.csv`, SVG plots, optionally
//! `docs/tuning-study.md`).
//!
//! Every run is a pure function of (scenario, strategy, seed), so the runs go
//! to worker threads in any order and the results are put back in task order
//! before anything is scored: the outputs do not depend on the core count.

mod docs;
mod oracle;
mod output;
mod plot;
mod score;

pub use docs::workspace_root;
use oracle::Oracle;

use indicatif::{ProgressBar, ProgressStyle};
use pool_sim::{run_with_strategy, Report, RunOptions, Scenario, ScenarioStrategy};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What to study.
pub struct Plan {
    /// Scenarios, in the order given.
    pub scenarios: Vec<Scenario>,
    /// `(label, strategy)` in the order given; the label is what the user wrote.
    pub strategies: Vec<(String, ScenarioStrategy)>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Coarse oracle sweep.
    pub quick: bool,
    /// Output directory.
    pub out: PathBuf,
    /// Also regenerate `docs/tuning-study.md`.
    pub write_docs: bool,
}

/// What one strategy run keeps: the scores' inputs, and for the first seed
/// what the plots need.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Successful top-level ops per second of the measurement window, counting
    /// only those that finished inside it (see [`window_goodput`]).
    pub goodput: f64,
    /// Service-latency p99 (µs).
    pub p99_us: u64,
    /// 503 answers / requests.
    pub rate_503: f64,
    /// Jain's index over clients (fleets).
    pub jain: Option<f64>,
    /// Time series and latency CDF (first seed only).
    pub curves: Option<Curves>,
}

/// Plot data of one run.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    /// Sample times (s).
    pub t_s: Vec<f64>,
    /// Sum of the clients' limits.
    pub limit: Vec<f64>,
    /// Successful ops per second in each interval.
    pub throughput: Vec<f64>,
    /// `(latency ms, cumulative fraction)` of service latency.
    pub cdf: Vec<(f64, f64)>,
}

impl RunSummary {
    pub(crate) fn of(r: &Report, curves: bool) -> RunSummary {
        RunSummary {
            goodput: window_goodput(r),
            p99_us: r.latency.service.p99,
            rate_503: r.rate_503,
            jain: r.fairness.as_ref().map(|f| f.jain),
            curves: curves.then(|| Curves::of(r)),
        }
    }
}

/// Successful top-level ops that finished within the report's measurement
/// window (the arrival window of open-loop workloads, the makespan of
/// batches), per second of that window.
///
/// The report's own goodput also counts ops of an open-loop workload that
/// finish after arrivals stop, during the drain: a limit of 1 that queues
/// every arrival and serves them all minutes later would score the offered
/// rate. Work finished late was not done at the offered rate, so the study
/// counts completions inside the window only (to the series' resolution; the
/// same cut applies to the oracle's runs). Needs the time series.
pub fn window_goodput(r: &Report) -> f64 {
    let s = &r.series;
    let end_ms = (r.window_s * 1e3).round() as u64;
    let ok: u64 = s
        .t_ms
        .iter()
        .zip(&s.succeeded)
        .take_while(|(&t, _)| t <= end_ms)
        .map(|(_, &n)| n)
        .sum();
    if s.t_ms.is_empty() || r.window_s <= 0.0 {
        return r.goodput.ops_per_s;
    }
    // Ops finished after the last sample inside the window, but still inside
    // it (a batch's makespan ends between samples).
    let last = s.t_ms.iter().take_while(|&&t| t <= end_ms).count();
    let tail = if last == s.t_ms.len() {
        let total = (r.goodput.ops_per_s * r.window_s).round() as u64;
        total.saturating_sub(ok)
    } else {
        0
    };
    (ok + tail) as f64 / r.window_s
}

impl Curves {
    fn of(r: &Report) -> Curves {
        let s = &r.series;
        let per_s = 1e3 / s.interval_ms.max(1) as f64;
        let h = &r.latency.service;
        let mut acc = 0u64;
        let cdf = h
            .buckets
            .iter()
            .map(|&(v, n)| {
                acc += n;
                (v as f64 / 1e3, acc as f64 / h.count.max(1) as f64)
            })
            .collect();
        Curves {
            t_s: s.t_ms.iter().map(|&t| t as f64 / 1e3).collect(),
            limit: s.limit.iter().map(|&l| l as f64).collect(),
            throughput: s.succeeded.iter().map(|&n| n as f64 * per_s).collect(),
            cdf,
        }
    }
}

enum Task {
    Oracle { sc: usize, seed: u64 },
    Run { sc: usize, st: usize, seed: u64 },
}

enum Done {
    Oracle(Oracle),
    Run(RunSummary),
}

/// All results, indexed `[scenario][seed index]` and
/// `[scenario][strategy][seed index]`.
pub struct Results {
    /// Oracle per scenario and seed.
    pub oracles: Vec<Vec<Oracle>>,
    /// Runs per scenario, strategy and seed.
    pub runs: Vec<Vec<Vec<RunSummary>>>,
}

/// Runs the study and writes its outputs.
pub fn run(plan: &Plan) -> Result<(), String> {
    let results = execute(plan)?;
    let rows = score::rows(plan, &results);
    let standings = score::standings(plan, &rows);
    output::print_table(plan, &rows, &standings);
    std::fs::create_dir_all(&plan.out).map_err(|e| format!("{}: {e}", plan.out.display()))?;
    output::write_summary(plan, &rows, &standings)?;
    let plots = plot::write_all(plan, &results)?;
    let mut wrote = vec![
        plan.out.join("summary.json").display().to_string(),
        plan.out.join("summary.csv").display().to_string(),
        format!("{plots} SVG plots in {}", plan.out.display()),
    ];
    if plan.write_docs {
        let p = docs::write(plan, &rows, &standings)?;
        wrote.push(p.display().to_string());
    }
    println!("\nWrote:");
    for w in wrote {
        println!("  {w}");
    }
    Ok(())
}

/// Runs every task on all cores and puts the results back in task order.
fn execute(plan: &Plan) -> Result<Results, String> {
    let mut tasks = Vec::new();
    // The oracle sweeps are the long tasks: start them first so the workers
    // finish together.
    for sc in 0..plan.scenarios.len() {
        for &seed in &plan.seeds {
            tasks.push(Task::Oracle { sc, seed });
        }
    }
    for sc in 0..plan.scenarios.len() {
        for st in 0..plan.strategies.len() {
            for &seed in &plan.seeds {
                tasks.push(Task::Run { sc, st, seed });
            }
        }
    }
    let bar = ProgressBar::new(tasks.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<Done, String>>>> =
        Mutex::new((0..tasks.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers.min(tasks.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = tasks.get(i) else { break };
                let r = run_task(plan, task);
                if let Ok(mut v) = slots.lock() {
                    v[i] = Some(r);
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let slots = slots.into_inner().map_err(|_| "a worker thread panicked")?;
    let n_seeds = plan.seeds.len();
    let mut oracles: Vec<Vec<Oracle>> = (0..plan.scenarios.len()).map(|_| Vec::new()).collect();
    let mut runs: Vec<Vec<Vec<RunSummary>>> = (0..plan.scenarios.len())
        .map(|_| (0..plan.strategies.len()).map(|_| Vec::new()).collect())
        .collect();
    for (task, slot) in tasks.iter().zip(slots) {
        let done = slot.ok_or("a task did not run (worker panicked)")??;
        match (task, done) {
            (Task::Oracle { sc, .. }, Done::Oracle(o)) => oracles[*sc].push(o),
            (Task::Run { sc, st, .. }, Done::Run(r)) => runs[*sc][*st].push(r),
            _ => return Err("internal: task and result kinds differ".into()),
        }
    }
    debug_assert!(oracles.iter().all(|o| o.len() == n_seeds));
    Ok(Results { oracles, runs })
}

fn run_task(plan: &Plan, task: &Task) -> Result<Done, String> {
    match *task {
        Task::Oracle { sc, seed } => {
            oracle::sweep(&plan.scenarios[sc], seed, plan.quick).map(Done::Oracle)
        }
        Task::Run { sc, st, seed } => {
            let scenario = &plan.scenarios[sc];
            let (label, strategy) = &plan.strategies[st];
            let first = seed == plan.seeds[0];
            let opts = RunOptions::default();
            run_with_strategy(scenario, seed, strategy, &opts)
                .map(|r| Done::Run(RunSummary::of(&r, first)))
                .map_err(|e| format!("{} × {label} seed {seed}: {e}", scenario.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(out: PathBuf) -> Plan {
        let sc = Scenario::parse(
            "tiny",
            "name = \"tiny\"\nduration_s = 1\n[pool]\nlimit = 4\n[[workload]]\n\
             kind = \"poisson\"\nrate = 300\n[[workload.mix]]\nclass = \"get\"\nsize = \"4 KiB\"\n",
        )
        .unwrap();
        Plan {
            scenarios: vec![sc],
            strategies: ["fixed", "aimd"]
                .map(|s| (s.to_string(), s.parse().unwrap()))
                .to_vec(),
            seeds: vec![1, 2],
            quick: true,
            out,
            write_docs: false,
        }
    }

    #[test]
    fn a_study_writes_its_outputs_and_repeats_exactly() {
        let out = std::env::temp_dir().join(format!("opspool-study-test-{}", std::process::id()));
        let p = plan(out.clone());
        run(&p).unwrap();
        let json = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        for what in ["limit", "throughput", "latency-cdf"] {
            let svg = std::fs::read_to_string(out.join(format!("tiny-{what}.svg"))).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("aimd"), "{what}");
        }
        run(&p).unwrap();
        assert_eq!(
            json,
            std::fs::read_to_string(out.join("summary.json")).unwrap()
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}
