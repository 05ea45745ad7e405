//! The engine's internal records: ops, running attempts, partitions, classes.

use crate::control::{Controller, RateGate};
use crate::outcome::ErrorClass;
use crate::rate::TokenBucket;
use crate::time::Instant;
use core::num::NonZeroU32;

pub(crate) const NONE: u32 = u32::MAX;
pub(crate) const NEVER: u64 = u64::MAX;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum OpState {
    Queued,
    Running,
    WaitingRetry,
}

pub(crate) mod flags {
    pub const IDEMPOTENT: u8 = 1;
    /// A child currently runs on this op's slot.
    pub const LENDING: u8 = 2;
    /// The last failed attempt ended by timeout.
    pub const LAST_TIMED_OUT: u8 = 4;
    /// A hedge was started for this op.
    pub const HEDGED: u8 = 8;
    /// A retry was granted (its quota paid) and has not started yet: if the op
    /// ends before it does, the cost is refunded.
    pub const RETRY_PENDING: u8 = 16;
    /// Not a latency sample (`OpOptions::sampled`): kept out of the latency
    /// histograms and of what controllers and rate gates are fed.
    pub const UNSAMPLED: u8 = 32;
}

/// One live op. Kept small: it is the bulk of the per-queued-op bookkeeping.
pub(crate) struct Op {
    pub gen: NonZeroU32,
    pub state: OpState,
    pub flags: u8,
    pub running: u8,
    pub last_err: Option<ErrorClass>,
    pub class: u16,
    pub attempts: u16,
    /// 0: the pool's default.
    pub max_attempts: u16,
    /// Quota cost paid for the retry that is pending or led to the running attempt.
    pub retry_cost: Option<u16>,
    /// FIFO sequence of this op's current queue entry.
    pub seq: u32,
    /// Per-attempt timeout (0: none), packed by [`pack_timeout`].
    pub timeout: u32,
    pub priority: i32,
    pub partition: u32,
    /// Parent op slot, or NONE.
    pub parent: u32,
    /// A running attempt's slot (NONE when none); a hedge twin is linked from it.
    pub attempt: u32,
    pub submitted_at: u64,
    /// When the op last entered the queue (submit or retry).
    pub enqueued_at: u64,
    pub first_started: u64,
    /// Absolute deadline (NEVER: none).
    pub deadline: u64,
    pub expected_bytes: u64,
}

impl Op {
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// One running attempt.
pub(crate) struct Attempt {
    pub op: u32,
    pub number: u32,
    pub uid: u32,
    pub in_flight_at_start: u32,
    pub started_at: u64,
    pub queue_wait: u64,
    /// The other running attempt of the same op (hedging), or NONE.
    pub twin: u32,
    pub hedge: bool,
    /// The op whose slot this attempt runs on (NONE: its own slot). A borrowed
    /// attempt counts against no limit: the lender's slot is counted once.
    pub lender: u32,
    /// Timers scheduled for this attempt (made stale when it ends early).
    pub timers: u8,
}

pub(crate) struct Partition {
    pub key: Box<str>,
    pub gen: u32,
    /// Ops of this partition not yet resolved.
    pub live_ops: u64,
    pub in_flight: u32,
    pub limit: Option<u32>,
    pub rate: Option<TokenBucket>,
    pub gate: Option<Box<dyn RateGate>>,
    pub controller: Option<Box<dyn Controller>>,
    /// (class, lane) pairs.
    pub lanes: Vec<(u16, u32)>,
    pub idle_since: Instant,
    /// Configured by the user or named in config: never evicted.
    pub pinned: bool,
}

#[derive(Default)]
pub(crate) struct ClassState {
    pub in_flight: u32,
    pub limit: Option<u32>,
    pub rate: Option<TokenBucket>,
    pub controller: Option<Box<dyn Controller>>,
    /// Cached hedge threshold (ns) and the start count it was computed at.
    pub hedge_after: Option<u64>,
    pub hedge_computed_at: u64,
    pub starts: u64,
}

/// Packs a timeout into 32 bits: microseconds up to 2^31 µs (35 minutes), else
/// milliseconds with the top bit set (up to 2^31 ms, 24 days). `None` if longer.
pub(crate) fn pack_timeout(d: core::time::Duration) -> Option<u32> {
    let us = d.as_micros().max(1);
    if us < (1 << 31) {
        return Some(us as u32);
    }
    let ms = d.as_millis();
    (ms < (1 << 31)).then_some((ms as u32) | (1 << 31))
}

/// The inverse of [`pack_timeout`].
pub(crate) fn unpack_timeout(v: u32) -> core::time::Duration {
    if v & (1 << 31) == 0 {
        core::time::Duration::from_micros(u64::from(v))
    } else {
        core::time::Duration::from_millis(u64::from(v & !(1 << 31)))
    }
}

/// The longest timeout or deadline the engine accepts (24 days).
pub(crate) const MAX_TIMEOUT: core::time::Duration =
    core::time::Duration::from_millis((1 << 31) - 1);
