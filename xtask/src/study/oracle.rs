//! The oracle: the best a fixed limit can do on a scenario and seed.
//!
//! Grid: every power of two from 1 up to the scenario's `pool.max_limit`
//! (in `--quick` mode every other power: 1, 4, 16, 64, …), then refinement
//! rounds (one in `--quick` mode, three otherwise) that each add the midpoints
//! between the current oracle limit and its nearest tested neighbours. The
//! oracle limit is the smallest tested limit whose goodput is within 1 % of the
//! best goodput seen; its service p99 is the oracle p99.

use pool_sim::{run_fixed_limit, RunOptions, Scenario};
use serde::Serialize;

/// One tested limit.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The fixed limit of every client.
    pub limit: u32,
    /// Goodput within the window (ops/s, see [`super::window_goodput`]).
    pub goodput: f64,
    /// Service p99 (µs).
    pub p99_us: u64,
    /// 503 rate.
    pub rate_503: f64,
}

/// The oracle of one scenario and seed.
#[derive(Clone, Debug, Serialize)]
pub struct Oracle {
    /// The seed.
    pub seed: u64,
    /// Oracle limit.
    pub limit: u32,
    /// Its goodput (ops/s).
    pub goodput: f64,
    /// Its service p99 (µs).
    pub p99_us: u64,
    /// Every tested limit, ascending.
    pub points: Vec<Point>,
}

/// Goodput within this fraction of the best counts as as good.
const TOLERANCE: f64 = 0.01;

/// Sweeps `scenario` at `seed`.
pub fn sweep(scenario: &Scenario, seed: u64, quick: bool) -> Result<Oracle, String> {
    let max = scenario.pool.max_limit.max(1);
    let step = if quick { 2 } else { 1 };
    let mut grid: Vec<u32> = (0..32)
        .step_by(step)
        .map(|k| 1u64 << k)
        .take_while(|&l| l <= u64::from(max))
        .map(|l| l as u32)
        .collect();
    if grid.last() != Some(&max) && !quick {
        grid.push(max);
    }
    let opts = RunOptions::default();
    let mut points: Vec<Point> = Vec::new();
    let test = |limit: u32, points: &mut Vec<Point>| -> Result<(), String> {
        if points.iter().any(|p| p.limit == limit) {
            return Ok(());
        }
        let r = run_fixed_limit(scenario, seed, limit, &opts)
            .map_err(|e| format!("{} oracle limit {limit} seed {seed}: {e}", scenario.name))?;
        points.push(Point {
            limit,
            goodput: super::window_goodput(&r),
            p99_us: r.latency.service.p99,
            rate_503: r.rate_503,
        });
        points.sort_by_key(|p| p.limit);
        Ok(())
    };
    for &l in &grid {
        test(l, &mut points)?;
    }
    for _ in 0..if quick { 1 } else { 3 } {
        let i = pick(&points);
        let l = points[i].limit;
        if i > 0 {
            test(midpoint(points[i - 1].limit, l), &mut points)?;
        }
        let i = pick(&points);
        if i + 1 < points.len() {
            test(midpoint(points[i].limit, points[i + 1].limit), &mut points)?;
        }
    }
    let best = &points[pick(&points)];
    Ok(Oracle {
        seed,
        limit: best.limit,
        goodput: best.goodput,
        p99_us: best.p99_us,
        points: points.clone(),
    })
}

/// Index of the smallest limit within [`TOLERANCE`] of the best goodput
/// (`points` is non-empty and ascending).
fn pick(points: &[Point]) -> usize {
    let best = points.iter().map(|p| p.goodput).fold(0.0, f64::max);
    points
        .iter()
        .position(|p| p.goodput >= best * (1.0 - TOLERANCE))
        .unwrap_or(0)
}

fn midpoint(a: u32, b: u32) -> u32 {
    ((u64::from(a) + u64::from(b)) / 2) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(limit: u32, goodput: f64) -> Point {
        Point {
            limit,
            goodput,
            p99_us: 0,
            rate_503: 0.0,
        }
    }

    #[test]
    fn smallest_within_one_percent() {
        let pts = [p(1, 10.0), p(2, 99.5), p(4, 100.0), p(8, 90.0)];
        assert_eq!(pick(&pts), 1);
        assert_eq!(midpoint(4, 8), 6);
    }

    #[test]
    fn sweep_finds_a_knee() {
        let sc = Scenario::load("small-get-burst").unwrap();
        let o = sweep(&sc, 1, true).unwrap();
        // Latency-bound until the prefix's rate: the knee is well above 1.
        assert!(o.limit > 16, "{o:?}");
        assert!(o.points.windows(2).all(|w| w[0].limit < w[1].limit));
    }
}
