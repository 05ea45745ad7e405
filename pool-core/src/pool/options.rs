//! Per-op options for [`super::Pool::run`].

use crate::class::OpClass;
use crate::engine::OpOptions;
use core::time::Duration;
use std::sync::Arc;

/// How to run one op: the engine's [`OpOptions`] plus a partition key, interned
/// when the op is submitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// Priority, class, bytes, timeout, deadline, attempts, idempotency, parent.
    pub op: OpOptions,
    /// The partition (e.g. bucket or prefix) for partition limits and rates;
    /// `None`: the default partition.
    pub partition_key: Option<Arc<str>>,
}

impl From<OpOptions> for RunOptions {
    fn from(op: OpOptions) -> Self {
        RunOptions {
            op,
            partition_key: None,
        }
    }
}

impl RunOptions {
    /// The defaults: priority 0, default class and partition, idempotent.
    pub fn new() -> Self {
        Self::default()
    }
    /// With this priority (higher runs first).
    pub fn priority(mut self, p: i32) -> Self {
        self.op.priority = p;
        self
    }
    /// With this class.
    pub fn class(mut self, c: OpClass) -> Self {
        self.op.class = c;
        self
    }
    /// In the partition with this key.
    pub fn partition(mut self, key: impl Into<Arc<str>>) -> Self {
        self.partition_key = Some(key.into());
        self
    }
    /// Declaring this many bytes (bytes-in-flight budget).
    pub fn expected_bytes(mut self, b: u64) -> Self {
        self.op.expected_bytes = b;
        self
    }
    /// With this per-attempt timeout (the attempt's future is dropped when it fires).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.op.timeout = Some(d);
        self
    }
    /// With this whole-op deadline, counted from submission.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.op.deadline = Some(d);
        self
    }
    /// With at most this many attempts (>= 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.op.max_attempts = Some(n);
        self
    }
    /// Not idempotent: retried only when an error proves the request was not sent.
    pub fn not_idempotent(mut self) -> Self {
        self.op.idempotent = false;
        self
    }
    /// A coordinator of child ops: its latency is no sample for histograms,
    /// controllers or rate gates (see [`OpOptions::sampled`]).
    pub fn unsampled(mut self) -> Self {
        self.op.sampled = false;
        self
    }
}
