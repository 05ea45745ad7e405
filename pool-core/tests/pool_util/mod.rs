//! Helpers shared by the async pool tests (`tests/pool_*.rs`).
#![allow(dead_code)]

/// A `tracing` subscriber that records spans and events.
#[cfg(feature = "tracing")]
pub mod capture;
/// A `metrics` recorder that keeps every value.
#[cfg(feature = "metrics")]
pub mod recorder;

use pool_core::{EngineConfig, EngineConfigBuilder, Pool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A config builder with the given limit and the engine's defaults otherwise.
pub fn cfg(limit: u32) -> EngineConfigBuilder {
    EngineConfig::builder().limit(limit)
}

/// A pool on the current (test) tokio runtime.
pub fn pool(limit: u32) -> Pool {
    pool_with(cfg(limit))
}

pub fn pool_with(b: EngineConfigBuilder) -> Pool {
    Pool::new(b.build().expect("valid config")).expect("inside tokio")
}

/// Counts attempt bodies alive right now and the most ever alive at once. A body
/// holds a [`Live`] guard, so a dropped (cancelled) body stops counting at once.
#[derive(Clone, Default)]
pub struct Gauge(Arc<(AtomicUsize, AtomicUsize)>);

impl Gauge {
    pub fn enter(&self) -> Live {
        let now = self.0 .0.fetch_add(1, Ordering::SeqCst) + 1;
        self.0 .1.fetch_max(now, Ordering::SeqCst);
        Live(self.clone())
    }
    pub fn current(&self) -> usize {
        self.0 .0.load(Ordering::SeqCst)
    }
    pub fn max(&self) -> usize {
        self.0 .1.load(Ordering::SeqCst)
    }
}

pub struct Live(Gauge);

impl Drop for Live {
    fn drop(&mut self) {
        self.0 .0 .0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An append-only log shared between op bodies.
#[derive(Clone)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    pub fn push(&self, v: T) {
        self.0.lock().unwrap().push(v);
    }
    pub fn get(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The engine's current time seen from the test (tokio's paused clock).
pub fn elapsed(start: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now() - start
}

/// Lets every ready task run (several scheduler turns) without advancing time.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// An error type for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oops(pub &'static str);

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Polls a future exactly once.
pub async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}
