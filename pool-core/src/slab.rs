//! A paged slab: stable `u32` indices, a free set, and growth one page at a time so
//! memory per live entry stays close to `size_of::<T>()` (a doubling `Vec` can waste
//! up to half its capacity, which would blow the per-queued-op bookkeeping budget).
//!
//! Freed indices are handed out lowest first, not last-freed first. A long-lived
//! engine sees bursts: after a burst drains, its slots were freed in completion
//! order, and a LIFO list would give the next burst's ops (and the driver's
//! tables indexed by them) scattered addresses. Lowest-first gives it the same
//! dense, in-order layout as a fresh engine.

const PAGE_BITS: u32 = 10;
const PAGE: usize = 1 << PAGE_BITS;

/// Entries addressed by `u32`; freed indices are reused.
pub(crate) struct Slab<T> {
    /// Fixed-size pages: an index masked to `PAGE - 1` needs no bounds check.
    pages: Vec<Box<[Option<T>; PAGE]>>,
    free: FreeSet,
    len: usize,
    next: u32,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            pages: Vec::new(),
            free: FreeSet::default(),
            len: 0,
            next: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    // Always inlined (once per op and per attempt; with plain `#[inline]` the
    // attempt's insert stayed a call once `start_attempt` was inlined into
    // `dispatch`): the page allocation, the only bulky part, is out of line.
    #[inline(always)]
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        let idx = match self.free.pop_lowest() {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next += 1;
                if (i as usize) >> PAGE_BITS >= self.pages.len() {
                    self.add_page();
                }
                i
            }
        };
        let slot = &mut self.pages[(idx as usize) >> PAGE_BITS][(idx as usize) & (PAGE - 1)];
        debug_assert!(slot.is_none());
        *slot = Some(value);
        self.len += 1;
        idx
    }

    #[cold]
    #[inline(never)]
    fn add_page(&mut self) {
        let page: Box<[Option<T>]> = (0..PAGE).map(|_| None).collect();
        let Ok(page) = page.try_into() else {
            unreachable!("a page has PAGE entries");
        };
        self.pages.push(page);
    }

    #[inline]
    pub(crate) fn remove(&mut self, idx: u32) -> Option<T> {
        let v = self.slot_mut(idx)?.take()?;
        self.free.insert(idx);
        self.len -= 1;
        Some(v)
    }

    fn slot_mut(&mut self, idx: u32) -> Option<&mut Option<T>> {
        self.pages
            .get_mut((idx as usize) >> PAGE_BITS)
            .map(|p| &mut p[(idx as usize) & (PAGE - 1)])
    }

    pub(crate) fn get(&self, idx: u32) -> Option<&T> {
        self.pages
            .get((idx as usize) >> PAGE_BITS)
            .and_then(|p| p[(idx as usize) & (PAGE - 1)].as_ref())
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut T> {
        self.slot_mut(idx).and_then(|s| s.as_mut())
    }

    /// Hints the CPU to fetch entry `idx` into cache. The engine calls it for the
    /// op it will dispatch next: that record was written long ago (it waited in
    /// the queue) and is usually cold, and the miss would otherwise land on the
    /// critical path of the next completion.
    #[inline]
    pub(crate) fn prefetch(&self, idx: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = self.pages.get((idx as usize) >> PAGE_BITS) {
            let ptr = p.as_ptr().wrapping_add((idx as usize) & (PAGE - 1)) as *const i8;
            // SAFETY: prefetching is a hint with no effect on program state; the
            // address is inside a live allocation.
            unsafe {
                core::arch::x86_64::_mm_prefetch(ptr, core::arch::x86_64::_MM_HINT_T0);
                core::arch::x86_64::_mm_prefetch(
                    ptr.wrapping_add(64),
                    core::arch::x86_64::_MM_HINT_T0,
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = idx;
    }

    /// Live entries in index order (deterministic).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter()
                .enumerate()
                .filter_map(move |(o, v)| v.as_ref().map(|v| (((p << PAGE_BITS) + o) as u32, v)))
        })
    }
}

/// A set of free indices with the lowest one found in O(1) amortised: a bitmap
/// of free indices and a summary bitmap of its non-empty words.
#[derive(Default)]
struct FreeSet {
    words: Vec<u64>,
    summary: Vec<u64>,
    /// No summary word before this one has a bit set.
    first: usize,
}

impl FreeSet {
    // Inlined into `Slab::remove`; growing the bitmaps is out of line.
    #[inline]
    fn insert(&mut self, idx: u32) {
        let w = idx as usize >> 6;
        if self.words.len() <= w {
            self.grow(w);
        }
        debug_assert_eq!(self.words[w] & (1 << (idx & 63)), 0, "freed twice");
        self.words[w] |= 1 << (idx & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
        self.first = self.first.min(w >> 6);
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, w: usize) {
        self.words.resize(w + 1, 0);
        self.summary.resize((w >> 6) + 1, 0);
    }

    #[inline]
    fn pop_lowest(&mut self) -> Option<u32> {
        while self.first < self.summary.len() {
            let s = self.summary[self.first];
            if s == 0 {
                self.first += 1;
                continue;
            }
            let w = (self.first << 6) + s.trailing_zeros() as usize;
            let bit = self.words[w].trailing_zeros();
            self.words[w] &= !(1 << bit);
            if self.words[w] == 0 {
                self.summary[self.first] &= !(1 << (w & 63));
            }
            return Some(((w << 6) as u32) | bit);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_reuse() {
        let mut s = Slab::new();
        let a = s.insert(1);
        let b = s.insert(2);
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.insert(3), 0);
        assert_eq!(s.get(0), Some(&3));
        assert_eq!(s.len(), 2);
        for i in 0..3000 {
            s.insert(i);
        }
        assert_eq!(s.iter().count(), 3002);
        assert!(s.get(5000).is_none());
    }

    #[test]
    fn freed_slots_are_reused_lowest_first() {
        let mut s = Slab::new();
        for i in 0..10_000u32 {
            assert_eq!(s.insert(i), i);
        }
        // Freed in a scattered order, as a burst completes.
        let mut order: Vec<u32> = (0..10_000).collect();
        order.sort_by_key(|&i| (i.wrapping_mul(2_654_435_761)) % 10_007);
        for &i in &order {
            assert_eq!(s.remove(i), Some(i));
        }
        for i in 0..10_000u32 {
            assert_eq!(s.insert(i), i, "a drained slab fills in index order again");
        }
        s.remove(7_000);
        s.remove(3);
        s.remove(4_096);
        assert_eq!([s.insert(0), s.insert(0), s.insert(0)], [3, 4_096, 7_000]);
        assert_eq!(s.insert(0), 10_000);
    }
}
