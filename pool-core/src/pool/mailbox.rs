//! Per-op mailboxes: what the engine decided for an op since its future last
//! looked.
//!
//! Each live op future owns a place in a table (its *box*), normally the one at
//! the op's dense engine slot index ([`OpId::index`]). Nothing on this path
//! hashes or allocates per op.
//!
//! Every box also has a lock-free *mail word* ([`Words`]) so a future can see
//! without the pool's lock whether anything arrived: `0` — nothing; a number —
//! start that attempt (the common case, so an op starts without locking); or
//! [`LOCKED`] — look in the box under the lock. Only the routing code (under the
//! lock) puts mail in a word, and only the box's own future takes it out.

use super::ctx::SignalInner;
use crate::outcome::{Decision, OpId, Resolution};
use core::task::{RawWakerVTable, Waker};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// A word value: the box holds mail; take it under the lock.
const LOCKED: u32 = 1 << 31;

/// Decisions for one op, small enough to copy out under the lock. Two starts and
/// two cancels fit inline: the engine runs at most an attempt and its hedge, and
/// a cancel is only kept for an attempt the future already holds (at most two).
/// Anything beyond waits in [`Extra`] and is moved in by [`Boxes::take`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mail {
    /// Attempts to start; 0 is an empty place.
    starts: [u32; 2],
    /// Bit `i`: `starts[i]` is a hedge.
    hedges: u8,
    /// More decisions are waiting: take the mail again before sleeping.
    pub(crate) more: bool,
    /// Attempts to drop; 0 is an empty place.
    cancels: [u32; 2],
    pub(crate) resolution: Option<Resolution>,
}

impl Mail {
    /// Mail holding one plain start (what a mail word carries).
    pub(crate) fn start(n: u32) -> Mail {
        Mail {
            starts: [n, 0],
            ..Mail::default()
        }
    }
    /// Whether any attempt is to be dropped.
    pub(crate) fn has_cancels(&self) -> bool {
        (self.cancels[0] | self.cancels[1]) != 0
    }
    /// Nothing to do (`more` aside).
    pub(crate) fn is_empty(&self) -> bool {
        (self.starts[0] | self.starts[1] | self.cancels[0] | self.cancels[1]) == 0
            && self.resolution.is_none()
    }
    /// The attempts to start, with whether each is a hedge.
    pub(crate) fn starts(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        (0..2)
            .filter(|&i| self.starts[i] != 0)
            .map(|i| (self.starts[i], self.hedges & (1 << i) != 0))
    }
    /// The attempts to drop.
    pub(crate) fn cancels(&self) -> impl Iterator<Item = u32> + '_ {
        self.cancels.iter().copied().filter(|&c| c != 0)
    }
    fn push_start(&mut self, n: u32, hedge: bool) -> bool {
        let Some(i) = self.starts.iter().position(|&s| s == 0) else {
            return false;
        };
        self.starts[i] = n;
        self.hedges = (self.hedges & !(1 << i)) | (u8::from(hedge) << i);
        true
    }
    fn push_cancel(&mut self, n: u32) -> bool {
        let Some(c) = self.cancels.iter_mut().find(|c| **c == 0) else {
            return false;
        };
        *c = n;
        true
    }
}

/// What rarely happens, kept out of line so a box stays small.
#[derive(Default)]
struct Extra {
    starts: Vec<(u32, bool)>,
    cancels: Vec<u32>,
    /// Cancellation signals handed out by attempt contexts: (attempt, signal).
    signals: Vec<(u32, Arc<SignalInner>)>,
}

/// One op's box: whose it is, the waker to wake and the mail. One cache line
/// (60 bytes used): routing a start reads the waker and taking the mail at the
/// op's end reads the rest, both usually long after the op was queued, so one
/// line fetched (or prefetched) once serves both.
#[derive(Default)]
#[repr(align(64))]
struct OpBox {
    /// The op's id (`get()`), 0 when the box is free (no engine id is 0).
    id: u64,
    /// The waker of the task polling the op's future.
    waker: Option<Waker>,
    mail: Mail,
    extra: Option<Box<Extra>>,
}

impl OpBox {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
    fn start(&mut self, n: u32, hedge: bool) {
        if !self.mail.push_start(n, hedge) {
            self.extra().starts.push((n, hedge));
        }
    }
    fn cancel(&mut self, n: u32) {
        if let Some(s) = self.mail.starts.iter_mut().find(|s| **s == n) {
            // Not taken yet: it never starts.
            *s = 0;
        } else if let Some(i) = self
            .extra
            .as_ref()
            .and_then(|x| x.starts.iter().position(|s| s.0 == n))
        {
            self.extra().starts.swap_remove(i);
        } else if !self.mail.push_cancel(n) {
            self.extra().cancels.push(n);
        }
        self.fire_signals(Some(n));
    }
    fn apply(&mut self, d: &Decision) {
        match *d {
            Decision::Start { attempt, hedge } => self.start(attempt.number, hedge),
            Decision::Cancel { attempt, .. } => self.cancel(attempt.number),
            Decision::Resolved { resolution, .. } => self.mail.resolution = Some(resolution),
            Decision::RetryScheduled { .. } => {}
        }
    }
    fn fire_signals(&mut self, attempt: Option<u32>) {
        let Some(x) = &mut self.extra else {
            return;
        };
        x.signals.retain(|(n, s)| {
            if attempt.is_none_or(|a| a == *n) {
                s.fire();
                false
            } else {
                true
            }
        });
    }
    /// Moves overflow into the (just emptied) inline mail; says if there was any.
    fn refill(&mut self) -> bool {
        let Some(x) = &mut self.extra else {
            return false;
        };
        while let Some((n, h)) = x.starts.pop() {
            if !self.mail.push_start(n, h) {
                x.starts.push((n, h));
                break;
            }
        }
        while let Some(n) = x.cancels.pop() {
            if !self.mail.push_cancel(n) {
                x.cancels.push(n);
                break;
            }
        }
        !self.mail.is_empty()
    }
}

/// Identifies the waker registered in an op's box (its data and vtable pointers,
/// as `Waker::will_wake` compares them). The box keeps that waker alive, so an
/// equal key means the same waker, never a reused address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WakerKey(usize, usize);

impl WakerKey {
    pub(crate) fn of(w: &Waker) -> WakerKey {
        WakerKey(
            w.data() as usize,
            w.vtable() as *const RawWakerVTable as usize,
        )
    }
}

/// Mail words, one per box, readable without the pool's lock: fixed chunks that
/// never move, made as boxes are, so the table grows without invalidating a
/// concurrent reader. Boxes past the last chunk (over a million ops live at
/// once) have no word: their futures always take the lock.
pub(crate) struct Words {
    chunks: [OnceLock<Box<[AtomicU32; CHUNK]>>; CHUNKS],
}

const CHUNK_SHIFT: u32 = 12;
const CHUNK: usize = 1 << CHUNK_SHIFT;
const CHUNKS: usize = 256;

impl Default for Words {
    fn default() -> Self {
        Words {
            chunks: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl Words {
    /// The word of box `i`, if it has one.
    fn get(&self, i: u32) -> Option<&AtomicU32> {
        let chunk = self.chunks.get((i >> CHUNK_SHIFT) as usize)?.get()?;
        Some(&chunk[i as usize & (CHUNK - 1)])
    }
    /// Makes the words of boxes `from..=to` (as far as there are chunks).
    fn ensure(&self, from: usize, to: usize) {
        let first = (from >> CHUNK_SHIFT).min(CHUNKS);
        let last = (to >> CHUNK_SHIFT).min(CHUNKS - 1);
        for c in self.chunks.iter().take(last + 1).skip(first) {
            c.get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU32::new(0))));
        }
    }
}

/// Starts loading `*p` into the cache: a hint, with no effect on program state.
#[inline]
fn prefetch<T>(p: Option<&T>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = p {
        // SAFETY: a prefetch reads nothing the program sees and never faults.
        unsafe {
            core::arch::x86_64::_mm_prefetch(
                p as *const T as *const i8,
                core::arch::x86_64::_MM_HINT_T0,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// What a future finds in its mail word without taking the lock.
pub(crate) enum Peek {
    /// Nothing new.
    Empty,
    /// Start this (non-hedge) attempt.
    Start(u32),
    /// Something is in the box: take the lock.
    Locked,
}

/// Reads (and empties) box `b`'s mail word without the lock.
pub(crate) fn peek(words: &Words, b: u32) -> Peek {
    let Some(w) = words.get(b) else {
        return Peek::Locked;
    };
    // A plain load first: most polls find nothing and need no atomic write.
    if w.load(Ordering::Acquire) == 0 {
        return Peek::Empty;
    }
    match w.swap(0, Ordering::Acquire) {
        0 => Peek::Empty,
        LOCKED => Peek::Locked,
        n => Peek::Start(n),
    }
}

/// Every live op future's box. An op's box is normally the one at its engine
/// slot index ([`OpId::index`]), so finding it is one array access. When that box
/// is still held by an earlier op (the engine reused the slot before that op's
/// future read its resolution), the new op gets a spare box and a map entry.
pub(crate) struct Boxes {
    words: Arc<Words>,
    boxes: Vec<OpBox>,
    /// Boxes freed by ops that were not in their slot's box: reused for the next
    /// such op (a spare may have been taken by its slot's op since: checked).
    spare: Vec<u32>,
    /// Op id → box, for ops not in their slot's box. Rare.
    by_id: HashMap<u64, u32>,
}

/// Boxes added at a time when a new slot needs one (the engine's slab pages
/// are as large).
const GROW_BOXES: usize = 1024;

/// Slot indices at or above this always get a spare box (bounds the table
/// whatever the engine's id packing).
const DENSE_MAX: u32 = 1 << 24;

impl Boxes {
    pub(crate) fn new(words: Arc<Words>) -> Boxes {
        Boxes {
            words,
            boxes: Vec::new(),
            spare: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// Adds boxes up to index `b`, with their mail words.
    fn grow(&mut self, b: usize) {
        self.words.ensure(self.boxes.len(), b);
        self.boxes.resize_with(b + 1, OpBox::default);
    }

    /// Gives a newly submitted op a box; returns its index.
    pub(crate) fn insert(&mut self, id: OpId) -> u32 {
        let slot = id.index();
        if slot < DENSE_MAX {
            let s = slot as usize;
            if s >= self.boxes.len() {
                // A page of boxes at a time, not one per new slot (a burst of
                // submits then resizes once per 1024 ops), and not doubling
                // either: every box made is written, and a fresh pool would pay
                // page faults for up to twice the boxes it needs.
                self.grow((s | (GROW_BOXES - 1)).min(DENSE_MAX as usize - 1));
            }
            if self.boxes[s].id == 0 {
                self.boxes[s].id = id.get();
                return slot;
            }
        }
        let b = loop {
            match self.spare.pop() {
                Some(b) if self.boxes[b as usize].id == 0 => break b,
                Some(_) => continue,
                None => {
                    let b = self.boxes.len();
                    self.grow(b);
                    break b as u32;
                }
            }
        };
        self.boxes[b as usize].id = id.get();
        self.by_id.insert(id.get(), b);
        b
    }

    /// Starts loading the box at slot index `slot` (and its mail
    /// word) into the cache. The engine's next op to start sits there: it was
    /// submitted long ago, so without this the completion that starts it would
    /// wait on a cache miss to find its waker (≈ 15% of `dispatch/pool`).
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        let i = slot as usize;
        prefetch(self.boxes.get(i));
        prefetch(self.words.get(slot));
    }

    /// The box of a live op, if its future still has one.
    fn find(&self, id: OpId) -> Option<u32> {
        let slot = id.index();
        if self
            .boxes
            .get(slot as usize)
            .is_some_and(|e| e.id == id.get())
        {
            return Some(slot);
        }
        if self.by_id.is_empty() {
            return None;
        }
        self.by_id.get(&id.get()).copied()
    }

    /// Whether box `b` is `id`'s.
    fn holds(&self, b: u32, id: OpId) -> bool {
        self.boxes.get(b as usize).is_some_and(|e| e.id == id.get())
    }

    /// Routes one decision for op `op` to its box. The op whose own task is
    /// routing (`mine`) reads its box under this same lock, so its mail goes
    /// straight into the box; any other op's plain start goes into its mail word
    /// (so it starts without locking), everything else into the box with the word
    /// set to [`LOCKED`]. Returns the waker to wake (`None` for `mine`, or when
    /// the op's future is gone).
    pub(crate) fn deliver(&mut self, op: OpId, d: &Decision, mine: bool) -> Option<&Waker> {
        let b = self.find(op)?;
        let i = b as usize;
        let Some(word) = self.words.get(b) else {
            // No mail word: the future always looks in the box.
            self.boxes[i].apply(d);
            return if mine {
                None
            } else {
                self.boxes[i].waker.as_ref()
            };
        };
        if mine {
            let e = &mut self.boxes[i];
            // Keep decisions in order: a plain start still in the word is older.
            if word.load(Ordering::Relaxed) != 0 {
                let prev = word.swap(LOCKED, Ordering::AcqRel);
                if prev != 0 && prev != LOCKED {
                    e.start(prev, false);
                }
            }
            e.apply(d);
            return None;
        }
        if let Decision::Start {
            attempt,
            hedge: false,
        } = d
        {
            let n = attempt.number;
            if n < LOCKED
                && word
                    .compare_exchange(0, n, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return self.boxes[i].waker.as_ref();
            }
        }
        // Keep every decision in order: a plain start still in the word moves
        // into the box first.
        let prev = word.swap(LOCKED, Ordering::AcqRel);
        let e = &mut self.boxes[i];
        if prev != 0 && prev != LOCKED {
            e.start(prev, false);
        }
        e.apply(d);
        self.boxes[i].waker.as_ref()
    }

    /// Empties box `b` into `mail` (under the lock) and remembers `waker` for the
    /// next decision; returns the key of the waker now registered (the default
    /// once resolved: a resolution frees the box). `None` if the box is not `id`'s.
    pub(crate) fn take(
        &mut self,
        b: u32,
        id: OpId,
        waker: &Waker,
        mail: &mut Mail,
    ) -> Option<WakerKey> {
        if !self.holds(b, id) {
            return None;
        }
        let i = b as usize;
        let e = &mut self.boxes[i];
        // A load first: an atomic write only when the word holds something.
        if let Some(word) = self.words.get(b).filter(|w| w.load(Ordering::Relaxed) != 0) {
            let w = word.swap(0, Ordering::Acquire);
            if w != 0 && w != LOCKED {
                e.start(w, false);
            }
        }
        *mail = std::mem::take(&mut e.mail);
        if mail.resolution.is_some() {
            self.free(b, id, false);
            return Some(WakerKey::default());
        }
        mail.more = e.refill();
        match &e.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => e.waker = Some(waker.clone()),
        }
        e.waker.as_ref().map(WakerKey::of)
    }

    /// Frees box `b` of op `id`; with `fire`, its cancellation signals fire
    /// (the op's future is being dropped).
    pub(crate) fn free(&mut self, b: u32, id: OpId, fire: bool) {
        if !self.holds(b, id) {
            return;
        }
        let i = b as usize;
        let e = &mut self.boxes[i];
        if fire {
            e.fire_signals(None);
        }
        *e = OpBox::default();
        if let Some(w) = self.words.get(b) {
            w.store(0, Ordering::Relaxed);
        }
        if !self.by_id.is_empty() && self.by_id.remove(&id.get()).is_some() {
            self.spare.push(b);
        }
    }

    /// Whether attempt `n` of `id` (in box `b`) still runs as far as its future
    /// can tell; if so, `signal` fires when it is cancelled (or the op goes away).
    pub(crate) fn add_signal(
        &mut self,
        b: u32,
        id: OpId,
        n: u32,
        signal: &Arc<SignalInner>,
    ) -> bool {
        if !self.holds(b, id) {
            return false;
        }
        let e = &mut self.boxes[b as usize];
        let cancelled = e.mail.resolution.is_some()
            || e.mail.cancels.contains(&n)
            || e.extra.as_ref().is_some_and(|x| x.cancels.contains(&n));
        if cancelled {
            return false;
        }
        e.extra().signals.push((n, Arc::clone(signal)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_past_the_last_chunk_have_no_word() {
        let w = Words::default();
        w.ensure(0, CHUNK * CHUNKS + 10);
        assert!(w.get(0).is_some());
        assert!(w.get((CHUNK * CHUNKS - 1) as u32).is_some());
        assert!(w.get((CHUNK * CHUNKS) as u32).is_none());
        assert!(matches!(peek(&w, u32::MAX), Peek::Locked));
    }

    #[test]
    fn mail_keeps_starts_and_their_hedge_bits() {
        let mut m = Mail::default();
        assert!(m.is_empty());
        assert!(m.push_start(3, true));
        assert!(m.push_start(4, false));
        assert!(!m.push_start(5, false));
        assert_eq!(m.starts().collect::<Vec<_>>(), [(3, true), (4, false)]);
        m.starts[0] = 0;
        assert!(m.push_start(6, false));
        assert_eq!(m.starts().collect::<Vec<_>>(), [(6, false), (4, false)]);
    }
}
