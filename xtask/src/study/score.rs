//! Scores: per scenario × strategy, each seed's run against that seed's
//! oracle, then the mean over seeds; the pass rule; the overall standing.

use super::{Plan, Results};
use serde::Serialize;

/// Pass rule: goodput at least this share of the oracle's…
pub const MIN_GOODPUT_RATIO: f64 = 0.95;
/// …service p99 at most this multiple of the oracle's…
pub const MAX_P99_RATIO: f64 = 1.3;
/// …and at most this 503 rate.
pub const MAX_503_RATE: f64 = 0.01;

/// One scenario × strategy (means over seeds).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Strategy as given.
    pub strategy: String,
    /// Goodput ÷ oracle goodput.
    pub goodput_ratio: f64,
    /// Service p99 ÷ oracle p99.
    pub p99_ratio: f64,
    /// 503 answers / requests.
    pub rate_503: f64,
    /// Jain's fairness index (fleets only).
    pub jain: Option<f64>,
    /// Goodput (ops/s).
    pub goodput: f64,
    /// Service p99 (ms).
    pub p99_ms: f64,
    /// Oracle goodput (ops/s).
    pub oracle_goodput: f64,
    /// Oracle p99 (ms).
    pub oracle_p99_ms: f64,
    /// Oracle limit per seed.
    pub oracle_limits: Vec<u32>,
    /// The pass rule holds.
    pub pass: bool,
}

/// One strategy over all scenarios.
#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    /// Strategy as given.
    pub strategy: String,
    /// Geometric mean of the goodput ratios.
    pub geomean_goodput_ratio: f64,
    /// Scenarios passed.
    pub passed: usize,
    /// Scenarios.
    pub scenarios: usize,
    /// Names of the scenarios failed.
    pub failed: Vec<String>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// `a / b`, with 0 / 0 = 1 (both nothing) and x / 0 = ∞.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// Every scenario × strategy row, scenarios then strategies in plan order.
pub fn rows(plan: &Plan, res: &Results) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, sc) in plan.scenarios.iter().enumerate() {
        let oracles = &res.oracles[i];
        for (j, (label, _)) in plan.strategies.iter().enumerate() {
            let runs = &res.runs[i][j];
            let pairs = || runs.iter().zip(oracles);
            let goodput_ratio = mean(pairs().map(|(r, o)| ratio(r.goodput, o.goodput)));
            let p99_ratio = mean(pairs().map(|(r, o)| ratio(r.p99_us as f64, o.p99_us as f64)));
            let rate_503 = mean(runs.iter().map(|r| r.rate_503));
            let jain = runs
                .iter()
                .map(|r| r.jain)
                .collect::<Option<Vec<f64>>>()
                .map(|v| mean(v.into_iter()));
            let pass = goodput_ratio >= MIN_GOODPUT_RATIO
                && p99_ratio <= MAX_P99_RATIO
                && rate_503 <= MAX_503_RATE;
            out.push(Row {
                scenario: sc.name.clone(),
                strategy: label.clone(),
                goodput_ratio,
                p99_ratio,
                rate_503,
                jain,
                goodput: mean(runs.iter().map(|r| r.goodput)),
                p99_ms: mean(runs.iter().map(|r| r.p99_us as f64 / 1e3)),
                oracle_goodput: mean(oracles.iter().map(|o| o.goodput)),
                oracle_p99_ms: mean(oracles.iter().map(|o| o.p99_us as f64 / 1e3)),
                oracle_limits: oracles.iter().map(|o| o.limit).collect(),
                pass,
            });
        }
    }
    out
}

/// Standings, best first: by geometric mean of goodput ratios, then by
/// scenarios passed, then by name (so ties have one order).
pub fn standings(plan: &Plan, rows: &[Row]) -> Vec<Standing> {
    let mut out: Vec<Standing> = plan
        .strategies
        .iter()
        .map(|(label, _)| {
            let mine: Vec<&Row> = rows.iter().filter(|r| &r.strategy == label).collect();
            let logs = mine.iter().map(|r| r.goodput_ratio.max(1e-9).ln());
            Standing {
                strategy: label.clone(),
                geomean_goodput_ratio: mean(logs).exp(),
                passed: mine.iter().filter(|r| r.pass).count(),
                scenarios: mine.len(),
                failed: mine
                    .iter()
                    .filter(|r| !r.pass)
                    .map(|r| r.scenario.clone())
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.geomean_goodput_ratio
            .total_cmp(&a.geomean_goodput_ratio)
            .then(b.passed.cmp(&a.passed))
            .then(a.strategy.cmp(&b.strategy))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(ratio(0.0, 0.0), 1.0);
        assert!(ratio(1.0, 0.0).is_infinite());
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(mean([1.0, 2.0, 3.0].into_iter()), 2.0);
    }
}
