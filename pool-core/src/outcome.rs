//! What goes into the engine about an attempt, and what comes out about an op.

use crate::class::OpClass;
use crate::time::Instant;
use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Identifies one submitted operation. Unique for the life of an engine.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub(crate) u64);

impl OpId {
    /// The raw number: a generation in the high 32 bits and a dense slot index in
    /// the low 32 bits. Unique among ops alive at the same time and never reused
    /// for 2^32 submissions through the same slot.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The dense slot index (low 32 bits): small, reused after the op resolves.
    /// Drivers can index a table with it (checking the full id on lookup).
    pub fn index(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op#{}", self.0)
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Identifies one attempt of one op. Attempts are numbered from 1; a hedge gets the
/// next number like a retry does.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttemptId {
    /// The op this attempt belongs to.
    pub op: OpId,
    /// 1 for the first attempt.
    pub number: u32,
}

impl fmt::Debug for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op#{}/{}", self.op.0, self.number)
    }
}

/// How the engine should treat a failed attempt. Produced by a classifier (a trait
/// in the driver, so `pool-s3` can map SDK errors) and fed to the engine.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorClass {
    /// The server asked us to slow down (S3 503 SlowDown, 429, throttling codes).
    Throttled,
    /// May succeed if tried again (5xx, RequestTimeout, connection errors, timeouts).
    Transient,
    /// Will fail again (other 4xx: NoSuchKey, AccessDenied, …).
    Permanent,
}

/// A classified attempt failure.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Retry treatment.
    pub class: ErrorClass,
    /// The server's Retry-After hint, if any.
    pub retry_after: Option<Duration>,
    /// `false` only when the error proves the request never reached the server
    /// (e.g. connection refused). Non-idempotent ops are retried only then.
    pub may_have_reached_server: bool,
}

impl AttemptError {
    /// A throttling error that may have reached the server.
    pub const fn throttled() -> Self {
        Self::of(ErrorClass::Throttled)
    }
    /// A transient error that may have reached the server.
    pub const fn transient() -> Self {
        Self::of(ErrorClass::Transient)
    }
    /// A permanent error.
    pub const fn permanent() -> Self {
        Self::of(ErrorClass::Permanent)
    }
    const fn of(class: ErrorClass) -> Self {
        AttemptError {
            class,
            retry_after: None,
            may_have_reached_server: true,
        }
    }
    /// With a Retry-After hint.
    pub const fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }
    /// Marks the error as proof that the request never reached the server.
    pub const fn not_sent(mut self) -> Self {
        self.may_have_reached_server = false;
        self
    }
}

/// The driver's report of how an attempt ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    /// The attempt produced the op's value.
    Success,
    /// The attempt failed.
    Failed(AttemptError),
}

/// What a finished attempt looked like, as reported to controllers and rate gates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleOutcome {
    /// Succeeded.
    Success,
    /// Throttled by the server.
    Throttled,
    /// Failed transiently (not a timeout).
    Transient,
    /// Failed permanently.
    Permanent,
    /// Cancelled by the engine's per-attempt timeout or the op deadline.
    TimedOut,
    /// Cancelled for another reason (caller cancel, lost hedge, abort); says nothing
    /// about the server.
    Cancelled,
}

impl SampleOutcome {
    /// Whether this outcome signals overload (throttling or timeout).
    pub fn is_congestion(self) -> bool {
        matches!(self, SampleOutcome::Throttled | SampleOutcome::TimedOut)
    }
}

/// One finished attempt, as the engine reports it to controllers.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptSample {
    /// The attempt.
    pub attempt: AttemptId,
    /// The op's class.
    pub class: OpClass,
    /// Interned partition index of the op.
    pub partition: u32,
    /// When the attempt started.
    pub started_at: Instant,
    /// When it ended (completion, timeout or cancel).
    pub ended_at: Instant,
    /// How long the op waited in the queue before this attempt started.
    pub queue_wait: Duration,
    /// Ops in flight (global, including this one) when it started.
    pub in_flight_at_start: u32,
    /// Whether this attempt was a hedge.
    pub hedge: bool,
    /// How it ended.
    pub outcome: SampleOutcome,
    /// Bytes the driver reports transferred (0 if unknown).
    pub bytes: u64,
}

impl AttemptSample {
    /// `ended_at - started_at`.
    pub fn latency(&self) -> Duration {
        self.ended_at - self.started_at
    }
}

/// One resolved op, as reported to controllers that learn per op.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSample {
    /// The op.
    pub op: OpId,
    /// Its class.
    pub class: OpClass,
    /// Interned partition index.
    pub partition: u32,
    /// Submit time.
    pub submitted_at: Instant,
    /// First attempt start, if it ever started.
    pub first_started_at: Option<Instant>,
    /// Resolution time.
    pub resolved_at: Instant,
    /// Attempts started (hedges included).
    pub attempts: u32,
    /// How it resolved.
    pub resolution: Resolution,
}

/// Why an attempt is being cancelled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CancelReason {
    /// The per-attempt timeout fired.
    TimedOut,
    /// The op's deadline passed.
    DeadlineExceeded,
    /// Another attempt of the same op (a hedge or the original) succeeded first.
    LostHedge,
    /// The caller cancelled the op.
    OpCancelled,
    /// The pool was aborted.
    Aborted,
}

/// Why an op failed for good.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureCause {
    /// The last attempt failed and the op may not be retried: attempts exhausted,
    /// a permanent error, a non-idempotent op, or no quota/budget. `why` says which.
    AttemptFailed {
        /// The last attempt's classified error (a timeout appears as `Transient`).
        last: ErrorClass,
        /// Whether the last attempt ended by the per-attempt timeout.
        timed_out: bool,
        /// Why no further attempt is made.
        why: NoRetry,
    },
    /// The op's deadline passed (while queued, running or waiting to retry).
    DeadlineExceeded,
}

/// Why a failed attempt is not retried.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoRetry {
    /// The op reached its maximum number of attempts.
    AttemptsExhausted,
    /// The error is permanent.
    Permanent,
    /// The op is not idempotent and the attempt may have reached the server.
    NotIdempotent,
    /// The pool-wide retry quota (AWS style) has too few tokens.
    QuotaExhausted,
    /// The percentage retry budget is spent.
    BudgetExhausted,
    /// The backoff would end after the op's deadline.
    DeadlineTooClose,
    /// The pool is shutting down or aborted.
    PoolClosing,
}

/// Why an op was cancelled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CancelCause {
    /// The caller cancelled it (or dropped its future).
    Caller,
    /// The pool was aborted.
    Aborted,
}

/// Why an op was rejected before it ever ran.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectCause {
    /// The bounded queue was full and this op had the lowest priority.
    QueueFull,
}

/// How an op ended. Every submitted op gets exactly one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// An attempt succeeded.
    Succeeded {
        /// Attempts started, hedges included.
        attempts: u32,
    },
    /// The op failed for good.
    Failed {
        /// Attempts started, hedges included.
        attempts: u32,
        /// Why.
        cause: FailureCause,
    },
    /// The op was cancelled.
    Cancelled {
        /// Attempts started, hedges included.
        attempts: u32,
        /// Why.
        cause: CancelCause,
    },
    /// The op was rejected (it never started).
    Rejected {
        /// Why.
        cause: RejectCause,
    },
}

impl Resolution {
    /// Attempts started.
    pub fn attempts(&self) -> u32 {
        match *self {
            Resolution::Succeeded { attempts }
            | Resolution::Failed { attempts, .. }
            | Resolution::Cancelled { attempts, .. } => attempts,
            Resolution::Rejected { .. } => 0,
        }
    }
    /// Whether the op succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Resolution::Succeeded { .. })
    }
}

/// A decision the engine hands to its driver, in order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Start this attempt now.
    Start {
        /// The attempt to run.
        attempt: AttemptId,
        /// Whether it is a hedge running beside an earlier attempt.
        hedge: bool,
    },
    /// Stop this attempt now (drop its future); any later report about it is ignored.
    Cancel {
        /// The attempt to drop.
        attempt: AttemptId,
        /// Why.
        reason: CancelReason,
    },
    /// The op failed an attempt and will be queued again at `at`.
    RetryScheduled {
        /// The op.
        op: OpId,
        /// When it re-enters the queue.
        at: Instant,
    },
    /// The op is finished; this is the only decision the op gets of this kind.
    Resolved {
        /// The op.
        op: OpId,
        /// How it ended.
        resolution: Resolution,
    },
}
