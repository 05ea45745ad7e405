//! The event queue, ordered by (time, sequence number), so events at the same
//! virtual instant run in the order they were scheduled: a timing wheel for the
//! near future in front of a 4-ary heap (see [`Queue`]).

use pool_core::OpId;

/// Which of a client's two NIC directions a transfer uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Downloads (GET bodies).
    Rx,
    /// Uploads (PUT and part bodies).
    Tx,
}

/// Something that happens at an instant.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Ev {
    /// The next arrival(s) of a workload of a client.
    Arrival { client: u32, workload: u32 },
    /// The engine of a client asked to be ticked now.
    Tick { client: u32 },
    /// The server answers a request (or the connection resets).
    Reply { req: u32, gen: u32 },
    /// A transfer at its own fixed rate ends (NIC not saturated).
    FlowDone {
        client: u32,
        dir: Dir,
        flow: u32,
        gen: u32,
    },
    /// The next transfer end of a saturated NIC.
    NicWake { client: u32, dir: Dir, gen: u32 },
    /// The caller gives up on an op.
    CallerCancel { client: u32, op: OpId },
    /// Record one row of the time series.
    Sample,
}

/// Width of a wheel slot: 2^16 ns ≈ 65.5 µs.
const SLOT_SHIFT: u32 = 16;
/// Slots in the wheel (a power of two): 4096 × 65.5 µs ≈ 268 ms ahead of now.
const SLOTS: usize = 1 << 12;
/// Most events one slot holds; more go to the heap, so a crowded instant (a
/// fleet's clients all starting at t = 0) never makes a pop scan a long list.
const SLOT_CAP: u16 = 32;
const NIL: u32 = u32::MAX;

/// A wheel entry; `next` chains the entries of one slot (unordered).
#[derive(Copy, Clone)]
struct Node {
    key: u128,
    ev: Ev,
    next: u32,
}

/// Pending events, popped in (time, sequence number) order.
///
/// Most events of a run are due within a few hundred ms (answers, transfer ends,
/// the next arrival), so they go into a timing wheel: a slot per 65.5 µs of the
/// next ~268 ms, each an unordered list of a few entries, with a bitmap of the
/// non-empty slots. A push is O(1); a pop finds the first non-empty slot at or
/// after the current one and takes its smallest key. Events further ahead (or
/// past a crowded slot's cap) go to a 4-ary heap, and a pop takes the smaller of
/// the two minima — so the order is exactly the heap's, only cheaper: a binary
/// heap's unpredictable sift-down branches were a sixth of a fleet run's time.
///
/// Invariant: every wheel entry's absolute slot (`at >> SLOT_SHIFT`) is in
/// `[cur, cur + SLOTS)`, `cur` being the slot of the last event popped. It holds
/// because events are never scheduled before now, and everything popped is the
/// global minimum; so absolute slots map one-to-one onto wheel positions.
pub(crate) struct Queue {
    seq: u64,
    cur: u64,
    head: Vec<u32>,
    count: Vec<u16>,
    occupied: Vec<u64>,
    nodes: Vec<Node>,
    free: u32,
    in_wheel: usize,
    far: Heap,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            seq: 0,
            cur: 0,
            head: vec![NIL; SLOTS],
            count: vec![0; SLOTS],
            occupied: vec![0; SLOTS / 64],
            nodes: Vec::new(),
            free: NIL,
            in_wheel: 0,
            far: Heap::default(),
        }
    }
}

/// Where the wheel's minimum is: its slot position, node and predecessor.
struct Found {
    pos: usize,
    node: u32,
    prev: u32,
    key: u128,
}

impl Queue {
    /// Schedules `ev` at `at` (ns).
    #[inline]
    pub fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        let key = (u128::from(at) << 64) | u128::from(self.seq);
        // Never earlier than the current slot (a push into the past would be a
        // driver bug; it still pops first, by its key, as from a plain heap).
        let abs = (at >> SLOT_SHIFT).max(self.cur);
        if abs - self.cur < SLOTS as u64 {
            let pos = abs as usize & (SLOTS - 1);
            if self.count[pos] < SLOT_CAP {
                let node = Node {
                    key,
                    ev,
                    next: self.head[pos],
                };
                let id = if self.free != NIL {
                    let id = self.free;
                    self.free = self.nodes[id as usize].next;
                    self.nodes[id as usize] = node;
                    id
                } else {
                    self.nodes.push(node);
                    (self.nodes.len() - 1) as u32
                };
                self.head[pos] = id;
                self.count[pos] += 1;
                self.occupied[pos / 64] |= 1 << (pos % 64);
                self.in_wheel += 1;
                return;
            }
        }
        self.far.push(Entry { key, ev });
    }

    /// The earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, Ev)> {
        let found = if self.in_wheel > 0 {
            Some(self.wheel_min())
        } else {
            None
        };
        let e = match (found, self.far.peek_key()) {
            (Some(f), Some(k)) if k < f.key => self.far.pop(),
            (Some(f), _) => Some(self.take(f)),
            (None, _) => self.far.pop(),
        }?;
        let at = (e.key >> 64) as u64;
        self.cur = self.cur.max(at >> SLOT_SHIFT);
        Some((at, e.ev))
    }

    /// The smallest wheel entry: in the first non-empty slot from `cur` on.
    #[inline]
    fn wheel_min(&self) -> Found {
        let start = self.cur as usize & (SLOTS - 1);
        let words = self.occupied.len();
        let (w0, b0) = (start / 64, start % 64);
        let mut pos = None;
        let first = self.occupied[w0] >> b0;
        if first != 0 {
            pos = Some(start + first.trailing_zeros() as usize);
        } else {
            // The following words, wrapping round to the start word's low bits.
            for k in 1..=words {
                let w = (w0 + k) % words;
                let bits = self.occupied[w];
                if bits != 0 {
                    pos = Some(w * 64 + bits.trailing_zeros() as usize);
                    break;
                }
            }
        }
        let pos = pos.expect("in_wheel > 0: some slot is occupied");
        let (mut prev, mut id) = (NIL, self.head[pos]);
        let mut best = Found {
            pos,
            node: id,
            prev: NIL,
            key: u128::MAX,
        };
        while id != NIL {
            let n = &self.nodes[id as usize];
            if n.key < best.key {
                best.key = n.key;
                best.node = id;
                best.prev = prev;
            }
            prev = id;
            id = n.next;
        }
        best
    }

    /// Unlinks the wheel entry `f` found and returns it.
    #[inline]
    fn take(&mut self, f: Found) -> Entry {
        let n = self.nodes[f.node as usize];
        if f.prev == NIL {
            self.head[f.pos] = n.next;
        } else {
            self.nodes[f.prev as usize].next = n.next;
        }
        self.nodes[f.node as usize].next = self.free;
        self.free = f.node;
        self.count[f.pos] -= 1;
        if self.head[f.pos] == NIL {
            self.occupied[f.pos / 64] &= !(1 << (f.pos % 64));
        }
        self.in_wheel -= 1;
        Entry {
            key: n.key,
            ev: n.ev,
        }
    }

    /// Events pending.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.in_wheel + self.far.len()
    }
}

/// A pending event. The key packs (time, sequence) into one integer, time in the
/// high half, so ordering is a single 128-bit comparison.
#[derive(Copy, Clone)]
struct Entry {
    key: u128,
    ev: Ev,
}

/// Children per heap node. A 4-ary heap is half as deep as a binary one, and a
/// node's children sit next to each other in memory: popping (the hot operation,
/// the hot operation) touches fewer cache lines and moves fewer entries.
const ARITY: usize = 4;

/// A min-heap on the key: the queue's store for events beyond the wheel.
#[derive(Default)]
struct Heap {
    heap: Vec<Entry>,
}

impl Heap {
    #[inline]
    fn push(&mut self, e: Entry) {
        // Sift up with a hole: parents move down until `e` fits.
        let mut i = self.heap.len();
        self.heap.push(e);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.heap[parent].key <= e.key {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = e;
    }

    #[inline]
    fn peek_key(&self) -> Option<u128> {
        self.heap.first().map(|e| e.key)
    }

    #[inline]
    fn pop(&mut self) -> Option<Entry> {
        let last = self.heap.pop()?;
        let top = match self.heap.first_mut() {
            Some(root) => core::mem::replace(root, last),
            None => last,
        };
        if !self.heap.is_empty() {
            self.sift_down(last);
        }
        Some(top)
    }

    /// Puts `e` (now at the root) where it belongs: the smallest child moves up
    /// until `e` is no larger than every child.
    #[inline]
    fn sift_down(&mut self, e: Entry) {
        let h = &mut self.heap[..];
        let n = h.len();
        let mut i = 0;
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            let end = (first + ARITY).min(n);
            let mut m = first;
            let mut mk = h[first].key;
            for (j, c) in h[first + 1..end].iter().enumerate() {
                if c.key < mk {
                    mk = c.key;
                    m = first + 1 + j;
                }
            }
            if e.key <= mk {
                break;
            }
            h[i] = h[m];
            i = m;
        }
        h[i] = e;
    }

    /// Events pending.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_fifo() {
        let mut q = Queue::default();
        q.push(5, Ev::Tick { client: 1 });
        q.push(3, Ev::Tick { client: 2 });
        q.push(5, Ev::Tick { client: 3 });
        let order: Vec<_> = std::iter::from_fn(|| q.pop())
            .map(|(t, e)| match e {
                Ev::Tick { client } => (t, client),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, [(3, 2), (5, 1), (5, 3)]);
    }

    /// Against a sorted reference: times from ns to minutes ahead (wheel, heap,
    /// wrap-round, crowded slots past the cap, many equal), pushes between pops.
    #[test]
    fn matches_a_sorted_reference() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for scale in [50u64, 1 << 16, 1 << 22, 1 << 28, 1 << 36] {
            let mut q = Queue::default();
            let mut reference: Vec<(u64, u64)> = Vec::new();
            let (mut seq, mut now) = (0u64, 0u64);
            let mut popped = Vec::new();
            for round in 0..5_000 {
                let burst = if round % 500 == 0 { 100 } else { rand() % 4 };
                for _ in 0..burst {
                    seq += 1;
                    let at = match rand() % 4 {
                        0 => now,
                        1 => now + rand() % 50,
                        _ => now + rand() % scale,
                    };
                    q.push(at, Ev::Tick { client: seq as u32 });
                    reference.push((at, seq));
                }
                if round % 3 != 0 {
                    if let Some((t, Ev::Tick { client })) = q.pop() {
                        assert!(t >= now);
                        now = t;
                        popped.push((t, u64::from(client)));
                    }
                }
            }
            while let Some((t, Ev::Tick { client })) = q.pop() {
                popped.push((t, u64::from(client)));
            }
            assert_eq!(q.len(), 0);
            reference.sort_unstable();
            assert_eq!(popped, reference, "scale {scale}");
        }
    }
}
