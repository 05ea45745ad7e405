//! Starting attempts: dispatch by priority among dispatchable lanes, lending a
//! parent's slot to its children, and hedging.

use super::state::{flags, Attempt, OpState, NEVER, NONE};
use super::{entry_live, Engine};
use crate::class::OpClass;
use crate::event::Event;
use crate::outcome::{AttemptId, Decision};
use crate::queue::{Block, Entry};
use crate::time::Instant;
use crate::timers::TimerKind;

impl Engine {
    /// Starts every op that may start now, best effective priority first.
    pub(super) fn dispatch(&mut self) {
        if self.paused || self.aborted {
            return;
        }
        if self.recheck {
            self.recheck = false;
            // Nothing blocked (the common case): nothing to re-check.
            if !self.queue.blocked.is_empty() {
                self.recheck_blocked();
            }
        }
        while self.in_flight < self.limit {
            let ops = &self.ops;
            let Some((lane, entry)) = self.queue.peek_best(|e| entry_live(ops, e)) else {
                break;
            };
            if let Some(block) = self.lane_block(lane, entry) {
                self.block_lane(lane, block);
                continue;
            }
            self.queue.pop_top(lane);
            if let Some(next) = self.queue.next_slot() {
                self.ops.prefetch(next);
            }
            if self.by_priority.is_some() {
                self.unindex_queued(entry);
            }
            self.start_attempt(entry.slot, false, NONE);
        }
        if !self.lend_candidates.is_empty() {
            self.lend_all();
        }
    }

    /// Lending can make new candidates (a child lent a slot may lend it on to
    /// its own children): serve them all now, not at some later input.
    #[cold]
    #[inline(never)]
    fn lend_all(&mut self) {
        while !self.lend_candidates.is_empty() {
            if !self.lend_pass() {
                break;
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn block_lane(&mut self, lane: u32, block: Block) {
        self.queue.block(lane, block);
        if let Block::RateUntil(t) = block {
            self.timers
                .schedule(Instant::from_nanos(t), TimerKind::Dispatch);
        }
    }

    /// Takes a starting op out of the bounded queue's index.
    #[cold]
    #[inline(never)]
    fn unindex_queued(&mut self, entry: Entry) {
        if let Some(idx) = self.by_priority.as_mut() {
            let op = self.ops.get(entry.slot).expect("live op");
            idx.remove(&(op.priority, u32::MAX - entry.seq, entry.slot));
        }
    }

    /// Unblocks lanes whose limit may have room again; `lane_block` re-checks them.
    #[cold]
    #[inline(never)]
    fn recheck_blocked(&mut self) {
        let now = self.now.as_nanos();
        let parts = &self.partitions;
        let classes = &self.classes;
        self.queue.unblock_where(|lane| match lane.blocked {
            Some(Block::Partition) => parts[lane.partition as usize]
                .as_ref()
                .is_none_or(|p| p.limit.is_none_or(|l| p.in_flight < l)),
            Some(Block::Class) => classes
                .get(lane.class as usize)
                .is_none_or(|c| c.limit.is_none_or(|l| c.in_flight < l)),
            Some(Block::Bytes) => true,
            Some(Block::RateUntil(t)) => t <= now,
            None => true,
        });
    }

    /// Why the lane's head may not start now, or `None` (after taking the rate
    /// tokens it needs).
    fn lane_block(&mut self, lane: u32, entry: Entry) -> Option<Block> {
        let (pidx, class) = {
            let l = &self.queue.lanes[lane as usize];
            (l.partition as usize, l.class as usize)
        };
        let now = self.now;
        let p = self.partitions[pidx]
            .as_mut()
            .expect("lane of a live partition");
        if p.limit.is_some_and(|l| p.in_flight >= l) {
            return Some(Block::Partition);
        }
        self.ensure_class(class as u16);
        let c = &mut self.classes[class];
        if c.limit.is_some_and(|l| c.in_flight >= l) {
            return Some(Block::Class);
        }
        if let Some(budget) = self.cfg.max_bytes_in_flight {
            if self.over_bytes_budget(entry, budget) {
                return Some(Block::Bytes);
            }
        }
        self.take_rate_tokens(pidx, class)
            .map(|t| Block::RateUntil(t.as_nanos().max(now.as_nanos() + 1)))
    }

    /// Whether starting `entry` would overrun the bytes budget (an op larger
    /// than the whole budget may still run alone).
    #[cold]
    #[inline(never)]
    fn over_bytes_budget(&self, entry: Entry, budget: u64) -> bool {
        let want = self.ops.get(entry.slot).map_or(0, |o| o.expected_bytes);
        self.bytes_in_flight > 0 && self.bytes_in_flight.saturating_add(want) > budget
    }

    /// Checks the rate limits and rate gates of a partition and class; if every
    /// one has a token, spends them and returns `None`, otherwise returns when
    /// to try again (spending nothing).
    // Always inlined: on the dispatch path it is a handful of `None` checks
    // (no rate limit or gate configured), cheaper than the call around them.
    #[inline(always)]
    fn take_rate_tokens(&mut self, pidx: usize, class: usize) -> Option<Instant> {
        let now = self.now;
        let p = self.partitions[pidx].as_mut().expect("live partition");
        let c = &mut self.classes[class];
        let mut wait = None::<Instant>;
        if let Some(b) = p.rate.as_mut() {
            wait = wait.max(b.ready_at(now));
        }
        if let Some(b) = c.rate.as_mut() {
            wait = wait.max(b.ready_at(now));
        }
        if let Some(t) = wait {
            return Some(t);
        }
        // Ask every gate first, spend afterwards: a token taken by one gate while
        // another refuses would be lost.
        if let Some(t) = p.gate.as_mut().and_then(|g| g.ready_at(now)) {
            return Some(t);
        }
        if let Some(t) = self.gate.as_mut().and_then(|g| g.ready_at(now)) {
            return Some(t);
        }
        if let Some(g) = p.gate.as_mut() {
            if let Err(t) = g.try_acquire(now) {
                return Some(t);
            }
        }
        if let Some(g) = self.gate.as_mut() {
            if let Err(t) = g.try_acquire(now) {
                return Some(t);
            }
        }
        if let Some(b) = p.rate.as_mut() {
            b.take(now);
        }
        if let Some(b) = c.rate.as_mut() {
            b.take(now);
        }
        None
    }

    /// Starts the next attempt of an op. `lender`: the op whose slot it runs on
    /// (NONE: it takes a slot of its own).
    // Always inlined: in `dispatch`, the one hot caller, `hedge` and `lender`
    // are constants and their branches fold away; the other callers (lending,
    // hedging) are cold.
    #[inline(always)]
    pub(super) fn start_attempt(&mut self, slot: u32, hedge: bool, lender: u32) {
        let borrowed = lender != NONE;
        let now = self.now.as_nanos();
        let uid = self.next_attempt_uid;
        self.next_attempt_uid = self.next_attempt_uid.wrapping_add(1);
        let (number, class, partition, queue_wait, timeout, bytes, first, idempotent, twin, gen) = {
            let op = self.ops.get_mut(slot).expect("live op");
            op.attempts = op.attempts.saturating_add(1);
            let first = op.first_started == NEVER;
            if first {
                op.first_started = now;
            }
            op.state = OpState::Running;
            op.running += 1;
            op.flags &= !flags::RETRY_PENDING;
            let queue_wait = if hedge {
                0
            } else {
                now.saturating_sub(op.enqueued_at)
            };
            (
                u32::from(op.attempts),
                op.class,
                op.partition,
                queue_wait,
                op.timeout,
                op.expected_bytes,
                first,
                op.has(flags::IDEMPOTENT),
                op.attempt,
                op.gen,
            )
        };
        if first {
            self.retry.on_request(self.now);
            if self.cfg.hedge.is_some() {
                self.earn_hedge_tokens();
            }
        }
        if !borrowed {
            self.in_flight += 1;
            if let Some(p) = self.partitions[partition as usize].as_mut() {
                p.in_flight += 1;
            }
            self.ensure_class(class);
            self.classes[class as usize].in_flight += 1;
        }
        self.running_attempts += 1;
        self.bytes_in_flight = self.bytes_in_flight.saturating_add(bytes);
        // The hedge delay is read before the attempt is stored (nothing in
        // between touches what it reads) so the attempt's timer count is known
        // up front and the record needs no second lookup to set it.
        let hedge_after = if !hedge && idempotent && self.cfg.hedge.is_some() {
            self.hedge_threshold(class)
        } else {
            None
        };
        let timers = u8::from(timeout != 0) + u8::from(hedge_after.is_some());
        let aslot = self.attempts.insert(Attempt {
            op: slot,
            number,
            uid,
            in_flight_at_start: self.in_flight,
            started_at: now,
            queue_wait,
            twin,
            hedge,
            lender,
            timers,
        });
        if borrowed || twin != NONE {
            self.link_attempt(aslot, lender, twin);
        }
        if let Some(op) = self.ops.get_mut(slot) {
            op.attempt = aslot;
        }
        if timers > 0 {
            self.schedule_attempt_timers(aslot, uid, timeout, hedge_after);
        }
        self.ensure_class(class);
        self.classes[class as usize].starts += 1;
        self.metrics
            .record_started_ns(OpClass(class), queue_wait, hedge);
        let attempt = AttemptId {
            op: super::op_id(slot, gen),
            number,
        };
        self.decisions.push_back(Decision::Start { attempt, hedge });
        self.emit(Event::Started {
            attempt,
            hedge,
            borrowed,
        });
        if hedge {
            self.emit(Event::Hedged { attempt });
        }
        if !self.children.is_empty() && self.children.contains_key(&slot) {
            self.maybe_lend(slot);
        }
    }

    #[cold]
    #[inline(never)]
    fn earn_hedge_tokens(&mut self) {
        if let Some(h) = &self.cfg.hedge {
            self.hedge_tokens = (self.hedge_tokens + h.budget_percent / 100.0).min(10.0);
        }
    }

    /// Records a new attempt as a loan of `lender`'s slot and as `twin`'s hedge
    /// partner (either may be NONE).
    #[cold]
    #[inline(never)]
    fn link_attempt(&mut self, aslot: u32, lender: u32, twin: u32) {
        if lender != NONE {
            self.loans.insert(lender, aslot);
        }
        if twin != NONE {
            if let Some(t) = self.attempts.get_mut(twin) {
                t.twin = aslot;
            }
        }
    }

    /// The timeout (`timeout`: packed, 0 for none) and hedge timers of a new
    /// attempt.
    #[cold]
    #[inline(never)]
    fn schedule_attempt_timers(
        &mut self,
        aslot: u32,
        uid: u32,
        timeout: u32,
        hedge_after: Option<u64>,
    ) {
        if timeout != 0 {
            let at = self.now + super::state::unpack_timeout(timeout);
            self.timers
                .schedule(at, TimerKind::AttemptTimeout { slot: aslot, uid });
        }
        if let Some(after) = hedge_after {
            self.timers.schedule(
                self.now + core::time::Duration::from_nanos(after),
                TimerKind::Hedge { slot: aslot, uid },
            );
        }
    }

    /// Makes `parent` a lending candidate if it runs, lends nothing yet and has a
    /// queued child. (Out of line: only ops with children get here.)
    #[cold]
    #[inline(never)]
    pub(super) fn maybe_lend(&mut self, parent: u32) {
        let Some(op) = self.ops.get(parent) else {
            return;
        };
        if op.state != OpState::Running || op.has(flags::LENDING) {
            return;
        }
        let has_queued_child = self.children.get(&parent).is_some_and(|cs| {
            cs.iter()
                .any(|&c| self.ops.get(c).is_some_and(|o| o.state == OpState::Queued))
        });
        if has_queued_child {
            self.lend_candidates.insert(parent);
        }
    }

    /// Runs one queued child of each lending candidate on its parent's slot, so an
    /// op awaiting its children can never deadlock the pool (seed flaw F13).
    /// Returns whether any child was started.
    fn lend_pass(&mut self) -> bool {
        let mut started = false;
        let candidates: Vec<u32> = std::mem::take(&mut self.lend_candidates)
            .into_iter()
            .collect();
        for parent in candidates {
            let Some(p) = self.ops.get(parent) else {
                continue;
            };
            if p.state != OpState::Running || p.has(flags::LENDING) {
                continue;
            }
            let mut queued: Vec<(i64, u32, u32)> = self
                .children
                .get(&parent)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|&c| {
                            let o = self.ops.get(c)?;
                            let key =
                                super::queue_key(self.cfg.aging_ms, o.submitted_at, o.priority);
                            (o.state == OpState::Queued).then_some((key, o.seq, c))
                        })
                        .collect()
                })
                .unwrap_or_default();
            queued.sort_unstable();
            // The best child whose request-rate limits have a token. A borrowed
            // slot skips the concurrency limits and the bytes budget (the
            // parent's slot and bytes already count, and waiting on either could
            // deadlock a parent that awaits this child) but not the rate limits:
            // the child is still one more request per second to S3.
            let mut chosen = None;
            let mut retry_at: Option<Instant> = None;
            for &(_, _, c) in &queued {
                let (cp, cc) = {
                    let o = self.ops.get(c).expect("live child");
                    (o.partition as usize, o.class as usize)
                };
                match self.take_rate_tokens(cp, cc) {
                    None => {
                        chosen = Some(c);
                        break;
                    }
                    Some(t) => retry_at = Some(retry_at.map_or(t, |r| r.min(t))),
                }
            }
            let Some(child) = chosen else {
                if let Some(t) = retry_at {
                    self.timers.schedule(t.max(self.now), TimerKind::Dispatch);
                    self.lend_candidates.insert(parent);
                }
                continue;
            };
            self.dequeue_lazily(child);
            if let Some(p) = self.ops.get_mut(parent) {
                p.flags |= flags::LENDING;
            }
            self.start_attempt(child, false, parent);
            started = true;
        }
        started
    }

    /// The hedge delay for a class: its attempt-latency quantile, cached and
    /// refreshed every 64 starts (a quantile read walks the histogram).
    #[cold]
    #[inline(never)]
    fn hedge_threshold(&mut self, class: u16) -> Option<u64> {
        let h = self.cfg.hedge.as_ref()?;
        let (q, min_samples, min_delay) = (h.quantile, h.min_samples, h.min_delay_ms * 1_000_000);
        let c = &self.classes[class as usize];
        if c.hedge_after.is_none() || c.starts >= c.hedge_computed_at + 64 {
            let v = self
                .metrics
                .attempt_latency_quantile(OpClass(class), q, min_samples)
                .map(|d| crate::time::duration_nanos(d).max(min_delay));
            let c = &mut self.classes[class as usize];
            c.hedge_after = v;
            c.hedge_computed_at = c.starts;
        }
        self.classes[class as usize].hedge_after
    }

    /// A hedge timer fired: start a second attempt if the first is still alone,
    /// there is room, and the hedge budget allows.
    pub(super) fn try_hedge(&mut self, aslot: u32, uid: u32) {
        let Some(a) = self.attempts.get(aslot) else {
            return;
        };
        if a.uid != uid || a.twin != NONE {
            return;
        }
        let slot = a.op;
        if self.paused || self.aborted || self.in_flight >= self.limit || self.hedge_tokens < 1.0 {
            return;
        }
        let Some(op) = self.ops.get(slot) else { return };
        let max = if op.max_attempts == 0 {
            self.cfg.retry.max_attempts
        } else {
            u32::from(op.max_attempts)
        };
        if u32::from(op.attempts) >= max || op.has(flags::HEDGED) {
            return;
        }
        let p = self.partitions[op.partition as usize].as_ref();
        if p.is_some_and(|p| p.limit.is_some_and(|l| p.in_flight >= l)) {
            return;
        }
        let c = &self.classes[op.class as usize];
        if c.limit.is_some_and(|l| c.in_flight >= l) {
            return;
        }
        self.hedge_tokens -= 1.0;
        if let Some(op) = self.ops.get_mut(slot) {
            op.flags |= flags::HEDGED;
        }
        self.start_attempt(slot, true, NONE);
    }
}
