//! The engine's timers: a min-heap with lazy deletion.
//!
//! Timers are cancelled by making them stale (the engine checks a token when one
//! fires) instead of searching the heap. To keep memory bounded, the heap is
//! rebuilt without stale entries once they outnumber the live ones.

use crate::time::Instant;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stale: usize,
}

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
            stale: 0,
        }
    }

    pub(crate) fn schedule(&mut self, at: Instant, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            kind,
        }));
    }

    /// The earliest pending instant (may belong to a stale timer; waking for it is
    /// harmless).
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.at)
    }

    /// Pops the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKind> {
        if self.heap.peek()?.0.at <= now {
            self.heap.pop().map(|e| e.0.kind)
        } else {
            None
        }
    }

    /// Drops stale timers from the top so that `next_at` names a live one and the
    /// driver is not woken for nothing.
    pub(crate) fn prune(&mut self, is_live: impl Fn(&TimerKind) -> bool) {
        while let Some(top) = self.heap.peek() {
            if is_live(&top.0.kind) {
                break;
            }
            self.heap.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    /// Notes that one scheduled timer became stale; `is_live` is asked of every
    /// entry when the heap is compacted.
    pub(crate) fn mark_stale(&mut self, is_live: impl Fn(&TimerKind) -> bool) {
        self.stale += 1;
        if self.stale > 64 && self.stale * 2 > self.heap.len() {
            let entries = std::mem::take(&mut self.heap).into_vec();
            self.heap = entries.into_iter().filter(|e| is_live(&e.0.kind)).collect();
            self.stale = 0;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
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
}
