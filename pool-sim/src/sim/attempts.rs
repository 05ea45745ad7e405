//! The attempts a client's engine is running, each with the S3 request it is
//! making (if any), indexed by attempt id.
//!
//! Stored per op in an [`OpTable`] (dense by the op id's slot bits): an op runs
//! one attempt at a time, or a few while hedged, so each op's list is tiny. This
//! replaced a hash map keyed by `AttemptId`, which hashed on every start, request
//! and finish.

use super::optable::OpTable;
use pool_core::AttemptId;

/// The attempts of one op: `(attempt number, request)`.
type Runs = Vec<(u32, u32)>;

#[derive(Default)]
pub(crate) struct Attempts {
    by_op: OpTable<Runs>,
    /// Emptied lists, reused so a steady run allocates nothing per op.
    spare: Vec<Runs>,
    len: usize,
}

impl Attempts {
    /// Running attempts, over all ops.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds `a` running request `req`; `false` (and no change) if it is already there.
    pub fn insert(&mut self, a: AttemptId, req: u32) -> bool {
        if let Some(runs) = self.by_op.get_mut(&a.op) {
            if runs.iter().any(|r| r.0 == a.number) {
                return false;
            }
            runs.push((a.number, req));
        } else {
            let mut runs = self.spare.pop().unwrap_or_default();
            runs.push((a.number, req));
            self.by_op.insert(a.op, runs);
        }
        self.len += 1;
        true
    }

    /// The request slot of `a`, if it runs.
    #[inline]
    pub fn get_mut(&mut self, a: &AttemptId) -> Option<&mut u32> {
        let runs = self.by_op.get_mut(&a.op)?;
        runs.iter_mut().find(|r| r.0 == a.number).map(|r| &mut r.1)
    }

    /// Removes `a`; its request, if it was running.
    pub fn remove(&mut self, a: &AttemptId) -> Option<u32> {
        let runs = self.by_op.get_mut(&a.op)?;
        let i = runs.iter().position(|r| r.0 == a.number)?;
        let req = runs.swap_remove(i).1;
        if runs.is_empty() {
            if let Some(runs) = self.by_op.remove(&a.op) {
                self.spare.push(runs);
            }
        }
        self.len -= 1;
        Some(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_core::OpId;

    fn attempt(op: u64, number: u32) -> AttemptId {
        // OpId has no public constructor; round-trip through serde.
        let op: OpId = serde_json::from_str(&op.to_string()).unwrap();
        AttemptId { op, number }
    }

    #[test]
    fn hedged_attempts_of_one_op_and_reused_slots() {
        let mut t = Attempts::default();
        assert!(t.insert(attempt(1, 1), 10));
        assert!(!t.insert(attempt(1, 1), 11));
        assert!(t.insert(attempt(1, 2), 12));
        // The same slot, next generation, while the old op still runs.
        assert!(t.insert(attempt((1 << 32) | 1, 1), 13));
        assert_eq!(t.len(), 3);
        *t.get_mut(&attempt(1, 2)).unwrap() = 20;
        assert_eq!(t.remove(&attempt(1, 1)), Some(10));
        assert_eq!(t.remove(&attempt(1, 1)), None);
        assert_eq!(t.remove(&attempt(1, 2)), Some(20));
        assert_eq!(t.get_mut(&attempt(1, 2)), None);
        assert_eq!(t.remove(&attempt((1 << 32) | 1, 1)), Some(13));
        assert_eq!(t.len(), 0);
    }
}
