//! The event queue: a binary heap ordered by (time, sequence number), so events
//! at the same virtual instant run in the order they were scheduled.

use pool_core::OpId;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

struct Entry {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending events.
#[derive(Default)]
pub(crate) struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Queue {
    /// Schedules `ev` at `at` (ns).
    #[inline]
    pub fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// The earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, Ev)> {
        self.heap.pop().map(|e| (e.at, e.ev))
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
}
