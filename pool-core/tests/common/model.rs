//! A reference model that drives an [`Engine`] with abstract actions and checks,
//! after every engine call, that the decision and event streams are consistent
//! with the engine's documented behaviour (see `tests/properties.rs`).
//!
//! The model never looks inside the engine: it rebuilds the state (queued ops,
//! running attempts, slots, bytes, retry quota) from the decisions and events
//! alone, then compares it with the engine's introspection after each step.
#![allow(dead_code)]

use core::time::Duration;
use pool_core::retry::QuotaConfig;
use pool_core::*;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// ----- the case: configuration and actions ---------------------------------------

/// One partition of a case. Index 0 is the default partition.
#[derive(Clone, Debug)]
pub struct PartSpec {
    pub limit: Option<u32>,
    pub rate: Option<RateLimit>,
}

/// One class of a case.
#[derive(Clone, Debug)]
pub struct ClassSpec {
    pub class: OpClass,
    pub limit: Option<u32>,
    pub rate: Option<RateLimit>,
}

/// The engine configuration of a case.
#[derive(Clone, Debug)]
pub struct Spec {
    pub limit: u32,
    pub aging_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub max_queued: Option<u64>,
    pub max_bytes: Option<u64>,
    pub partitions: Vec<PartSpec>,
    /// Also submit into an unpinned partition that idles out and is evicted.
    pub dyn_partition: bool,
    pub partition_idle_ms: u64,
    pub classes: Vec<ClassSpec>,
    pub hedge: Option<HedgeConfig>,
    pub retry: RetryConfig,
    pub seed: u64,
}

impl Spec {
    fn has_rate_limits(&self) -> bool {
        self.partitions.iter().any(|p| p.rate.is_some())
            || self.classes.iter().any(|c| c.rate.is_some())
    }
}

/// How the driver ends an attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Success,
    Fail {
        class: ErrorClass,
        retry_after_ms: Option<u32>,
        not_sent: bool,
    },
}

impl Outcome {
    fn to_engine(self) -> AttemptOutcome {
        match self {
            Outcome::Success => AttemptOutcome::Success,
            Outcome::Fail {
                class,
                retry_after_ms,
                not_sent,
            } => AttemptOutcome::Failed(AttemptError {
                class,
                retry_after: retry_after_ms.map(|m| Duration::from_millis(u64::from(m))),
                may_have_reached_server: !not_sent,
            }),
        }
    }
}

/// A submit. Indexes are taken modulo what exists when it is interpreted.
#[derive(Clone, Debug)]
pub struct SubmitSpec {
    pub priority: i32,
    pub class: u8,
    pub partition: u8,
    /// (live ops only, index): the parent, picked among live or all submitted ops.
    pub parent: Option<(bool, u16)>,
    pub bytes: u32,
    pub timeout_ms: Option<u16>,
    pub deadline_ms: Option<u32>,
    pub max_attempts: Option<u8>,
    pub idempotent: bool,
}

impl SubmitSpec {
    pub fn plain(priority: i32) -> Self {
        SubmitSpec {
            priority,
            class: 0,
            partition: 0,
            parent: None,
            bytes: 0,
            timeout_ms: None,
            deadline_ms: None,
            max_attempts: None,
            idempotent: true,
        }
    }
}

/// One abstract step of a case.
#[derive(Clone, Debug)]
pub enum Action {
    Submit(SubmitSpec),
    /// `n` plain submits, priority `(i * mult) % spread - spread / 2`.
    SubmitMany {
        n: u16,
        spread: u16,
        mult: u16,
        lanes: u8,
    },
    /// Finishes a running attempt (picked modulo the running ones).
    Finish {
        pick: u16,
        outcome: Outcome,
        bytes: u32,
    },
    /// Cancels a submitted op (maybe already resolved).
    Cancel {
        pick: u16,
        live_only: bool,
    },
    /// Cancels every `stride`-th submitted op from `offset`, `n` times.
    CancelMany {
        offset: u16,
        stride: u8,
        n: u16,
    },
    /// Reports an attempt that is not running (cancelled, timed out, finished or
    /// never started): must return false and change nothing.
    LateFinish {
        pick: u16,
        mode: u8,
        outcome: Outcome,
    },
    /// Advances to the engine's next timer.
    Tick,
    /// Advances time by this much (firing every timer on the way, on time).
    Advance {
        ms: u32,
    },
    SetLimit(u32),
    SetBounds(u32, u32),
    SetPartitionLimit {
        part: u8,
        limit: Option<u8>,
    },
    SetClassLimit {
        class: u8,
        limit: Option<u8>,
    },
    Pause,
    Resume,
    Shutdown,
    Abort,
}

/// Everything observable of a run, for the determinism property.
#[derive(Debug, Default, PartialEq)]
pub struct Trace {
    pub decisions: Vec<Decision>,
    pub events: Vec<(Instant, Event)>,
    pub results: Vec<String>,
    pub snapshot: String,
    /// How often interesting situations came up (generator coverage).
    pub stats: BTreeMap<&'static str, u64>,
}

impl Trace {
    fn bump(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }
    fn max(&mut self, what: &'static str, v: u64) {
        let e = self.stats.entry(what).or_default();
        *e = (*e).max(v);
    }
}

/// Engine bugs the checker knows about. Each one is reproduced by an ignored test
/// in `tests/properties.rs`; while it is listed in [`TOLERATED`] the matching
/// check is skipped so the other properties keep running. Remove an entry once
/// the engine is fixed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KnownBug {
    /// An op whose backoff ended (re-queued, waiting for a slot) and that is then
    /// cancelled, evicted or misses its deadline keeps its retry-quota cost
    /// instead of getting it back (`leave_waiting` refunds only `WaitingRetry`).
    QueuedRetryNotRefunded,
    /// A hedge may start while its class is at its concurrency limit
    /// (`try_hedge` checks the global and partition limits only).
    HedgeIgnoresClassLimit,
    /// A lane blocked by the bytes budget stays blocked when a better op that
    /// fits becomes its head (a new submit or a cancelled head): the block is
    /// lifted only when an attempt ends, so worse ops of other lanes start first.
    BytesBlockStaysOnNewHead,
    /// A child started on its parent's slot that has queued children of its own
    /// becomes a lend candidate only for the *next* dispatch: its children wait
    /// for an unrelated input, which may never come (nested ops deadlock, F13).
    LendNotTransitive,
    /// A child that failed on a borrowed slot and comes back from its backoff is
    /// not lent its parent's slot again: it waits for a free slot, which a
    /// parent awaiting it may never give up (F13).
    RequeuedChildNotLent,
    /// A submit that evicts the last live op (bounded queue) runs the idle check
    /// before admitting the new op: `Drained` is emitted, and a shutting-down
    /// pool becomes `Closed` although the new op is live.
    EvictionLooksIdle,
}

pub const TOLERATED: &[KnownBug] = &[];

fn tolerated(b: KnownBug) -> bool {
    TOLERATED.contains(&b)
}

// ----- the model ------------------------------------------------------------------

#[derive(Copy, Clone, Debug, PartialEq)]
enum St {
    Queued,
    Running,
    /// Backing off until this instant (ns).
    Waiting(u64),
    /// Its last running attempt failed in this step: a retry or a failure is due.
    Verdict,
    Resolved,
}

#[derive(Copy, Clone, Debug)]
struct Fail {
    class: ErrorClass,
    retry_after: Option<Duration>,
    reached: bool,
    timed_out: bool,
}

#[derive(Clone, Debug)]
struct OpM {
    class: u16,
    part: u32,
    prio: i32,
    key: i64,
    /// Enqueue order (FIFO tie-break); fresh on every (re)enqueue.
    order: u64,
    st: St,
    parent: Option<OpId>,
    idempotent: bool,
    max_attempts: u32,
    timeout_ns: Option<u64>,
    deadline: Option<u64>,
    bytes: u64,
    starts: u32,
    hedged: bool,
    running: BTreeSet<AttemptId>,
    last_fail: Option<Fail>,
    /// Quota cost of the latest granted retry.
    last_cost: Option<u32>,
    /// A retry was granted and has not started yet.
    grant_unused: bool,
}

#[derive(Clone, Debug)]
struct AttM {
    borrowed: bool,
    hedge: bool,
    lender: Option<OpId>,
    started: u64,
    expiry: Option<u64>,
}

#[derive(Clone, Debug)]
struct QuotaM {
    cap: u32,
    avail: u32,
    transient: u32,
    throttle: u32,
    inc: u32,
}

impl QuotaM {
    fn cost(&self, c: ErrorClass) -> u32 {
        if c == ErrorClass::Throttled {
            self.throttle
        } else {
            self.transient
        }
    }
    fn refund(&mut self, n: u32) {
        self.avail = self.avail.saturating_add(n).min(self.cap);
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    submitted: u64,
    started: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
    rejected: u64,
    retried: u64,
    hedged: u64,
    timed_out: u64,
}

/// What the call that produced a step's decisions was.
#[derive(Clone, Debug)]
enum Call {
    Submit {
        id: OpId,
        evict: Option<OpId>,
    },
    Finish {
        attempt: AttemptId,
        outcome: Outcome,
    },
    Cancel {
        op: OpId,
    },
    Abort,
    Other,
}

type Lane = BTreeSet<(i64, u64, OpId)>;

struct Model {
    spec: Spec,
    now: u64,
    ops: BTreeMap<OpId, OpM>,
    ids: Vec<OpId>,
    live: usize,
    running: BTreeMap<AttemptId, AttM>,
    started: BTreeSet<AttemptId>,
    dead: Vec<AttemptId>,
    /// Queued ops per (partition, class) lane, by (key, enqueue order).
    lanes: BTreeMap<(u32, u16), Lane>,
    by_prio: BTreeSet<(i32, Reverse<u64>, OpId)>,
    queued: u64,
    waiting: BTreeSet<(u64, u64, OpId)>,
    wait_seq: u64,
    order: u64,
    deadlines: BTreeSet<(u64, OpId)>,
    expiries: BTreeSet<(u64, AttemptId)>,
    children: BTreeMap<OpId, BTreeSet<OpId>>,
    in_flight: u32,
    part_in: BTreeMap<u32, u32>,
    class_in: BTreeMap<u16, u32>,
    bytes: u64,
    limit: u32,
    bounds: (u32, u32),
    part_limit: BTreeMap<u32, u32>,
    class_limit: BTreeMap<u16, u32>,
    /// Start times (ns) of normal starts per rate-limited scope, newest last.
    part_rate: BTreeMap<u32, (RateLimit, VecDeque<u64>)>,
    class_rate: BTreeMap<u16, (RateLimit, VecDeque<u64>)>,
    paused: bool,
    /// `paused` as of the previous step (for the Paused/Resumed events).
    paused_seen: bool,
    /// Whether `Drained` was emitted since the last accepted submit.
    drained_reported: bool,
    aborted: bool,
    lifecycle: Lifecycle,
    quota: Option<QuotaM>,
    counts: Counts,
    check_priority: bool,
    priority_checks: u64,
}

impl Model {
    fn new(spec: &Spec) -> Model {
        Model {
            spec: spec.clone(),
            now: 0,
            ops: BTreeMap::new(),
            ids: Vec::new(),
            live: 0,
            running: BTreeMap::new(),
            started: BTreeSet::new(),
            dead: Vec::new(),
            lanes: BTreeMap::new(),
            by_prio: BTreeSet::new(),
            queued: 0,
            waiting: BTreeSet::new(),
            wait_seq: 0,
            order: 0,
            deadlines: BTreeSet::new(),
            expiries: BTreeSet::new(),
            children: BTreeMap::new(),
            in_flight: 0,
            part_in: BTreeMap::new(),
            class_in: BTreeMap::new(),
            bytes: 0,
            limit: spec.limit,
            bounds: (1, 10_000),
            part_limit: BTreeMap::new(),
            class_limit: BTreeMap::new(),
            part_rate: BTreeMap::new(),
            class_rate: BTreeMap::new(),
            paused: false,
            paused_seen: false,
            drained_reported: true,
            aborted: false,
            lifecycle: Lifecycle::Open,
            quota: spec.retry.quota.as_ref().map(|q: &QuotaConfig| QuotaM {
                cap: q.capacity,
                avail: q.capacity,
                transient: q.transient_cost,
                throttle: q.throttle_cost,
                inc: q.success_increment,
            }),
            counts: Counts::default(),
            check_priority: !spec.has_rate_limits(),
            priority_checks: 0,
        }
    }

    fn op(&self, id: OpId) -> Result<&OpM, String> {
        self.ops
            .get(&id)
            .ok_or_else(|| format!("unknown op {id:?}"))
    }

    fn is_live(&self, id: OpId) -> bool {
        self.ops.get(&id).is_some_and(|o| o.st != St::Resolved)
    }

    // --- queue bookkeeping ---

    fn enqueue(&mut self, id: OpId) {
        self.order += 1;
        let order = self.order;
        let op = self.ops.get_mut(&id).expect("op");
        op.st = St::Queued;
        op.order = order;
        let (key, prio, lane) = (op.key, op.prio, (op.part, op.class));
        let fresh = op.starts == 0;
        self.lanes.entry(lane).or_default().insert((key, order, id));
        // Only never-started ops count against (and may be evicted by) max_queued.
        if fresh {
            self.by_prio.insert((prio, Reverse(order), id));
        }
        self.queued += 1;
    }

    fn dequeue(&mut self, id: OpId) {
        let op = &self.ops[&id];
        let (key, order, prio, lane) = (op.key, op.order, op.prio, (op.part, op.class));
        let removed = self
            .lanes
            .get_mut(&lane)
            .is_some_and(|s| s.remove(&(key, order, id)));
        assert!(removed, "model: dequeue of an op not queued");
        self.by_prio.remove(&(prio, Reverse(order), id));
        self.queued -= 1;
    }

    /// Backoffs that are over re-enter the queue, in timer order.
    fn requeue_due(&mut self) {
        while let Some(&(at, seq, id)) = self.waiting.first() {
            if at > self.now {
                break;
            }
            self.waiting.remove(&(at, seq, id));
            self.enqueue(id);
        }
    }

    // --- slots ---

    fn take(&mut self, part: u32, class: u16) {
        self.in_flight += 1;
        *self.part_in.entry(part).or_default() += 1;
        *self.class_in.entry(class).or_default() += 1;
    }

    fn release(&mut self, part: u32, class: u16) {
        self.in_flight -= 1;
        *self.part_in.get_mut(&part).expect("part") -= 1;
        *self.class_in.get_mut(&class).expect("class") -= 1;
    }

    fn part_full(&self, part: u32) -> bool {
        self.part_limit
            .get(&part)
            .is_some_and(|&l| self.part_in.get(&part).copied().unwrap_or(0) >= l)
    }

    fn class_full(&self, class: u16) -> bool {
        self.class_limit
            .get(&class)
            .is_some_and(|&l| self.class_in.get(&class).copied().unwrap_or(0) >= l)
    }

    fn bytes_fit(&self, want: u64) -> bool {
        self.spec
            .max_bytes
            .is_none_or(|b| self.bytes == 0 || self.bytes.saturating_add(want) <= b)
    }

    /// Whether a lane whose head wants `bytes` could start it now (no rate limits).
    fn lane_open(&self, part: u32, class: u16, bytes: u64) -> bool {
        !self.part_full(part) && !self.class_full(class) && self.bytes_fit(bytes)
    }

    /// Ends a running attempt: frees what it held, and hands a lent slot on to
    /// the borrowing child when the lender's last attempt ends.
    fn end_attempt(&mut self, a: AttemptId) -> Result<(), String> {
        let att = self
            .running
            .remove(&a)
            .ok_or_else(|| format!("{a:?} ended but it was not running"))?;
        if let Some(e) = att.expiry {
            self.expiries.remove(&(e, a));
        }
        let op = self.ops.get_mut(&a.op).expect("op of attempt");
        op.running.remove(&a);
        let (part, class, bytes, still) = (op.part, op.class, op.bytes, !op.running.is_empty());
        self.bytes -= bytes;
        let my_borrower = if still {
            None
        } else {
            self.running
                .iter()
                .find(|(_, b)| b.borrowed && b.lender == Some(a.op))
                .map(|(id, _)| *id)
        };
        if att.borrowed {
            // The op ran on its lender's slot and lent it on to its own child:
            // the child now borrows straight from that lender.
            if let Some(b) = my_borrower {
                self.running.get_mut(&b).expect("borrower").lender = att.lender;
            }
        } else {
            self.release(part, class);
            // A child running on this op's slot keeps it as its own.
            if let Some(b) = my_borrower {
                let att = self.running.get_mut(&b).expect("borrower");
                att.borrowed = false;
                att.lender = None;
                let (cp, cc) = (self.ops[&b.op].part, self.ops[&b.op].class);
                self.take(cp, cc);
            }
        }
        self.dead.push(a);
        Ok(())
    }

    // --- checks on starts ---

    fn check_rate(
        scope: &mut (RateLimit, VecDeque<u64>),
        now: u64,
        what: &str,
    ) -> Result<(), String> {
        let (limit, starts) = scope;
        starts.push_back(now);
        if starts.len() > 64 {
            starts.pop_front();
        }
        for (i, &s) in starts.iter().enumerate() {
            let n = (starts.len() - i) as f64;
            let allowed = limit.burst + limit.per_second * (now - s) as f64 / 1e9 + 1e-6;
            let within = n <= allowed;
            ensure!(
                within,
                "rate limit of {what} ({limit:?}) exceeded: {n} starts in {} ns",
                now - s
            );
        }
        Ok(())
    }

    fn check_priority(&self, x: OpId) -> Result<(), String> {
        let op = &self.ops[&x];
        let me = (op.key, op.order);
        for (&(p, c), set) in &self.lanes {
            let Some(&(k, o, y)) = set.first() else {
                continue;
            };
            if (k, o) >= me {
                continue;
            }
            // While a bytes block may be in force, the engine may still hold a
            // lane blocked for an earlier head (see the known bug).
            if tolerated(KnownBug::BytesBlockStaysOnNewHead)
                && self.spec.max_bytes.is_some()
                && self.bytes > 0
            {
                continue;
            }
            ensure!(
                !self.lane_open(p, c, self.ops[&y].bytes),
                "priority: started {x:?} (key {}, order {}) while {y:?} (key {k}, order {o}) \
                 headed the open lane (partition {p}, class {c}; {} B wanted, {} B in flight, \
                 partition in flight {:?} of {:?}, class in flight {:?} of {:?})",
                me.0,
                me.1,
                self.ops[&y].bytes,
                self.bytes,
                self.part_in.get(&p),
                self.part_limit.get(&p),
                self.class_in.get(&c),
                self.class_limit.get(&c),
            );
        }
        Ok(())
    }

    fn start(&mut self, attempt: AttemptId, hedge: bool, borrowed: bool) -> Result<(), String> {
        let id = attempt.op;
        ensure!(self.started.insert(attempt), "{attempt:?} started twice");
        ensure!(
            self.is_live(id),
            "start of {attempt:?} whose op is not live"
        );
        ensure!(!self.paused, "start of {attempt:?} while paused");
        ensure!(!self.aborted, "start of {attempt:?} after abort");
        let op = &self.ops[&id];
        ensure!(
            attempt.number == op.starts + 1,
            "{attempt:?} out of sequence: {} attempts started before",
            op.starts
        );
        ensure!(
            attempt.number <= op.max_attempts,
            "{attempt:?} exceeds max_attempts {}",
            op.max_attempts
        );
        let (part, class, bytes) = (op.part, op.class, op.bytes);
        let mut lender = None;
        if hedge {
            ensure!(!borrowed, "hedge {attempt:?} on a borrowed slot");
            ensure!(
                self.spec.hedge.is_some(),
                "hedge {attempt:?} with hedging off"
            );
            ensure!(op.idempotent, "hedge {attempt:?} of a non-idempotent op");
            ensure!(!op.hedged, "second hedge {attempt:?}");
            ensure!(
                op.st == St::Running && op.running.len() == 1,
                "hedge {attempt:?} of an op with {} running attempts ({:?})",
                op.running.len(),
                op.st
            );
            ensure!(
                self.in_flight < self.limit,
                "hedge {attempt:?} with {} in flight at limit {}",
                self.in_flight,
                self.limit
            );
            ensure!(
                !self.part_full(part),
                "hedge {attempt:?} over its partition limit"
            );
            ensure!(
                !self.class_full(class) || tolerated(KnownBug::HedgeIgnoresClassLimit),
                "hedge {attempt:?} over its class limit"
            );
        } else {
            ensure!(
                op.st == St::Queued,
                "start of {attempt:?} whose op is {:?}, not queued",
                op.st
            );
            if borrowed {
                let p = op.parent.ok_or_else(|| {
                    format!("borrowed start of {attempt:?} without a live parent")
                })?;
                let parent = self.op(p)?;
                ensure!(
                    parent.st == St::Running && !parent.running.is_empty(),
                    "{attempt:?} borrowed from {p:?}, which is not running ({:?})",
                    parent.st
                );
                ensure!(
                    !self
                        .running
                        .values()
                        .any(|b| b.borrowed && b.lender == Some(p)),
                    "{attempt:?}: {p:?} lends a second slot"
                );
                // The parent lends to its best queued child whose rate limits
                // have a token: no child outside rate-limited scopes may be better
                // than the chosen one.
                let limited = |o: &OpM| {
                    self.part_rate.contains_key(&o.part) || self.class_rate.contains_key(&o.class)
                };
                let chosen = (self.ops[&id].key, self.ops[&id].order);
                let better_free = self.children.get(&p).and_then(|cs| {
                    cs.iter()
                        .filter(|c| **c != id)
                        .filter_map(|c| {
                            let o = &self.ops[c];
                            (o.st == St::Queued && !limited(o) && (o.key, o.order) < chosen)
                                .then_some(*c)
                        })
                        .next()
                });
                ensure!(
                    better_free.is_none(),
                    "{p:?} lent its slot to {id:?}, not to its better queued child {better_free:?}"
                );
                // A borrowed slot skips concurrency limits and the bytes budget,
                // but not the request-rate limits.
                let (part, class, now) = (op.part, op.class, self.now);
                if let Some(s) = self.part_rate.get_mut(&part) {
                    Self::check_rate(s, now, &format!("partition {part}"))?;
                }
                if let Some(s) = self.class_rate.get_mut(&class) {
                    Self::check_rate(s, now, &format!("class {class}"))?;
                }
                lender = Some(p);
            } else {
                ensure!(
                    self.in_flight < self.limit,
                    "start of {attempt:?} with {} in flight at limit {}",
                    self.in_flight,
                    self.limit
                );
                ensure!(
                    !self.part_full(part),
                    "start of {attempt:?} over the limit of partition {part}"
                );
                ensure!(
                    !self.class_full(class),
                    "start of {attempt:?} over the limit of class {class}"
                );
                ensure!(
                    self.bytes_fit(bytes),
                    "start of {attempt:?} ({bytes} B) over the bytes budget ({} B in flight)",
                    self.bytes
                );
                let now = self.now;
                if let Some(s) = self.part_rate.get_mut(&part) {
                    Self::check_rate(s, now, &format!("partition {part}"))?;
                }
                if let Some(s) = self.class_rate.get_mut(&class) {
                    Self::check_rate(s, now, &format!("class {class}"))?;
                }
                if self.check_priority {
                    self.check_priority(id)?;
                    self.priority_checks += 1;
                }
            }
            self.dequeue(id);
        }
        let now = self.now;
        let op = self.ops.get_mut(&id).expect("op");
        op.starts += 1;
        op.st = St::Running;
        op.running.insert(attempt);
        if hedge {
            op.hedged = true;
            self.counts.hedged += 1;
        } else {
            op.grant_unused = false;
        }
        let expiry = op.timeout_ns.map(|t| now + t);
        if let Some(e) = expiry {
            self.expiries.insert((e, attempt));
        }
        self.running.insert(
            attempt,
            AttM {
                borrowed,
                hedge,
                lender,
                started: now,
                expiry,
            },
        );
        if !borrowed {
            self.take(part, class);
        }
        self.bytes += bytes;
        self.counts.started += 1;
        Ok(())
    }

    // --- retries ---

    /// The documented retry decision (retry.rs `RetryPolicy::decide`), except the
    /// deadline check, which depends on the jitter draw.
    fn predict_retry(&self, op: &OpM, f: &Fail) -> Result<(), NoRetry> {
        if f.class == ErrorClass::Permanent {
            return Err(NoRetry::Permanent);
        }
        if op.starts >= op.max_attempts {
            return Err(NoRetry::AttemptsExhausted);
        }
        if !op.idempotent && f.reached {
            return Err(NoRetry::NotIdempotent);
        }
        if let Some(q) = &self.quota {
            if q.avail < q.cost(f.class) {
                return Err(NoRetry::QuotaExhausted);
            }
        }
        Ok(())
    }

    /// The documented backoff range for a retry after `f` (retry.rs `backoff`).
    fn delay_bounds(&self, op: &OpM, f: &Fail) -> (u64, u64) {
        let r = &self.spec.retry;
        let base = if f.class == ErrorClass::Throttled {
            r.throttle_base_ms
        } else {
            r.transient_base_ms
        } as u128
            * 1_000_000;
        let idx = op.starts.saturating_sub(1);
        let factor = if idx >= 64 { u128::MAX } else { 1u128 << idx };
        let cap = base
            .saturating_mul(factor)
            .min(r.max_backoff_ms as u128 * 1_000_000) as u64;
        match f.retry_after {
            Some(ra) if r.honour_retry_after => {
                let ra = ra.as_nanos() as u64;
                let extra = r.retry_after_max_extra_ms * 1_000_000;
                (ra.min(extra), ra.max(cap).min(cap + extra))
            }
            _ => (0, cap),
        }
    }

    fn retry_scheduled(&mut self, id: OpId, at: Instant) -> Result<(), String> {
        let op = self.op(id)?;
        ensure!(
            op.st == St::Verdict,
            "RetryScheduled for {id:?}, which is {:?} (no failed last attempt)",
            op.st
        );
        ensure!(
            op.running.is_empty(),
            "RetryScheduled for {id:?} with attempts running"
        );
        let f = op.last_fail.expect("verdict has a failure");
        if let Err(why) = self.predict_retry(op, &f) {
            return Err(format!(
                "{id:?} retried although the policy says {why:?} ({f:?})"
            ));
        }
        let at = at.as_nanos();
        ensure!(at >= self.now, "retry of {id:?} scheduled in the past");
        let delay = at - self.now;
        let (lo, hi) = self.delay_bounds(op, &f);
        ensure!(
            (lo..=hi).contains(&delay),
            "backoff of {id:?} after attempt {} ({f:?}) is {delay} ns, outside [{lo}, {hi}]",
            op.starts
        );
        if let Some(d) = op.deadline {
            ensure!(at < d, "retry of {id:?} at {at} is past its deadline {d}");
        }
        let cost = self.quota.as_mut().map(|q| {
            let c = q.cost(f.class);
            q.avail -= c;
            c
        });
        self.wait_seq += 1;
        let seq = self.wait_seq;
        let op = self.ops.get_mut(&id).expect("op");
        op.st = St::Waiting(at);
        op.last_cost = cost;
        op.grant_unused = true;
        self.counts.retried += 1;
        self.waiting.insert((at, seq, id));
        if at <= self.now {
            self.requeue_due();
        }
        Ok(())
    }

    // --- resolution ---

    fn resolved(&mut self, id: OpId, res: Resolution, call: &Call) -> Result<(), String> {
        let op = self.op(id)?.clone();
        ensure!(op.st != St::Resolved, "{id:?} resolved twice ({res:?})");
        ensure!(
            op.running.is_empty(),
            "{id:?} resolved ({res:?}) with attempts running: {:?}",
            op.running
        );
        ensure!(
            res.attempts() == op.starts,
            "{id:?} resolved as {res:?} after {} started attempts",
            op.starts
        );
        let mut refund_grant = true;
        match res {
            Resolution::Succeeded { .. } => {
                ensure!(
                    matches!(call, Call::Finish { attempt, outcome: Outcome::Success } if attempt.op == id),
                    "{id:?} succeeded without a successful attempt ({call:?})"
                );
                if let Some(q) = &mut self.quota {
                    q.refund(op.last_cost.unwrap_or(q.inc));
                }
                refund_grant = false;
                self.counts.succeeded += 1;
            }
            Resolution::Failed {
                cause: FailureCause::DeadlineExceeded,
                ..
            } => {
                let d = op
                    .deadline
                    .ok_or_else(|| format!("{id:?} missed a deadline it has not"))?;
                ensure!(
                    self.now >= d,
                    "{id:?} failed its deadline {d} early, at {}",
                    self.now
                );
                self.counts.failed += 1;
            }
            Resolution::Failed {
                cause:
                    FailureCause::AttemptFailed {
                        last,
                        timed_out,
                        why,
                    },
                ..
            } => {
                ensure!(
                    op.st == St::Verdict,
                    "{id:?} failed ({res:?}) while {:?}",
                    op.st
                );
                let f = op.last_fail.expect("verdict has a failure");
                ensure!(
                    last == f.class && timed_out == f.timed_out,
                    "{id:?} failed with {res:?}, but its last attempt ended {f:?}"
                );
                match self.predict_retry(&op, &f) {
                    Err(want) => ensure!(
                        why == want,
                        "{id:?} failed with {why:?}, the policy says {want:?} ({f:?})"
                    ),
                    Ok(()) => {
                        ensure!(
                            why == NoRetry::DeadlineTooClose,
                            "{id:?} not retried ({why:?}) although the policy allows it ({f:?})"
                        );
                        let d = op.deadline.ok_or_else(|| {
                            format!("{id:?}: DeadlineTooClose without a deadline")
                        })?;
                        let (_, hi) = self.delay_bounds(&op, &f);
                        ensure!(
                            self.now + hi >= d,
                            "{id:?}: DeadlineTooClose although every backoff ends before it"
                        );
                    }
                }
                self.counts.failed += 1;
            }
            Resolution::Cancelled { cause, .. } => {
                match cause {
                    CancelCause::Caller => ensure!(
                        matches!(call, Call::Cancel { op } if *op == id),
                        "{id:?} cancelled by the caller outside a cancel of it ({call:?})"
                    ),
                    CancelCause::Aborted => ensure!(
                        matches!(call, Call::Abort),
                        "{id:?} aborted outside an abort ({call:?})"
                    ),
                }
                self.counts.cancelled += 1;
            }
            Resolution::Rejected { .. } => {
                ensure!(
                    matches!(call, Call::Submit { evict: Some(v), .. } if *v == id),
                    "{id:?} rejected, but the expected eviction was {call:?}"
                );
                self.counts.rejected += 1;
            }
        }
        // Leave the queue or the backoff.
        match op.st {
            St::Queued => self.dequeue(id),
            St::Waiting(at) => {
                let e = self
                    .waiting
                    .iter()
                    .find(|w| w.2 == id)
                    .copied()
                    .expect("waiting entry");
                debug_assert_eq!(e.0, at);
                self.waiting.remove(&e);
            }
            _ => {}
        }
        let engine_refunds =
            matches!(op.st, St::Waiting(_)) || !tolerated(KnownBug::QueuedRetryNotRefunded);
        if refund_grant && op.grant_unused && engine_refunds {
            // A granted retry that never ran gives its tokens back (retry.rs docs).
            if let (Some(q), Some(c)) = (&mut self.quota, op.last_cost) {
                q.refund(c);
            }
        }
        if let Some(d) = op.deadline {
            self.deadlines.remove(&(d, id));
        }
        if let Some(p) = op.parent {
            if let Some(cs) = self.children.get_mut(&p) {
                cs.remove(&id);
            }
        }
        if let Some(cs) = self.children.remove(&id) {
            for c in cs {
                if let Some(o) = self.ops.get_mut(&c) {
                    o.parent = None;
                }
            }
        }
        self.ops.get_mut(&id).expect("op").st = St::Resolved;
        self.live -= 1;
        Ok(())
    }

    fn cancel_decision(
        &mut self,
        attempt: AttemptId,
        reason: CancelReason,
        call: &Call,
    ) -> Result<(), String> {
        let att = self
            .running
            .get(&attempt)
            .ok_or_else(|| format!("Cancel of {attempt:?}, which is not running"))?
            .clone();
        let op = &self.ops[&attempt.op];
        match reason {
            CancelReason::TimedOut => {
                let e = att
                    .expiry
                    .ok_or_else(|| format!("{attempt:?} timed out without a timeout"))?;
                ensure!(self.now >= e, "{attempt:?} timed out early");
            }
            CancelReason::DeadlineExceeded => {
                let d = op
                    .deadline
                    .ok_or_else(|| format!("{attempt:?}: deadline cancel without one"))?;
                ensure!(self.now >= d, "{attempt:?} cancelled before its deadline");
            }
            CancelReason::LostHedge => ensure!(
                matches!(call, Call::Finish { attempt: a, outcome: Outcome::Success } if a.op == attempt.op),
                "{attempt:?} lost a hedge without a winner ({call:?})"
            ),
            CancelReason::OpCancelled => ensure!(
                matches!(call, Call::Cancel { op } if *op == attempt.op),
                "{attempt:?} cancelled outside a cancel of its op ({call:?})"
            ),
            CancelReason::Aborted => {
                ensure!(
                    matches!(call, Call::Abort),
                    "{attempt:?} aborted outside abort"
                )
            }
        }
        if matches!(
            reason,
            CancelReason::TimedOut | CancelReason::DeadlineExceeded
        ) {
            self.counts.timed_out += 1;
        }
        self.end_attempt(attempt)?;
        if reason == CancelReason::TimedOut {
            let op = self.ops.get_mut(&attempt.op).expect("op");
            op.last_fail = Some(Fail {
                class: ErrorClass::Transient,
                retry_after: None,
                reached: true,
                timed_out: true,
            });
            if op.running.is_empty() {
                op.st = St::Verdict;
            }
        }
        Ok(())
    }

    fn decision(&mut self, d: Decision, borrowed: bool, call: &Call) -> Result<(), String> {
        match d {
            Decision::Start { attempt, hedge } => self.start(attempt, hedge, borrowed),
            Decision::Cancel { attempt, reason } => self.cancel_decision(attempt, reason, call),
            Decision::RetryScheduled { op, at } => self.retry_scheduled(op, at),
            Decision::Resolved { op, resolution } => self.resolved(op, resolution, call),
        }
    }
}

// ----- the driver -----------------------------------------------------------------

type Sink = Arc<Mutex<Vec<(Instant, Event)>>>;

/// Drives one engine through a case, checking after every call.
pub struct Driver {
    pub engine: Engine,
    events: Sink,
    pub now: Instant,
    m: Model,
    pub trace: Trace,
    parts: Vec<PartitionId>,
    steps: u64,
    stalled_limit: u64,
}

fn is_decision_event(e: &Event) -> bool {
    matches!(
        e,
        Event::Started { .. }
            | Event::AttemptCancelled { .. }
            | Event::TimedOut { .. }
            | Event::RetryScheduled { .. }
            | Event::Succeeded { .. }
            | Event::Failed { .. }
            | Event::Cancelled { .. }
            | Event::Rejected { .. }
    )
}

/// A coverage label for a decision.
fn decision_kind(d: &Decision, borrowed: bool) -> &'static str {
    match d {
        Decision::Start { hedge: true, .. } => "start: hedge",
        Decision::Start { attempt, .. } if borrowed && attempt.number > 1 => {
            "start: borrowed retry"
        }
        Decision::Start { .. } if borrowed => "start: borrowed",
        Decision::Start { attempt, .. } if attempt.number > 1 => "start: retry",
        Decision::Start { .. } => "start: first",
        Decision::Cancel { reason, .. } => match reason {
            CancelReason::TimedOut => "cancel: timed out",
            CancelReason::DeadlineExceeded => "cancel: deadline",
            CancelReason::LostHedge => "cancel: lost hedge",
            CancelReason::OpCancelled => "cancel: op cancelled",
            CancelReason::Aborted => "cancel: aborted",
        },
        Decision::RetryScheduled { .. } => "retry scheduled",
        Decision::Resolved { resolution, .. } => match resolution {
            Resolution::Succeeded { .. } => "resolved: succeeded",
            Resolution::Failed {
                cause: FailureCause::DeadlineExceeded,
                ..
            } => "resolved: deadline",
            Resolution::Failed {
                cause: FailureCause::AttemptFailed { why, .. },
                ..
            } => match why {
                NoRetry::AttemptsExhausted => "failed: exhausted",
                NoRetry::Permanent => "failed: permanent",
                NoRetry::NotIdempotent => "failed: not idempotent",
                NoRetry::QuotaExhausted => "failed: quota",
                NoRetry::BudgetExhausted => "failed: budget",
                NoRetry::DeadlineTooClose => "failed: deadline too close",
                NoRetry::PoolClosing => "failed: pool closing",
            },
            Resolution::Cancelled {
                cause: CancelCause::Caller,
                ..
            } => "resolved: cancelled",
            Resolution::Cancelled { .. } => "resolved: aborted",
            Resolution::Rejected { .. } => "resolved: evicted",
        },
    }
}

/// Pairs every decision with its event (same order); returns each Start's `borrowed`.
fn pair(ds: &[Decision], evs: &[(Instant, Event)]) -> Result<Vec<bool>, String> {
    let mapped: Vec<&Event> = evs
        .iter()
        .map(|(_, e)| e)
        .filter(|e| is_decision_event(e))
        .collect();
    ensure!(
        mapped.len() == ds.len(),
        "decisions and events disagree:\n  {ds:?}\n  {evs:?}"
    );
    let mut borrowed = Vec::with_capacity(ds.len());
    for (d, e) in ds.iter().zip(mapped) {
        let mut b = false;
        let ok = match (*d, *e) {
            (
                Decision::Start { attempt, hedge },
                Event::Started {
                    attempt: a,
                    hedge: h,
                    borrowed: bb,
                },
            ) => {
                b = bb;
                a == attempt && h == hedge
            }
            (
                Decision::Cancel {
                    attempt,
                    reason: CancelReason::TimedOut,
                },
                Event::TimedOut { attempt: a },
            ) => a == attempt,
            (
                Decision::Cancel { attempt, reason },
                Event::AttemptCancelled {
                    attempt: a,
                    reason: r,
                },
            ) => a == attempt && r == reason && reason != CancelReason::TimedOut,
            (Decision::RetryScheduled { op, at }, Event::RetryScheduled { op: o, at: t }) => {
                op == o && at == t
            }
            (Decision::Resolved { op, resolution }, ev) => match (resolution, ev) {
                (Resolution::Succeeded { attempts }, Event::Succeeded { op: o, attempts: n }) => {
                    o == op && n == attempts
                }
                (
                    Resolution::Failed { attempts, cause },
                    Event::Failed {
                        op: o,
                        attempts: n,
                        cause: c,
                    },
                ) => o == op && n == attempts && c == cause,
                (Resolution::Cancelled { cause, .. }, Event::Cancelled { op: o, cause: c }) => {
                    o == op && c == cause
                }
                (Resolution::Rejected { cause }, Event::Rejected { op: o, cause: c }) => {
                    o == op && c == cause
                }
                _ => false,
            },
            _ => false,
        };
        ensure!(ok, "decision {d:?} paired with event {e:?}");
        borrowed.push(b);
    }
    let hedges = ds
        .iter()
        .filter(|d| matches!(d, Decision::Start { hedge: true, .. }))
        .count();
    let hedged = evs
        .iter()
        .filter(|(_, e)| matches!(e, Event::Hedged { .. }))
        .count();
    ensure!(
        hedges == hedged,
        "{hedges} hedge starts but {hedged} Hedged events"
    );
    Ok(borrowed)
}

impl Driver {
    pub fn new(spec: &Spec) -> Result<Driver, String> {
        let cfg = EngineConfig {
            limit: spec.limit,
            aging_ms: spec.aging_ms,
            timeout_ms: spec.timeout_ms,
            deadline_ms: spec.deadline_ms,
            max_queued: spec.max_queued,
            max_bytes_in_flight: spec.max_bytes,
            partition_idle_ms: spec.partition_idle_ms,
            retry: spec.retry.clone(),
            hedge: spec.hedge.clone(),
            seed: spec.seed,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(cfg).map_err(|e| format!("config: {e}"))?;
        let events: Sink = Arc::default();
        let sink = events.clone();
        engine.set_observer(Box::new(move |at: Instant, ev: &Event| {
            sink.lock().expect("sink").push((at, *ev));
        }));
        let mut m = Model::new(spec);
        let mut parts = Vec::new();
        for (i, p) in spec.partitions.iter().enumerate() {
            let id = if i == 0 {
                PartitionId::DEFAULT
            } else {
                engine.partition(&format!("p{i}"))
            };
            engine
                .set_partition_limit(id, p.limit)
                .map_err(|e| format!("partition limit: {e}"))?;
            engine
                .set_partition_rate(id, p.rate)
                .map_err(|e| format!("partition rate: {e}"))?;
            if let Some(l) = p.limit {
                m.part_limit.insert(id.index(), l);
            }
            if let Some(r) = p.rate {
                m.part_rate.insert(id.index(), (r, VecDeque::new()));
            }
            parts.push(id);
        }
        for c in &spec.classes {
            engine
                .set_class_limit(c.class, c.limit)
                .map_err(|e| format!("class limit: {e}"))?;
            engine
                .set_class_rate(c.class, c.rate)
                .map_err(|e| format!("class rate: {e}"))?;
            if let Some(l) = c.limit {
                m.class_limit.insert(c.class.0, l);
            }
            if let Some(r) = c.rate {
                m.class_rate.insert(c.class.0, (r, VecDeque::new()));
            }
        }
        let mut d = Driver {
            engine,
            events,
            now: Instant::ZERO,
            m,
            trace: Trace::default(),
            parts,
            steps: 0,
            stalled_limit: 2_000_000,
        };
        d.after_call(Call::Other)?;
        Ok(d)
    }

    /// Pulls the step's decisions and events and checks them against the model.
    fn after_call(&mut self, call: Call) -> Result<(), String> {
        self.steps += 1;
        let mut ds = Vec::new();
        while let Some(d) = self.engine.poll_decision() {
            ds.push(d);
        }
        let evs: Vec<(Instant, Event)> = std::mem::take(&mut *self.events.lock().expect("sink"));
        self.trace.decisions.extend_from_slice(&ds);
        self.trace.events.extend_from_slice(&evs);
        let now = self.engine.now();
        ensure!(
            now == self.now,
            "engine time {now:?} != driver time {:?}",
            self.now
        );
        for (at, e) in &evs {
            ensure!(*at == now, "event {e:?} stamped {at:?} at {now:?}");
        }
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("[{:?}] {call:?}", self.now);
            if let Call::Submit { id, .. } = &call {
                let o = &self.m.ops[id];
                eprintln!(
                    "    (lane p{} c{}, prio {}, key {}, {} B, parent {:?})",
                    o.part, o.class, o.prio, o.key, o.bytes, o.parent
                );
            }
            for d in &ds {
                eprintln!("    {d:?}");
            }
        }
        let borrowed = pair(&ds, &evs)?;
        for (d, b) in ds.iter().zip(&borrowed) {
            self.trace.bump(decision_kind(d, *b));
        }
        if self.m.in_flight > self.m.limit {
            self.trace.bump("step: over a lowered limit");
        }
        self.trace.max("max queued", self.m.queued);
        self.trace.max("max running", self.m.running.len() as u64);
        let m = &mut self.m;
        m.now = now.as_nanos();
        m.requeue_due();
        // A completion ends its attempt before anything else of the step.
        if let Call::Finish { attempt, outcome } = &call {
            m.end_attempt(*attempt)?;
            let op = m.ops.get_mut(&attempt.op).expect("op");
            if let Outcome::Fail {
                class,
                retry_after_ms,
                not_sent,
            } = *outcome
            {
                op.last_fail = Some(Fail {
                    class,
                    retry_after: retry_after_ms.map(|ms| Duration::from_millis(u64::from(ms))),
                    reached: !not_sent,
                    timed_out: false,
                });
                if op.running.is_empty() {
                    op.st = St::Verdict;
                }
            }
        }
        for (d, b) in ds.iter().zip(borrowed) {
            m.decision(*d, b, &call)
                .map_err(|e| format!("{e}\n  step decisions: {ds:?}"))?;
        }
        let count = |f: fn(&Event) -> bool| evs.iter().filter(|(_, e)| f(e)).count();
        let life = [
            count(|e| matches!(e, Event::Drained)),
            count(|e| matches!(e, Event::Closed)),
            count(|e| matches!(e, Event::Paused)),
            count(|e| matches!(e, Event::Resumed)),
        ];
        self.end_of_step(&call, life)
    }

    /// Checks that hold between steps, and the model against the engine.
    /// `life`: the step's Drained, Closed, Paused and Resumed events.
    fn end_of_step(&mut self, call: &Call, life: [usize; 4]) -> Result<(), String> {
        let m = &mut self.m;
        let was = m.lifecycle;
        let evicted_last = matches!(call, Call::Submit { evict: Some(_), .. }) && m.live == 1;
        let mut drained = 0;
        if evicted_last && tolerated(KnownBug::EvictionLooksIdle) {
            drained = usize::from(!m.drained_reported);
            if m.lifecycle == Lifecycle::ShuttingDown {
                m.lifecycle = Lifecycle::Closed;
            }
        }
        if m.live == 0 && !m.drained_reported {
            m.drained_reported = true;
            drained = 1;
        }
        if m.lifecycle == Lifecycle::ShuttingDown && m.live == 0 {
            m.lifecycle = Lifecycle::Closed;
        }
        let closed = usize::from(was != Lifecycle::Closed && m.lifecycle == Lifecycle::Closed);
        let paused = usize::from(m.paused && !m.paused_seen);
        let resumed = usize::from(!m.paused && m.paused_seen);
        m.paused_seen = m.paused;
        ensure!(
            life == [drained, closed, paused, resumed],
            "Drained/Closed/Paused/Resumed events {life:?}, expected {:?}",
            [drained, closed, paused, resumed]
        );
        match call {
            Call::Finish { attempt, outcome } => {
                let st = m.ops[&attempt.op].st;
                ensure!(
                    st != St::Verdict,
                    "{:?} failed and got neither retry nor verdict",
                    attempt.op
                );
                if *outcome == Outcome::Success {
                    ensure!(
                        st == St::Resolved,
                        "{:?} succeeded but did not resolve",
                        attempt.op
                    );
                }
            }
            Call::Cancel { op } => {
                ensure!(
                    m.ops[op].st == St::Resolved,
                    "cancelled {op:?} did not resolve"
                );
            }
            Call::Abort => ensure!(m.live == 0, "abort left {} ops live", m.live),
            _ => {}
        }
        // Timers fire on time: nothing is overdue between steps.
        if let Some(&(d, id)) = m.deadlines.first() {
            ensure!(
                d > m.now,
                "{id:?} is live past its deadline ({d} <= {})",
                m.now
            );
        }
        if let Some(&(e, a)) = m.expiries.first() {
            ensure!(
                e > m.now,
                "{a:?} still runs past its timeout ({e} <= {})",
                m.now
            );
        }
        if let Some(&(at, _, id)) = m.waiting.first() {
            ensure!(at > m.now, "{id:?} still backs off past {at}");
        }
        for (a, att) in &m.running {
            ensure!(
                m.ops[&a.op].st == St::Running,
                "{a:?} runs but its op is {:?}",
                m.ops[&a.op].st
            );
            if att.borrowed {
                // A borrowed attempt runs on its lender's slot, so the lender must
                // still hold one.
                let lender = att.lender.expect("borrowed has a lender");
                ensure!(
                    m.ops[&lender].st == St::Running,
                    "{a:?} runs on the slot of {lender:?}, which holds none ({:?})",
                    m.ops[&lender].st
                );
            }
        }
        // Slot lending (F13): a running op with a queued child lends it its slot
        // at once, so an op awaiting its children can never deadlock the pool.
        if !m.paused && !m.aborted {
            for (p, cs) in &m.children {
                if m.ops[p].st != St::Running {
                    continue;
                }
                let lending = m
                    .running
                    .values()
                    .any(|b| b.borrowed && b.lender == Some(*p));
                if lending {
                    continue;
                }
                let on_loan = m.ops[p].running.iter().any(|a| m.running[a].borrowed);
                if on_loan && tolerated(KnownBug::LendNotTransitive) {
                    continue;
                }
                // A child whose partition or class is rate-limited may be waiting
                // for a token: lending waits for it too.
                let missed = cs.iter().find(|c| {
                    let o = &m.ops[*c];
                    let rate_limited =
                        m.part_rate.contains_key(&o.part) || m.class_rate.contains_key(&o.class);
                    let tolerated_requeue =
                        o.starts > 0 && tolerated(KnownBug::RequeuedChildNotLent);
                    o.st == St::Queued && !rate_limited && !tolerated_requeue
                });
                if let Some(c) = missed {
                    return Err(format!(
                        "{p:?} runs with queued child {c:?} but lends it no slot"
                    ));
                }
            }
        }
        let e = &self.engine;
        ensure!(
            e.in_flight() == m.in_flight,
            "in_flight: engine {} model {}",
            e.in_flight(),
            m.in_flight
        );
        ensure!(
            e.running_attempts() as usize == m.running.len(),
            "running attempts: engine {} model {}",
            e.running_attempts(),
            m.running.len()
        );
        ensure!(
            e.queued() == m.queued,
            "queued: engine {} model {}",
            e.queued(),
            m.queued
        );
        ensure!(
            e.waiting_retry() == m.waiting.len() as u64,
            "waiting_retry: engine {} model {}",
            e.waiting_retry(),
            m.waiting.len()
        );
        ensure!(
            e.live_ops() == m.live,
            "live ops: engine {} model {}",
            e.live_ops(),
            m.live
        );
        ensure!(
            e.bytes_in_flight() == m.bytes,
            "bytes in flight: engine {} model {}",
            e.bytes_in_flight(),
            m.bytes
        );
        ensure!(
            e.limit() == m.limit,
            "limit: engine {} model {}",
            e.limit(),
            m.limit
        );
        ensure!(
            e.limit_bounds() == m.bounds,
            "bounds: engine {:?} model {:?}",
            e.limit_bounds(),
            m.bounds
        );
        ensure!(
            e.is_paused() == m.paused,
            "paused: engine {}",
            e.is_paused()
        );
        ensure!(
            e.lifecycle() == m.lifecycle,
            "lifecycle: engine {:?} model {:?}",
            e.lifecycle(),
            m.lifecycle
        );
        let want = if m.live == 0 {
            DrainStatus::Idle
        } else if m.paused && m.running.is_empty() && m.waiting.is_empty() {
            DrainStatus::PausedWithWork
        } else {
            DrainStatus::Busy
        };
        ensure!(
            e.drain_status() == want,
            "drain status: engine {:?} model {want:?}",
            e.drain_status()
        );
        let quota = e.retry_quota_available();
        ensure!(
            quota == m.quota.as_ref().map(|q| q.avail),
            "retry quota: engine {quota:?} model {:?}",
            m.quota.as_ref().map(|q| q.avail)
        );
        if let (Some(q), Some(cfg)) = (quota, &m.spec.retry.quota) {
            ensure!(
                q <= cfg.capacity,
                "retry quota {q} above capacity {}",
                cfg.capacity
            );
        }
        let c = e.metrics().counters();
        let k = &m.counts;
        let got = Counts {
            submitted: c.submitted,
            started: c.started,
            succeeded: c.succeeded,
            failed: c.failed,
            cancelled: c.cancelled,
            rejected: c.rejected,
            retried: c.retried,
            hedged: c.hedged,
            timed_out: c.timed_out,
        };
        ensure!(got == *k, "counters: engine {got:?}\n model {k:?}");
        Ok(())
    }

    /// Fires every timer due at the current time.
    fn settle(&mut self) -> Result<(), String> {
        let mut n = 0u32;
        while let Some(t) = self.engine.poll_timeout() {
            if t > self.now {
                break;
            }
            n += 1;
            ensure!(n < 100_000, "timer storm at {:?}", self.now);
            self.engine.tick(self.now);
            self.after_call(Call::Other)?;
        }
        Ok(())
    }

    /// Moves time to `t`, ticking at every timer on the way.
    pub fn advance_to(&mut self, t: Instant) -> Result<(), String> {
        let mut n = 0u32;
        while let Some(w) = self.engine.poll_timeout() {
            if w > t {
                break;
            }
            n += 1;
            ensure!(n < 1_000_000, "timer storm before {t:?}");
            self.now = self.now.max(w);
            self.engine.tick(self.now);
            self.after_call(Call::Other)?;
        }
        self.now = self.now.max(t);
        self.engine.tick(self.now);
        self.after_call(Call::Other)?;
        self.settle()
    }

    fn pick_op(&self, live_only: bool, k: u16) -> Option<OpId> {
        if live_only {
            let n = self.m.live;
            if n == 0 {
                return None;
            }
            self.m
                .ops
                .iter()
                .filter(|(_, o)| o.st != St::Resolved)
                .nth(k as usize % n)
                .map(|(id, _)| *id)
        } else {
            let n = self.m.ids.len();
            (n > 0).then(|| self.m.ids[k as usize % n])
        }
    }

    pub fn submit(&mut self, s: &SubmitSpec) -> Result<(), String> {
        let spec = &self.m.spec;
        let class = spec.classes[s.class as usize % spec.classes.len()].class;
        let nparts = self.parts.len() + usize::from(spec.dyn_partition);
        let pi = s.partition as usize % nparts;
        let pid = if pi < self.parts.len() {
            self.parts[pi]
        } else {
            self.engine.partition("dyn")
        };
        let parent = s.parent.and_then(|(live, k)| self.pick_op(live, k));
        let mut opts = OpOptions::default()
            .priority(s.priority)
            .class(class)
            .partition(pid)
            .expected_bytes(u64::from(s.bytes));
        opts.timeout = s.timeout_ms.map(|t| Duration::from_millis(u64::from(t)));
        opts.deadline = s.deadline_ms.map(|t| Duration::from_millis(u64::from(t)));
        opts.max_attempts = s.max_attempts.map(u32::from);
        opts.idempotent = s.idempotent;
        opts.parent = parent;
        // What the engine must answer.
        let m = &self.m;
        let invalid = if opts.timeout.is_some_and(|t| t.is_zero()) {
            Some("timeout")
        } else if opts.deadline.is_some_and(|d| d.is_zero())
            || matches!((opts.timeout, opts.deadline), (Some(t), Some(d)) if d < t)
        {
            Some("deadline")
        } else if opts.max_attempts == Some(0) {
            Some("max_attempts")
        } else {
            None
        };
        let full = m
            .spec
            .max_queued
            .is_some_and(|max| m.by_prio.len() as u64 >= max);
        let victim = m.by_prio.first().map(|v| (v.0, v.2));
        // While shutting down gracefully, live ops may still submit children.
        let accepting = match m.lifecycle {
            Lifecycle::Open => true,
            Lifecycle::ShuttingDown => !m.aborted && parent.is_some_and(|p| m.is_live(p)),
            Lifecycle::Closed => false,
        };
        let expect: Result<Option<OpId>, SubmitError> = if !accepting {
            Err(SubmitError::Closed)
        } else if let Some(field) = invalid {
            Err(SubmitError::InvalidOptions {
                field,
                message: String::new(),
            })
        } else if full {
            match victim {
                Some((p, v)) if p < s.priority => Ok(Some(v)),
                _ => Err(SubmitError::QueueFull),
            }
        } else {
            Ok(None)
        };
        let r = self.engine.submit(self.now, opts.clone());
        self.trace.results.push(format!("{r:?}"));
        self.trace.bump(match &r {
            Ok(_) if parent.is_some() => "submit: ok with parent",
            Ok(_) => "submit: ok",
            Err(SubmitError::Closed) => "submit: closed",
            Err(SubmitError::QueueFull) => "submit: queue full",
            Err(SubmitError::InvalidOptions { .. }) => "submit: invalid",
            Err(SubmitError::UnknownPartition) => "submit: unknown partition",
        });
        match (r, expect) {
            (Ok(id), Ok(evict)) => {
                ensure!(
                    !self.m.ops.contains_key(&id),
                    "submit returned a used id {id:?}"
                );
                let m = &mut self.m;
                let now = m.now;
                let key = match m.spec.aging_ms {
                    Some(q) => {
                        let k =
                            i128::from(now) - i128::from(s.priority) * i128::from(q) * 1_000_000;
                        i64::try_from(k).expect("key in range")
                    }
                    None => -i64::from(s.priority),
                };
                let timeout = opts
                    .timeout
                    .or(m.spec.timeout_ms.map(Duration::from_millis));
                let deadline = opts
                    .deadline
                    .or(m.spec.deadline_ms.map(Duration::from_millis));
                let parent = parent.filter(|p| m.is_live(*p));
                let op = OpM {
                    class: class.0,
                    part: pid.index(),
                    prio: s.priority,
                    key,
                    order: 0,
                    st: St::Queued,
                    parent,
                    idempotent: s.idempotent,
                    max_attempts: opts
                        .max_attempts
                        .map_or(m.spec.retry.max_attempts, |n| n.min(u32::from(u16::MAX))),
                    timeout_ns: timeout.map(|t| t.as_nanos() as u64),
                    deadline: deadline.map(|d| now + d.as_nanos() as u64),
                    bytes: u64::from(s.bytes),
                    starts: 0,
                    hedged: false,
                    running: BTreeSet::new(),
                    last_fail: None,
                    last_cost: None,
                    grant_unused: false,
                };
                if let Some(d) = op.deadline {
                    m.deadlines.insert((d, id));
                }
                m.ops.insert(id, op);
                m.ids.push(id);
                m.live += 1;
                m.drained_reported = false;
                m.counts.submitted += 1;
                if let Some(p) = parent {
                    m.children.entry(p).or_default().insert(id);
                }
                // The victim, if any, leaves the queue with its Resolved decision.
                m.requeue_due();
                m.enqueue(id);
                self.after_call(Call::Submit { id, evict })
            }
            (Err(e), Err(want)) => {
                let same = match (&e, &want) {
                    (
                        SubmitError::InvalidOptions { field, .. },
                        SubmitError::InvalidOptions { field: f, .. },
                    ) => field == f,
                    _ => e == want,
                };
                ensure!(same, "submit {opts:?}: got {e:?}, expected {want:?}");
                if e == SubmitError::QueueFull {
                    self.m.counts.submitted += 1;
                    self.m.counts.rejected += 1;
                }
                self.after_call(Call::Other)
            }
            (r, want) => Err(format!("submit {opts:?}: got {r:?}, expected {want:?}")),
        }
    }

    /// Interprets one action, then fires whatever became due.
    pub fn act(&mut self, a: &Action) -> Result<(), String> {
        match a {
            Action::Submit(s) => self.submit(s)?,
            Action::SubmitMany {
                n,
                spread,
                mult,
                lanes,
            } => {
                let spread = u32::from(*spread).max(1);
                for i in 0..u32::from(*n) {
                    let mut s = SubmitSpec::plain(
                        ((i * u32::from(*mult)) % spread) as i32 - (spread / 2) as i32,
                    );
                    s.class = (i % u32::from((*lanes).max(1))) as u8;
                    s.partition = (i / 3 % u32::from((*lanes).max(1))) as u8;
                    self.submit(&s)?;
                }
            }
            Action::Finish {
                pick,
                outcome,
                bytes,
            } => {
                let n = self.m.running.len();
                if n > 0 {
                    let attempt = *self.m.running.keys().nth(*pick as usize % n).expect("nth");
                    let ok = self.engine.attempt_finished(
                        self.now,
                        attempt,
                        outcome.to_engine(),
                        u64::from(*bytes),
                    );
                    self.trace.results.push(format!("finish {ok}"));
                    ensure!(
                        ok,
                        "attempt_finished({attempt:?}) of a running attempt returned false"
                    );
                    self.after_call(Call::Finish {
                        attempt,
                        outcome: *outcome,
                    })?;
                }
            }
            Action::Cancel { pick, live_only } => {
                if let Some(op) = self.pick_op(*live_only, *pick) {
                    self.cancel(op)?;
                }
            }
            Action::CancelMany { offset, stride, n } => {
                let len = self.m.ids.len();
                if len > 0 {
                    for k in 0..usize::from(*n) {
                        let i = (usize::from(*offset) + k * usize::from((*stride).max(1))) % len;
                        self.cancel(self.m.ids[i])?;
                    }
                }
            }
            Action::LateFinish {
                pick,
                mode,
                outcome,
            } => self.late_finish(*pick, *mode, *outcome)?,
            Action::Tick => {
                let t = self.engine.poll_timeout().unwrap_or(self.now).max(self.now);
                self.advance_to(t)?;
            }
            Action::Advance { ms } => {
                let t = self.now + Duration::from_millis(u64::from(*ms));
                self.advance_to(t)?;
            }
            Action::SetLimit(l) => {
                let (min, max) = self.m.bounds;
                let ok = *l != 0 && *l >= min && *l <= max;
                let r = self.engine.set_limit(self.now, *l);
                ensure!(
                    r.is_ok() == ok,
                    "set_limit({l}) in [{min}, {max}] gave {r:?}"
                );
                if ok {
                    self.m.limit = *l;
                }
                self.after_call(Call::Other)?;
            }
            Action::SetBounds(min, max) => {
                let ok = *min != 0 && min <= max;
                let r = self.engine.set_limit_bounds(self.now, *min, *max);
                ensure!(r.is_ok() == ok, "set_limit_bounds({min}, {max}) gave {r:?}");
                if ok {
                    self.m.bounds = (*min, *max);
                    self.m.limit = self.m.limit.clamp(*min, *max);
                }
                self.after_call(Call::Other)?;
            }
            Action::SetPartitionLimit { part, limit } => {
                let id = self.parts[*part as usize % self.parts.len()];
                let limit = limit.map(u32::from);
                let (min, max) = self.m.bounds;
                let ok = limit.is_none_or(|l| l != 0 && l >= min && l <= max);
                let r = self.engine.set_partition_limit(id, limit);
                ensure!(r.is_ok() == ok, "set_partition_limit({limit:?}) gave {r:?}");
                if ok {
                    match limit {
                        Some(l) => self.m.part_limit.insert(id.index(), l),
                        None => self.m.part_limit.remove(&id.index()),
                    };
                }
                self.after_call(Call::Other)?;
            }
            Action::SetClassLimit { class, limit } => {
                let cs = &self.m.spec.classes;
                let c = cs[*class as usize % cs.len()].class;
                let limit = limit.map(u32::from);
                let (min, max) = self.m.bounds;
                let ok = limit.is_none_or(|l| l != 0 && l >= min && l <= max);
                let r = self.engine.set_class_limit(c, limit);
                ensure!(r.is_ok() == ok, "set_class_limit({limit:?}) gave {r:?}");
                if ok {
                    match limit {
                        Some(l) => self.m.class_limit.insert(c.0, l),
                        None => self.m.class_limit.remove(&c.0),
                    };
                }
                self.after_call(Call::Other)?;
            }
            Action::Pause => {
                self.engine.pause(self.now);
                self.m.paused = true;
                self.after_call(Call::Other)?;
            }
            Action::Resume => {
                self.engine.resume(self.now);
                self.m.paused = false;
                self.after_call(Call::Other)?;
            }
            Action::Shutdown => {
                self.engine.shutdown(self.now);
                if self.m.lifecycle == Lifecycle::Open {
                    self.m.lifecycle = Lifecycle::ShuttingDown;
                }
                self.after_call(Call::Other)?;
            }
            Action::Abort => {
                self.engine.abort(self.now);
                if self.m.lifecycle == Lifecycle::Open {
                    self.m.lifecycle = Lifecycle::ShuttingDown;
                }
                self.m.aborted = true;
                self.after_call(Call::Abort)?;
            }
        }
        self.settle()
    }

    fn cancel(&mut self, op: OpId) -> Result<(), String> {
        let live = self.m.is_live(op);
        let r = self.engine.cancel(self.now, op);
        self.trace.results.push(format!("cancel {r}"));
        ensure!(
            r == live,
            "cancel({op:?}) returned {r}, but the op is live: {live}"
        );
        self.trace.bump(match self.m.ops[&op].st {
            St::Queued => "cancel: queued",
            St::Waiting(_) => "cancel: backing off",
            St::Resolved => "cancel: resolved",
            _ => "cancel: running",
        });
        self.after_call(if live {
            Call::Cancel { op }
        } else {
            Call::Other
        })
    }

    fn late_finish(&mut self, pick: u16, mode: u8, outcome: Outcome) -> Result<(), String> {
        let attempt = match mode % 3 {
            0 if !self.m.dead.is_empty() => self.m.dead[pick as usize % self.m.dead.len()],
            1 | 0 => match self.pick_op(false, pick) {
                Some(op) => AttemptId {
                    op,
                    number: self.m.ops[&op].starts + 1,
                },
                None => return Ok(()),
            },
            _ => match self.pick_op(false, pick) {
                Some(op) => AttemptId { op, number: 0 },
                None => return Ok(()),
            },
        };
        ensure!(
            !self.m.running.contains_key(&attempt),
            "model: late pick is running"
        );
        let before = (
            serde_json::to_string(&self.engine.snapshot()).expect("json"),
            self.engine.gauges(),
            self.engine.retry_quota_available(),
            self.engine.poll_timeout(),
        );
        let ok = self
            .engine
            .attempt_finished(self.now, attempt, outcome.to_engine(), 7);
        ensure!(!ok, "late attempt_finished({attempt:?}) returned true");
        if tolerated(KnownBug::LendNotTransitive) {
            // Any input serves lend candidates left over from the previous one.
            let deferred_lends = self.engine.metrics().counters().started != self.m.counts.started;
            if deferred_lends {
                return self.after_call(Call::Other);
            }
        }
        let after = (
            serde_json::to_string(&self.engine.snapshot()).expect("json"),
            self.engine.gauges(),
            self.engine.retry_quota_available(),
            self.engine.poll_timeout(),
        );
        ensure!(
            before == after,
            "late attempt_finished({attempt:?}) changed the engine:\n  {before:?}\n  {after:?}"
        );
        let quiet =
            self.engine.poll_decision().is_none() && self.events.lock().expect("sink").is_empty();
        ensure!(
            quiet,
            "late attempt_finished({attempt:?}) produced decisions or events"
        );
        self.after_call(Call::Other)
    }

    /// Finishes everything: resume, then complete every running attempt with
    /// success and follow the timers until the engine has nothing left.
    pub fn drain(&mut self) -> Result<(), String> {
        if self.m.paused && !self.m.aborted {
            self.act(&Action::Resume)?;
        }
        let mut rounds = 0u64;
        loop {
            rounds += 1;
            ensure!(rounds < self.stalled_limit, "drain does not end");
            if let Some((&attempt, _)) = self.m.running.iter().next() {
                let ok =
                    self.engine
                        .attempt_finished(self.now, attempt, AttemptOutcome::Success, 0);
                ensure!(
                    ok,
                    "drain: {attempt:?} was running but finishing it returned false"
                );
                self.after_call(Call::Finish {
                    attempt,
                    outcome: Outcome::Success,
                })?;
                self.settle()?;
            } else if let Some(t) = self.engine.poll_timeout() {
                let t = t.max(self.now);
                self.advance_to(t)?;
            } else {
                break;
            }
        }
        let m = &self.m;
        ensure!(m.live == 0, "drained with {} ops live", m.live);
        for id in &m.ids {
            ensure!(m.ops[id].st == St::Resolved, "{id:?} never resolved");
        }
        let c = *self.engine.metrics().counters();
        ensure!(
            c.submitted == c.succeeded + c.failed + c.cancelled + c.rejected,
            "conservation: {c:?}"
        );
        ensure!(
            self.engine.drain_status() == DrainStatus::Idle,
            "not idle after drain"
        );
        ensure!(
            self.engine.in_flight() == 0
                && self.engine.running_attempts() == 0
                && self.engine.bytes_in_flight() == 0,
            "resources left after drain: {:?}",
            self.engine
        );
        if let (Some(q), Some(m)) = (self.engine.retry_quota_available(), &self.m.quota) {
            ensure!(q <= m.cap, "quota above capacity");
        }
        self.trace.snapshot = serde_json::to_string(&self.engine.snapshot()).expect("json");
        let checks = self.m.priority_checks;
        self.trace.stats.insert("priority checks", checks);
        Ok(())
    }
}

/// Runs a case to the end (drain, unless aborted, where everything resolved at
/// once) and returns its trace, or the first violated property.
pub fn run(spec: &Spec, actions: &[Action]) -> Result<Trace, String> {
    let mut d = Driver::new(spec)?;
    for (i, a) in actions.iter().enumerate() {
        d.act(a)
            .map_err(|e| format!("action #{i} {a:?} at {:?}: {e}", d.now))?;
    }
    d.drain()
        .map_err(|e| format!("drain at {:?}: {e}", d.now))?;
    Ok(d.trace)
}
