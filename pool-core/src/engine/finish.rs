//! Ending attempts and ops: completions, timeouts, deadlines, cancels, retries
//! and the single resolution every op gets.

use super::state::{flags, OpState, NEVER, NONE};
use super::Engine;
use crate::class::OpClass;
use crate::event::Event;
use crate::outcome::{
    AttemptError, AttemptId, AttemptOutcome, AttemptSample, CancelCause, CancelReason, Decision,
    ErrorClass, FailureCause, NoRetry, OpId, OpSample, Resolution, SampleOutcome,
};
use crate::time::Instant;
use crate::timers::TimerKind;
use core::time::Duration;
use rand::Rng;

fn sample_outcome(class: ErrorClass) -> SampleOutcome {
    match class {
        ErrorClass::Throttled => SampleOutcome::Throttled,
        ErrorClass::Transient => SampleOutcome::Transient,
        ErrorClass::Permanent => SampleOutcome::Permanent,
    }
}

impl Engine {
    /// Finds a running attempt's slot.
    fn running_attempt(&self, attempt: AttemptId) -> Option<(u32, u32)> {
        let (slot, gen) = super::split_id(attempt.op);
        // One lookup for the op's liveness and its first running attempt.
        let first = self.ops.get(slot).filter(|o| o.gen.get() == gen)?.attempt;
        let mut a = first;
        while a != NONE {
            let rec = self.attempts.get(a)?;
            if rec.number == attempt.number {
                return Some((slot, a));
            }
            a = rec.twin;
            if a == first {
                break;
            }
        }
        None
    }

    pub(super) fn finish_attempt(
        &mut self,
        attempt: AttemptId,
        outcome: AttemptOutcome,
        bytes: u64,
    ) -> bool {
        let Some((slot, aslot)) = self.running_attempt(attempt) else {
            return false;
        };
        match outcome {
            AttemptOutcome::Success => {
                self.end_attempt(aslot, SampleOutcome::Success, bytes);
                // Read together: cancelling the twin changes neither count.
                let (twin_running, cost, attempts) = {
                    let op = self.ops.get(slot).expect("live op");
                    (op.attempt != NONE, op.retry_cost, u32::from(op.attempts))
                };
                if twin_running {
                    self.cancel_twin(slot);
                }
                self.retry.on_success(cost.map(u32::from));
                self.resolve(slot, Resolution::Succeeded { attempts }, bytes);
            }
            AttemptOutcome::Failed(err) => self.attempt_failed(attempt, slot, aslot, err, bytes),
        }
        true
    }

    /// A running attempt reported a failure (out of line: the per-op path is
    /// the success).
    #[cold]
    #[inline(never)]
    fn attempt_failed(
        &mut self,
        attempt: AttemptId,
        slot: u32,
        aslot: u32,
        err: AttemptError,
        bytes: u64,
    ) {
        self.end_attempt(aslot, sample_outcome(err.class), bytes);
        self.emit(Event::AttemptFailed {
            attempt,
            outcome: sample_outcome(err.class),
        });
        if let Some(op) = self.ops.get_mut(slot) {
            op.last_err = Some(err.class);
            op.flags &= !flags::LAST_TIMED_OUT;
        }
        // With a hedge twin still running, wait for it.
        if self.ops.get(slot).is_some_and(|o| o.running == 0) {
            self.after_failure(slot, err);
        }
    }

    /// Removes a running attempt, frees what it held and reports the sample.
    pub(super) fn end_attempt(&mut self, aslot: u32, outcome: SampleOutcome, bytes: u64) {
        let a = self.attempts.remove(aslot).expect("running attempt");
        let slot = a.op;
        let (class, partition, expected, lending, gen, sampled, still_running) = {
            let op = self.ops.get_mut(slot).expect("live op");
            op.running -= 1;
            if op.attempt == aslot {
                op.attempt = a.twin;
            }
            (
                op.class,
                op.partition,
                op.expected_bytes,
                op.has(flags::LENDING),
                op.gen,
                !op.has(flags::UNSAMPLED),
                op.running > 0,
            )
        };
        if a.twin != NONE {
            if let Some(t) = self.attempts.get_mut(a.twin) {
                t.twin = NONE;
            }
        }
        self.running_attempts -= 1;
        self.bytes_in_flight = self.bytes_in_flight.saturating_sub(expected);
        self.recheck = true;
        let passes_loan = lending && !still_running;
        if a.lender != NONE || passes_loan {
            self.end_loan(slot, a.lender, passes_loan, partition, class);
        } else {
            self.release_slot(partition, class);
        }
        if a.timers > 0 {
            self.drop_attempt_timers(a.timers);
        }
        let latency = self.now.as_nanos().saturating_sub(a.started_at);
        self.metrics
            .record_attempt_end_ns(OpClass(class), sampled.then_some(latency), outcome);
        // The sample is built in line (the fields are in registers already) and
        // fed out of line: `feed_sample` is cold, so this block is laid out away
        // from the hot path.
        if sampled && self.has_listeners() {
            let sample = AttemptSample {
                attempt: AttemptId {
                    op: super::op_id(slot, gen),
                    number: a.number,
                },
                class: OpClass(class),
                partition,
                started_at: Instant::from_nanos(a.started_at),
                ended_at: self.now,
                queue_wait: Duration::from_nanos(a.queue_wait),
                in_flight_at_start: a.in_flight_at_start,
                hedge: a.hedge,
                outcome,
                bytes,
            };
            self.feed_sample(&sample);
        }
    }

    /// The slot side of an attempt's end when a loan is involved: the attempt
    /// ran on `lender`'s slot (NONE: its own), and `passes_loan` says its op
    /// lent the slot on to a child that still runs.
    #[cold]
    #[inline(never)]
    fn end_loan(&mut self, slot: u32, lender: u32, passes_loan: bool, partition: u32, class: u16) {
        if lender != NONE {
            if passes_loan {
                // This op ran on a borrowed slot and lent it on to its own child:
                // the child keeps borrowing from the same lender.
                self.pass_loan(slot, lender);
            } else {
                // The slot goes back to the lender, which may lend it again.
                self.loans.remove(&lender);
                if let Some(p) = self.ops.get_mut(lender) {
                    p.flags &= !flags::LENDING;
                }
                self.maybe_lend(lender);
            }
        } else {
            // This op's slot is lent to a running child: the child keeps the slot
            // as its own instead of it being freed (the child is not killed).
            self.transfer_slot(slot, partition, class);
        }
    }

    /// Marks an ended attempt's `n` timers stale (the attempt is already gone,
    /// so they no longer match a live attempt).
    #[cold]
    #[inline(never)]
    fn drop_attempt_timers(&mut self, n: u8) {
        let attempts = &self.attempts;
        for _ in 0..n {
            self.timers.mark_stale(|k| match *k {
                TimerKind::AttemptTimeout { slot, uid } | TimerKind::Hedge { slot, uid } => {
                    attempts.get(slot).is_some_and(|x| x.uid == uid)
                }
                _ => true,
            });
        }
    }

    fn release_slot(&mut self, partition: u32, class: u16) {
        self.in_flight -= 1;
        if let Some(p) = self.partitions[partition as usize].as_mut() {
            p.in_flight -= 1;
        }
        self.classes[class as usize].in_flight -= 1;
    }

    /// The parent's last attempt ended while a child ran on its slot: the child
    /// keeps the slot as its own.
    fn transfer_slot(&mut self, parent: u32, partition: u32, class: u16) {
        if let Some(p) = self.ops.get_mut(parent) {
            p.flags &= !flags::LENDING;
        }
        self.release_slot(partition, class);
        let Some(aslot) = self.loans.remove(&parent) else {
            return;
        };
        let Some(a) = self.attempts.get_mut(aslot) else {
            return;
        };
        a.lender = NONE;
        let child = a.op;
        let (cp, cc) = {
            let o = self.ops.get(child).expect("live child");
            (o.partition, o.class)
        };
        self.in_flight += 1;
        if let Some(p) = self.partitions[cp as usize].as_mut() {
            p.in_flight += 1;
        }
        self.classes[cc as usize].in_flight += 1;
    }

    /// `op` ran on `lender`'s slot and lent it to its own child; `op` is done, so
    /// the child now borrows straight from `lender`.
    fn pass_loan(&mut self, op: u32, lender: u32) {
        if let Some(o) = self.ops.get_mut(op) {
            o.flags &= !flags::LENDING;
        }
        match self.loans.remove(&op) {
            Some(aslot) => {
                if let Some(a) = self.attempts.get_mut(aslot) {
                    a.lender = lender;
                }
                self.loans.insert(lender, aslot);
            }
            None => {
                self.loans.remove(&lender);
                if let Some(p) = self.ops.get_mut(lender) {
                    p.flags &= !flags::LENDING;
                }
                self.maybe_lend(lender);
            }
        }
    }

    /// The hedge race is won: the other attempt is cancelled.
    #[cold]
    #[inline(never)]
    fn cancel_twin(&mut self, slot: u32) {
        self.cancel_attempts(slot, CancelReason::LostHedge);
    }

    /// Cancels every running attempt of an op (reason given to the driver).
    pub(super) fn cancel_attempts(&mut self, slot: u32, reason: CancelReason) {
        loop {
            let Some(op) = self.ops.get(slot) else { return };
            let aslot = op.attempt;
            if aslot == NONE {
                return;
            }
            let gen = op.gen;
            let number = self.attempts.get(aslot).expect("running attempt").number;
            let attempt = AttemptId {
                op: super::op_id(slot, gen),
                number,
            };
            self.decisions
                .push_back(Decision::Cancel { attempt, reason });
            self.emit(Event::AttemptCancelled { attempt, reason });
            let outcome = match reason {
                CancelReason::TimedOut | CancelReason::DeadlineExceeded => SampleOutcome::TimedOut,
                _ => SampleOutcome::Cancelled,
            };
            self.end_attempt(aslot, outcome, 0);
        }
    }

    /// The op's last running attempt failed: retry after a backoff, or fail.
    pub(super) fn after_failure(&mut self, slot: u32, err: AttemptError) {
        let (attempts, max, idempotent, deadline, timed_out, id) = {
            let op = self.ops.get(slot).expect("live op");
            (
                u32::from(op.attempts),
                (op.max_attempts != 0).then_some(u32::from(op.max_attempts)),
                op.has(flags::IDEMPOTENT),
                op.deadline,
                op.has(flags::LAST_TIMED_OUT),
                self.id_of(slot),
            )
        };
        let unit: f64 = self.rng.random();
        let decision = if self.aborted {
            Err(NoRetry::PoolClosing)
        } else {
            self.retry.decide(
                self.now,
                err.class,
                attempts,
                max,
                idempotent,
                err.may_have_reached_server,
                err.retry_after,
                unit,
            )
        };
        let decision = match decision {
            Ok(g) if deadline != NEVER && (self.now + g.delay).as_nanos() >= deadline => {
                self.retry.refund(self.now, g.quota_cost);
                Err(NoRetry::DeadlineTooClose)
            }
            d => d,
        };
        match decision {
            Ok(grant) => {
                let at = self.now + grant.delay;
                if let Some(op) = self.ops.get_mut(slot) {
                    op.state = OpState::WaitingRetry;
                    op.flags |= flags::RETRY_PENDING;
                    op.retry_cost = grant.quota_cost.map(|c| c.min(u32::from(u16::MAX)) as u16);
                }
                self.waiting_retry += 1;
                let class = OpClass(self.ops.get(slot).expect("live op").class);
                self.metrics.record_retry(class);
                self.decisions
                    .push_back(Decision::RetryScheduled { op: id, at });
                self.emit(Event::RetryScheduled { op: id, at });
                if grant.delay.is_zero() {
                    self.requeue(slot);
                } else {
                    let gen = self.ops.get(slot).expect("live op").gen.get();
                    self.timers
                        .schedule(at, TimerKind::RetryReady { slot, gen });
                }
            }
            Err(why) => {
                let cause = FailureCause::AttemptFailed {
                    last: err.class,
                    timed_out,
                    why,
                };
                self.resolve(slot, Resolution::Failed { attempts, cause }, 0);
            }
        }
    }

    /// Backoff over: back into the queue with its original (aged) key.
    fn requeue(&mut self, slot: u32) {
        self.waiting_retry -= 1;
        self.enqueue(slot);
        // A child back from its backoff may borrow its running parent's slot
        // again; otherwise a parent awaiting it could wait forever (F13).
        let parent = self.ops.get(slot).map_or(NONE, |o| o.parent);
        if parent != NONE {
            self.maybe_lend(parent);
        }
    }

    /// Cancels a live op. Returns `false` if it had already resolved.
    pub(super) fn cancel_op(&mut self, id: OpId, cause: CancelCause) -> bool {
        let Some(slot) = self.op_slot(id) else {
            return false;
        };
        let reason = match cause {
            CancelCause::Caller => CancelReason::OpCancelled,
            CancelCause::Aborted => CancelReason::Aborted,
        };
        self.cancel_attempts(slot, reason);
        self.leave_waiting(slot);
        let attempts = u32::from(self.ops.get(slot).expect("live op").attempts);
        self.resolve(slot, Resolution::Cancelled { attempts, cause }, 0);
        true
    }

    /// Takes a queued or backing-off op out of the queue or backoff.
    fn leave_waiting(&mut self, slot: u32) {
        let (state, cost, pending) = {
            let op = self.ops.get(slot).expect("live op");
            (op.state, op.retry_cost, op.has(flags::RETRY_PENDING))
        };
        if pending {
            // A granted retry will never run (still backing off, or back in the
            // queue but not started): give its tokens back.
            self.retry.refund(self.now, cost.map(u32::from));
            if let Some(op) = self.ops.get_mut(slot) {
                op.flags &= !flags::RETRY_PENDING;
            }
        }
        match state {
            OpState::Queued => self.dequeue_lazily(slot),
            OpState::WaitingRetry => {
                self.waiting_retry -= 1;
                let ops = &self.ops;
                self.timers.mark_stale(|k| match *k {
                    TimerKind::RetryReady { slot: s, gen } => ops.get(s).is_some_and(|o| {
                        o.gen.get() == gen && o.state == OpState::WaitingRetry && s != slot
                    }),
                    _ => true,
                });
                if let Some(op) = self.ops.get_mut(slot) {
                    op.state = OpState::Running; // neither queued nor waiting any more
                }
            }
            OpState::Running => {}
        }
    }

    /// Resolves an op exactly once: decision, metrics, controllers, cleanup.
    pub(super) fn resolve(&mut self, slot: u32, resolution: Resolution, bytes: u64) {
        let op = self.ops.remove(slot).expect("resolving a live op");
        debug_assert_eq!(op.running, 0, "resolved with attempts running");
        let id = super::op_id(slot, op.gen);
        let now = self.now.as_nanos();
        if op.deadline != NEVER {
            self.drop_deadline_timer();
        }
        if let Some(p) = self.partitions[op.partition as usize].as_mut() {
            p.live_ops -= 1;
            if p.live_ops == 0 {
                p.idle_since = self.now;
                if !p.pinned && !self.sweep_pending {
                    self.schedule_sweep();
                }
            }
        }
        if op.parent != NONE || !self.children.is_empty() || !self.lend_candidates.is_empty() {
            self.untie(slot, op.parent);
        }
        let e2e = now.saturating_sub(op.submitted_at);
        let service = (op.first_started != NEVER).then(|| now.saturating_sub(op.first_started));
        let sampled = !op.has(flags::UNSAMPLED);
        self.metrics.record_resolved_ns(
            self.now,
            OpClass(op.class),
            &resolution,
            sampled.then_some((e2e, service)),
            bytes,
        );
        // As in `end_attempt`: built in line, fed out of line (cold).
        if sampled && self.has_listeners() {
            let sample = OpSample {
                op: id,
                class: OpClass(op.class),
                partition: op.partition,
                submitted_at: Instant::from_nanos(op.submitted_at),
                first_started_at: (op.first_started != NEVER)
                    .then(|| Instant::from_nanos(op.first_started)),
                resolved_at: self.now,
                attempts: u32::from(op.attempts),
                resolution,
            };
            self.feed_op_sample(&sample);
        }
        self.decisions
            .push_back(Decision::Resolved { op: id, resolution });
        self.emit(match resolution {
            Resolution::Succeeded { attempts } => Event::Succeeded { op: id, attempts },
            Resolution::Failed { attempts, cause } => Event::Failed {
                op: id,
                attempts,
                cause,
            },
            Resolution::Cancelled { cause, .. } => Event::Cancelled { op: id, cause },
            Resolution::Rejected { cause } => Event::Rejected { op: id, cause },
        });
        self.check_idle();
    }

    /// Marks the deadline timer of an op just removed stale.
    #[cold]
    #[inline(never)]
    fn drop_deadline_timer(&mut self) {
        let ops = &self.ops;
        self.timers.mark_stale(|k| match *k {
            TimerKind::Deadline { slot, gen } => ops.get(slot).is_some_and(|o| o.gen.get() == gen),
            _ => true,
        });
    }

    #[cold]
    #[inline(never)]
    fn schedule_sweep(&mut self) {
        self.sweep_pending = true;
        let at = self.now + Duration::from_millis(self.cfg.partition_idle_ms);
        self.timers.schedule(at, TimerKind::Sweep);
    }

    /// Family ties of a resolved op: leave the parent's list, orphan its own
    /// children, stop being a lending candidate.
    #[cold]
    #[inline(never)]
    fn untie(&mut self, slot: u32, parent: u32) {
        if parent != NONE {
            if let Some(cs) = self.children.get_mut(&parent) {
                cs.retain(|&c| c != slot);
                if cs.is_empty() {
                    self.children.remove(&parent);
                }
            }
        }
        let own_children = if self.children.is_empty() {
            None
        } else {
            self.children.remove(&slot)
        };
        if let Some(cs) = own_children {
            for c in cs {
                if let Some(child) = self.ops.get_mut(c) {
                    child.parent = NONE;
                }
            }
        }
        if !self.lend_candidates.is_empty() {
            self.lend_candidates.remove(&slot);
        }
    }

    /// A timer fired.
    pub(super) fn fire(&mut self, kind: TimerKind) {
        match kind {
            TimerKind::AttemptTimeout { slot, uid } => self.attempt_timed_out(slot, uid),
            TimerKind::Hedge { slot, uid } => self.try_hedge(slot, uid),
            TimerKind::Deadline { slot, gen } => {
                let live = self.ops.get(slot).is_some_and(|o| o.gen.get() == gen);
                if live {
                    self.cancel_attempts(slot, CancelReason::DeadlineExceeded);
                    self.leave_waiting(slot);
                    let attempts = u32::from(self.ops.get(slot).expect("live op").attempts);
                    self.resolve(
                        slot,
                        Resolution::Failed {
                            attempts,
                            cause: FailureCause::DeadlineExceeded,
                        },
                        0,
                    );
                }
            }
            TimerKind::RetryReady { slot, gen } => {
                let ready = self
                    .ops
                    .get(slot)
                    .is_some_and(|o| o.gen.get() == gen && o.state == OpState::WaitingRetry);
                if ready {
                    self.requeue(slot);
                }
            }
            TimerKind::Dispatch => self.recheck = true,
            TimerKind::Controller { scope } => self.tick_controller(scope),
            TimerKind::Sweep => {
                self.sweep_pending = false;
                self.sweep_partitions();
            }
        }
    }

    fn attempt_timed_out(&mut self, aslot: u32, uid: u32) {
        let Some(a) = self.attempts.get(aslot) else {
            return;
        };
        if a.uid != uid {
            return;
        }
        let slot = a.op;
        let attempt = AttemptId {
            op: self.id_of(slot),
            number: a.number,
        };
        self.decisions.push_back(Decision::Cancel {
            attempt,
            reason: CancelReason::TimedOut,
        });
        self.emit(Event::TimedOut { attempt });
        // The timer is firing, so it is not stale: don't count it as such.
        if let Some(a) = self.attempts.get_mut(aslot) {
            a.timers -= 1;
        }
        self.end_attempt(aslot, SampleOutcome::TimedOut, 0);
        if let Some(op) = self.ops.get_mut(slot) {
            op.last_err = Some(ErrorClass::Transient);
            op.flags |= flags::LAST_TIMED_OUT;
        }
        if self.ops.get(slot).is_some_and(|o| o.running == 0) {
            self.after_failure(slot, AttemptError::transient());
        }
    }
}
