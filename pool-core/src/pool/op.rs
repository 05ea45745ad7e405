//! One op's future: submit, then carry out what the engine decides for it —
//! start attempts (calling the closure once per attempt, polling its future in
//! the caller's task), drop cancelled ones, report outcomes — until it resolves.

use super::classify::Classifier;
use super::ctx::AttemptCtx;
use super::error::PoolError;
use super::shared::{Few, Inner, OpEntry, OpRef, Shared};
use crate::class::OpClass;
use crate::engine::{OpOptions, SubmitError};
use crate::outcome::{
    AttemptError, AttemptId, AttemptOutcome, CancelCause, CancelReason, ErrorClass, FailureCause,
    OpId, Resolution,
};
use core::future::{poll_fn, Future};
use core::pin::{pin, Pin};
use core::task::{Poll, Waker};
use core::time::Duration;
use std::panic::{catch_unwind, AssertUnwindSafe};
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
}

/// Submits under the lock, interning the partition key first so it is live.
fn submit(shared: &Shared, opts: RunOptions) -> Result<OpId, SubmitError> {
    let mut g = shared.lock();
    let now = shared.rt.now();
    let mut op = opts.op;
    if let Some(key) = &opts.partition_key {
        op.partition = g.engine.partition(key);
    }
    let r = g.engine.submit(now, op);
    if let Ok(id) = r {
        g.ops.insert(id, OpEntry::default());
    }
    // Even a refused submit can resolve another op (a lower priority evicted).
    g.route(r.as_ref().ok().copied());
    r
}

/// What the engine decided for an op since its future last looked.
struct Mail {
    starts: Few<(u32, bool)>,
    cancels: Few<(u32, CancelReason)>,
    resolution: Option<Resolution>,
}

/// Empties the op's mailbox and (unless it resolved) registers the waker.
fn take_mail(g: &mut Inner, id: OpId, waker: &Waker) -> Mail {
    let Some(e) = g.ops.get_mut(&id) else {
        // Unreachable: only this op's future removes its entry.
        return Mail {
            starts: Few::default(),
            cancels: Few::default(),
            resolution: Some(Resolution::Cancelled {
                attempts: 0,
                cause: CancelCause::Caller,
            }),
        };
    };
    let mail = Mail {
        starts: std::mem::take(&mut e.starts),
        cancels: std::mem::take(&mut e.cancels),
        resolution: e.resolution.take(),
    };
    if mail.resolution.is_some() {
        g.ops.remove(&id);
    } else if !e.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
        e.waker = Some(waker.clone());
    }
    mail
}

/// Reports an attempt's end and routes what the engine decides next; with a
/// waker, also reads the op's mailbox under the same lock.
fn report(
    shared: &Shared,
    op: OpId,
    number: u32,
    outcome: AttemptOutcome,
    waker: Option<&Waker>,
) -> Option<Mail> {
    let mut g = shared.lock();
    let now = shared.rt.now();
    // `false` means the engine already cancelled it: the report is ignored.
    let _ = g
        .engine
        .attempt_finished(now, AttemptId { op, number }, outcome, 0);
    g.route(Some(op));
    waker.map(|w| take_mail(&mut g, op, w))
}

/// Cancels the op in the engine when its future is dropped before it resolved.
/// Declared before the attempt slots, so the attempts' futures are dropped first
/// and the slot is freed only once the attempt is really gone (flaw F24).
struct OpGuard<'a> {
    shared: &'a Shared,
    id: OpId,
    done: bool,
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut g = self.shared.lock();
        if let Some(mut e) = g.ops.remove(&self.id) {
            e.fire_signals(None);
        }
        let now = self.shared.rt.now();
        g.engine.cancel(now, self.id);
        g.route(None);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs one op to its resolution. See [`super::Pool::run`].
pub(crate) async fn run_op<T, E, C, F, Fut>(
    opref: OpRef,
    opts: RunOptions,
    classifier: C,
    mut make: F,
) -> Result<T, PoolError<E>>
where
    C: Classifier<E>,
    F: FnMut(AttemptCtx) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let shared: &Arc<Shared> = opref.get();
    let id = submit(shared, opts)?;
    let mut guard = OpGuard {
        shared,
        id,
        done: false,
    };
    // At most an attempt and its hedge run at once: two slots, pinned in place
    // (no allocation per attempt). `numbers[i]` is slot i's attempt (0: empty).
    let s0 = pin!(None::<Fut>);
    let s1 = pin!(None::<Fut>);
    let mut slots: [Pin<&mut Option<Fut>>; 2] = [s0, s1];
    let mut numbers = [0u32; 2];
    let mut value: Option<T> = None;
    let mut last_err: Option<(E, ErrorClass)> = None;
    let mut panicked: Option<String> = None;

    let mut pending_mail: Option<Mail> = None;
    let resolution = poll_fn(|cx| loop {
        // 1. Read the mailbox (already read if we just reported).
        let Mail {
            mut starts,
            mut cancels,
            resolution,
        } = match pending_mail.take() {
            Some(m) => m,
            None => take_mail(&mut shared.lock(), id, cx.waker()),
        };
        // 2. Drop cancelled attempts before starting anything (no overlap, F24).
        while let Some((n, _reason)) = cancels.pop() {
            for (slot, num) in slots.iter_mut().zip(numbers.iter_mut()) {
                if *num == n {
                    slot.set(None);
                    *num = 0;
                }
            }
        }
        if let Some(r) = resolution {
            for slot in slots.iter_mut() {
                slot.set(None);
            }
            return Poll::Ready(r);
        }
        let mut progressed = false;
        while let Some((n, hedge)) = starts.pop() {
            let ctx = AttemptCtx {
                shared: opref.clone(),
                op: id,
                attempt: n,
                hedge,
            };
            match catch_unwind(AssertUnwindSafe(|| make(ctx))) {
                Ok(fut) => {
                    if let Some(i) = numbers.iter().position(|&x| x == 0) {
                        slots[i].set(Some(fut));
                        numbers[i] = n;
                    }
                }
                Err(p) => {
                    panicked = Some(panic_message(&*p));
                    let fail = AttemptOutcome::Failed(AttemptError::permanent());
                    report(shared, id, n, fail, None);
                    progressed = true;
                }
            }
        }
        // 3. Poll the running attempts; report the first that ends, then re-read.
        for i in 0..2 {
            let Some(fut) = slots[i].as_mut().as_pin_mut() else {
                continue;
            };
            let n = numbers[i];
            match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
                Ok(Poll::Pending) => continue,
                Ok(Poll::Ready(r)) => {
                    slots[i].set(None);
                    numbers[i] = 0;
                    let outcome = match r {
                        Ok(v) => {
                            value = Some(v);
                            AttemptOutcome::Success
                        }
                        Err(e) => {
                            let c = classifier.classify(&e);
                            last_err = Some((e, c.class));
                            AttemptOutcome::Failed(c)
                        }
                    };
                    pending_mail = report(shared, id, n, outcome, Some(cx.waker()));
                }
                Err(p) => {
                    // A panic is the op's error: drop every attempt and fail them
                    // permanently so the engine frees the slot and never retries.
                    panicked = Some(panic_message(&*p));
                    for j in 0..2 {
                        if numbers[j] != 0 {
                            slots[j].set(None);
                            let m = std::mem::take(&mut numbers[j]);
                            let fail = AttemptOutcome::Failed(AttemptError::permanent());
                            report(shared, id, m, fail, None);
                        }
                    }
                }
            }
            progressed = true;
            break;
        }
        if !progressed {
            return Poll::Pending;
        }
    })
    .await;
    guard.done = true;
    drop(guard);

    if let Some(message) = panicked {
        if !resolution.is_success() {
            return Err(PoolError::Panicked { message });
        }
    }
    match resolution {
        Resolution::Succeeded { .. } => value.ok_or_else(|| PoolError::Panicked {
            message: "internal: success reported without a value".into(),
        }),
        Resolution::Failed { attempts, cause } => Err(match cause {
            FailureCause::AttemptFailed {
                timed_out: true,
                why,
                ..
            } => PoolError::TimedOut { attempts, why },
            FailureCause::AttemptFailed { why, .. } => match last_err {
                Some((last, class)) => PoolError::Failed {
                    attempts,
                    last,
                    class,
                    why,
                },
                None => PoolError::TimedOut { attempts, why },
            },
            FailureCause::DeadlineExceeded => PoolError::DeadlineExceeded {
                attempts,
                last: last_err.map(|(e, _)| e),
            },
        }),
        Resolution::Cancelled { cause, .. } => Err(PoolError::Cancelled { cause }),
        Resolution::Rejected { .. } => Err(PoolError::Rejected),
    }
}
