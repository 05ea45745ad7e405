//! Counters, gauges and histograms through the `metrics` facade (feature
//! `metrics`), turned on per pool by [`super::Pool::export_metrics`].
//!
//! Every metric has a `pool` label (the name given); per-class ones also have a
//! `class` label (`get`, `put`, …, or `class#N` for custom classes):
//!
//! | metric | kind | counts |
//! |---|---|---|
//! | `pool_ops_submitted_total` | counter | ops accepted |
//! | `pool_ops_started_total` | counter | ops whose first attempt started |
//! | `pool_attempts_total` | counter | attempts started (retries and hedges included) |
//! | `pool_ops_succeeded_total` | counter | ops that succeeded |
//! | `pool_ops_failed_total` | counter | ops that failed for good (timeouts and deadlines included) |
//! | `pool_ops_cancelled_total` | counter | ops cancelled (caller or abort) |
//! | `pool_ops_rejected_total` | counter | ops refused by a full queue (at submit, or evicted by a higher priority) |
//! | `pool_retries_total` | counter | retries scheduled |
//! | `pool_attempts_throttled_total` | counter | attempts that failed as throttled |
//! | `pool_attempts_timed_out_total` | counter | attempts cut by their timeout |
//! | `pool_hedges_total` | counter | hedged attempts started |
//! | `pool_attempt_duration_seconds` | histogram | attempts that ended by themselves (success or error) |
//! | `pool_op_duration_seconds` | histogram | submit to resolution of succeeded and failed ops |
//! | `pool_in_flight` | gauge | slots taken (pool label only) |
//! | `pool_queued` | gauge | ops waiting in the queue (pool label only) |
//! | `pool_limit` | gauge | the global concurrency limit (pool label only) |
//!
//! Durations are engine time (the runtime's clock). Handles are registered with
//! the recorder installed when a class is first seen, so install the recorder
//! before calling `export_metrics`.

use crate::class::OpClass;
use crate::engine::Engine;
use crate::event::{Event, Observer};
use crate::outcome::{AttemptId, OpId, SampleOutcome};
use crate::time::Instant;
use metrics::{Counter, Gauge, Histogram, SharedString};

/// What the pool layer itself exports: the pool-wide gauges (set after every
/// engine call) and submits refused at once (the engine has no event for them).
pub(crate) struct PoolExport {
    pool: SharedString,
    in_flight: Gauge,
    queued: Gauge,
    limit: Gauge,
}

impl PoolExport {
    pub(crate) fn new(pool: &SharedString) -> PoolExport {
        let l = || [("pool", pool.clone())];
        PoolExport {
            pool: pool.clone(),
            in_flight: metrics::gauge!("pool_in_flight", &l()),
            queued: metrics::gauge!("pool_queued", &l()),
            limit: metrics::gauge!("pool_limit", &l()),
        }
    }

    pub(crate) fn set(&self, e: &Engine) {
        self.in_flight.set(f64::from(e.in_flight()));
        self.queued.set(e.queued() as f64);
        self.limit.set(f64::from(e.limit()));
    }

    /// A submit of this class was refused because the queue was full.
    pub(crate) fn refused(&self, class: OpClass) {
        let labels = [
            ("pool", self.pool.clone()),
            ("class", SharedString::from(class.to_string())),
        ];
        metrics::counter!("pool_ops_submitted_total", &labels).increment(1);
        metrics::counter!("pool_ops_rejected_total", &labels).increment(1);
    }
}

/// Describes every metric to the recorder (units and help text).
pub(crate) fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("pool_ops_submitted_total", "Ops accepted by the pool");
    describe_counter!("pool_ops_started_total", "Ops whose first attempt started");
    describe_counter!(
        "pool_attempts_total",
        "Attempts started, retries and hedges included"
    );
    describe_counter!("pool_ops_succeeded_total", "Ops that succeeded");
    describe_counter!("pool_ops_failed_total", "Ops that failed for good");
    describe_counter!("pool_ops_cancelled_total", "Ops cancelled");
    describe_counter!("pool_ops_rejected_total", "Ops refused by a full queue");
    describe_counter!("pool_retries_total", "Retries scheduled");
    describe_counter!(
        "pool_attempts_throttled_total",
        "Attempts that failed as throttled"
    );
    describe_counter!(
        "pool_attempts_timed_out_total",
        "Attempts cut by their timeout"
    );
    describe_counter!("pool_hedges_total", "Hedged attempts started");
    describe_histogram!(
        "pool_attempt_duration_seconds",
        Unit::Seconds,
        "Duration of attempts that ended by themselves"
    );
    describe_histogram!(
        "pool_op_duration_seconds",
        Unit::Seconds,
        "Submit to resolution of succeeded and failed ops"
    );
    describe_gauge!("pool_in_flight", "Slots taken");
    describe_gauge!("pool_queued", "Ops waiting in the queue");
    describe_gauge!("pool_limit", "The global concurrency limit");
}

/// One class's handles.
struct ClassMetrics {
    class: OpClass,
    submitted: Counter,
    started: Counter,
    attempts: Counter,
    succeeded: Counter,
    failed: Counter,
    cancelled: Counter,
    rejected: Counter,
    retries: Counter,
    throttled: Counter,
    timed_out: Counter,
    hedges: Counter,
    attempt_seconds: Histogram,
    op_seconds: Histogram,
}

impl ClassMetrics {
    fn new(pool: &SharedString, class: OpClass) -> ClassMetrics {
        let labels = [
            ("pool", pool.clone()),
            ("class", SharedString::from(class.to_string())),
        ];
        ClassMetrics {
            class,
            submitted: metrics::counter!("pool_ops_submitted_total", &labels),
            started: metrics::counter!("pool_ops_started_total", &labels),
            attempts: metrics::counter!("pool_attempts_total", &labels),
            succeeded: metrics::counter!("pool_ops_succeeded_total", &labels),
            failed: metrics::counter!("pool_ops_failed_total", &labels),
            cancelled: metrics::counter!("pool_ops_cancelled_total", &labels),
            rejected: metrics::counter!("pool_ops_rejected_total", &labels),
            retries: metrics::counter!("pool_retries_total", &labels),
            throttled: metrics::counter!("pool_attempts_throttled_total", &labels),
            timed_out: metrics::counter!("pool_attempts_timed_out_total", &labels),
            hedges: metrics::counter!("pool_hedges_total", &labels),
            attempt_seconds: metrics::histogram!("pool_attempt_duration_seconds", &labels),
            op_seconds: metrics::histogram!("pool_op_duration_seconds", &labels),
        }
    }
}

/// What the exporter remembers of a live op (indexed by its slot index).
#[derive(Clone, Copy, Default)]
struct OpRec {
    /// `OpId::get()`, 0 when the place is free.
    id: u64,
    /// Index into `MetricsObserver::classes`.
    class: usize,
    queued_at: Instant,
    /// Running attempts: (number, start); number 0 is an empty place.
    open: [(u32, Instant); 2],
}

/// Turns engine events into metrics. Runs under the pool's lock, so it keeps
/// to array lookups and handle calls.
pub(crate) struct MetricsObserver {
    pool: SharedString,
    classes: Vec<ClassMetrics>,
    ops: Vec<OpRec>,
}

fn seconds(from: Instant, to: Instant) -> f64 {
    (to - from).as_secs_f64()
}

impl MetricsObserver {
    pub(crate) fn new(pool: SharedString) -> MetricsObserver {
        MetricsObserver {
            pool,
            classes: Vec::new(),
            ops: Vec::new(),
        }
    }

    fn class(&mut self, class: OpClass) -> usize {
        if let Some(i) = self.classes.iter().position(|c| c.class == class) {
            return i;
        }
        self.classes.push(ClassMetrics::new(&self.pool, class));
        self.classes.len() - 1
    }

    fn op(&mut self, id: OpId) -> Option<&mut OpRec> {
        self.ops
            .get_mut(id.index() as usize)
            .filter(|r| r.id == id.get())
    }

    /// The class handles of a live op.
    fn class_of(&self, id: OpId) -> Option<&ClassMetrics> {
        let rec = self
            .ops
            .get(id.index() as usize)
            .filter(|r| r.id == id.get())?;
        self.classes.get(rec.class)
    }

    /// Ends attempt `a`; returns its class and start if it was open.
    fn close(&mut self, a: AttemptId) -> Option<(usize, Instant)> {
        let rec = self.op(a.op)?;
        let place = rec.open.iter_mut().find(|o| o.0 == a.number)?;
        let started = place.1;
        *place = (0, Instant::ZERO);
        Some((rec.class, started))
    }

    /// The op resolved: frees its record; returns it.
    fn resolve(&mut self, op: OpId) -> Option<OpRec> {
        let rec = self.op(op)?;
        let r = *rec;
        *rec = OpRec::default();
        Some(r)
    }
}

impl Observer for MetricsObserver {
    fn on_event(&mut self, at: Instant, event: &Event) {
        match *event {
            Event::Queued { op, class, .. } => {
                let c = self.class(class);
                self.classes[c].submitted.increment(1);
                let i = op.index() as usize;
                if i >= self.ops.len() {
                    self.ops.resize(i + 1, OpRec::default());
                }
                self.ops[i] = OpRec {
                    id: op.get(),
                    class: c,
                    queued_at: at,
                    open: Default::default(),
                };
            }
            Event::Started { attempt, hedge, .. } => {
                let Some(rec) = self
                    .ops
                    .get_mut(attempt.op.index() as usize)
                    .filter(|r| r.id == attempt.op.get())
                else {
                    return;
                };
                if let Some(place) = rec.open.iter_mut().find(|o| o.0 == 0) {
                    *place = (attempt.number, at);
                }
                let c = &self.classes[rec.class];
                c.attempts.increment(1);
                if attempt.number == 1 && !hedge {
                    c.started.increment(1);
                }
            }
            Event::Hedged { attempt } => {
                if let Some(m) = self.class_of(attempt.op) {
                    m.hedges.increment(1);
                }
            }
            Event::AttemptFailed { attempt, outcome } => {
                if let Some((c, started)) = self.close(attempt) {
                    let m = &self.classes[c];
                    m.attempt_seconds.record(seconds(started, at));
                    if outcome == SampleOutcome::Throttled {
                        m.throttled.increment(1);
                    }
                }
            }
            Event::TimedOut { attempt } => {
                if let Some((c, _)) = self.close(attempt) {
                    self.classes[c].timed_out.increment(1);
                }
            }
            Event::AttemptCancelled { attempt, .. } => {
                self.close(attempt);
            }
            Event::RetryScheduled { op, .. } => {
                if let Some(m) = self.class_of(op) {
                    m.retries.increment(1);
                }
            }
            Event::Succeeded { op, .. } => {
                let Some(rec) = self.resolve(op) else {
                    return;
                };
                let m = &self.classes[rec.class];
                // The attempt still open is the one that succeeded (a losing
                // hedge was cancelled just before).
                for (n, started) in rec.open {
                    if n != 0 {
                        m.attempt_seconds.record(seconds(started, at));
                    }
                }
                m.succeeded.increment(1);
                m.op_seconds.record(seconds(rec.queued_at, at));
            }
            Event::Failed { op, .. } => {
                if let Some(rec) = self.resolve(op) {
                    let m = &self.classes[rec.class];
                    m.failed.increment(1);
                    m.op_seconds.record(seconds(rec.queued_at, at));
                }
            }
            Event::Cancelled { op, .. } => {
                if let Some(rec) = self.resolve(op) {
                    self.classes[rec.class].cancelled.increment(1);
                }
            }
            Event::Rejected { op, .. } => {
                if let Some(rec) = self.resolve(op) {
                    self.classes[rec.class].rejected.increment(1);
                }
            }
            _ => {}
        }
    }
}
