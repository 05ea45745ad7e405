//! The engine's timers: a FIFO and a min-heap, with lazy deletion.
//!
//! Most timers are scheduled in time order (every attempt of a class gets the
//! same timeout, so each new deadline is the latest), so they go to a FIFO —
//! O(1) in and out — and only the out-of-order rest goes to the heap. Timers
//! fire in `(at, seq)` order either way.
//!
//! Timers are cancelled by making them stale (the engine checks a token when one
//! fires) instead of searching the heap. To keep memory bounded, both are
//! rebuilt without stale entries once they outnumber the live ones.

use crate::time::Instant;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// What a timer is for. `slot` and `token` let the engine tell a live timer from a
/// stale one (the op or attempt it named may be gone or reused).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// Per-attempt timeout: attempt slab index, attempt uid.
    AttemptTimeout { slot: u32, uid: u32 },
    /// Start a hedge for this attempt if it is still alone.
    Hedge { slot: u32, uid: u32 },
    /// Op deadline: op slab index, op generation.
    Deadline { slot: u32, gen: u32 },
    /// Backoff over: re-queue the op.
    RetryReady { slot: u32, gen: u32 },
    /// Something may have become dispatchable (a rate bucket refilled).
    Dispatch,
    /// A controller asked to be woken.
    Controller { scope: ControllerScope },
    /// Sweep idle partitions.
    Sweep,
}

/// Which controller a wake-up is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ControllerScope {
    Global,
    Class(u16),
    Partition { index: u32, gen: u32 },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

pub(crate) struct Timers {
    /// Entries in increasing `(at, seq)` order.
    fifo: VecDeque<Entry>,
    /// Entries earlier than the FIFO's tail when scheduled.
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stale: usize,
}

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            fifo: VecDeque::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            stale: 0,
        }
    }

    pub(crate) fn schedule(&mut self, at: Instant, kind: TimerKind) {
        self.seq += 1;
        let entry = Entry {
            at,
            seq: self.seq,
            kind,
        };
        // `seq` grows, so an entry not earlier than the tail sorts after it.
        if self.fifo.back().is_none_or(|b| b.at <= at) {
            self.fifo.push_back(entry);
        } else {
            self.heap.push(Reverse(entry));
        }
    }

    fn peek(&self) -> Option<&Entry> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(h)) => Some(if h.0 < *f { &h.0 } else { f }),
            (f, h) => f.or(h.map(|r| &r.0)),
        }
    }

    fn pop(&mut self) -> Option<Entry> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(h)) if h.0 < *f => self.heap.pop().map(|r| r.0),
            (Some(_), _) => self.fifo.pop_front(),
            (None, _) => self.heap.pop().map(|r| r.0),
        }
    }

    /// Whether no timer is pending: the engine's per-input timer work (firing
    /// due timers, pruning stale ones) is skipped without a call when there is
    /// nothing to look at, the common case for a pool without timeouts.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.fifo.is_empty() && self.heap.is_empty()
    }

    /// The earliest pending instant (may belong to a stale timer; waking for it is
    /// harmless).
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.peek().map(|e| e.at)
    }

    /// Pops the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKind> {
        if self.peek()?.at <= now {
            self.pop().map(|e| e.kind)
        } else {
            None
        }
    }

    /// Drops stale timers from the top so that `next_at` names a live one and the
    /// driver is not woken for nothing.
    pub(crate) fn prune(&mut self, is_live: impl Fn(&TimerKind) -> bool) {
        while let Some(top) = self.peek() {
            if is_live(&top.kind) {
                break;
            }
            self.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    /// Notes that one scheduled timer became stale; `is_live` is asked of every
    /// entry when the heap is compacted.
    pub(crate) fn mark_stale(&mut self, is_live: impl Fn(&TimerKind) -> bool) {
        self.stale += 1;
        if self.stale > 64 && self.stale * 2 > self.len() {
            self.fifo.retain(|e| is_live(&e.kind));
            let entries = std::mem::take(&mut self.heap).into_vec();
            self.heap = entries.into_iter().filter(|e| is_live(&e.0.kind)).collect();
            self.stale = 0;
        }
    }

    fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_schedule_order() {
        let mut t = Timers::new();
        t.schedule(Instant::from_millis(5), TimerKind::Dispatch);
        t.schedule(Instant::from_millis(1), TimerKind::Sweep);
        t.schedule(Instant::from_millis(1), TimerKind::Dispatch);
        assert_eq!(t.next_at(), Some(Instant::from_millis(1)));
        assert_eq!(t.pop_due(Instant::from_millis(2)), Some(TimerKind::Sweep));
        assert_eq!(
            t.pop_due(Instant::from_millis(2)),
            Some(TimerKind::Dispatch)
        );
        assert_eq!(t.pop_due(Instant::from_millis(2)), None);
        assert_eq!(
            t.pop_due(Instant::from_millis(5)),
            Some(TimerKind::Dispatch)
        );
    }

    #[test]
    fn compaction_drops_stale_entries() {
        let mut t = Timers::new();
        for i in 0..200 {
            t.schedule(
                Instant::from_millis(i),
                TimerKind::Deadline {
                    slot: i as u32,
                    gen: 1,
                },
            );
        }
        for _ in 0..150 {
            t.mark_stale(|k| matches!(k, TimerKind::Deadline { slot, .. } if *slot >= 150));
        }
        assert!(t.len() <= 200 - 100, "compacted to {}", t.len());
    }

    #[test]
    fn fifo_and_heap_interleave_in_time_order() {
        let mut t = Timers::new();
        let at = [10u64, 20, 15, 30, 5, 30, 25];
        for (i, &ms) in at.iter().enumerate() {
            t.schedule(
                Instant::from_millis(ms),
                TimerKind::Deadline {
                    slot: i as u32,
                    gen: 0,
                },
            );
        }
        let fired: Vec<u32> = std::iter::from_fn(|| match t.pop_due(Instant::from_millis(100)) {
            Some(TimerKind::Deadline { slot, .. }) => Some(slot),
            _ => None,
        })
        .collect();
        assert_eq!(fired, [4, 0, 2, 1, 6, 3, 5]);
    }
}
