//! What the run records as it goes: histograms, counters, the time series.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest latency recorded (µs): one hour, like the engine's histograms.
const MAX_US: u64 = 3_600_000_000;

pub(crate) fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

#[inline]
pub(crate) fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record((ns / 1_000).clamp(1, MAX_US));
}

/// Per-client tallies of resolutions (every op, children included).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub submitted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub rejected: u64,
    /// Top-level (user-visible) ops that succeeded, and their bytes.
    pub top_succeeded: u64,
    pub top_bytes: u64,
}

/// Counters of what the modeled S3 did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCounts {
    /// Requests that reached the server (spent a token or were throttled).
    pub requests: u64,
    /// 503 SlowDown answers.
    pub slow_down: u64,
    /// 500 InternalError answers.
    pub server_errors: u64,
    /// Connection resets (sent or not).
    pub resets: u64,
    /// Requests that never answered.
    pub stalls: u64,
    /// Requests cancelled by the client while in flight (tokens not refunded).
    pub cancelled_in_flight: u64,
    /// Requests that waited for an HTTP connection.
    pub waited_for_connection: u64,
    /// Partition splits (scale-up) that happened.
    pub splits: u64,
}

/// Everything recorded during a run, turned into a report at the end.
pub(crate) struct Stats {
    pub service: Histogram<u64>,
    pub end_to_end: Histogram<u64>,
    pub queue_wait: Histogram<u64>,
    pub by_priority: BTreeMap<i32, Histogram<u64>>,
    /// Service latency of every op (parts too) that ran to a verdict, per class.
    pub by_class: BTreeMap<u16, Histogram<u64>>,
    pub server: ServerCounts,
    /// Attempts that ended in an answer, error or cancel (one per finished request
    /// of an attempt).
    pub attempts_done: u64,
    pub bytes_moved: f64,
    pub series: Series,
    /// Cumulative (succeeded, bytes, throttled) at the last sample.
    pub series_prev: (u64, u64, u64),
    pub last_resolution: u64,
    /// Last resolution of an op from a batch or closed-loop workload (ns).
    pub last_batch_resolution: u64,
    pub peak_bytes_in_flight: u64,
    /// The one priority of every op, when there is only one: then the
    /// per-priority histogram equals `end_to_end` and is copied at the end
    /// instead of recorded twice per op.
    pub single_priority: Option<i32>,
    /// Likewise the one class, when every op is top-level and of one class:
    /// the per-class histogram then equals `service`.
    pub single_class: Option<u16>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            service: hist(),
            end_to_end: hist(),
            queue_wait: hist(),
            by_priority: BTreeMap::new(),
            by_class: BTreeMap::new(),
            server: ServerCounts::default(),
            attempts_done: 0,
            bytes_moved: 0.0,
            series: Series::default(),
            series_prev: (0, 0, 0),
            last_resolution: 0,
            last_batch_resolution: 0,
            peak_bytes_in_flight: 0,
            single_priority: None,
            single_class: None,
        }
    }

    /// Fills in the histograms that were not recorded because they equal others.
    pub fn finish(&mut self) {
        if let Some(p) = self.single_priority {
            if !self.end_to_end.is_empty() {
                self.by_priority.insert(p, self.end_to_end.clone());
            }
        }
        if let Some(c) = self.single_class {
            if !self.service.is_empty() {
                self.by_class.insert(c, self.service.clone());
            }
        }
    }
}

/// Time series sampled at a fixed virtual interval (columns of equal length).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Sampling interval (ms).
    pub interval_ms: u64,
    /// Sample times (ms).
    pub t_ms: Vec<u64>,
    /// Sum of the clients' concurrency limits.
    pub limit: Vec<u64>,
    /// Sum of the clients' slots in flight.
    pub in_flight: Vec<u64>,
    /// Sum of the clients' queued ops.
    pub queued: Vec<u64>,
    /// Bytes of requests in flight (client memory).
    pub bytes_in_flight: Vec<u64>,
    /// Top-level ops that succeeded in the interval ending at `t_ms`.
    pub succeeded: Vec<u64>,
    /// Their bytes.
    pub bytes: Vec<u64>,
    /// 503 answers in the interval.
    pub throttled: Vec<u64>,
}
