//! Events: one per state transition, delivered to an [`Observer`] after the engine's
//! state is consistent. A panicking observer is caught and counted; it cannot
//! corrupt state or counts (the seed's listeners can, flaw F9).

use crate::class::OpClass;
use crate::control::Scope;
use crate::outcome::{
    AttemptId, CancelCause, CancelReason, FailureCause, OpId, RejectCause, SampleOutcome,
};
use crate::time::Instant;
use serde::Serialize;

/// A transition in the engine.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub enum Event {
    /// An op entered the queue.
    Queued {
        /// The op.
        op: OpId,
        /// Its priority.
        priority: i32,
        /// Its class.
        class: OpClass,
    },
    /// An attempt started.
    Started {
        /// The attempt.
        attempt: AttemptId,
        /// Whether it is a hedge.
        hedge: bool,
        /// Whether it borrows its parent's slot.
        borrowed: bool,
    },
    /// An attempt failed (the op may still retry).
    AttemptFailed {
        /// The attempt.
        attempt: AttemptId,
        /// How.
        outcome: SampleOutcome,
    },
    /// An attempt was cancelled by the engine.
    AttemptCancelled {
        /// The attempt.
        attempt: AttemptId,
        /// Why.
        reason: CancelReason,
    },
    /// A retry is scheduled.
    RetryScheduled {
        /// The op.
        op: OpId,
        /// When it re-enters the queue.
        at: Instant,
    },
    /// A hedge attempt was started.
    Hedged {
        /// The hedge attempt.
        attempt: AttemptId,
    },
    /// An op succeeded.
    Succeeded {
        /// The op.
        op: OpId,
        /// Attempts started.
        attempts: u32,
    },
    /// An op failed.
    Failed {
        /// The op.
        op: OpId,
        /// Attempts started.
        attempts: u32,
        /// Why.
        cause: FailureCause,
    },
    /// An op was cancelled.
    Cancelled {
        /// The op.
        op: OpId,
        /// Why.
        cause: CancelCause,
    },
    /// An attempt hit its timeout.
    TimedOut {
        /// The attempt.
        attempt: AttemptId,
    },
    /// An op was rejected.
    Rejected {
        /// The op.
        op: OpId,
        /// Why.
        cause: RejectCause,
    },
    /// A concurrency limit changed.
    LimitChanged {
        /// Which limit.
        #[serde(skip)]
        scope: Scope,
        /// Old value.
        old: u32,
        /// New value.
        new: u32,
    },
    /// The engine was paused.
    Paused,
    /// The engine was resumed.
    Resumed,
    /// Queue and in-flight became empty.
    Drained,
    /// Graceful shutdown began: no new submits.
    ShuttingDown,
    /// Shutdown finished: everything resolved.
    Closed,
    /// The engine was aborted.
    Aborted,
}

/// Receives every event with the engine time it happened at.
pub trait Observer: Send {
    /// Called once per event, in order.
    fn on_event(&mut self, at: Instant, event: &Event);
}

impl<F: FnMut(Instant, &Event) + Send> Observer for F {
    fn on_event(&mut self, at: Instant, event: &Event) {
        self(at, event)
    }
}
