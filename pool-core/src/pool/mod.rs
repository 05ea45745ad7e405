//! The async pool: runs any future through the [`Engine`], on any runtime.
//!
//! The [`Pool`] is a thin driver. It carries out the engine's decisions and makes
//! none of its own: retry, admission, timeout, hedge and rejection rules all live
//! in the engine (so the simulator tests exactly what production runs).
//!
//! * An op's future (from [`Pool::run`]) submits the op, waits for the engine's
//!   `Start`, calls the closure once per attempt and polls the attempt's future in
//!   the caller's task. Its result is classified ([`Classifier`]) and reported.
//! * A `Cancel` (timeout, deadline, lost hedge, abort) **drops** the attempt's
//!   future: real cancellation, never overlapping the retry.
//! * One background task per pool (spawned through the [`Runtime`]) ticks the
//!   engine when its next timer is due.
//! * Dropping an op's future cancels the op; dropping every `Pool` handle lets
//!   the queued work finish (like a graceful shutdown).
//!
//! Cost per op: no allocation (the op future, [`Run`], is written by hand and
//! small; a hedge is the one thing boxed), two acquisitions of the pool's lock
//! (submit, and the report of the last attempt, each also reading the op's own
//! mail), and one wake of the op's task when it may start. Decisions reach an
//! op through a mailbox in a table indexed by its engine slot; a plain start
//! goes into a lock-free mail word, so an op starts without locking
//! (`mailbox.rs`).
//!
//! The [usage guide](guide) has examples of everything here.

mod batch;
mod classify;
mod ctx;
mod error;
mod events;
#[cfg(feature = "metrics")]
mod export;
mod mailbox;
mod op;
mod options;
mod runtime;
mod shared;
#[cfg(feature = "tower")]
pub mod tower;
mod trace;

/// The usage guide (`docs/guide.md`); its examples run as doctests.
#[doc = include_str!("../../../docs/guide.md")]
pub mod guide {}

pub use classify::{AllTransient, Classifier};
pub use ctx::{AttemptCtx, CancelSignal, Cancelled};
pub use error::{PoolError, WaitError};
pub use events::EventReceiver;
pub use op::{MakeAttempt, Run};
pub use options::RunOptions;
#[cfg(feature = "tokio")]
pub use runtime::TokioRuntime;
pub use runtime::{BoxFuture, Runtime};

use crate::class::OpClass;
use crate::config::{ConfigError, EngineConfig};
use crate::control::{Controller, ControllerFactory, RateGate, RateGateFactory};
use crate::engine::{DrainStatus, Engine, Lifecycle};
use crate::event::Observer;
use crate::metrics::{Counters, MetricsSnapshot};
use crate::rate::RateLimit;
use core::fmt;
use core::future::{poll_fn, Future};
use core::task::Poll;
use events::{Fanout, Hub};
use shared::Shared;
use std::sync::Arc;

/// A handle to a pool. Cheap to clone (one `Arc`); every clone drives the same
/// engine and shares its limits, so several clients can share one pool.
#[derive(Clone)]
pub struct Pool {
    handle: Arc<Handle>,
}

/// Counts `Pool` handles: when the last one goes, the driver is told.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.handles_dropped();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.shared().lock();
        fmt::Debug::fmt(&g.engine, f)
    }
}

/// Why a pool could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The engine configuration is invalid.
    Config(ConfigError),
    /// No runtime was given and none could be found (e.g. outside tokio).
    NoRuntime(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => fmt::Display::fmt(e, f),
            BuildError::NoRuntime(m) => write!(f, "no async runtime for the pool: {m}"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<ConfigError> for BuildError {
    fn from(e: ConfigError) -> Self {
        BuildError::Config(e)
    }
}

/// A point-in-time view of the pool (the seed's `getStats`).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolStats {
    /// The global concurrency limit.
    pub limit: u32,
    /// Slots taken (a child on its parent's slot is not counted again).
    pub in_flight: u32,
    /// Attempts running, borrowed and hedges included.
    pub running_attempts: u32,
    /// Ops waiting in the queue.
    pub queued: u64,
    /// Ops waiting out a retry backoff (they hold no slot).
    pub waiting_retry: u64,
    /// Ops submitted and not yet resolved.
    pub live_ops: usize,
    /// Whether dispatch is paused.
    pub paused: bool,
    /// Open, shutting down or closed.
    pub lifecycle: Lifecycle,
    /// Cumulative counters: submitted, succeeded, failed, retried, …
    pub counters: Counters,
}

impl Pool {
    /// A pool on the current tokio runtime. Fails on an invalid config or outside
    /// a tokio runtime.
    #[cfg(feature = "tokio")]
    pub fn new(config: EngineConfig) -> Result<Pool, BuildError> {
        let rt = TokioRuntime::current().map_err(|e| BuildError::NoRuntime(e.to_string()))?;
        Pool::with_runtime(config, rt)
    }

    /// A pool on the given runtime.
    pub fn with_runtime(config: EngineConfig, rt: impl Runtime) -> Result<Pool, BuildError> {
        Ok(Pool::from_engine(Engine::new(config)?, rt))
    }

    /// A pool driving an engine built (and perhaps configured) by the caller. The
    /// engine's clock must start at or before `rt.now()`: a fresh engine does.
    pub fn from_engine(engine: Engine, rt: impl Runtime) -> Pool {
        let shared = Shared::new(engine, Arc::new(rt));
        shared.spawn_driver();
        Pool {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Runs an op: `f` is called once per attempt and its future is polled in the
    /// caller's task. Every error counts as transient (see [`Pool::run_classified`]).
    ///
    /// Resolves to the first successful attempt's value or a [`PoolError`] saying
    /// why there is none. Dropping the future cancels the op (queued: removed;
    /// running: its attempt futures are dropped) and frees its slot.
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

    /// [`Pool::run`] with a classifier that tells the engine how to treat each
    /// error (throttled, transient or permanent; sent or not; Retry-After).
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
        Run::new(
            shared::OpRef::new(Arc::clone(self.shared())),
            opts.into(),
            classifier,
            f,
        )
    }

    // ----- limits -----------------------------------------------------------

    /// The global concurrency limit.
    pub fn limit(&self) -> u32 {
        self.shared().lock().engine.limit()
    }

    /// Sets the global concurrency limit; it must be within the bounds (0 never
    /// is). Raising it starts queued ops at once; lowering it stops nothing.
    pub fn set_limit(&self, limit: u32) -> Result<(), ConfigError> {
        self.shared().call(|e, now| e.set_limit(now, limit))
    }

    /// The bounds every limit (manual or controller-set) is clamped to.
    pub fn limit_bounds(&self) -> (u32, u32) {
        self.shared().lock().engine.limit_bounds()
    }

    /// Sets the bounds of every limit (`1 <= min <= max`).
    pub fn set_limit_bounds(&self, min: u32, max: u32) -> Result<(), ConfigError> {
        self.shared()
            .call(|e, now| e.set_limit_bounds(now, min, max))
    }

    /// Sets (or with `None` removes) a class's concurrency limit.
    pub fn set_class_limit(&self, class: OpClass, limit: Option<u32>) -> Result<(), ConfigError> {
        self.shared().call(|e, now| {
            let r = e.set_class_limit(class, limit);
            e.tick(now);
            r
        })
    }

    /// Sets (or removes) a class's request-rate limit.
    pub fn set_class_rate(
        &self,
        class: OpClass,
        rate: Option<RateLimit>,
    ) -> Result<(), ConfigError> {
        self.shared().call(|e, now| {
            let r = e.set_class_rate(class, rate);
            e.tick(now);
            r
        })
    }

    /// Sets (or removes) the concurrency limit of the partition with this key.
    pub fn set_partition_limit(&self, key: &str, limit: Option<u32>) -> Result<(), ConfigError> {
        self.shared().call(|e, now| {
            let id = e.partition(key);
            let r = e.set_partition_limit(id, limit);
            e.tick(now);
            r
        })
    }

    /// Sets (or removes) the request-rate limit of the partition with this key.
    pub fn set_partition_rate(
        &self,
        key: &str,
        rate: Option<RateLimit>,
    ) -> Result<(), ConfigError> {
        self.shared().call(|e, now| {
            let id = e.partition(key);
            let r = e.set_partition_rate(id, rate);
            e.tick(now);
            r
        })
    }

    // ----- strategies -------------------------------------------------------

    /// Attaches a controller to the global limit (e.g. one from `pool-tuning`).
    pub fn set_controller(&self, controller: Box<dyn Controller>) {
        self.shared().call(|e, now| {
            e.set_controller(controller);
            e.tick(now);
        })
    }

    /// Attaches a controller to one class's limit.
    pub fn set_class_controller(&self, class: OpClass, controller: Box<dyn Controller>) {
        self.shared().call(|e, now| {
            e.set_class_controller(class, controller);
            e.tick(now);
        })
    }

    /// Sets the factory making a controller for each partition.
    pub fn set_partition_controller_factory(&self, factory: ControllerFactory) {
        self.shared().call(|e, now| {
            e.set_partition_controller_factory(factory);
            e.tick(now);
        })
    }

    /// Attaches a send-rate gate to the whole pool.
    pub fn set_rate_gate(&self, gate: Box<dyn RateGate>) {
        self.shared().call(|e, now| {
            e.set_rate_gate(gate);
            e.tick(now);
        })
    }

    /// Sets the factory making a send-rate gate for each partition.
    pub fn set_partition_rate_gate_factory(&self, factory: RateGateFactory) {
        self.shared().call(|e, now| {
            e.set_partition_rate_gate_factory(factory);
            e.tick(now);
        })
    }

    /// Feeds the external input controllers may read (e.g. memory pressure).
    pub fn set_external_input(&self, value: Option<f64>) {
        self.shared().call(|e, _| e.set_external_input(value))
    }

    // ----- lifecycle --------------------------------------------------------

    /// Stops starting attempts. Running ones go on; new ops are still accepted.
    pub fn pause(&self) {
        self.shared().call(|e, now| e.pause(now))
    }

    /// Starts dispatching again.
    pub fn resume(&self) {
        self.shared().call(|e, now| e.resume(now))
    }

    /// Whether dispatch is paused.
    pub fn is_paused(&self) -> bool {
        self.shared().lock().engine.is_paused()
    }

    /// Waits until nothing is queued, running or waiting to retry. Never fails
    /// because an op failed. If the pool is (or becomes) paused with queued work,
    /// it returns [`WaitError::PausedWithWork`] instead of waiting forever (F1).
    pub fn drain(&self) -> impl Future<Output = Result<(), WaitError>> + Send + 'static {
        let shared = Arc::clone(self.shared());
        poll_fn(move |cx| {
            let mut g = shared.lock();
            match g.engine.drain_status() {
                DrainStatus::Idle => Poll::Ready(Ok(())),
                DrainStatus::PausedWithWork => Poll::Ready(Err(WaitError::PausedWithWork)),
                DrainStatus::Busy => {
                    if !g.idle_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        g.idle_waiters.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
    }

    /// Graceful shutdown: new ops are refused ([`PoolError::ShutDown`]) and
    /// everything accepted finishes; resolves when the pool is closed. Like
    /// [`Pool::drain`], returns an error instead of hanging when paused with work.
    pub fn shutdown(&self) -> impl Future<Output = Result<(), WaitError>> + Send + 'static {
        self.shared().call(|e, now| e.shutdown(now));
        self.drain()
    }

    /// Cancels everything: queued and backing-off ops resolve
    /// [`PoolError::Cancelled`], running attempts are dropped, nothing new is
    /// accepted.
    pub fn abort(&self) {
        self.shared().call(|e, now| e.abort(now))
    }

    // ----- observation ------------------------------------------------------

    /// Gauges and counters now (the seed's `getStats`).
    pub fn stats(&self) -> PoolStats {
        let g = self.shared().lock();
        let e = &g.engine;
        PoolStats {
            limit: e.limit(),
            in_flight: e.in_flight(),
            running_attempts: e.running_attempts(),
            queued: e.queued(),
            waiting_retry: e.waiting_retry(),
            live_ops: e.live_ops(),
            paused: e.is_paused(),
            lifecycle: e.lifecycle(),
            counters: *e.metrics().counters(),
        }
    }

    /// A full metrics snapshot: counters, gauges, windowed rates and latency
    /// histograms per class.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared().call(|e, now| {
            e.tick(now);
            e.snapshot()
        })
    }

    /// Read-only access to the engine (e.g. for introspection not wrapped here).
    pub fn inspect<R>(&self, f: impl FnOnce(&Engine) -> R) -> R {
        f(&self.shared().lock().engine)
    }

    /// Subscribes to the pool's events through a bounded channel holding up to
    /// `capacity` unread events (older ones are dropped and counted when full).
    pub fn subscribe(&self, capacity: usize) -> EventReceiver {
        self.hub().subscribe(capacity)
    }

    /// Adds an observer called with every event, in order, under the pool's lock
    /// (keep it quick). A panicking observer is caught and counted.
    pub fn add_observer(&self, observer: Box<dyn Observer>) {
        self.hub().add_observer(observer)
    }

    /// Exports this pool's counters, gauges and latency histograms through the
    /// `metrics` facade, labelled `pool = name` (and `class`), to the recorder
    /// installed now (install it first). See the [guide](guide#metrics-facade)
    /// for the metric names. Calling it again adds a second exporter.
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self, name: impl Into<String>) {
        let name = metrics::SharedString::from(name.into());
        export::describe();
        self.hub()
            .add_observer(Box::new(export::MetricsObserver::new(name.clone())));
        let x = export::PoolExport::new(&name);
        let mut g = self.shared().lock();
        x.set(&g.engine);
        g.export = Some(x);
    }

    fn hub(&self) -> &Arc<Hub> {
        let shared = self.shared();
        shared.hub.get_or_init(|| {
            let hub = Arc::new(Hub::default());
            shared
                .lock()
                .engine
                .set_observer(Box::new(Fanout(Arc::clone(&hub))));
            hub
        })
    }
}
