//! The engine: a deterministic state machine. Inputs carry the current [`Instant`];
//! outputs are [`Decision`]s (pulled with [`Engine::poll_decision`]), the next
//! wake-up ([`Engine::poll_timeout`]) and [`Event`]s for an observer. It never reads
//! a clock, sleeps, spawns or draws randomness it was not seeded with.
//!
//! Every input first fires the timers due at its `now` (timeouts, deadlines,
//! backoffs, hedges), then applies itself, then dispatches what became runnable.

mod finish;
mod options;
mod run;
mod scopes;
mod state;

pub use options::{DrainStatus, Lifecycle, OpOptions, PartitionId, SubmitError};

use crate::class::OpClass;
use crate::config::{ConfigError, EngineConfig};
use crate::control::{Controller, ControllerFactory, RateGate, RateGateFactory};
use crate::event::{Event, Observer};
use crate::metrics::{Gauges, Metrics, MetricsSnapshot};
use crate::outcome::{AttemptId, AttemptOutcome, CancelCause, Decision, OpId, Resolution};
use crate::queue::{Entry, Queue};
use crate::retry::RetryPolicy;
use crate::slab::Slab;
use crate::time::{duration_nanos, Instant};
use crate::timers::Timers;
use core::num::NonZeroU32;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use state::{flags, Attempt, ClassState, Op, OpState, Partition, NEVER, NONE};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// The scheduling engine: a sans-IO state machine (see `ARCHITECTURE.md` and
/// `docs/engine.md` for the decisions it makes and why).
pub struct Engine {
    cfg: EngineConfig,
    now: Instant,
    ops: Slab<Op>,
    attempts: Slab<Attempt>,
    next_gen: u32,
    next_attempt_uid: u32,
    queue: Queue,
    timers: Timers,
    decisions: VecDeque<Decision>,
    events: Vec<(Instant, Event)>,
    observer: Option<Box<dyn Observer>>,
    metrics: Metrics,
    retry: RetryPolicy,
    rng: ChaCha8Rng,
    // Limits and usage.
    limit: u32,
    min_limit: u32,
    max_limit: u32,
    /// Slots taken (borrowed child slots excluded: counted once, by the parent).
    in_flight: u32,
    running_attempts: u32,
    bytes_in_flight: u64,
    waiting_retry: u64,
    // Scopes.
    partitions: Vec<Option<Partition>>,
    /// Generation of each partition slot (kept across eviction to spot stale ids).
    partition_gens: Vec<u32>,
    partition_index: HashMap<Box<str>, u32>,
    free_partitions: Vec<u32>,
    free_lanes: Vec<u32>,
    classes: Vec<ClassState>,
    controller: Option<Box<dyn Controller>>,
    gate: Option<Box<dyn RateGate>>,
    partition_controllers: Option<ControllerFactory>,
    partition_gates: Option<RateGateFactory>,
    external: Option<f64>,
    /// Classes with a controller attached.
    class_controllers: u32,
    // Nesting.
    children: BTreeMap<u32, Vec<u32>>,
    lend_candidates: BTreeSet<u32>,
    /// Lender op slot → the attempt slot running on its slot.
    loans: BTreeMap<u32, u32>,
    // Hedging budget (tokens; a hedge costs 1).
    hedge_tokens: f64,
    // Bounded queue: (priority, newest-first order, slot) of queued ops.
    by_priority: Option<BTreeSet<(i32, u32, u32)>>,
    // Lifecycle.
    paused: bool,
    lifecycle: Lifecycle,
    aborted: bool,
    drained_reported: bool,
    /// Inside `submit`: an eviction must not look like the pool went idle.
    admitting: bool,
    /// A slot, byte or token was released: blocked lanes must be re-checked.
    recheck: bool,
    sweep_pending: bool,
}

/// The number of a live op's slot and generation, packed into an [`OpId`].
fn op_id(slot: u32, gen: NonZeroU32) -> OpId {
    OpId((u64::from(gen.get()) << 32) | u64::from(slot))
}

fn split_id(id: OpId) -> (u32, u32) {
    (id.0 as u32, (id.0 >> 32) as u32)
}

impl Engine {
    /// A new engine at time zero. Fails with the first invalid config field.
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let by_priority = cfg.max_queued.map(|_| BTreeSet::new());
        let mut metrics = Metrics::new(&cfg.metrics);
        if cfg.hedge.is_some() {
            metrics.keep_attempt_histogram();
        }
        let mut e = Engine {
            now: Instant::ZERO,
            ops: Slab::new(),
            attempts: Slab::new(),
            next_gen: 1,
            next_attempt_uid: 0,
            queue: Queue::new(),
            timers: Timers::new(),
            decisions: VecDeque::new(),
            events: Vec::new(),
            observer: None,
            metrics,
            retry: RetryPolicy::new(cfg.retry.clone()),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            limit: cfg.limit,
            min_limit: cfg.min_limit,
            max_limit: cfg.max_limit,
            in_flight: 0,
            running_attempts: 0,
            bytes_in_flight: 0,
            waiting_retry: 0,
            partitions: Vec::new(),
            partition_gens: Vec::new(),
            partition_index: HashMap::new(),
            free_partitions: Vec::new(),
            free_lanes: Vec::new(),
            classes: Vec::new(),
            controller: None,
            gate: None,
            partition_controllers: None,
            partition_gates: None,
            external: None,
            class_controllers: 0,
            children: BTreeMap::new(),
            lend_candidates: BTreeSet::new(),
            loans: BTreeMap::new(),
            hedge_tokens: 0.0,
            by_priority,
            paused: false,
            lifecycle: Lifecycle::Open,
            aborted: false,
            drained_reported: true,
            admitting: false,
            recheck: false,
            sweep_pending: false,
            cfg,
        };
        e.init_scopes();
        Ok(e)
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    // ----- outputs -------------------------------------------------------------

    /// The next decision for the driver, in order.
    // Inline across crates: the driver calls it several times per op, and the
    // call costs more than the pop.
    #[inline]
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }

    /// When the engine next needs [`Engine::tick`], if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_at()
    }

    /// Sets the observer that receives every event.
    pub fn set_observer(&mut self, observer: Box<dyn Observer>) {
        self.observer = Some(observer);
    }

    // ----- inputs ---------------------------------------------------------------

    /// Submits an op. It is queued (and maybe started at once: see the decisions).
    pub fn submit(&mut self, now: Instant, opts: OpOptions) -> Result<OpId, SubmitError> {
        self.advance(now);
        self.admitting = true;
        let r = self.submit_inner(opts);
        self.admitting = false;
        // An eviction may have resolved the last other op: only now, with the
        // new op admitted (or refused), is "idle" meaningful.
        self.check_idle();
        self.dispatch();
        self.flush_events();
        r
    }

    /// Reports how an attempt ended. Returns `false` (and changes nothing) when the
    /// attempt is no longer running: it was cancelled, timed out or lost a hedge,
    /// so a late report is never counted twice.
    pub fn attempt_finished(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        outcome: AttemptOutcome,
        bytes: u64,
    ) -> bool {
        self.advance(now);
        let taken = self.finish_attempt(attempt, outcome, bytes);
        self.dispatch();
        self.flush_events();
        taken
    }

    /// Cancels an op: a queued op is removed, a running one has its attempts
    /// cancelled. Returns `false` if the op had already resolved.
    pub fn cancel(&mut self, now: Instant, op: OpId) -> bool {
        self.advance(now);
        let done = self.cancel_op(op, CancelCause::Caller);
        self.dispatch();
        self.flush_events();
        done
    }

    /// Fires due timers and dispatches. Call at (or after) [`Engine::poll_timeout`].
    pub fn tick(&mut self, now: Instant) {
        self.advance(now);
        self.dispatch();
        self.flush_events();
    }

    /// Sets the global concurrency limit (within the bounds). Raising it starts
    /// more at once; lowering it never stops running attempts. An attached global
    /// controller continues from this value.
    pub fn set_limit(&mut self, now: Instant, limit: u32) -> Result<(), ConfigError> {
        if limit == 0 || limit < self.min_limit || limit > self.max_limit {
            return Err(ConfigError::new(
                "limit",
                format!(
                    "limit must be within [{}, {}] (got {limit})",
                    self.min_limit, self.max_limit
                ),
            ));
        }
        self.advance(now);
        if let Some(c) = self.controller.as_mut() {
            c.on_limit_overridden(limit);
        }
        self.apply_global_limit(limit);
        self.dispatch();
        self.flush_events();
        Ok(())
    }

    /// Bounds every limit (global, partition, class; manual or controller-set).
    pub fn set_limit_bounds(
        &mut self,
        now: Instant,
        min: u32,
        max: u32,
    ) -> Result<(), ConfigError> {
        if min == 0 {
            return Err(ConfigError::new("min_limit", "must be >= 1"));
        }
        if min > max {
            return Err(ConfigError::new(
                "min_limit",
                format!("min_limit ({min}) > max_limit ({max})"),
            ));
        }
        self.advance(now);
        self.min_limit = min;
        self.max_limit = max;
        let clamped = self.limit.clamp(min, max);
        if clamped != self.limit {
            if let Some(c) = self.controller.as_mut() {
                c.on_limit_overridden(clamped);
            }
            self.apply_global_limit(clamped);
        }
        self.dispatch();
        self.flush_events();
        Ok(())
    }

    /// Stops starting attempts (running ones go on; submits are still accepted).
    pub fn pause(&mut self, now: Instant) {
        self.advance(now);
        if !self.paused {
            self.paused = true;
            self.emit(Event::Paused);
        }
        self.flush_events();
    }

    /// Starts dispatching again.
    pub fn resume(&mut self, now: Instant) {
        self.advance(now);
        if self.paused {
            self.paused = false;
            self.emit(Event::Resumed);
        }
        self.dispatch();
        self.flush_events();
    }

    /// Graceful shutdown: refuse new submits, finish everything accepted.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance(now);
        if self.lifecycle == Lifecycle::Open {
            self.lifecycle = Lifecycle::ShuttingDown;
            self.emit(Event::ShuttingDown);
            self.check_idle();
        }
        self.dispatch();
        self.flush_events();
    }

    /// Abort: queued and waiting ops resolve Cancelled, running attempts are
    /// cancelled, nothing new is accepted.
    pub fn abort(&mut self, now: Instant) {
        self.advance(now);
        if !self.aborted {
            self.aborted = true;
            if self.lifecycle == Lifecycle::Open {
                self.lifecycle = Lifecycle::ShuttingDown;
            }
            self.emit(Event::Aborted);
            let live: Vec<(u32, NonZeroU32)> = self.ops.iter().map(|(s, o)| (s, o.gen)).collect();
            for (slot, gen) in live {
                self.cancel_op(op_id(slot, gen), CancelCause::Aborted);
            }
            self.check_idle();
        }
        self.flush_events();
    }

    /// Feeds the external input controllers may read (e.g. memory pressure).
    pub fn set_external_input(&mut self, value: Option<f64>) {
        self.external = value.filter(|v| v.is_finite());
    }

    // ----- introspection ------------------------------------------------------

    /// The engine's latest time.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// The global concurrency limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }
    /// The bounds of every limit.
    pub fn limit_bounds(&self) -> (u32, u32) {
        (self.min_limit, self.max_limit)
    }
    /// Slots taken (a child on its parent's slot is not counted again).
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
    /// Attempts running, borrowed ones included.
    pub fn running_attempts(&self) -> u32 {
        self.running_attempts
    }
    /// Ops waiting in the queue.
    pub fn queued(&self) -> u64 {
        self.queue.len
    }
    /// Ops waiting for their backoff to end (they hold no slot).
    pub fn waiting_retry(&self) -> u64 {
        self.waiting_retry
    }
    /// Declared bytes of running attempts.
    pub fn bytes_in_flight(&self) -> u64 {
        self.bytes_in_flight
    }
    /// Ops submitted and not yet resolved.
    pub fn live_ops(&self) -> usize {
        self.ops.len()
    }
    /// The slot index ([`OpId::index`]) of the queued op most likely to start
    /// next (possibly stale): the async pool prefetches that op's mailbox, whose
    /// first read would otherwise be a cache miss on the next completion's path.
    pub(crate) fn next_start_slot(&self) -> Option<u32> {
        self.queue.next_slot()
    }
    /// Whether dispatch is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }
    /// The life stage.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    /// What a `drain` should do now.
    pub fn drain_status(&self) -> DrainStatus {
        if self.ops.len() == 0 {
            DrainStatus::Idle
        } else if self.paused && self.running_attempts == 0 && self.waiting_retry == 0 {
            DrainStatus::PausedWithWork
        } else {
            DrainStatus::Busy
        }
    }
    /// Live metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// A serialisable metrics snapshot.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.metrics.snapshot(self.now, self.gauges())
    }
    /// The current gauges.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            limit: self.limit,
            in_flight: self.in_flight,
            queued: self.queue.len,
            waiting_retry: self.waiting_retry,
            bytes_in_flight: self.bytes_in_flight,
            paused: self.paused,
        }
    }
    /// Retry-quota tokens left, if the quota is on.
    pub fn retry_quota_available(&self) -> Option<u32> {
        self.retry.quota_available()
    }
    /// Whether `op` is still live (not yet resolved).
    pub fn is_live(&self, op: OpId) -> bool {
        self.op_slot(op).is_some()
    }

    // ----- internals shared by the submodules ----------------------------------

    fn op_slot(&self, id: OpId) -> Option<u32> {
        let (slot, gen) = split_id(id);
        match self.ops.get(slot) {
            Some(op) if op.gen.get() == gen => Some(slot),
            _ => None,
        }
    }

    fn id_of(&self, slot: u32) -> OpId {
        op_id(slot, self.ops.get(slot).expect("live op").gen)
    }

    /// Moves time forward (never back) and fires due timers.
    #[inline]
    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        if !self.timers.is_empty() {
            self.fire_due();
        }
    }

    /// The out-of-line part of [`Engine::advance`]: a pool without timeouts,
    /// deadlines or backoffs has no timer pending and never gets here.
    #[inline(never)]
    fn fire_due(&mut self) {
        while let Some(kind) = self.timers.pop_due(self.now) {
            self.fire(kind);
        }
    }

    // The check is inlined, the buffering is not: without an observer (the
    // common case) each emit site costs a compare, not a `Vec::push` in line.
    #[inline]
    fn emit(&mut self, event: Event) {
        if self.observer.is_some() {
            self.buffer_event(event);
        }
    }

    #[cold]
    #[inline(never)]
    fn buffer_event(&mut self, event: Event) {
        self.events.push((self.now, event));
    }

    /// Delivers buffered events; a panicking observer is counted, not propagated.
    /// Called at the end of every input, so it also prunes stale timers: the
    /// wake-up the driver sees is then a real one.
    #[inline]
    fn flush_events(&mut self) {
        if !self.timers.is_empty() {
            let (ops, attempts) = (&self.ops, &self.attempts);
            self.timers.prune(|k| timer_live(ops, attempts, k));
        }
        if !self.events.is_empty() {
            self.deliver_events();
        }
    }

    /// The out-of-line part of [`Engine::flush_events`]: only runs with an
    /// observer set (events are buffered only then).
    #[inline(never)]
    fn deliver_events(&mut self) {
        let Some(obs) = self.observer.as_mut() else {
            self.events.clear();
            return;
        };
        for (at, ev) in self.events.drain(..) {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obs.on_event(at, &ev)));
            if r.is_err() {
                self.metrics.record_observer_panic();
            }
        }
    }

    fn submit_inner(&mut self, opts: OpOptions) -> Result<OpId, SubmitError> {
        // During a graceful shutdown, running ops may still submit children (they
        // are part of the work being finished); nothing else is accepted.
        let child_of_live = opts.parent.is_some_and(|p| self.op_slot(p).is_some());
        let accepting = match self.lifecycle {
            Lifecycle::Open => true,
            Lifecycle::ShuttingDown => !self.aborted && child_of_live,
            Lifecycle::Closed => false,
        };
        if !accepting {
            return Err(SubmitError::Closed);
        }
        validate_options(&opts)?;
        let part = opts.partition;
        match self.partitions.get(part.index as usize) {
            Some(Some(p)) if p.gen == part.gen => {}
            _ => return Err(SubmitError::UnknownPartition),
        }
        if self.by_priority.is_some() && !self.admit_bounded(opts.priority, opts.class) {
            return Err(SubmitError::QueueFull);
        }
        let now = self.now.as_nanos();
        let gen = NonZeroU32::new(self.next_gen).unwrap_or(NonZeroU32::MIN);
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let timeout = opts.timeout.or(self.cfg.timeout());
        let deadline = opts.deadline.or(self.cfg.deadline());
        let parent = opts.parent.and_then(|p| self.op_slot(p)).unwrap_or(NONE);
        let op = Op {
            gen,
            state: OpState::Queued,
            flags: if opts.idempotent {
                flags::IDEMPOTENT
            } else {
                0
            } | if opts.sampled { 0 } else { flags::UNSAMPLED },
            running: 0,
            last_err: None,
            class: opts.class.0,
            attempts: 0,
            max_attempts: opts
                .max_attempts
                .map_or(0, |m| m.min(u32::from(u16::MAX)) as u16),
            retry_cost: None,
            seq: 0,
            timeout: timeout.and_then(state::pack_timeout).unwrap_or(0),
            priority: opts.priority,
            partition: part.index,
            parent,
            attempt: NONE,
            submitted_at: now,
            enqueued_at: now,
            first_started: NEVER,
            deadline: deadline.map_or(NEVER, |d| now.saturating_add(duration_nanos(d))),
            expected_bytes: opts.expected_bytes,
        };
        let has_deadline = op.deadline != NEVER;
        let slot = self.ops.insert(op);
        let id = op_id(slot, gen);
        self.drained_reported = false;
        self.metrics.record_submitted(opts.class);
        if let Some(Some(p)) = self.partitions.get_mut(part.index as usize) {
            p.live_ops += 1;
        }
        if has_deadline || parent != NONE {
            self.submit_ties(slot, gen, has_deadline, parent);
        }
        self.enqueue(slot);
        self.emit(Event::Queued {
            op: id,
            priority: opts.priority,
            class: opts.class,
        });
        if parent != NONE {
            self.maybe_lend(parent);
        }
        Ok(id)
    }

    /// The bounded queue's admission (out of line: most pools are unbounded).
    /// `false`: the queue is full of ops of no lower priority; the refusal is
    /// already counted.
    #[cold]
    #[inline(never)]
    fn admit_bounded(&mut self, priority: i32, class: OpClass) -> bool {
        if let (Some(max), Some(fresh)) = (self.cfg.max_queued, self.by_priority.as_ref()) {
            if fresh.len() as u64 >= max && !self.make_room(priority) {
                self.metrics.record_submitted(class);
                self.metrics.record_resolved(
                    self.now,
                    class,
                    &Resolution::Rejected {
                        cause: crate::outcome::RejectCause::QueueFull,
                    },
                    Some((core::time::Duration::ZERO, None)),
                    0,
                );
                return false;
            }
        }
        true
    }

    /// Schedules a new op's deadline and links it to its parent (out of line:
    /// only ops with a deadline or a parent get here).
    #[cold]
    #[inline(never)]
    fn submit_ties(&mut self, slot: u32, gen: NonZeroU32, has_deadline: bool, parent: u32) {
        if has_deadline {
            let at = Instant::from_nanos(self.ops.get(slot).map_or(NEVER, |o| o.deadline));
            self.timers.schedule(
                at,
                crate::timers::TimerKind::Deadline {
                    slot,
                    gen: gen.get(),
                },
            );
        }
        if parent != NONE {
            self.children.entry(parent).or_default().push(slot);
        }
    }

    /// Puts an op (new or back from backoff) into its lane.
    fn enqueue(&mut self, slot: u32) {
        let seq = self.queue.next_seq();
        let (partition, class, key, priority, fresh) = {
            let op = self.ops.get_mut(slot).expect("live op");
            op.state = OpState::Queued;
            op.seq = seq;
            op.enqueued_at = self.now.as_nanos();
            (
                op.partition,
                op.class,
                queue_key(self.cfg.aging_ms, op.submitted_at, op.priority),
                op.priority,
                op.first_started == NEVER,
            )
        };
        let lane = self.lane_for(partition, class);
        self.queue.push(lane, priority, Entry { key, seq, slot });
        // A bytes block depends on the lane's head: a new head may fit.
        if self.queue.lanes[lane as usize].blocked == Some(crate::queue::Block::Bytes) {
            self.recheck = true;
        }
        // Only never-started ops may be evicted by the bounded queue: a retry
        // was admitted already and is never rejected (it has attempts behind it).
        if fresh && self.by_priority.is_some() {
            self.index_queued(priority, seq, slot);
        }
    }

    #[cold]
    #[inline(never)]
    fn index_queued(&mut self, priority: i32, seq: u32, slot: u32) {
        if let Some(idx) = self.by_priority.as_mut() {
            idx.insert((priority, u32::MAX - seq, slot));
        }
    }

    /// Removes a queued op from its lane (lazily) and the priority index.
    fn dequeue_lazily(&mut self, slot: u32) {
        let (partition, class, priority, seq) = {
            let op = self.ops.get(slot).expect("live op");
            (op.partition, op.class, op.priority, op.seq)
        };
        // Mark it out of the queue first so the compaction below sees it as stale.
        if let Some(op) = self.ops.get_mut(slot) {
            op.seq = op.seq.wrapping_add(0x8000_0000);
        }
        let lane = self.lane_for(partition, class);
        let ops = &self.ops;
        self.queue
            .remove_lazily(lane, priority, |e| entry_live(ops, e));
        if self.queue.lanes[lane as usize].blocked == Some(crate::queue::Block::Bytes) {
            self.recheck = true;
        }
        if let Some(idx) = self.by_priority.as_mut() {
            idx.remove(&(priority, u32::MAX - seq, slot));
        }
    }

    /// Evicts the lowest-priority queued op to admit one of `priority`.
    fn make_room(&mut self, priority: i32) -> bool {
        let Some(&(low, _, slot)) = self.by_priority.as_ref().and_then(|s| s.first()) else {
            return false;
        };
        if low >= priority {
            return false;
        }
        self.dequeue_lazily(slot);
        self.resolve(
            slot,
            Resolution::Rejected {
                cause: crate::outcome::RejectCause::QueueFull,
            },
            0,
        );
        true
    }

    /// Fires when nothing is left: drained event, and shutdown completes.
    fn check_idle(&mut self) {
        if self.admitting || self.ops.len() != 0 {
            return;
        }
        if !self.drained_reported {
            self.drained_reported = true;
            self.emit(Event::Drained);
        }
        if self.lifecycle == Lifecycle::ShuttingDown {
            self.lifecycle = Lifecycle::Closed;
            self.emit(Event::Closed);
        }
    }
}

/// The op's virtual deadline: its queue key (see `queue` for why it is
/// time-invariant). Recomputed, not stored, to keep the op record small.
fn queue_key(aging_ms: Option<u64>, submitted_at: u64, priority: i32) -> i64 {
    match aging_ms {
        // i128: priority × quantum can exceed i64; the clamp keeps order for every
        // configurable quantum (≤ 1 day).
        Some(q) => {
            let k = i128::from(submitted_at) - i128::from(priority) * i128::from(q) * 1_000_000;
            k.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        }
        None => -i64::from(priority),
    }
}

/// Whether a timer still has work to do when it fires.
fn timer_live(ops: &Slab<Op>, attempts: &Slab<Attempt>, kind: &crate::timers::TimerKind) -> bool {
    use crate::timers::TimerKind as K;
    match *kind {
        K::AttemptTimeout { slot, uid } | K::Hedge { slot, uid } => {
            attempts.get(slot).is_some_and(|a| a.uid == uid)
        }
        K::Deadline { slot, gen } => ops.get(slot).is_some_and(|o| o.gen.get() == gen),
        K::RetryReady { slot, gen } => ops
            .get(slot)
            .is_some_and(|o| o.gen.get() == gen && o.state == OpState::WaitingRetry),
        K::Dispatch | K::Controller { .. } | K::Sweep => true,
    }
}

/// Whether a lane entry still names a queued op.
fn entry_live(ops: &Slab<Op>, e: &Entry) -> bool {
    matches!(ops.get(e.slot), Some(op) if op.state == OpState::Queued && op.seq == e.seq)
}

fn validate_options(o: &OpOptions) -> Result<(), SubmitError> {
    // The error is built out of line: the per-op path only does the checks.
    #[cold]
    #[inline(never)]
    fn bad(field: &'static str, message: &str) -> Result<(), SubmitError> {
        Err(SubmitError::InvalidOptions {
            field,
            message: message.to_string(),
        })
    }
    if o.timeout.is_some_and(|t| t.is_zero()) {
        return bad(
            "timeout",
            "must be > 0 (leave it unset for the pool's default)",
        );
    }
    if o.deadline.is_some_and(|d| d.is_zero()) {
        return bad(
            "deadline",
            "must be > 0 (leave it unset for the pool's default)",
        );
    }
    if let (Some(t), Some(d)) = (o.timeout, o.deadline) {
        if d < t {
            return bad("deadline", "is shorter than the per-attempt timeout");
        }
    }
    if o.timeout.is_some_and(|t| t > state::MAX_TIMEOUT) {
        return bad("timeout", "must be at most 24 days");
    }
    if o.max_attempts == Some(0) {
        return bad("max_attempts", "must be >= 1");
    }
    Ok(())
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("now", &self.now)
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight)
            .field("queued", &self.queue.len)
            .field("waiting_retry", &self.waiting_retry)
            .field("live_ops", &self.ops.len())
            .field("paused", &self.paused)
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

#[allow(unused_imports)]
use OpClass as _;
