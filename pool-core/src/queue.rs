//! The wait queue: per lane (a partition × class pair) one FIFO bucket per
//! priority, and one heap of bucket heads across all lanes, so the best
//! *dispatchable* op is found in O(log b) (b: non-empty buckets) while lanes that
//! are at one of their limits are skipped.
//!
//! ## Aging without re-sorting
//! An op's effective priority at time `now` is `priority + (now - enqueued) / q`,
//! where `q` is the aging quantum. Comparing two ops, `now` cancels out:
//! A ranks above B  ⟺  `enqueued_A - priority_A·q < enqueued_B - priority_B·q`.
//! So each op gets a fixed *virtual deadline* `key = enqueued - priority·q` at
//! submit, and ops run in `(key, seq)` order. That order stays valid forever (the
//! seed's heap breaks, flaw F14), and since new arrivals get ever later keys,
//! every waiting op reaches the front eventually whatever the priority gap (F15).
//! Without aging the key is `-priority`.
//!
//! ## Why buckets
//! Within one priority, keys grow with submit time, so a bucket is a plain FIFO:
//! push and pop are O(1) and only the few bucket heads live in a heap. (A retry
//! keeps its original submit time, so its key can be older than the bucket's
//! tail; such an entry goes to the bucket's small `late` heap.) The order is
//! exactly the `(key, seq)` order a single heap would give.
//!
//! A head in the heap is a lower bound of its bucket's best live entry; a head
//! that surfaces and no longer matches is refreshed in place. A blocked lane's
//! heads are dropped as they surface and re-announced when it is unblocked.
//!
//! The least head is kept out of the heap (`Queue::top`). After a pop the same
//! bucket's next entry usually stays the best (a run of one priority drains in
//! order), and then refreshing the top is one comparison instead of a sift.
//!
//! Removal (cancel, deadline, a child borrowing its parent's slot) is lazy: the
//! entry stays in its bucket and is skipped when it surfaces; a bucket is
//! compacted once stale entries outnumber live ones, so memory stays bounded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// One queued op. 16 bytes.
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

/// Empty buckets a lane keeps for reuse before it gives them back, so a steady
/// mix of priorities does not allocate while odd priorities cannot pile up.
const SPARE_BUCKETS: usize = 16;

pub(crate) struct Lane {
    pub partition: u32,
    pub class: u16,
    pub blocked: Option<Block>,
    /// `(priority, bucket)`, sorted by priority.
    buckets: Vec<(i32, u32)>,
}

/// The ops of one lane and one priority, in `(key, seq)` order.
#[derive(Default)]
struct Bucket {
    lane: u32,
    /// Entries in increasing order: every fresh enqueue lands at the back.
    fifo: VecDeque<Entry>,
    /// Entries older than the tail when they came (retries), as a min-heap.
    late: BinaryHeap<Reverse<Entry>>,
    /// Queued ops here.
    live: u32,
    /// Entries here that no longer name a queued op.
    stale: u32,
    /// Bumped whenever this bucket's heads in the head heap become invalid.
    token: u32,
}

impl Bucket {
    fn front(&self) -> Option<Entry> {
        match (self.fifo.front(), self.late.peek()) {
            (Some(&f), Some(&Reverse(l))) => Some(f.min(l)),
            (f, l) => f.copied().or(l.map(|r| r.0)),
        }
    }

    fn pop_front(&mut self) {
        match (self.fifo.front(), self.late.peek()) {
            (Some(f), Some(l)) if l.0 < *f => {
                self.late.pop();
            }
            (Some(_), _) => {
                self.fifo.pop_front();
            }
            (None, _) => {
                self.late.pop();
            }
        }
    }

    /// Drops the front entry and returns the new front.
    #[inline]
    fn advance(&mut self) -> Option<Entry> {
        if self.late.is_empty() {
            // No retry waits here (the usual case): the FIFO alone is the order.
            self.fifo.pop_front();
            return self.fifo.front().copied();
        }
        self.pop_front();
        self.front()
    }

    fn push(&mut self, entry: Entry) {
        if self.fifo.back().is_none_or(|&b| entry > b) {
            self.fifo.push_back(entry);
        } else {
            self.push_late(entry);
        }
    }

    /// A retry older than the tail (out of line: rare).
    #[cold]
    #[inline(never)]
    fn push_late(&mut self, entry: Entry) {
        self.late.push(Reverse(entry));
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    key: i64,
    seq: u32,
    bucket: u32,
    token: u32,
    /// The entry's op, only to prefetch it.
    slot: u32,
}

impl Head {
    fn of(e: Entry, bucket: u32, token: u32) -> Head {
        Head {
            key: e.key,
            seq: e.seq,
            bucket,
            token,
            slot: e.slot,
        }
    }
}

pub(crate) struct Queue {
    pub lanes: Vec<Lane>,
    buckets: Vec<Bucket>,
    free_buckets: Vec<u32>,
    /// The least head (`None` only when `heads` is empty too).
    top: Option<Head>,
    /// The other heads, none less than `top`.
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
            buckets: Vec::new(),
            free_buckets: Vec::new(),
            top: None,
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
            blocked: None,
            buckets: Vec::new(),
        });
        (self.lanes.len() - 1) as u32
    }

    /// Gives an empty lane (of an evicted partition) to a new partition and class.
    pub(crate) fn reuse_lane(&mut self, lane: u32, partition: u32, class: u16) {
        let buckets = std::mem::take(&mut self.lanes[lane as usize].buckets);
        for (_, b) in buckets {
            self.release_bucket(b);
        }
        let l = &mut self.lanes[lane as usize];
        l.partition = partition;
        l.class = class;
        if l.blocked.take().is_some() {
            self.blocked.retain(|&b| b != lane);
        }
    }

    /// Next FIFO sequence number.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The bucket of `priority` in `lane`, made on first use.
    #[inline]
    fn bucket_of(&mut self, lane: u32, priority: i32) -> u32 {
        match self.find_bucket(lane, priority) {
            Some(b) => b,
            None => self.new_bucket(lane, priority),
        }
    }

    #[cold]
    #[inline(never)]
    fn new_bucket(&mut self, lane: u32, priority: i32) -> u32 {
        if self.lanes[lane as usize].buckets.len() >= SPARE_BUCKETS {
            self.release_empty_buckets(lane);
        }
        let b = match self.free_buckets.pop() {
            Some(b) => b,
            None => {
                self.buckets.push(Bucket::default());
                (self.buckets.len() - 1) as u32
            }
        };
        self.buckets[b as usize].lane = lane;
        let buckets = &mut self.lanes[lane as usize].buckets;
        let at = buckets.partition_point(|&(p, _)| p < priority);
        buckets.insert(at, (priority, b));
        b
    }

    /// The existing bucket of `priority` in `lane`.
    #[inline]
    fn find_bucket(&self, lane: u32, priority: i32) -> Option<u32> {
        let buckets = &self.lanes[lane as usize].buckets;
        let i = buckets.binary_search_by_key(&priority, |&(p, _)| p).ok()?;
        Some(buckets[i].1)
    }

    /// Gives back a lane's buckets that hold no queued op.
    fn release_empty_buckets(&mut self, lane: u32) {
        let mut buckets = std::mem::take(&mut self.lanes[lane as usize].buckets);
        let mut empty = Vec::new();
        buckets.retain(|&(_, b)| {
            let keep = self.buckets[b as usize].live > 0;
            if !keep {
                empty.push(b);
            }
            keep
        });
        self.lanes[lane as usize].buckets = buckets;
        for b in empty {
            self.release_bucket(b);
        }
    }

    fn release_bucket(&mut self, b: u32) {
        let bucket = &mut self.buckets[b as usize];
        debug_assert_eq!(bucket.live, 0);
        bucket.fifo.clear();
        bucket.late.clear();
        bucket.stale = 0;
        // Heads still in the heap for this bucket are stale from now on.
        bucket.token = bucket.token.wrapping_add(1);
        self.free_buckets.push(b);
    }

    /// Adds an op. The caller records `entry.seq` in the op so the entry can be
    /// recognised as live later.
    pub(crate) fn push(&mut self, lane: u32, priority: i32, entry: Entry) {
        let b = self.bucket_of(lane, priority);
        let blocked = self.lanes[lane as usize].blocked.is_some();
        let bucket = &mut self.buckets[b as usize];
        let was_front = bucket.front();
        bucket.push(entry);
        bucket.live += 1;
        self.len += 1;
        if !blocked && was_front.is_none_or(|t| entry < t) {
            bucket.token = bucket.token.wrapping_add(1);
            let head = Head::of(entry, b, bucket.token);
            self.push_head(head);
        }
    }

    /// Adds a head, as the top if it is the least.
    fn push_head(&mut self, head: Head) {
        match self.top {
            None => self.top = Some(head),
            Some(top) if head < top => {
                self.heads.push(Reverse(top));
                self.top = Some(head);
            }
            Some(_) => self.heads.push(Reverse(head)),
        }
    }

    /// Drops the top head; the least of the others takes its place.
    fn pop_head(&mut self) {
        self.top = self.heads.pop().map(|h| h.0);
    }

    /// Replaces the top head by one no less than it (a lower bound that was
    /// refreshed). It stays the top unless the heap holds a lesser head: one
    /// comparison on the common path instead of a sift.
    fn replace_top(&mut self, head: Head) {
        match self.heads.peek_mut() {
            Some(mut least) if least.0 < head => {
                self.top = Some(least.0);
                *least = Reverse(head);
            }
            _ => self.top = Some(head),
        }
    }

    /// Records that a queued op left the lane without being popped.
    pub(crate) fn remove_lazily(
        &mut self,
        lane: u32,
        priority: i32,
        is_live: impl Fn(&Entry) -> bool,
    ) {
        let Some(b) = self.find_bucket(lane, priority) else {
            debug_assert!(false, "removing from a bucket that does not exist");
            return;
        };
        let bucket = &mut self.buckets[b as usize];
        bucket.live -= 1;
        bucket.stale += 1;
        self.len -= 1;
        if bucket.stale > 32 && bucket.stale > bucket.live {
            bucket.fifo.retain(|e| is_live(e));
            let late = std::mem::take(&mut bucket.late).into_vec();
            bucket.late = late.into_iter().filter(|e| is_live(&e.0)).collect();
            bucket.stale = 0;
            // The head may have been a removed entry; re-announce the bucket.
            if self.lanes[lane as usize].blocked.is_none() {
                self.announce(b);
            }
        }
    }

    /// Pushes a fresh head for a bucket of an unblocked lane.
    fn announce(&mut self, b: u32) {
        let bucket = &mut self.buckets[b as usize];
        bucket.token = bucket.token.wrapping_add(1);
        if let Some(front) = bucket.front() {
            let head = Head::of(front, b, bucket.token);
            self.push_head(head);
        }
    }

    /// The best lane among unblocked ones, with its best entry, skipping stale
    /// entries (`is_live` tells a live entry). Does not remove anything live.
    pub(crate) fn peek_best(&mut self, is_live: impl Fn(&Entry) -> bool) -> Option<(u32, Entry)> {
        loop {
            let head = self.top?;
            let bucket = &mut self.buckets[head.bucket as usize];
            if head.token != bucket.token || self.lanes[bucket.lane as usize].blocked.is_some() {
                self.pop_head();
                continue;
            }
            // Drop stale entries at the bucket's front.
            let mut changed = false;
            let front = loop {
                match bucket.front() {
                    Some(front) if !is_live(&front) => {
                        bucket.pop_front();
                        bucket.stale = bucket.stale.saturating_sub(1);
                        changed = true;
                    }
                    front => break front,
                }
            };
            match front {
                None => self.pop_head(),
                Some(front) if changed || front.key != head.key || front.seq != head.seq => {
                    // The fresh head is no better than the old one (a lower
                    // bound), so it can replace it in place.
                    bucket.token = bucket.token.wrapping_add(1);
                    let fresh = Head::of(front, head.bucket, bucket.token);
                    self.replace_top(fresh);
                }
                Some(front) => return Some((bucket.lane, front)),
            }
        }
    }

    /// Removes the entry `peek_best` just returned (its head is the top). The
    /// head is replaced in place, not popped and pushed.
    pub(crate) fn pop_top(&mut self, lane: u32) {
        let Some(head) = self.top else {
            debug_assert!(false, "pop_top without a head");
            return;
        };
        let bucket = &mut self.buckets[head.bucket as usize];
        debug_assert_eq!(bucket.lane, lane);
        let next = bucket.advance();
        bucket.live -= 1;
        self.len -= 1;
        bucket.token = bucket.token.wrapping_add(1);
        match next {
            Some(front) => {
                let fresh = Head::of(front, head.bucket, bucket.token);
                self.replace_top(fresh);
            }
            None => self.pop_head(),
        }
    }

    /// The op most likely to be dispatched next (possibly stale), to prefetch.
    pub(crate) fn next_slot(&self) -> Option<u32> {
        self.top.map(|h| h.slot)
    }

    /// Marks a lane blocked; it is skipped until `unblock`.
    pub(crate) fn block(&mut self, lane: u32, why: Block) {
        let l = &mut self.lanes[lane as usize];
        if l.blocked.is_none() {
            self.blocked.push(lane);
        }
        l.blocked = Some(why);
    }

    /// Unblocks every blocked lane for which `can_go` says yes.
    pub(crate) fn unblock_where(&mut self, mut can_go: impl FnMut(&Lane) -> bool) {
        let mut i = 0;
        while i < self.blocked.len() {
            let lane = self.blocked[i];
            if can_go(&self.lanes[lane as usize]) {
                self.blocked.swap_remove(i);
                self.lanes[lane as usize].blocked = None;
                for j in 0..self.lanes[lane as usize].buckets.len() {
                    let b = self.lanes[lane as usize].buckets[j].1;
                    self.announce(b);
                }
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
        q.push(a, 0, e(10, 1, 1));
        q.push(b, 0, e(5, 2, 2));
        q.push(a, 0, e(5, 3, 3));
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
        q.push(a, 0, e(1, 1, 1));
        q.push(b, 0, e(2, 2, 2));
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
            q.push(a, 0, e(i, i as u32, i as u32));
        }
        let dead = |x: &Entry| x.slot >= 60;
        for _ in 0..60 {
            q.remove_lazily(a, 0, dead);
        }
        assert_eq!(q.len, 40);
        assert_eq!(q.peek_best(dead), Some((a, e(60, 60, 60))));
        let b = q.find_bucket(a, 0).expect("bucket");
        assert!(q.buckets[b as usize].fifo.len() <= 100);
    }

    #[test]
    fn a_retry_older_than_the_tail_runs_in_key_order() {
        let mut q = Queue::new();
        let a = q.add_lane(0, 0);
        q.push(a, 1, e(10, 1, 1));
        q.push(a, 1, e(20, 2, 2));
        // Back from backoff with its original (older) key.
        q.push(a, 1, e(15, 3, 3));
        q.push(a, 1, e(5, 4, 4));
        let order: Vec<u32> = std::iter::from_fn(|| {
            let (lane, top) = q.peek_best(|_| true)?;
            q.pop_top(lane);
            Some(top.slot)
        })
        .collect();
        assert_eq!(order, [4, 1, 3, 2]);
    }

    #[test]
    fn many_priorities_reuse_buckets() {
        let mut q = Queue::new();
        let a = q.add_lane(0, 0);
        for i in 0..1_000u32 {
            q.push(a, i as i32, e(i64::from(i), i, i));
            assert_eq!(q.peek_best(|_| true), Some((a, e(i64::from(i), i, i))));
            q.pop_top(a);
        }
        assert!(q.lanes[a as usize].buckets.len() <= SPARE_BUCKETS);
        assert!(q.buckets.len() <= SPARE_BUCKETS + 1);
    }

    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Push { lane: u8, priority: i8, key: i8 },
        Remove(u16),
        Pop,
        Block(u8),
        Unblock,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..3u8, -3..3i8, any::<i8>()).prop_map(|(lane, priority, key)| Step::Push { lane, priority, key }),
            1 => any::<u16>().prop_map(Step::Remove),
            3 => Just(Step::Pop),
            1 => (0..3u8).prop_map(Step::Block),
            1 => Just(Step::Unblock),
        ]
    }

    proptest! {
        /// Against a plain ordered set: the same op comes out at every pop.
        #[test]
        fn pops_in_key_seq_order_among_unblocked_lanes(steps in proptest::collection::vec(step(), 1..300)) {
            let mut q = Queue::new();
            let lanes: Vec<u32> = (0..3).map(|i| q.add_lane(i, 0)).collect();
            // Reference: (entry, lane, priority) of every queued op.
            let mut queued: std::collections::BTreeMap<u32, (Entry, u32, i32)> = Default::default();
            let mut blocked = [false; 3];
            let mut slot = 0u32;
            for s in steps {
                match s {
                    Step::Push { lane, priority, key } => {
                        slot += 1;
                        let seq = q.next_seq();
                        let entry = e(i64::from(key), seq, slot);
                        q.push(lanes[lane as usize], i32::from(priority), entry);
                        queued.insert(slot, (entry, lanes[lane as usize], i32::from(priority)));
                    }
                    Step::Remove(i) => {
                        if queued.is_empty() { continue; }
                        let victim = *queued.keys().nth(i as usize % queued.len()).expect("non-empty");
                        let (_, lane, priority) = queued.remove(&victim).expect("present");
                        let live = |x: &Entry| queued.get(&x.slot).is_some_and(|(e, _, _)| e == x);
                        q.remove_lazily(lane, priority, live);
                    }
                    Step::Pop => {
                        let want = queued
                            .values()
                            .filter(|(_, lane, _)| !blocked[*lane as usize])
                            .map(|&(e, lane, _)| (e, lane))
                            .min();
                        let live = |x: &Entry| queued.get(&x.slot).is_some_and(|(e, _, _)| e == x);
                        let got = q.peek_best(live).map(|(lane, e)| (e, lane));
                        prop_assert_eq!(got, want);
                        if let Some((e, lane)) = got {
                            q.pop_top(lane);
                            queued.remove(&e.slot);
                        }
                    }
                    Step::Block(lane) => {
                        blocked[lane as usize] = true;
                        q.block(lanes[lane as usize], Block::Partition);
                    }
                    Step::Unblock => {
                        blocked = [false; 3];
                        q.unblock_where(|_| true);
                    }
                }
                prop_assert_eq!(q.len, queued.len() as u64);
            }
        }
    }
}
