//! Counters, latency histograms and a sliding throughput window kept by the engine.
//!
//! Everything here is driven by the engine's calls: time only enters as `now`
//! arguments, per-class state lives in a `Vec` indexed by class number (so snapshots
//! come out in a fixed order), and memory is fixed once a class has been seen
//! (histograms have a configured range, the window is a ring). The hot-path methods
//! (`record_started`, `record_attempt_end`, `record_resolved`) do a few additions and
//! one or two histogram increments; quantiles are computed only on demand.

use crate::class::OpClass;
use crate::outcome::{Resolution, SampleOutcome};
use crate::time::Instant;
use core::fmt;
use core::time::Duration;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Upper bound on `window_buckets`: the ring is allocated up front, so an absurd
/// bucket count from a config file must not turn into an absurd allocation.
pub const MAX_WINDOW_BUCKETS: u32 = 10_000;

/// Configuration of [`Metrics`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Length of the sliding window for throughput and error rate, in ms. Default 10 000.
    pub window_ms: u64,
    /// Number of buckets in the window ring (1..=`window_ms`, at most
    /// [`MAX_WINDOW_BUCKETS`]). Default 10.
    pub window_buckets: u32,
    /// Largest latency the histograms resolve, in ms; larger values are clamped to it.
    /// Default 3 600 000 (one hour).
    pub histogram_max_ms: u64,
    /// Significant figures of the histograms, 1..=5. Default 3.
    pub significant_figures: u8,
    /// Record the latency histograms. Default true. When false, only counters,
    /// gauges and the window are kept (plus the attempt-latency histogram if
    /// hedging is configured, since the hedge delay is read from it), and the
    /// snapshot's histograms are empty. No scheduling decision reads the others,
    /// so a driver that keeps its own latency statistics (the simulator) turns
    /// them off: they are about a fifth of the engine's work per op.
    pub histograms: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            window_ms: 10_000,
            window_buckets: 10,
            histogram_max_ms: 3_600_000,
            significant_figures: 3,
            histograms: true,
        }
    }
}

impl MetricsConfig {
    /// Checks the configuration; the error message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, msg: String| if ok { Ok(()) } else { Err(msg) };
        let (ms, buckets, sf) = (
            self.window_ms,
            self.window_buckets,
            self.significant_figures,
        );
        check(ms > 0, "metrics.window_ms must be > 0".into())?;
        check(buckets > 0, "metrics.window_buckets must be > 0".into())?;
        check(
            buckets <= MAX_WINDOW_BUCKETS,
            format!("metrics.window_buckets must be <= {MAX_WINDOW_BUCKETS} (got {buckets})"),
        )?;
        // Buckets are whole milliseconds; more buckets than ms would make them 0 ms long.
        check(
            u64::from(buckets) <= ms,
            format!("metrics.window_buckets ({buckets}) must be <= metrics.window_ms ({ms})"),
        )?;
        check(
            self.histogram_max_ms > 0,
            "metrics.histogram_max_ms must be > 0".into(),
        )?;
        check(
            (1..=5).contains(&sf),
            format!("metrics.significant_figures must be in 1..=5 (got {sf})"),
        )
    }
}

/// Event counters, pool-wide or for one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Ops submitted.
    pub submitted: u64,
    /// Attempts started, retries and hedges included.
    pub started: u64,
    /// Ops that succeeded.
    pub succeeded: u64,
    /// Ops that failed for good.
    pub failed: u64,
    /// Ops cancelled (caller or abort).
    pub cancelled: u64,
    /// Ops rejected before running (queue full).
    pub rejected: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Attempts ended by a timeout.
    pub timed_out: u64,
    /// Attempts throttled by the server.
    pub throttled: u64,
    /// Hedge attempts started.
    pub hedged: u64,
    /// Attempts that failed: throttled, transient, permanent or timed out (not cancelled).
    pub attempt_failures: u64,
    /// Observer callbacks that panicked (pool-wide only).
    pub observer_panics: u64,
}

/// Instantaneous state the engine passes in when taking a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gauges {
    /// Current concurrency limit.
    pub limit: u32,
    /// Concurrency slots taken (a child running on its parent's slot is not
    /// counted again).
    pub in_flight: u32,
    /// Ops waiting in the queue.
    pub queued: u64,
    /// Ops waiting out a retry backoff.
    pub waiting_retry: u64,
    /// Bytes of the attempts in flight.
    pub bytes_in_flight: u64,
    /// Whether the pool is paused.
    pub paused: bool,
}

/// Rates over the sliding window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// The window length the rates are divided by (`window_buckets` whole buckets).
    pub window_ms: u64,
    /// Ops that succeeded or failed, per second.
    pub completed_per_sec: f64,
    /// Ops that succeeded, per second.
    pub succeeded_per_sec: f64,
    /// Bytes of successful attempts, per second.
    pub bytes_per_sec: f64,
    /// Failed ops / completed ops in the window; 0 when none completed.
    pub error_rate: f64,
}

/// A serialisable histogram: a summary plus the raw buckets, so a CDF can be drawn
/// and the histogram rebuilt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// Unit of all values: `"us"` (microseconds).
    pub unit: String,
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample (0 if empty).
    pub min: u64,
    /// Largest sample, at histogram precision (0 if empty).
    pub max: u64,
    /// Mean sample, to 3 decimals (0 if empty).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// `(value_iterated_to, count)` for each non-empty bucket, ascending.
    pub buckets: Vec<(u64, u64)>,
}

impl HistogramSnapshot {
    /// Summarises `h` (values taken to be microseconds).
    pub fn from_histogram(h: &Histogram<u64>) -> HistogramSnapshot {
        let empty = h.is_empty();
        let q = |q: f64| if empty { 0 } else { h.value_at_quantile(q) };
        HistogramSnapshot {
            unit: "us".into(),
            count: h.len(),
            min: if empty { 0 } else { h.min() },
            max: if empty { 0 } else { h.max() },
            // Rounded to 1 ns so the value survives a JSON round trip bit for bit.
            mean: (h.mean() * 1e3).round() / 1e3,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            buckets: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
                .collect(),
        }
    }

    /// Rebuilds a histogram from the buckets, at 3 significant figures with
    /// auto-resize (the snapshot does not carry the original precision; 3 figures is
    /// the default and plenty for empirical latency profiles). Fails only on values
    /// the histogram cannot represent.
    pub fn to_histogram(&self) -> Result<Histogram<u64>, String> {
        let mut h = Histogram::<u64>::new(3).map_err(|e| format!("histogram: {e:?}"))?;
        for &(value, count) in &self.buckets {
            // A zero count would still move min/max; such buckets carry no samples.
            if count > 0 {
                h.record_n(value, count)
                    .map_err(|e| format!("histogram bucket {value}: {e:?}"))?;
            }
        }
        Ok(h)
    }

    /// The value at quantile `q` (clamped to [0, 1]; NaN reads as 0), computed from
    /// the buckets like `Histogram::value_at_quantile`; 0 if empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self
            .buckets
            .iter()
            .fold(0u64, |t, &(_, n)| t.saturating_add(n));
        if total == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // Same rank rule as hdrhistogram: the ceil'd rank, at least the first sample.
        let target = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for &(value, n) in &self.buckets {
            seen = seen.saturating_add(n);
            if seen >= target {
                return value;
            }
        }
        self.buckets.last().map_or(0, |b| b.0)
    }
}

/// Metrics of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassSnapshot {
    /// The class.
    pub class: OpClass,
    /// Its built-in name, if it has one.
    pub name: Option<String>,
    /// Latency of attempts (all outcomes but cancelled).
    pub attempt_latency: HistogramSnapshot,
    /// Submit → resolution of succeeded and failed ops.
    pub end_to_end: HistogramSnapshot,
    /// First start → resolution of succeeded and failed ops that started.
    pub service: HistogramSnapshot,
    /// Queue wait before each attempt start.
    pub queue_wait: HistogramSnapshot,
    /// This class's counters.
    pub counters: Counters,
}

/// A point-in-time copy of all metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// When it was taken.
    pub at: Instant,
    /// Pool-wide counters.
    pub counters: Counters,
    /// Gauges supplied by the engine.
    pub gauges: Gauges,
    /// Sliding-window rates ending at `at`.
    pub window: WindowStats,
    /// Classes seen so far, ascending class number.
    pub classes: Vec<ClassSnapshot>,
}

impl MetricsSnapshot {
    /// The snapshot of `class`, if it was seen.
    pub fn class(&self, class: OpClass) -> Option<&ClassSnapshot> {
        self.classes.iter().find(|c| c.class == class)
    }
}

/// Per-class live state; boxed so the class table stays a dense `Vec` of pointers.
#[derive(Clone)]
struct ClassMetrics {
    counters: Counters,
    attempt: Histogram<u64>,
    end_to_end: Histogram<u64>,
    service: Histogram<u64>,
    queue_wait: Histogram<u64>,
}

impl ClassMetrics {
    // Out of line: runs once per class, keeps the allocation off the inlined hot path.
    #[cold]
    #[inline(never)]
    fn new(template: &Histogram<u64>) -> Box<ClassMetrics> {
        Box::new(ClassMetrics {
            counters: Counters::default(),
            attempt: Histogram::new_from(template),
            end_to_end: Histogram::new_from(template),
            service: Histogram::new_from(template),
            queue_wait: Histogram::new_from(template),
        })
    }
}

/// One bucket of the window ring; `index` tells which time slot its sums belong to,
/// so stale buckets are recognised (and reset) lazily instead of swept.
#[derive(Clone, Copy, Default)]
struct Bucket {
    index: u64,
    completions: u64,
    successes: u64,
    failures: u64,
    bytes: u64,
}

#[derive(Clone)]
struct Window {
    bucket_nanos: u64,
    ring: Vec<Bucket>,
    /// Highest bucket index seen, so a `now` that goes backwards lands in the current
    /// bucket instead of corrupting an older slot.
    latest: u64,
    /// Where bucket `latest` ends (ns, exclusive) and its place in the ring: most
    /// completions land in the previous one's bucket, and then `record` needs no
    /// division.
    latest_end: u64,
    latest_pos: usize,
}

impl Window {
    fn index(&self, now: Instant) -> u64 {
        (now.as_nanos() / self.bucket_nanos).max(self.latest)
    }

    fn record(&mut self, now: Instant, success: bool, bytes: u64) {
        if now.as_nanos() >= self.latest_end {
            // A later bucket (before it, `index(now)` is `latest`).
            let idx = self.index(now);
            self.latest = idx;
            self.latest_end = idx.saturating_add(1).saturating_mul(self.bucket_nanos);
            self.latest_pos = (idx % self.ring.len() as u64) as usize;
        }
        let idx = self.latest;
        if let Some(b) = self.ring.get_mut(self.latest_pos) {
            if b.index != idx {
                *b = Bucket {
                    index: idx,
                    ..Bucket::default()
                };
            }
            b.completions += 1;
            if success {
                b.successes += 1;
                b.bytes = b.bytes.saturating_add(bytes);
            } else {
                b.failures += 1;
            }
        }
    }

    fn stats(&self, now: Instant) -> WindowStats {
        let cur = self.index(now);
        let len = self.ring.len() as u64;
        let mut sum = Bucket::default();
        // A bucket counts if its slot is among the `len` slots ending at `cur`.
        for b in self
            .ring
            .iter()
            .filter(|b| cur.saturating_sub(b.index) < len)
        {
            sum.completions += b.completions;
            sum.successes += b.successes;
            sum.failures += b.failures;
            sum.bytes = sum.bytes.saturating_add(b.bytes);
        }
        let window_nanos = self.bucket_nanos.saturating_mul(len);
        // Always the full window: a young pool must not report one event as 1000/s.
        let secs = window_nanos as f64 / 1e9;
        WindowStats {
            window_ms: window_nanos / 1_000_000,
            completed_per_sec: sum.completions as f64 / secs,
            succeeded_per_sec: sum.successes as f64 / secs,
            bytes_per_sec: sum.bytes as f64 / secs,
            error_rate: if sum.completions == 0 {
                0.0
            } else {
                sum.failures as f64 / sum.completions as f64
            },
        }
    }
}

/// Live metrics owned by the engine.
#[derive(Clone)]
pub struct Metrics {
    counters: Counters,
    classes: Vec<Option<Box<ClassMetrics>>>,
    /// Empty histogram with the configured range; classes clone its shape.
    template: Histogram<u64>,
    max_us: u64,
    /// Record queue-wait, end-to-end and service histograms.
    op_histograms: bool,
    /// Record the attempt-latency histogram.
    attempt_histogram: bool,
    window: Window,
}

impl fmt::Debug for Metrics {
    // Histograms would print tens of thousands of counts; show what a reader wants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("counters", &self.counters)
            .field(
                "classes",
                &self.classes.iter().filter(|c| c.is_some()).count(),
            )
            .finish_non_exhaustive()
    }
}

/// Duration as whole microseconds, clamped to `[1, max_us]` so every value is
/// recordable and a zero-time event still counts as a sample.
#[inline]
fn micros(d: Duration, max_us: u64) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
        .clamp(1, max_us)
}

/// [`micros`] of `Duration::from_nanos(nanos)`, without building the
/// `Duration`: its whole seconds × 10^6 plus its sub-second µs is exactly
/// `nanos / 1000` (no saturation: that is below `u64::MAX`). The engine keeps
/// times as nanos, so its hot path records through this.
#[inline]
fn micros_ns(nanos: u64, max_us: u64) -> u64 {
    (nanos / 1_000).clamp(1, max_us)
}

/// The state of `class`, created on first use. A free function over the two fields
/// so callers can keep borrowing the other fields of `Metrics`.
#[inline]
fn class_entry<'a>(
    classes: &'a mut Vec<Option<Box<ClassMetrics>>>,
    template: &Histogram<u64>,
    class: OpClass,
) -> &'a mut ClassMetrics {
    let i = usize::from(class.0);
    if classes.get(i).is_some_and(Option::is_some) {
        // Seen before (every call but the class's first): no resize or insert
        // path to step over.
        return classes[i]
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("checked above"));
    }
    new_class_entry(classes, template, i)
}

#[cold]
#[inline(never)]
fn new_class_entry<'a>(
    classes: &'a mut Vec<Option<Box<ClassMetrics>>>,
    template: &Histogram<u64>,
    i: usize,
) -> &'a mut ClassMetrics {
    if i >= classes.len() {
        classes.resize_with(i + 1, || None);
    }
    classes[i].get_or_insert_with(|| ClassMetrics::new(template))
}

impl Metrics {
    /// Creates empty metrics. `cfg` should have passed [`MetricsConfig::validate`];
    /// out-of-range values are clamped rather than trusted, so this never panics.
    pub fn new(cfg: &MetricsConfig) -> Metrics {
        let buckets = cfg.window_buckets.clamp(1, MAX_WINDOW_BUCKETS);
        let bucket_ms = (cfg.window_ms / u64::from(buckets)).max(1);
        let max_us = cfg.histogram_max_ms.max(1).saturating_mul(1_000);
        let sigfig = cfg.significant_figures.clamp(1, 5);
        // low = 1, high >= 1000 >= 2 * low and sigfig <= 5: always accepted.
        let template = Histogram::new_with_bounds(1, max_us, sigfig)
            .expect("clamped histogram bounds are valid");
        Metrics {
            counters: Counters::default(),
            classes: Vec::new(),
            template,
            max_us,
            op_histograms: cfg.histograms,
            attempt_histogram: cfg.histograms,
            window: Window {
                bucket_nanos: bucket_ms.saturating_mul(1_000_000),
                ring: vec![Bucket::default(); buckets as usize],
                latest: 0,
                latest_end: 0,
                latest_pos: 0,
            },
        }
    }

    /// Keeps the attempt-latency histogram even with `histograms` off (the
    /// engine calls this when hedging is configured).
    pub(crate) fn keep_attempt_histogram(&mut self) {
        self.attempt_histogram = true;
    }

    /// Counts a submitted op.
    pub fn record_submitted(&mut self, class: OpClass) {
        self.counters.submitted += 1;
        class_entry(&mut self.classes, &self.template, class)
            .counters
            .submitted += 1;
    }

    /// Counts a started attempt (and a hedge, if it is one) and records its queue wait.
    /// `_now` is accepted for symmetry with the other hooks; nothing here is windowed.
    pub fn record_started(
        &mut self,
        _now: Instant,
        class: OpClass,
        queue_wait: Duration,
        hedge: bool,
    ) {
        let us = micros(queue_wait, self.max_us);
        self.started(class, us, hedge);
    }

    /// [`Metrics::record_started`] with the queue wait in nanoseconds (the
    /// engine's unit), skipping the `Duration` round trip.
    #[inline]
    pub(crate) fn record_started_ns(&mut self, class: OpClass, queue_wait_ns: u64, hedge: bool) {
        let us = micros_ns(queue_wait_ns, self.max_us);
        self.started(class, us, hedge);
    }

    /// Both `record_started` variants, with the queue wait in clamped µs.
    #[inline]
    fn started(&mut self, class: OpClass, queue_wait_us: u64, hedge: bool) {
        let c = class_entry(&mut self.classes, &self.template, class);
        if self.op_histograms {
            c.queue_wait.saturating_record(queue_wait_us);
        }
        c.counters.started += 1;
        self.counters.started += 1;
        if hedge {
            c.counters.hedged += 1;
            self.counters.hedged += 1;
        }
    }

    /// Records how an attempt ended. Cancelled attempts are left out of the latency
    /// histogram: their latency says when we gave up, not how fast the server was.
    /// `latency` is `None` for an op whose latency is no sample (a coordinator):
    /// then only the counters move.
    pub fn record_attempt_end(
        &mut self,
        _now: Instant,
        class: OpClass,
        latency: Option<Duration>,
        outcome: SampleOutcome,
    ) {
        let us = latency.map(|l| micros(l, self.max_us));
        self.attempt_ended(class, us, outcome);
    }

    /// [`Metrics::record_attempt_end`] with the latency in nanoseconds.
    #[inline]
    pub(crate) fn record_attempt_end_ns(
        &mut self,
        class: OpClass,
        latency_ns: Option<u64>,
        outcome: SampleOutcome,
    ) {
        let us = latency_ns.map(|l| micros_ns(l, self.max_us));
        self.attempt_ended(class, us, outcome);
    }

    /// Both `record_attempt_end` variants, with the latency in clamped µs.
    #[inline]
    fn attempt_ended(&mut self, class: OpClass, latency_us: Option<u64>, outcome: SampleOutcome) {
        if outcome == SampleOutcome::Cancelled {
            return;
        }
        let c = class_entry(&mut self.classes, &self.template, class);
        if let (true, Some(us)) = (self.attempt_histogram, latency_us) {
            c.attempt.saturating_record(us);
        }
        if outcome == SampleOutcome::Success {
            return;
        }
        for k in [&mut c.counters, &mut self.counters] {
            k.attempt_failures += 1;
            match outcome {
                SampleOutcome::Throttled => k.throttled += 1,
                SampleOutcome::TimedOut => k.timed_out += 1,
                _ => {}
            }
        }
    }

    /// Counts a scheduled retry.
    pub fn record_retry(&mut self, class: OpClass) {
        self.counters.retried += 1;
        class_entry(&mut self.classes, &self.template, class)
            .counters
            .retried += 1;
    }

    /// Records an op's resolution. `latency` is `(end_to_end, service)`:
    /// submit → resolution and first start → resolution (`None` if it never
    /// started), or `None` altogether for an op whose latency is no sample (a
    /// coordinator); `bytes` = bytes of the successful attempt (0 otherwise). Only succeeded and failed ops enter the
    /// latency histograms and the window: cancels and rejects are mostly zero-time
    /// and would drag latency down and dilute the error rate.
    pub fn record_resolved(
        &mut self,
        now: Instant,
        class: OpClass,
        resolution: &Resolution,
        latency: Option<(Duration, Option<Duration>)>,
        bytes: u64,
    ) {
        let max = self.max_us;
        let us = latency.map(|(e, s)| (micros(e, max), s.map(|s| micros(s, max))));
        self.resolved(now, class, resolution, us, bytes);
    }

    /// [`Metrics::record_resolved`] with the latencies in nanoseconds.
    #[inline]
    pub(crate) fn record_resolved_ns(
        &mut self,
        now: Instant,
        class: OpClass,
        resolution: &Resolution,
        latency_ns: Option<(u64, Option<u64>)>,
        bytes: u64,
    ) {
        let max = self.max_us;
        let us = latency_ns.map(|(e, s)| (micros_ns(e, max), s.map(|s| micros_ns(s, max))));
        self.resolved(now, class, resolution, us, bytes);
    }

    /// Both `record_resolved` variants, with the latencies in clamped µs.
    #[inline]
    fn resolved(
        &mut self,
        now: Instant,
        class: OpClass,
        resolution: &Resolution,
        latency_us: Option<(u64, Option<u64>)>,
        bytes: u64,
    ) {
        let c = class_entry(&mut self.classes, &self.template, class);
        // Bump the outcome's counter; only an op that ran to a verdict goes on.
        let success = match resolution {
            Resolution::Succeeded { .. } => {
                c.counters.succeeded += 1;
                self.counters.succeeded += 1;
                true
            }
            Resolution::Failed { .. } => {
                c.counters.failed += 1;
                self.counters.failed += 1;
                false
            }
            Resolution::Cancelled { .. } => {
                c.counters.cancelled += 1;
                self.counters.cancelled += 1;
                return;
            }
            Resolution::Rejected { .. } => {
                c.counters.rejected += 1;
                self.counters.rejected += 1;
                return;
            }
        };
        if let (true, Some((end_to_end, service))) = (self.op_histograms, latency_us) {
            c.end_to_end.saturating_record(end_to_end);
            if let Some(s) = service {
                c.service.saturating_record(s);
            }
        }
        self.window
            .record(now, success, if success { bytes } else { 0 });
    }

    /// Counts an observer callback that panicked.
    pub fn record_observer_panic(&mut self) {
        self.counters.observer_panics += 1;
    }

    /// The attempt-latency quantile `q` (clamped to [0, 1]) of `class`, if at least
    /// `min_samples` (and at least one) attempts were recorded; `None` for NaN `q`.
    /// Scans the histogram, so callers should cache it.
    pub fn attempt_latency_quantile(
        &self,
        class: OpClass,
        q: f64,
        min_samples: u64,
    ) -> Option<Duration> {
        let h = &self.classes.get(usize::from(class.0))?.as_deref()?.attempt;
        if h.is_empty() || h.len() < min_samples || q.is_nan() {
            return None;
        }
        Some(Duration::from_micros(
            h.value_at_quantile(q.clamp(0.0, 1.0)),
        ))
    }

    /// Pool-wide counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Throughput and error rate over the window ending at `now`, always divided by
    /// the full window length.
    pub fn window(&self, now: Instant) -> WindowStats {
        self.window.stats(now)
    }

    /// A copy of everything, with `gauges` supplied by the engine.
    pub fn snapshot(&self, now: Instant, gauges: Gauges) -> MetricsSnapshot {
        let classes = self
            .classes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c.as_deref()?;
                let class = OpClass(u16::try_from(i).ok()?);
                Some(ClassSnapshot {
                    class,
                    name: class.name().map(String::from),
                    attempt_latency: HistogramSnapshot::from_histogram(&c.attempt),
                    end_to_end: HistogramSnapshot::from_histogram(&c.end_to_end),
                    service: HistogramSnapshot::from_histogram(&c.service),
                    queue_wait: HistogramSnapshot::from_histogram(&c.queue_wait),
                    counters: c.counters,
                })
            })
            .collect();
        MetricsSnapshot {
            at: now,
            counters: self.counters,
            gauges,
            window: self.window(now),
            classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CancelCause, ErrorClass, FailureCause, NoRetry, RejectCause};

    const C: OpClass = OpClass::GET;
    const T0: Instant = Instant::ZERO;
    const OK: Resolution = Resolution::Succeeded { attempts: 1 };
    const CANCELLED: Resolution = Resolution::Cancelled {
        attempts: 1,
        cause: CancelCause::Caller,
    };
    const REJECTED: Resolution = Resolution::Rejected {
        cause: RejectCause::QueueFull,
    };
    const FAILED: Resolution = Resolution::Failed {
        attempts: 3,
        cause: FailureCause::AttemptFailed {
            last: ErrorClass::Transient,
            timed_out: false,
            why: NoRetry::AttemptsExhausted,
        },
    };

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn resolve(m: &mut Metrics, at_ms: u64, r: Resolution, e2e: Duration, bytes: u64) {
        m.record_resolved(at(at_ms), C, &r, Some((e2e, Some(e2e))), bytes);
    }

    fn cfg(window_ms: u64, window_buckets: u32, max_ms: u64, sf: u8) -> MetricsConfig {
        MetricsConfig {
            window_ms,
            window_buckets,
            histogram_max_ms: max_ms,
            significant_figures: sf,
            histograms: true,
        }
    }

    #[test]
    fn histograms_off_keeps_counters_and_what_hedging_needs() {
        let record = |m: &mut Metrics| {
            m.record_submitted(C);
            m.record_started(T0, C, ms(1), false);
            m.record_attempt_end(T0, C, Some(ms(5)), SampleOutcome::Success);
            resolve(m, 0, OK, ms(6), 10);
        };
        let off = MetricsConfig {
            histograms: false,
            ..MetricsConfig::default()
        };
        let mut m = Metrics::new(&off);
        record(&mut m);
        let s = snap(&m);
        assert_eq!(s.counters.succeeded, 1);
        let c = &s.classes[0];
        for h in [&c.attempt_latency, &c.end_to_end, &c.service, &c.queue_wait] {
            assert_eq!(h.count, 0);
        }
        m.keep_attempt_histogram();
        record(&mut m);
        let c = &snap(&m).classes[0];
        assert_eq!(c.attempt_latency.count, 1);
        assert_eq!(c.end_to_end.count, 0);
    }

    fn snap(m: &Metrics) -> MetricsSnapshot {
        m.snapshot(T0, Gauges::default())
    }

    fn assert_rate(w: WindowStats, per_sec: f64) {
        assert!((w.completed_per_sec - per_sec).abs() < 1e-9, "{w:?}");
    }

    #[test]
    fn counters_per_kind() {
        let mut m = Metrics::new(&MetricsConfig::default());
        (0..4).for_each(|_| m.record_submitted(C));
        m.record_started(T0, C, ms(1), false);
        m.record_started(T0, C, ms(1), true);
        use SampleOutcome::*;
        for o in [
            Success, Throttled, Transient, Permanent, TimedOut, Cancelled,
        ] {
            m.record_attempt_end(T0, C, Some(ms(5)), o);
        }
        m.record_retry(C);
        m.record_observer_panic();
        for r in [OK, FAILED, CANCELLED, REJECTED] {
            resolve(&mut m, 0, r, ms(5), 10);
        }
        let want = Counters {
            submitted: 4,
            started: 2,
            succeeded: 1,
            failed: 1,
            cancelled: 1,
            rejected: 1,
            retried: 1,
            timed_out: 1,
            throttled: 1,
            hedged: 1,
            attempt_failures: 4,
            observer_panics: 1,
        };
        assert_eq!(*m.counters(), want);
        let s = snap(&m);
        let class = s.class(C).unwrap();
        assert_eq!(
            class.counters,
            Counters {
                observer_panics: 0,
                ..want
            }
        );
        assert_eq!(class.name.as_deref(), Some("get"));
        // Five attempt ends were timed; the cancelled one was not.
        assert_eq!(class.attempt_latency.count, 5);
        assert_eq!(class.queue_wait.count, 2);
        assert!(s.class(OpClass::PUT).is_none());
    }

    #[test]
    fn latency_histograms_exclude_cancelled_and_rejected() {
        let mut m = Metrics::new(&MetricsConfig::default());
        resolve(&mut m, 0, OK, ms(100), 0);
        resolve(&mut m, 0, CANCELLED, Duration::ZERO, 0);
        resolve(&mut m, 0, REJECTED, Duration::ZERO, 0);
        // Failed without ever starting: end-to-end time but no service time.
        m.record_resolved(T0, C, &FAILED, Some((ms(300), None)), 0);
        let s = snap(&m);
        let c = s.class(C).unwrap();
        assert_eq!(c.end_to_end.count, 2);
        assert!(c.end_to_end.min >= 99_900, "min {}", c.end_to_end.min);
        assert_eq!(c.service.count, 1);
        assert_eq!(s.window.error_rate, 0.5);
    }

    #[test]
    fn quantiles_match_recorded_values() {
        let mut m = Metrics::new(&MetricsConfig::default());
        for i in 1..=1000 {
            m.record_attempt_end(T0, C, Some(ms(i)), SampleOutcome::Success);
        }
        let q = |q, min| m.attempt_latency_quantile(C, q, min);
        let p50 = q(0.5, 1000).unwrap().as_secs_f64();
        assert!((p50 - 0.5).abs() <= 0.005, "p50 {p50}");
        let p99 = q(0.99, 1).unwrap().as_secs_f64();
        assert!((p99 - 0.99).abs() <= 0.0099, "p99 {p99}");
        assert_eq!(q(0.5, 1001), None);
        assert_eq!(q(f64::NAN, 1), None);
        assert!(q(7.0, 0).unwrap() >= ms(1000));
        assert_eq!(m.attempt_latency_quantile(OpClass::PUT, 0.5, 0), None);
        let s = snap(&m);
        let h = &s.class(C).unwrap().attempt_latency;
        assert_eq!((h.unit.as_str(), h.count), ("us", 1000));
        assert!((h.mean - 500_500.0).abs() < 5_005.0, "mean {}", h.mean);
        for (q, v) in [(0.5, h.p50), (0.9, h.p90), (0.99, h.p99), (0.999, h.p999)] {
            assert_eq!(h.quantile(q), v, "q {q}");
        }
        assert_eq!(h.quantile(1.0), h.max);
        assert_eq!(HistogramSnapshot::default().quantile(0.5), 0);
    }

    #[test]
    fn window_divides_by_full_window_and_expires() {
        let mut m = Metrics::new(&MetricsConfig::default());
        let empty = WindowStats {
            window_ms: 10_000,
            ..Default::default()
        };
        assert_eq!(m.window(at(0)), empty);
        resolve(&mut m, 500, OK, ms(1), 1_000);
        let w = m.window(at(600));
        assert_eq!((w.window_ms, w.error_rate), (10_000, 0.0));
        assert_rate(w, 0.1);
        assert!((w.succeeded_per_sec - 0.1).abs() < 1e-9);
        assert!((w.bytes_per_sec - 100.0).abs() < 1e-9);
        // In the ten buckets ending at 9.9 s, gone from those ending at 10 s.
        assert_rate(m.window(at(9_999)), 0.1);
        assert_rate(m.window(at(10_000)), 0.0);
        // A later event reuses the expired event's ring slot without adding to it.
        resolve(&mut m, 10_200, FAILED, ms(1), 77);
        let w = m.window(at(10_300));
        assert_rate(w, 0.1);
        assert_eq!(
            (w.succeeded_per_sec, w.bytes_per_sec, w.error_rate),
            (0.0, 0.0, 1.0)
        );
        assert_eq!(m.window(at(1_000_000)), empty);
    }

    #[test]
    fn records_in_one_bucket_add_up_and_a_bucket_boundary_starts_the_next() {
        let mut m = Metrics::new(&MetricsConfig::default());
        // Default buckets are 1 s: 0.5 s and 0.999 s share one, 1.0 s opens the next.
        resolve(&mut m, 500, OK, ms(1), 0);
        resolve(&mut m, 999, OK, ms(1), 0);
        resolve(&mut m, 1_000, OK, ms(1), 0);
        assert_rate(m.window(at(1_500)), 0.3);
        // The first bucket leaves the window a bucket before the second.
        assert_rate(m.window(at(10_000)), 0.1);
        assert_rate(m.window(at(11_000)), 0.0);
    }

    #[test]
    fn time_going_backwards_lands_in_current_bucket() {
        let mut m = Metrics::new(&MetricsConfig::default());
        resolve(&mut m, 20_000, OK, ms(1), 0);
        resolve(&mut m, 5_000, OK, ms(1), 0);
        assert_rate(m.window(at(0)), 0.2);
        assert_rate(m.window(at(29_999)), 0.2);
    }

    #[test]
    fn snapshot_round_trips_and_rebuilds() {
        let mut m = Metrics::new(&MetricsConfig::default());
        for i in 0..5_000u64 {
            m.record_submitted(C);
            m.record_started(at(i), C, Duration::from_micros(i * 7 % 3_000), i % 10 == 0);
            let lat = Duration::from_micros(1_000 + i * i % 250_000);
            m.record_attempt_end(at(i), C, Some(lat), SampleOutcome::Success);
            resolve(&mut m, i, OK, lat, i);
        }
        m.record_submitted(OpClass(300));
        let gauges = Gauges {
            limit: 8,
            in_flight: 3,
            queued: 2,
            paused: true,
            ..Default::default()
        };
        let s = m.snapshot(at(5_000), gauges);
        let classes: Vec<_> = s.classes.iter().map(|c| c.class).collect();
        assert_eq!(classes, [C, OpClass(300)]);
        assert_eq!(s.class(OpClass(300)).unwrap().name, None);
        let back: MetricsSnapshot =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(back == s, "snapshot changed in a JSON round trip");
        let hs = &s.class(C).unwrap().attempt_latency;
        let h = hs.to_histogram().unwrap();
        assert_eq!(h.len(), hs.count);
        assert_eq!(h.value_at_quantile(0.99), hs.p99);
        assert!(h.equivalent(h.max(), hs.max));
        assert!(HistogramSnapshot::from_histogram(&h).buckets == hs.buckets);
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let mut m = Metrics::new(&MetricsConfig::default());
        let end = Instant::MAX;
        m.record_started(end, C, Duration::MAX, false);
        m.record_attempt_end(end, C, Some(Duration::MAX), SampleOutcome::TimedOut);
        m.record_attempt_end(T0, C, Some(Duration::ZERO), SampleOutcome::Success);
        for _ in 0..2 {
            let r = Resolution::Succeeded { attempts: u32::MAX };
            m.record_resolved(
                end,
                OpClass(u16::MAX),
                &r,
                Some((Duration::MAX, Some(Duration::ZERO))),
                u64::MAX,
            );
        }
        let w = m.window(end);
        assert!(w.bytes_per_sec.is_finite() && w.bytes_per_sec > 0.0);
        let s = m.snapshot(end, Gauges::default());
        let h = &s.class(C).unwrap().attempt_latency;
        // Zero is recorded as 1 µs and Duration::MAX is clamped to the one-hour ceiling.
        assert_eq!(h.min, 1);
        assert!(
            (3_600_000_000..3_610_000_000).contains(&h.max),
            "max {}",
            h.max
        );
        assert!(m.attempt_latency_quantile(C, -1.0, 0).is_some());
        let odd = HistogramSnapshot {
            buckets: vec![(u64::MAX, 1), (5, 0), (3, u64::MAX)],
            ..Default::default()
        };
        let _ = (
            odd.to_histogram(),
            odd.quantile(f64::NAN),
            odd.quantile(0.7),
        );
        // Invalid configs are clamped rather than trusted.
        for cfg in [cfg(0, 0, 0, 0), cfg(u64::MAX, u32::MAX, u64::MAX, 9)] {
            let mut m = Metrics::new(&cfg);
            m.record_attempt_end(end, C, Some(Duration::MAX), SampleOutcome::Success);
            resolve(&mut m, 1, OK, Duration::MAX, 1);
            let _ = (m.snapshot(end, Gauges::default()), m.window(T0));
        }
    }

    #[test]
    fn validate_names_the_field() {
        assert_eq!(MetricsConfig::default().validate(), Ok(()));
        let big = u64::MAX;
        for (cfg, field) in [
            (cfg(0, 10, 1, 3), "window_ms"),
            (cfg(10, 0, 1, 3), "window_buckets"),
            (cfg(5, 6, 1, 3), "window_buckets"),
            (cfg(big, MAX_WINDOW_BUCKETS + 1, 1, 3), "window_buckets"),
            (cfg(10, 1, 0, 3), "histogram_max_ms"),
            (cfg(10, 1, 1, 0), "significant_figures"),
            (cfg(10, 1, 1, 6), "significant_figures"),
        ] {
            let err = cfg.validate().unwrap_err();
            assert!(err.starts_with(&format!("metrics.{field} ")), "{err}");
        }
        assert_eq!(cfg(10, 10, 1, 5).validate(), Ok(()));
        let parsed: MetricsConfig = serde_json::from_str(r#"{"window_ms": 2000}"#).unwrap();
        assert_eq!(parsed, cfg(2_000, 10, 3_600_000, 3));
        assert!(serde_json::from_str::<MetricsConfig>(r#"{"window": 1}"#).is_err());
    }
}
