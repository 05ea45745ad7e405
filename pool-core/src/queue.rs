//! The wait queue: one min-heap per lane (a partition × class pair) plus a heap of
//! lane heads, so the best *dispatchable* op is found in O(log n) while lanes that
//! are at one of their limits are skipped.
//!
//! ## Aging without re-sorting
//! An op's effective priority at time `now` is `priority + (now - enqueued) / q`,
//! where `q` is the aging quantum. Comparing two ops, `now` cancels out:
//! A ranks above B  ⟺  `enqueued_A - priority_A·q < enqueued_B - priority_B·q`.
//! So each op gets a fixed *virtual deadline* `key = enqueued - priority·q` at
//! submit, and the heap orders by `(key, seq)`. Heap order stays valid forever
//! (the seed's heap breaks, flaw F14), and since new arrivals get ever later keys,
//! every waiting op reaches the front eventually whatever the priority gap (F15).
//! Without aging the key is `-priority`.
//!
//! Removal (cancel, deadline, a child borrowing its parent's slot) is lazy: the
//! entry stays in the heap and is skipped when it surfaces; a lane's heap is
//! rebuilt once stale entries outnumber live ones, so memory stays bounded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One queued op in a lane heap. 16 bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// Virtual deadline (smaller runs first).
    pub key: i64,
    /// Tie-break: FIFO among equal keys. Fresh for every enqueue of an op.
    pub seq: u32,
    /// Op slab index.
    pub slot: u32,
}

/// Why a lane may not dispatch right now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    /// The partition is at its concurrency limit.
    Partition,
    /// The class is at its concurrency limit.
    Class,
    /// The bytes-in-flight budget has no room for the head op.
    Bytes,
    /// A rate limit or rate gate has no token before this instant (nanos).
    RateUntil(u64),
}

pub(crate) struct Lane {
    pub partition: u32,
    pub class: u16,
    heap: BinaryHeap<Reverse<Entry>>,
    /// Entries in `heap` that no longer name a queued op.
    stale: u32,
    /// Queued ops in this lane.
    pub live: u32,
    pub blocked: Option<Block>,
    /// Bumped whenever the lane's entry in the head heap must be invalidated.
    head_token: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    key: i64,
    seq: u32,
    lane: u32,
    token: u32,
}

pub(crate) struct Queue {
    pub lanes: Vec<Lane>,
    heads: BinaryHeap<Reverse<Head>>,
    /// Lanes currently blocked (each at most once).
    pub blocked: Vec<u32>,
    seq: u32,
    /// Queued ops across all lanes.
    pub len: u64,
}

impl Queue {
    pub(crate) fn new() -> Self {
        Queue {
            lanes: Vec::new(),
            heads: BinaryHeap::new(),
            blocked: Vec::new(),
            seq: 0,
            len: 0,
        }
    }

    pub(crate) fn add_lane(&mut self, partition: u32, class: u16) -> u32 {
        self.lanes.push(Lane {
            partition,
            class,
            heap: BinaryHeap::new(),
            stale: 0,
            live: 0,
            blocked: None,
            head_token: 0,
        });
        (self.lanes.len() - 1) as u32
    }

    /// Gives an empty lane (of an evicted partition) to a new partition and class.
    pub(crate) fn reuse_lane(&mut self, lane: u32, partition: u32, class: u16) {
        let l = &mut self.lanes[lane as usize];
        debug_assert_eq!(l.live, 0);
        l.heap.clear();
        l.stale = 0;
        l.partition = partition;
        l.class = class;
        l.head_token = l.head_token.wrapping_add(1);
        if l.blocked.take().is_some() {
            self.blocked.retain(|&b| b != lane);
        }
    }

    /// Next FIFO sequence number.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Adds an op. The caller records `entry.seq` in the op so the entry can be
    /// recognised as live later.
    pub(crate) fn push(&mut self, lane: u32, entry: Entry) {
        let l = &mut self.lanes[lane as usize];
        let was_top = l.heap.peek().map(|r| r.0);
        l.heap.push(Reverse(entry));
        l.live += 1;
        self.len += 1;
        if l.blocked.is_none() && was_top.is_none_or(|t| entry < t) {
            l.head_token = l.head_token.wrapping_add(1);
            self.heads.push(Reverse(Head {
                key: entry.key,
                seq: entry.seq,
                lane,
                token: l.head_token,
            }));
        }
    }

    /// Records that a queued op left the lane without being popped.
    pub(crate) fn remove_lazily(&mut self, lane: u32, is_live: impl Fn(&Entry) -> bool) {
        let l = &mut self.lanes[lane as usize];
        l.live -= 1;
        l.stale += 1;
        self.len -= 1;
        if l.stale > 32 && l.stale > l.live {
            let entries = std::mem::take(&mut l.heap).into_vec();
            l.heap = entries.into_iter().filter(|e| is_live(&e.0)).collect();
            l.stale = 0;
            // The head may have been a removed entry; re-announce the lane.
            if l.blocked.is_none() {
                self.announce(lane);
            }
        }
    }

    /// Pushes a fresh head entry for an unblocked lane (after its top changed).
    fn announce(&mut self, lane: u32) {
        let l = &mut self.lanes[lane as usize];
        l.head_token = l.head_token.wrapping_add(1);
        if let Some(top) = l.heap.peek() {
            self.heads.push(Reverse(Head {
                key: top.0.key,
                seq: top.0.seq,
                lane,
                token: l.head_token,
            }));
        }
    }

    /// The best lane among unblocked ones, with its top entry, skipping stale
    /// entries (`is_live` tells a live entry). Does not remove anything live.
    pub(crate) fn peek_best(&mut self, is_live: impl Fn(&Entry) -> bool) -> Option<(u32, Entry)> {
        loop {
            let head = self.heads.peek()?.0;
            let l = &mut self.lanes[head.lane as usize];
            if head.token != l.head_token || l.blocked.is_some() {
                self.heads.pop();
                continue;
            }
            // Drop stale entries at the lane's top.
            let mut changed = false;
            while let Some(top) = l.heap.peek() {
                if is_live(&top.0) {
                    break;
                }
                l.heap.pop();
                l.stale = l.stale.saturating_sub(1);
                changed = true;
            }
            match l.heap.peek().map(|r| r.0) {
                None => {
                    self.heads.pop();
                }
                Some(top) if changed || top.key != head.key || top.seq != head.seq => {
                    self.heads.pop();
                    self.announce(head.lane);
                }
                Some(top) => return Some((head.lane, top)),
            }
        }
    }

    /// Removes the top entry of `lane` (just returned by `peek_best`, so the
    /// lane's head is the top of the head heap). The head is replaced in place:
    /// one sift instead of a pop and a push on the hot path.
    pub(crate) fn pop_top(&mut self, lane: u32) {
        let l = &mut self.lanes[lane as usize];
        l.heap.pop();
        l.live -= 1;
        self.len -= 1;
        l.head_token = l.head_token.wrapping_add(1);
        match l.heap.peek() {
            Some(top) => {
                let head = Head {
                    key: top.0.key,
                    seq: top.0.seq,
                    lane,
                    token: l.head_token,
                };
                if let Some(mut h) = self.heads.peek_mut() {
                    debug_assert_eq!(h.0.lane, lane);
                    *h = Reverse(head);
                }
            }
            None => {
                self.heads.pop();
            }
        }
    }

    /// The slot at the top of a lane (possibly stale), for prefetching.
    pub(crate) fn top_slot(&self, lane: u32) -> Option<u32> {
        self.lanes[lane as usize].heap.peek().map(|e| e.0.slot)
    }

    /// Marks a lane blocked; it is skipped until `unblock`.
    pub(crate) fn block(&mut self, lane: u32, why: Block) {
        let l = &mut self.lanes[lane as usize];
        if l.blocked.is_none() {
            self.blocked.push(lane);
        }
        l.blocked = Some(why);
        l.head_token = l.head_token.wrapping_add(1);
    }

    /// Unblocks every blocked lane for which `still_blocked` says no.
    pub(crate) fn unblock_where(&mut self, mut can_go: impl FnMut(&Lane) -> bool) {
        let mut i = 0;
        while i < self.blocked.len() {
            let lane = self.blocked[i];
            if can_go(&self.lanes[lane as usize]) {
                self.blocked.swap_remove(i);
                self.lanes[lane as usize].blocked = None;
                self.announce(lane);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: i64, seq: u32, slot: u32) -> Entry {
        Entry { key, seq, slot }
    }

    #[test]
    fn best_across_lanes_and_fifo() {
        let mut q = Queue::new();
        let a = q.add_lane(0, 0);
        let b = q.add_lane(1, 0);
        q.push(a, e(10, 1, 1));
        q.push(b, e(5, 2, 2));
        q.push(a, e(5, 3, 3));
        let live = |_: &Entry| true;
        assert_eq!(q.peek_best(live), Some((b, e(5, 2, 2))));
        q.pop_top(b);
        assert_eq!(q.peek_best(live), Some((a, e(5, 3, 3))));
        q.pop_top(a);
        assert_eq!(q.peek_best(live), Some((a, e(10, 1, 1))));
        q.pop_top(a);
        assert_eq!(q.peek_best(live), None);
        assert_eq!(q.len, 0);
    }

    #[test]
    fn blocked_lane_is_skipped_until_unblocked() {
        let mut q = Queue::new();
        let a = q.add_lane(0, 0);
        let b = q.add_lane(1, 0);
        q.push(a, e(1, 1, 1));
        q.push(b, e(2, 2, 2));
        q.block(a, Block::Partition);
        assert_eq!(q.peek_best(|_| true), Some((b, e(2, 2, 2))));
        q.unblock_where(|l| l.partition == 0);
        assert_eq!(q.peek_best(|_| true), Some((a, e(1, 1, 1))));
        assert!(q.blocked.is_empty());
    }

    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let mut q = Queue::new();
        let a = q.add_lane(0, 0);
        for i in 0..100 {
            q.push(a, e(i, i as u32, i as u32));
        }
        let dead = |x: &Entry| x.slot >= 60;
        for _ in 0..60 {
            q.remove_lazily(a, dead);
        }
        assert_eq!(q.len, 40);
        assert_eq!(q.peek_best(dead), Some((a, e(60, 60, 60))));
        assert!(q.lanes[a as usize].heap.len() <= 100);
    }
}
