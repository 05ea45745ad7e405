//! The driver's per-op records, indexed by op id.
//!
//! The engine hands out ids whose low 32 bits are dense (a reused slot number),
//! so records live in a `Vec` indexed by those bits, with the full id stored
//! beside each record to tell a reused slot from the op we want. Records whose
//! index is past a bound, or whose slot still holds an op whose resolution has
//! not been pumped yet (the engine can reuse a slot inside one call, e.g. when a
//! full queue evicts an op), go to a hash map instead: only speed depends on the
//! id layout, never correctness.

use super::fastmap::IdMap;
use pool_core::OpId;

/// Indices above this go to the map (bounds the vector's memory).
const DENSE_MAX: usize = 1 << 24;

pub(crate) struct OpTable<T> {
    dense: Vec<Option<(OpId, T)>>,
    sparse: IdMap<OpId, T>,
    len: usize,
}

impl<T> Default for OpTable<T> {
    fn default() -> Self {
        OpTable {
            dense: Vec::new(),
            sparse: IdMap::default(),
            len: 0,
        }
    }
}

#[inline]
fn index(id: OpId) -> usize {
    // Past DENSE_MAX the dense vector is never grown, so `get` misses and the
    // record lives in the map.
    (id.get() & 0xFFFF_FFFF) as usize
}

impl<T> OpTable<T> {
    /// Live records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Inserts; returns `false` (and changes nothing) if `id` is already present.
    pub fn insert(&mut self, id: OpId, v: T) -> bool {
        if self.get(&id).is_some() {
            return false;
        }
        let i = index(id);
        if i < DENSE_MAX && i >= self.dense.len() {
            self.dense.resize_with(i + 1, || None);
        }
        match self.dense.get_mut(i) {
            Some(slot @ None) => *slot = Some((id, v)),
            _ => {
                self.sparse.insert(id, v);
            }
        }
        self.len += 1;
        true
    }

    /// The record of `id`.
    #[inline]
    pub fn get(&self, id: &OpId) -> Option<&T> {
        match self.dense.get(index(*id)) {
            Some(Some((k, v))) if k == id => Some(v),
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.get(id),
        }
    }

    /// The record of `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: &OpId) -> Option<&mut T> {
        let i = index(*id);
        let dense_hit = matches!(self.dense.get(i), Some(Some((k, _))) if k == id);
        if dense_hit {
            return self.dense[i].as_mut().map(|(_, v)| v);
        }
        if self.sparse.is_empty() {
            None
        } else {
            self.sparse.get_mut(id)
        }
    }

    /// Whether `id` has a record.
    pub fn contains_key(&self, id: &OpId) -> bool {
        self.get(id).is_some()
    }

    /// Removes and returns the record of `id`.
    #[inline]
    pub fn remove(&mut self, id: &OpId) -> Option<T> {
        let i = index(*id);
        let v = match self.dense.get_mut(i) {
            Some(slot) if slot.as_ref().is_some_and(|(k, _)| k == id) => {
                slot.take().map(|(_, v)| v)
            }
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.remove(id),
        };
        if v.is_some() {
            self.len -= 1;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(slot: u64, gen: u64) -> OpId {
        // OpId has no public constructor; round-trip through serde.
        serde_json::from_str(&((gen << 32) | slot).to_string()).unwrap()
    }

    #[test]
    fn reused_slot_and_far_ids_go_to_the_map() {
        let mut t = OpTable::default();
        assert!(t.insert(id(1, 1), "a"));
        assert!(!t.insert(id(1, 1), "dup"));
        // Same slot, new generation, while the old record is still there.
        assert!(t.insert(id(1, 2), "b"));
        assert!(t.insert(id(1 << 30, 1), "far"));
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&id(1, 1)), Some(&"a"));
        assert_eq!(t.remove(&id(1, 1)), Some("a"));
        assert_eq!(t.get_mut(&id(1, 2)).map(|v| *v), Some("b"));
        assert_eq!(t.remove(&id(1, 2)), Some("b"));
        assert_eq!(t.remove(&id(1 << 30, 1)), Some("far"));
        assert!(t.remove(&id(1, 2)).is_none());
        assert_eq!(t.len(), 0);
    }
}
