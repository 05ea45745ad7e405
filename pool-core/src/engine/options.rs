//! Per-op options and the errors a submit can return.

use crate::class::OpClass;
use crate::outcome::OpId;
use core::fmt;
use core::time::Duration;

/// An interned partition key. Get one from [`crate::Engine::partition`]; the
/// default partition always exists.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl PartitionId {
    /// The partition of ops that name none.
    pub const DEFAULT: PartitionId = PartitionId { index: 0, gen: 0 };

    /// The interned index (what samples report as `partition`).
    pub fn index(self) -> u32 {
        self.index
    }
}

/// How one op should be run. `Default` is a priority-0, idempotent op of the
/// default class and partition, using the pool's timeouts and retry policy.
#[derive(Clone, Debug, PartialEq)]
pub struct OpOptions {
    /// Higher runs first (among dispatchable ops); waiting ages every op upward.
    pub priority: i32,
    /// The op's class (metrics, class limits and controllers).
    pub class: OpClass,
    /// The op's partition (partition limits, rate limits and controllers).
    pub partition: PartitionId,
    /// Declared size, for the bytes-in-flight budget.
    pub expected_bytes: u64,
    /// Per-attempt timeout overriding the pool's; must be > 0.
    pub timeout: Option<Duration>,
    /// Whole-op deadline from submit overriding the pool's; must be >= the timeout.
    pub deadline: Option<Duration>,
    /// Maximum attempts overriding the pool's; must be >= 1.
    pub max_attempts: Option<u32>,
    /// Whether an attempt may be repeated after it may have reached the server.
    pub idempotent: bool,
    /// The op that submitted this one; while it runs, this op may borrow its slot.
    pub parent: Option<OpId>,
    /// Whether the op's latency says something about the server (default true).
    /// Set it to false for an op that only coordinates child ops — a multipart
    /// upload, a ranged download — whose one attempt lasts the whole transfer:
    /// its attempts and its resolution then stay out of the latency histograms
    /// and are not fed to controllers or rate gates (counters still count it).
    pub sampled: bool,
}

impl Default for OpOptions {
    fn default() -> Self {
        OpOptions {
            priority: 0,
            class: OpClass::DEFAULT,
            partition: PartitionId::DEFAULT,
            expected_bytes: 0,
            timeout: None,
            deadline: None,
            max_attempts: None,
            idempotent: true,
            parent: None,
            sampled: true,
        }
    }
}

impl OpOptions {
    /// Marks the op as a coordinator whose latency is no sample (see
    /// [`OpOptions::sampled`]).
    pub fn unsampled(mut self) -> Self {
        self.sampled = false;
        self
    }
    /// With this priority.
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = p;
        self
    }
    /// With this class.
    pub fn class(mut self, c: OpClass) -> Self {
        self.class = c;
        self
    }
    /// In this partition.
    pub fn partition(mut self, p: PartitionId) -> Self {
        self.partition = p;
        self
    }
    /// Declaring this many bytes.
    pub fn expected_bytes(mut self, b: u64) -> Self {
        self.expected_bytes = b;
        self
    }
    /// With this per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// With this deadline.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    /// With at most this many attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    /// Marks the op as not idempotent.
    pub fn not_idempotent(mut self) -> Self {
        self.idempotent = false;
        self
    }
    /// As a child of `parent`.
    pub fn parent(mut self, parent: OpId) -> Self {
        self.parent = Some(parent);
        self
    }
}

/// Why a submit was refused. The op was not queued and gets no resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The pool is shutting down or aborted; no new work is accepted (except, while
    /// shutting down gracefully, child ops of still-live ops).
    Closed,
    /// The bounded queue is full and every queued op has at least this priority.
    QueueFull,
    /// The partition id is stale (its partition was evicted while idle).
    UnknownPartition,
    /// An option is invalid.
    InvalidOptions {
        /// The option.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed => {
                f.write_str("the pool is shut down: no new operations are accepted")
            }
            SubmitError::QueueFull => {
                f.write_str("the pool's queue is full and this operation has the lowest priority")
            }
            SubmitError::UnknownPartition => {
                f.write_str("unknown partition id (intern the key again with Engine::partition)")
            }
            SubmitError::InvalidOptions { field, message } => {
                write!(f, "invalid operation option `{field}`: {message}")
            }
        }
    }
}

impl std::error::Error for SubmitError {}

/// What `drain` should do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DrainStatus {
    /// Nothing queued, running or waiting to retry.
    Idle,
    /// Work remains and will make progress.
    Busy,
    /// Work is queued but the engine is paused, so waiting would never end
    /// (the seed's drain spins forever here, flaw F1).
    PausedWithWork,
}

/// The engine's life stage.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Accepting work.
    Open,
    /// Graceful shutdown: finishing accepted work, refusing new.
    ShuttingDown,
    /// Shut down or aborted; everything resolved.
    Closed,
}
