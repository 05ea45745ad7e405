//! The report of one run: serde (JSON) and CSV. Every field is computed from
//! virtual time and seeded draws only, so one seed gives byte-identical output.

use crate::scenario::Scenario;
use crate::sim::{Series, ServerCounts, SimError};
use pool_core::metrics::{Counters, HistogramSnapshot};
use serde::{Deserialize, Serialize};

/// How every op ended (all clients; multipart parts included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conservation {
    /// Ops submitted (accepted or rejected at submit).
    pub submitted: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed for good.
    pub failed: u64,
    /// Cancelled (by the caller, or aborted at the end of the drain).
    pub cancelled: u64,
    /// Rejected (queue full).
    pub rejected: u64,
    /// `submitted == succeeded + failed + cancelled + rejected`, and the engines'
    /// own counters agree with the driver's.
    pub ok: bool,
}

/// Ops and bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Per second.
    pub ops_per_s: f64,
    /// Bytes per second.
    pub bytes_per_s: f64,
}

/// Latency summary and histogram (µs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// First attempt start → resolution of top-level ops that succeeded or failed.
    pub service: HistogramSnapshot,
    /// Submit → resolution of the same ops.
    pub end_to_end: HistogramSnapshot,
    /// Queue wait before each non-hedge attempt start (all ops).
    pub queue_wait: HistogramSnapshot,
}

/// End-to-end latency of one priority level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriorityLatency {
    /// The priority.
    pub priority: i32,
    /// Ops recorded.
    pub count: u64,
    /// Median (µs).
    pub p50_us: u64,
    /// 99th percentile (µs).
    pub p99_us: u64,
    /// 99.9th percentile (µs).
    pub p999_us: u64,
}

/// Service latency (first start → resolution) of one class, parts included.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassLatency {
    /// Class name (`get`, `put`, …, `multipart_upload` for upload parents).
    pub class: String,
    /// Ops recorded.
    pub count: u64,
    /// Median (µs).
    pub p50_us: u64,
    /// 90th percentile (µs).
    pub p90_us: u64,
    /// 95th percentile (µs).
    pub p95_us: u64,
    /// 99th percentile (µs).
    pub p99_us: u64,
    /// 99.9th percentile (µs).
    pub p999_us: u64,
}

/// Per-client fairness (fleets).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// Jain's index of per-client goodput (1 = perfectly fair, 1/n = one client
    /// gets everything).
    pub jain: f64,
    /// Lowest per-client goodput (ops/s).
    pub min_ops_per_s: f64,
    /// Highest per-client goodput (ops/s).
    pub max_ops_per_s: f64,
}

/// The report of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Whether the scenario is a calibration experiment.
    pub calibration: bool,
    /// Strategy, compact form (`"fixed"`: the pool's configured limit).
    pub strategy: String,
    /// Clients.
    pub clients: u32,
    /// Configured global limit of each client.
    pub limit: u32,
    /// The scenario's virtual duration (s).
    pub duration_s: f64,
    /// Virtual time at which the last op resolved (s): the run's makespan.
    pub elapsed_s: f64,
    /// The window rates are measured over (s): the arrival window of open-loop
    /// workloads, or the makespan of batches and closed loops, whichever is later.
    pub window_s: f64,
    /// Successful top-level ops per second and their bytes (over `window_s`).
    pub goodput: Rate,
    /// Finished attempts per second and bytes moved on the NICs, wasted ones included.
    pub throughput: Rate,
    /// Latencies.
    pub latency: Latencies,
    /// End-to-end latency per priority.
    pub by_priority: Vec<PriorityLatency>,
    /// Service latency per class.
    pub by_class: Vec<ClassLatency>,
    /// 503 answers / requests that reached the server.
    pub rate_503: f64,
    /// Failed ops / (succeeded + failed ops).
    pub error_rate: f64,
    /// The engines' counters, summed over clients.
    pub engine: Counters,
    /// What the modeled S3 did.
    pub server: ServerCounts,
    /// Peak bytes of requests in flight (client memory), over all clients.
    pub peak_bytes_in_flight: u64,
    /// Fairness across clients; `None` for a single client.
    pub fairness: Option<Fairness>,
    /// The conservation check.
    pub conservation: Conservation,
    /// Limit, in-flight and throughput over time.
    pub series: Series,
}

fn add(a: &mut Counters, b: &Counters) {
    a.submitted += b.submitted;
    a.started += b.started;
    a.succeeded += b.succeeded;
    a.failed += b.failed;
    a.cancelled += b.cancelled;
    a.rejected += b.rejected;
    a.retried += b.retried;
    a.timed_out += b.timed_out;
    a.throttled += b.throttled;
    a.hedged += b.hedged;
    a.attempt_failures += b.attempt_failures;
    a.observer_panics += b.observer_panics;
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Jain's fairness index of `xs` (1 when all are equal; 1 for an empty or all-zero set).
pub fn jain(xs: &[f64]) -> f64 {
    let s: f64 = xs.iter().sum();
    let s2: f64 = xs.iter().map(|x| x * x).sum();
    if s2 == 0.0 {
        1.0
    } else {
        s * s / (xs.len() as f64 * s2)
    }
}

pub(crate) fn build(
    sc: &Scenario,
    seed: u64,
    sim: &mut crate::sim::Sim,
) -> Result<Report, SimError> {
    let mut engine = Counters::default();
    let mut cons = Conservation::default();
    let mut top_ok = 0u64;
    let mut top_bytes = 0u64;
    let mut per_client = Vec::with_capacity(sim.clients.len());
    let elapsed = sim.stats.last_resolution.max(1) as f64 / 1e9;
    let window = sim.measure_window() as f64 / 1e9;
    for (i, cl) in sim.clients.iter().enumerate() {
        let t = cl.tally;
        let k = cl.engine.snapshot().counters;
        let resolved = t.succeeded + t.failed + t.cancelled + t.rejected;
        if t.submitted != resolved {
            return Err(SimError::Conservation(format!(
                "client {i}: submitted {} != succeeded {} + failed {} + cancelled {} + rejected {}",
                t.submitted, t.succeeded, t.failed, t.cancelled, t.rejected
            )));
        }
        let engine_view = (k.submitted, k.succeeded, k.failed, k.cancelled, k.rejected);
        let driver_view = (t.submitted, t.succeeded, t.failed, t.cancelled, t.rejected);
        if engine_view != driver_view {
            return Err(SimError::Conservation(format!(
                "client {i}: engine counted (submitted, succeeded, failed, cancelled, rejected) = {engine_view:?}, the driver {driver_view:?}"
            )));
        }
        add(&mut engine, &k);
        cons.submitted += t.submitted;
        cons.succeeded += t.succeeded;
        cons.failed += t.failed;
        cons.cancelled += t.cancelled;
        cons.rejected += t.rejected;
        top_ok += t.top_succeeded;
        top_bytes += t.top_bytes;
        per_client.push(t.top_succeeded as f64 / window);
    }
    cons.ok = true;
    let wasted: f64 = sim
        .clients
        .iter()
        .map(|c| c.rx.wasted_bytes + c.tx.wasted_bytes)
        .sum();
    let st = &sim.stats;
    let fairness = (sim.clients.len() > 1).then(|| Fairness {
        jain: jain(&per_client),
        min_ops_per_s: per_client.iter().copied().fold(f64::INFINITY, f64::min),
        max_ops_per_s: per_client.iter().copied().fold(0.0, f64::max),
    });
    let by_priority = st
        .by_priority
        .iter()
        .map(|(&p, h)| PriorityLatency {
            priority: p,
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
        })
        .collect();
    let by_class = st
        .by_class
        .iter()
        .map(|(&c, h)| ClassLatency {
            class: if c == crate::sim::MULTIPART_UPLOAD.0 {
                "multipart_upload".into()
            } else {
                pool_core::OpClass(c).to_string()
            },
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
        })
        .collect();
    Ok(Report {
        scenario: sc.name.clone(),
        seed,
        calibration: sc.calibration,
        strategy: sc
            .strategy
            .as_ref()
            .map_or_else(|| "fixed".into(), |s| s.to_string()),
        clients: sc.clients,
        limit: sc.pool.limit,
        duration_s: sc.duration_s,
        elapsed_s: elapsed,
        window_s: window,
        goodput: Rate {
            ops_per_s: top_ok as f64 / window,
            bytes_per_s: top_bytes as f64 / window,
        },
        throughput: Rate {
            ops_per_s: st.attempts_done as f64 / window,
            bytes_per_s: (st.bytes_moved + wasted) / window,
        },
        latency: Latencies {
            service: HistogramSnapshot::from_histogram(&st.service),
            end_to_end: HistogramSnapshot::from_histogram(&st.end_to_end),
            queue_wait: HistogramSnapshot::from_histogram(&st.queue_wait),
        },
        by_priority,
        by_class,
        rate_503: ratio(st.server.slow_down as f64, st.server.requests as f64),
        error_rate: ratio(cons.failed as f64, (cons.succeeded + cons.failed) as f64),
        engine,
        server: st.server,
        peak_bytes_in_flight: st.peak_bytes_in_flight,
        fairness,
        conservation: cons,
        series: st.series.clone(),
    })
}

/// Column names of [`Report::csv_row`].
pub const CSV_HEADER: &str = "scenario,seed,strategy,clients,limit,duration_s,elapsed_s,goodput_ops_s,goodput_bytes_s,throughput_ops_s,throughput_bytes_s,service_p50_us,service_p90_us,service_p99_us,service_p999_us,e2e_p50_us,e2e_p90_us,e2e_p99_us,e2e_p999_us,queue_p50_us,queue_p99_us,rate_503,error_rate,retries,timeouts,hedges,submitted,succeeded,failed,cancelled,rejected,peak_bytes_in_flight,jain";

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One CSV row of the scalar results, matching [`CSV_HEADER`].
    pub fn csv_row(&self) -> String {
        let l = &self.latency;
        let c = &self.conservation;
        let name = self.scenario.replace([',', '"', '\n'], "_");
        // Strategy specs have commas (`vegas(alpha=3, beta=6)`): quote them.
        let strategy = if self.strategy.contains([',', '"']) {
            format!("\"{}\"", self.strategy.replace('"', "\"\""))
        } else {
            self.strategy.clone()
        };
        format!(
            "{name},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.seed,
            strategy,
            self.clients,
            self.limit,
            self.duration_s,
            self.elapsed_s,
            self.goodput.ops_per_s,
            self.goodput.bytes_per_s,
            self.throughput.ops_per_s,
            self.throughput.bytes_per_s,
            l.service.p50,
            l.service.p90,
            l.service.p99,
            l.service.p999,
            l.end_to_end.p50,
            l.end_to_end.p90,
            l.end_to_end.p99,
            l.end_to_end.p999,
            l.queue_wait.p50,
            l.queue_wait.p99,
            self.rate_503,
            self.error_rate,
            self.engine.retried,
            self.engine.timed_out,
            self.engine.hedged,
            c.submitted,
            c.succeeded,
            c.failed,
            c.cancelled,
            c.rejected,
            self.peak_bytes_in_flight,
            self.fairness.as_ref().map_or(String::new(), |f| f.jain.to_string()),
        )
    }

    /// Header and row: the scalar results as a two-line CSV.
    pub fn to_csv(&self) -> String {
        format!("{CSV_HEADER}\n{}\n", self.csv_row())
    }

    /// The time series as CSV, one row per sample.
    pub fn series_csv(&self) -> String {
        let s = &self.series;
        let mut out =
            String::from("t_ms,limit,in_flight,queued,bytes_in_flight,succeeded,bytes,throttled\n");
        for i in 0..s.t_ms.len() {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                s.t_ms[i],
                s.limit[i],
                s.in_flight[i],
                s.queued[i],
                s.bytes_in_flight[i],
                s.succeeded[i],
                s.bytes[i],
                s.throttled[i]
            ));
        }
        out
    }

    /// A stable 64-bit hash (FNV-1a) of the JSON report, for golden files.
    pub fn digest(&self) -> u64 {
        self.to_json()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_bounds() {
        assert_eq!(jain(&[1.0, 1.0, 1.0]), 1.0);
        assert!((jain(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
        assert_eq!(jain(&[]), 1.0);
    }
}
