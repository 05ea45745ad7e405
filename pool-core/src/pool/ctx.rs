//! What an attempt's closure gets: who it is, a cancellation signal, and a way to
//! run child ops on this op's slot.

use super::classify::{AllTransient, Classifier};
use super::op::Run;
use super::options::RunOptions;
use super::shared::OpRef;
use crate::outcome::OpId;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The context of one attempt, passed to the op's closure.
pub struct AttemptCtx {
    pub(crate) shared: OpRef,
    pub(crate) op: OpId,
    /// The op's mailbox (see [`super::mailbox`]).
    pub(crate) op_box: u32,
    pub(crate) attempt: u32,
    pub(crate) hedge: bool,
}

impl fmt::Debug for AttemptCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptCtx")
            .field("op", &self.op)
            .field("attempt", &self.attempt)
            .field("hedge", &self.hedge)
            .finish()
    }
}

impl AttemptCtx {
    /// The op this attempt belongs to.
    pub fn op(&self) -> OpId {
        self.op
    }
    /// The attempt number, from 1 (a hedge gets the next number, like a retry).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// Whether this attempt is a hedge running beside an earlier one.
    pub fn is_hedge(&self) -> bool {
        self.hedge
    }

    /// A signal that fires when the pool cancels this attempt (timeout, deadline,
    /// lost hedge, caller cancel, abort). The attempt's future is dropped at the
    /// same time; the signal is for work it handed to other tasks.
    pub fn cancellation(&self) -> CancelSignal {
        let sig = Arc::new(SignalInner::default());
        let mut g = self.shared.get().lock();
        // Still running: it fires when the engine cancels the attempt. Otherwise
        // (the op is gone, or the attempt already cancelled) it has fired.
        if !g.ops.add_signal(self.op_box, self.op, self.attempt, &sig) {
            sig.fire();
        }
        CancelSignal(sig)
    }

    /// Runs a child op that may borrow this op's slot while it runs, so an op can
    /// wait for its children even when every slot is taken (seed flaw F13).
    pub fn run<T, E, F, Fut>(
        &self,
        opts: impl Into<RunOptions>,
        f: F,
    ) -> Run<T, E, AllTransient, F, Fut>
    where
        F: FnMut(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_classified(opts, AllTransient, f)
    }

    /// [`AttemptCtx::run`] with a classifier for the child's errors.
    pub fn run_classified<T, E, C, F, Fut>(
        &self,
        opts: impl Into<RunOptions>,
        classifier: C,
        f: F,
    ) -> Run<T, E, C, F, Fut>
    where
        C: Classifier<E>,
        F: FnMut(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut opts = opts.into();
        opts.op.parent = Some(self.op);
        Run::new(self.shared.clone(), opts, classifier, f)
    }
}

/// Shared state of a [`CancelSignal`].
#[derive(Default)]
pub(crate) struct SignalInner {
    fired: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl SignalInner {
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let ws = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in ws {
            w.wake();
        }
    }
}

/// Fires when an attempt is cancelled. Cheap to clone; `Send` and `'static`.
#[derive(Clone)]
pub struct CancelSignal(Arc<SignalInner>);

impl fmt::Debug for CancelSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelSignal")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelSignal {
    /// Whether the attempt was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.fired.load(Ordering::Acquire)
    }
    /// Completes when the attempt is cancelled.
    pub fn cancelled(&self) -> Cancelled {
        Cancelled(Arc::clone(&self.0))
    }
}

/// The future of [`CancelSignal::cancelled`].
#[derive(Clone)]
pub struct Cancelled(Arc<SignalInner>);

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cancelled")
    }
}

impl Future for Cancelled {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let mut ws = self.0.waiters.lock().unwrap_or_else(|e| e.into_inner());
        // Re-check under the lock: `fire` sets the flag before taking it.
        if self.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !ws.iter().any(|w| w.will_wake(cx.waker())) {
            ws.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
