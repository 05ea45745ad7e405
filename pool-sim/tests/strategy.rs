//! The scenario's `strategy`: every `pool-tuning` spelling is accepted, it is
//! attached to each client's engine, and runs stay deterministic.

use pool_sim::{run_fixed_limit, run_with, run_with_strategy, RunOptions, Scenario};

const BASE: &str = r#"
name = "strat"
duration_s = 2
[pool]
limit = 4
[[workload]]
kind = "poisson"
rate = 400
[[workload.mix]]
class = "get"
size = "4 KiB"
"#;

fn with(strategy_line: &str) -> Scenario {
    let src = BASE.replace(
        "duration_s = 2",
        &format!("duration_s = 2\n{strategy_line}"),
    );
    Scenario::parse("strat.toml", &src).unwrap()
}

fn quick() -> RunOptions {
    RunOptions {
        series: false,
        ..RunOptions::default()
    }
}

#[test]
fn every_spelling_parses_and_runs() {
    for line in [
        "strategy = \"vegas(alpha=3)\"",
        "strategy = \"flagship + aws-adaptive@partition\"",
        "strategy = { name = \"aimd\", backoff_ratio = 0.8 }",
        "strategy = { global = \"gradient2\", rate_limiter = \"aws-adaptive\" }",
    ] {
        let sc = with(line);
        let r = run_with(&sc, 1, &quick()).unwrap();
        assert!(r.conservation.ok, "{line}");
        assert_eq!(r.strategy, sc.strategy.as_ref().unwrap().to_string());
    }
}

#[test]
fn bad_strategies_are_located_errors() {
    let e = Scenario::parse(
        "s.toml",
        &BASE.replace(
            "duration_s = 2",
            "duration_s = 2\nstrategy = \"vegas(alpah=3)\"",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("s.toml") && e.contains("alpah"), "{e}");
    let e = Scenario::parse(
        "s.toml",
        &BASE.replace("duration_s = 2", "duration_s = 2\nstrategy = \"nope\""),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("valid names"), "{e}");
}

#[test]
fn bare_fixed_is_the_pool_limit_and_changes_nothing() {
    let plain = run_with(&with(""), 3, &RunOptions::default()).unwrap();
    let fixed = run_with(&with("strategy = \"fixed\""), 3, &RunOptions::default()).unwrap();
    assert_eq!(plain.to_json(), fixed.to_json());
    // With its own limit, `fixed` holds that limit instead.
    let five = run_with(
        &with("strategy = \"fixed(limit=5)\""),
        3,
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(five.series.limit.iter().max(), Some(&5));
}

#[test]
fn a_strategy_moves_the_limit_and_is_deterministic() {
    let sc = with("");
    let st = "aimd".parse().unwrap();
    let a = run_with_strategy(&sc, 5, &st, &RunOptions::default()).unwrap();
    let b = run_with_strategy(&sc, 5, &st, &RunOptions::default()).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.strategy, "aimd");
    // AIMD starts at 20, not the pool's 4.
    assert!(
        a.series.limit.iter().any(|&l| l >= 20),
        "{:?}",
        a.series.limit
    );
}

#[test]
fn fixed_limit_override_ignores_the_scenario_strategy() {
    let sc = with("strategy = \"aimd\"");
    let r = run_fixed_limit(&sc, 2, 7, &RunOptions::default()).unwrap();
    assert_eq!(r.strategy, "fixed");
    assert!(
        r.series.limit.iter().all(|&l| l == 7),
        "{:?}",
        r.series.limit
    );
}

#[test]
fn csv_quotes_a_spec_with_commas() {
    let sc = with("strategy = \"vegas(alpha=3, beta=6)\"");
    let r = run_with(&sc, 1, &quick()).unwrap();
    assert!(
        r.csv_row().contains(",\"vegas(alpha=3, beta=6)\","),
        "{}",
        r.csv_row()
    );
}
