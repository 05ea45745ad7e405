//! State shared by a pool's handles, op futures and driver: the engine behind one
//! mutex, plus per-op mailboxes that the engine's decisions are routed to.
//!
//! Every engine call goes through [`Inner::route`] afterwards, so a decision never
//! waits in the engine: it lands in its op's mailbox and wakes that op's task.

use super::events::Hub;
use super::mailbox::{Boxes, Words};
use super::runtime::{BoxFuture, Runtime};
use crate::engine::{DrainStatus, Engine, Lifecycle};
use crate::outcome::{Decision, OpId};
use crate::time::Instant;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Everything behind the pool's lock.
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) ops: Boxes,
    driver_waker: Option<Waker>,
    /// The instant the driver sleeps until (`None`: no timer, it waits for a wake).
    driver_target: Option<Instant>,
    /// Tasks waiting in `drain`/`shutdown`.
    pub(crate) idle_waiters: Vec<Waker>,
    /// Every `Pool` handle is gone: the driver ends once nothing can submit.
    handles_gone: bool,
    /// Set by `Pool::export_metrics`.
    #[cfg(feature = "metrics")]
    pub(crate) export: Option<super::export::PoolExport>,
}

impl Inner {
    pub(crate) fn new(engine: Engine, words: Arc<Words>) -> Inner {
        Inner {
            engine,
            ops: Boxes::new(words),
            driver_waker: None,
            driver_target: None,
            idle_waiters: Vec::new(),
            handles_gone: false,
            #[cfg(feature = "metrics")]
            export: None,
        }
    }

    /// Routes every pending decision to its op's mailbox and wakes the ops (except
    /// `me`, the op whose own task is running this), then the driver and waiters.
    pub(crate) fn route(&mut self, me: Option<OpId>) {
        while let Some(d) = self.engine.poll_decision() {
            let op = match d {
                Decision::Start { attempt, .. } | Decision::Cancel { attempt, .. } => attempt.op,
                Decision::Resolved { op, .. } => op,
                // Nothing for the op future to do until the retry starts.
                Decision::RetryScheduled { .. } => continue,
            };
            // An op whose future was dropped has no box: it was cancelled.
            if let Some(w) = self.ops.deliver(op, &d, Some(op) == me) {
                w.wake_by_ref();
            }
        }
        if let Some(slot) = self.engine.next_start_slot() {
            self.ops.prefetch(slot);
        }
        self.after_change();
    }

    /// Wakes the driver if the engine's next timer moved earlier (or the pool
    /// became idle and unreferenced), and the drain/shutdown waiters if waiting is over.
    fn after_change(&mut self) {
        #[cfg(feature = "metrics")]
        if let Some(x) = &self.export {
            x.set(&self.engine);
        }
        let next = self.engine.poll_timeout();
        let earlier = match (next, self.driver_target) {
            (Some(t), Some(d)) => t < d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let exit = self.handles_gone && self.engine.live_ops() == 0;
        if earlier || exit {
            if let Some(w) = &self.driver_waker {
                // Record the target so a burst of submits wakes the driver once.
                self.driver_target = next;
                w.wake_by_ref();
            }
        }
        if !self.idle_waiters.is_empty() && self.engine.drain_status() != DrainStatus::Busy {
            for w in self.idle_waiters.drain(..) {
                w.wake();
            }
        }
    }
}

/// The state every handle, op future and the driver share.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// The ops' mail words, read without the lock (see [`super::mailbox`]).
    pub(crate) words: Arc<Words>,
    pub(crate) rt: Arc<dyn Runtime>,
    /// The event fan-out, installed in the engine on first subscription.
    pub(crate) hub: OnceLock<Arc<Hub>>,
    /// Every `Pool` handle is gone (read lock-free when an [`OpRef`] drops).
    handles_gone: AtomicBool,
}

impl Shared {
    pub(crate) fn new(engine: Engine, rt: Arc<dyn Runtime>) -> Arc<Shared> {
        let words = Arc::new(Words::default());
        Arc::new(Shared {
            inner: Mutex::new(Inner::new(engine, Arc::clone(&words))),
            words,
            rt,
            hub: OnceLock::new(),
            handles_gone: AtomicBool::new(false),
        })
    }

    /// Locks the engine. A panic while locked cannot leave the engine half-updated
    /// (observer panics are caught inside it), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one engine input at the runtime's current time, then routes decisions.
    pub(crate) fn call<R>(&self, f: impl FnOnce(&mut Engine, Instant) -> R) -> R {
        let mut g = self.lock();
        let now = self.rt.now();
        let r = f(&mut g.engine, now);
        g.route(None);
        r
    }

    /// Starts the pool's single background task.
    pub(crate) fn spawn_driver(self: &Arc<Self>) {
        let fut: BoxFuture = Box::pin(Driver {
            shared: Arc::clone(self),
            sleep: None,
        });
        self.rt.spawn(fut);
    }

    /// The last `Pool` handle was dropped: queued work still runs (like a graceful
    /// shutdown without refusing child ops); the driver ends when idle.
    pub(crate) fn handles_dropped(&self) {
        self.handles_gone.store(true, Ordering::Release);
        let mut g = self.lock();
        g.handles_gone = true;
        g.after_change();
    }
}

/// Ticks the engine whenever its next timer is due: timeouts, deadlines, backoff
/// ends, hedges, rate-limit refills and controller wake-ups.
struct Driver {
    shared: Arc<Shared>,
    sleep: Option<(Instant, BoxFuture)>,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut fired: Option<Instant> = None;
        loop {
            let next = {
                let mut g = this.shared.lock();
                let closed = g.engine.lifecycle() == Lifecycle::Closed;
                // With every handle gone, only op futures and attempt contexts
                // (each an `OpRef`) can still submit; once none is left (the
                // driver holds the last reference) and the engine is idle, stop.
                let orphaned = g.handles_gone && Arc::strong_count(&this.shared) == 1;
                if g.engine.live_ops() == 0 && (closed || orphaned) {
                    g.driver_waker = None;
                    return Poll::Ready(());
                }
                // A timer that just fired counts as reached even if the runtime's
                // clock rounds a hair below it, so we never spin on it.
                let now = this
                    .shared
                    .rt
                    .now()
                    .max(fired.take().unwrap_or(Instant::ZERO));
                if g.engine.poll_timeout().is_some_and(|t| t <= now) {
                    g.engine.tick(now);
                    g.route(None);
                }
                let next = g.engine.poll_timeout();
                g.driver_target = next;
                if !g
                    .driver_waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    g.driver_waker = Some(cx.waker().clone());
                }
                next
            };
            let Some(at) = next else {
                this.sleep = None;
                return Poll::Pending;
            };
            if this.sleep.as_ref().is_none_or(|(t, _)| *t != at) {
                this.sleep = Some((at, this.shared.rt.sleep_until(at)));
            }
            let Some((_, sleep)) = this.sleep.as_mut() else {
                return Poll::Pending;
            };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.sleep = None;
                    fired = Some(at);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A reference to the shared state held by op futures and attempt contexts.
/// When it is dropped after every `Pool` handle is gone, the driver is woken
/// (after the reference count fell) to see whether anyone can still submit.
pub(crate) struct OpRef(Option<Arc<Shared>>);

impl OpRef {
    pub(crate) fn new(shared: Arc<Shared>) -> OpRef {
        OpRef(Some(shared))
    }
    pub(crate) fn get(&self) -> &Arc<Shared> {
        match &self.0 {
            Some(s) => s,
            // Only `drop` empties it.
            None => unreachable!("OpRef used after drop"),
        }
    }
}

impl Clone for OpRef {
    fn clone(&self) -> Self {
        OpRef::new(Arc::clone(self.get()))
    }
}

impl Drop for OpRef {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else {
            return;
        };
        if !shared.handles_gone.load(Ordering::Acquire) {
            return;
        }
        let waker = shared.lock().driver_waker.clone();
        drop(shared);
        if let Some(w) = waker {
            w.wake();
        }
    }
}
