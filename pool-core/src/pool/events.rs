//! Event subscription: the engine has one observer slot; the pool fills it (on
//! first use, so a pool nobody listens to buffers no events) with a fan-out to
//! user observers and bounded broadcast channels.

use crate::event::{Event, Observer};
use crate::time::Instant;
use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use futures_core::Stream;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    observers: Vec<Box<dyn Observer>>,
    channels: Vec<Weak<Chan>>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn add_observer(&self, o: Box<dyn Observer>) {
        self.lock().observers.push(o);
    }
    pub(crate) fn subscribe(&self, capacity: usize) -> EventReceiver {
        let chan = Arc::new(Chan {
            state: Mutex::new(ChanState {
                buf: VecDeque::new(),
                capacity: capacity.max(1),
                lagged: 0,
                waker: None,
                closed: false,
            }),
        });
        self.lock().channels.push(Arc::downgrade(&chan));
        EventReceiver { chan }
    }
}

/// The observer the pool installs in its engine.
pub(crate) struct Fanout(pub(crate) Arc<Hub>);

impl Observer for Fanout {
    fn on_event(&mut self, at: Instant, event: &Event) {
        let mut st = self.0.lock();
        st.channels.retain(|w| match w.upgrade() {
            Some(c) => {
                c.push(at, *event);
                true
            }
            None => false,
        });
        // Every observer gets the event even if one panics; the first panic is
        // passed on so the engine counts it (and carries on).
        let mut first_panic = None;
        for o in st.observers.iter_mut() {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| o.on_event(at, event))) {
                first_panic.get_or_insert(p);
            }
        }
        drop(st);
        if let Some(p) = first_panic {
            resume_unwind(p);
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        // The engine is gone: receivers end once they have read what is buffered.
        for c in self.0.lock().channels.iter().filter_map(Weak::upgrade) {
            let mut s = c.lock();
            s.closed = true;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }
}

struct Chan {
    state: Mutex<ChanState>,
}

struct ChanState {
    buf: VecDeque<(Instant, Event)>,
    capacity: usize,
    lagged: u64,
    waker: Option<Waker>,
    closed: bool,
}

impl Chan {
    fn lock(&self) -> MutexGuard<'_, ChanState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Never blocks the engine: when full, the oldest event is dropped and counted.
    fn push(&self, at: Instant, ev: Event) {
        let mut s = self.lock();
        if s.buf.len() >= s.capacity {
            s.buf.pop_front();
            s.lagged += 1;
        }
        s.buf.push_back((at, ev));
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// A subscription to the pool's events (a bounded broadcast channel). A slow
/// reader never slows the pool: when its buffer is full the oldest event is
/// dropped and counted in [`EventReceiver::lagged`]. Also a [`Stream`].
pub struct EventReceiver {
    chan: Arc<Chan>,
}

impl fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventReceiver")
            .field("lagged", &self.lagged())
            .finish_non_exhaustive()
    }
}

impl EventReceiver {
    /// The next event with its engine time; `None` once the pool is gone and
    /// everything buffered was read.
    pub async fn recv(&mut self) -> Option<(Instant, Event)> {
        core::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next buffered event, without waiting.
    pub fn try_recv(&mut self) -> Option<(Instant, Event)> {
        self.chan.lock().buf.pop_front()
    }

    /// Events dropped so far because this receiver fell behind.
    pub fn lagged(&self) -> u64 {
        self.chan.lock().lagged
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<(Instant, Event)>> {
        let mut s = self.chan.lock();
        if let Some(e) = s.buf.pop_front() {
            return Poll::Ready(Some(e));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for EventReceiver {
    type Item = (Instant, Event);
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_recv(cx)
    }
}
