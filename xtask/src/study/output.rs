//! The terminal table and `summary.json` / `summary.csv`.

use super::score::{Row, Standing, MAX_503_RATE, MAX_P99_RATIO, MIN_GOODPUT_RATIO};
use super::Plan;

/// Why a row failed, in a few letters: `g` goodput, `p` p99, `t` throttling.
pub fn fail_code(r: &Row) -> String {
    let mut s = String::new();
    if r.goodput_ratio < MIN_GOODPUT_RATIO {
        s.push('g');
    }
    if r.p99_ratio > MAX_P99_RATIO {
        s.push('p');
    }
    if r.rate_503 > MAX_503_RATE {
        s.push('t');
    }
    s
}

/// One cell of the scenario × strategy matrix: `goodput ratio/p99 ratio` and
/// `ok` or the failure codes.
pub fn cell(r: &Row) -> String {
    let mark = if r.pass { "ok".into() } else { fail_code(r) };
    format!("{:.2}/{:.2} {mark}", r.goodput_ratio, r.p99_ratio)
}

/// The scenario × strategy matrix, one line per scenario in plan order: its
/// name, its oracle limits (one per seed) and one [`cell`] per strategy in
/// `standings` order (empty where a strategy has no row). The terminal table
/// and `docs/tuning-study.md` format the same lines.
pub fn matrix<'a>(
    plan: &'a Plan,
    rows: &'a [Row],
    standings: &'a [Standing],
) -> impl Iterator<Item = (&'a str, Vec<String>, Vec<String>)> + 'a {
    plan.scenarios.iter().map(move |sc| {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.scenario == sc.name).collect();
        let limits = mine
            .first()
            .map(|r| r.oracle_limits.iter().map(u32::to_string).collect())
            .unwrap_or_default();
        let cells = standings
            .iter()
            .map(|st| {
                mine.iter()
                    .find(|r| r.strategy == st.strategy)
                    .map(|r| cell(r))
                    .unwrap_or_default()
            })
            .collect();
        (sc.name.as_str(), limits, cells)
    })
}

/// Prints the ranking and the matrix.
pub fn print_table(plan: &Plan, rows: &[Row], standings: &[Standing]) {
    println!(
        "Strategy study: {} scenarios × {} strategies × {} seeds (first seed {})\n",
        plan.scenarios.len(),
        plan.strategies.len(),
        plan.seeds.len(),
        plan.seeds[0]
    );
    println!(
        "{:>4}  {:<28} {:>16} {:>7}  failed",
        "rank", "strategy", "geomean goodput", "passed"
    );
    for (i, s) in standings.iter().enumerate() {
        println!(
            "{:>4}  {:<28} {:>16.3} {:>4}/{:<2}  {}",
            i + 1,
            s.strategy,
            s.geomean_goodput_ratio,
            s.passed,
            s.scenarios,
            s.failed.join(", ")
        );
    }
    println!(
        "\nPer scenario: goodput ÷ oracle / p99 ÷ oracle p99, then `ok` or why not \
         (g: goodput < {MIN_GOODPUT_RATIO} × oracle, p: p99 > {MAX_P99_RATIO} × oracle, \
         t: 503 rate > {} %)",
        MAX_503_RATE * 100.0
    );
    let names: Vec<&str> = standings.iter().map(|s| s.strategy.as_str()).collect();
    let w = 16;
    print!("{:<24} {:>8}", "scenario", "oracle L");
    for n in &names {
        print!(" {:>w$}", truncate(n, w));
    }
    println!();
    for (name, limits, cells) in matrix(plan, rows, standings) {
        print!(
            "{:<24} {:>8}",
            truncate(name, 24),
            truncate(&limits.join(","), 8)
        );
        for c in cells {
            print!(" {c:>w$}");
        }
        println!();
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Writes `summary.json` (rows, standings, oracles' settings) and
/// `summary.csv` (one row per scenario × strategy).
pub fn write_summary(plan: &Plan, rows: &[Row], standings: &[Standing]) -> Result<(), String> {
    let json = serde_json::json!({
        "seeds": plan.seeds,
        "quick": plan.quick,
        "pass_rule": {
            "min_goodput_ratio": MIN_GOODPUT_RATIO,
            "max_p99_ratio": MAX_P99_RATIO,
            "max_503_rate": MAX_503_RATE,
        },
        "standings": standings,
        "rows": rows,
    });
    let body = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    write(plan, "summary.json", body + "\n")?;
    let mut csv = String::from(
        "scenario,strategy,goodput_ratio,p99_ratio,rate_503,jain,pass,oracle_limit,\
         goodput_ops_s,p99_ms,oracle_goodput_ops_s,oracle_p99_ms\n",
    );
    for r in rows {
        let limits: Vec<String> = r.oracle_limits.iter().map(u32::to_string).collect();
        csv.push_str(&format!(
            "{},{},{:.4},{:.4},{:.5},{},{},{},{:.2},{:.3},{:.2},{:.3}\n",
            csv_field(&r.scenario),
            csv_field(&r.strategy),
            r.goodput_ratio,
            r.p99_ratio,
            r.rate_503,
            r.jain.map(|j| format!("{j:.4}")).unwrap_or_default(),
            r.pass,
            limits.join(" "),
            r.goodput,
            r.p99_ms,
            r.oracle_goodput,
            r.oracle_p99_ms
        ));
    }
    write(plan, "summary.csv", csv)
}

/// Quotes a field with a comma or quote in it (strategy specs have commas).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write(plan: &Plan, name: &str, body: String) -> Result<(), String> {
    let p = plan.out.join(name);
    std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            csv_field("vegas(alpha=3, beta=6)"),
            "\"vegas(alpha=3, beta=6)\""
        );
        assert_eq!(csv_field("aimd"), "aimd");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
