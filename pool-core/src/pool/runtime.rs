//! The small runtime trait the pool needs: a monotonic clock, a timer and a way
//! to run one background task. `pool-core` stays runtime-agnostic; the tokio
//! implementation lives behind the `tokio` feature.

use crate::time::Instant;
use core::future::Future;
use core::pin::Pin;

/// A boxed, sendable future of `()`: what the runtime sleeps on and spawns.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What the pool asks of an async runtime.
///
/// The pool spawns exactly one task per pool (the driver, which ticks the engine
/// when its next timer is due); op futures themselves run in the caller's task.
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's monotonic clock, as engine time. It must never go backwards.
    fn now(&self) -> Instant;
    /// A future that completes at (or after) `at` on the same clock as [`Runtime::now`].
    fn sleep_until(&self, at: Instant) -> BoxFuture;
    /// Runs `fut` in the background until it completes.
    fn spawn(&self, fut: BoxFuture);
}

#[cfg(feature = "tokio")]
pub use self::tokio_rt::TokioRuntime;

#[cfg(feature = "tokio")]
mod tokio_rt {
    use super::{BoxFuture, Runtime};
    use crate::time::Instant;
    use core::fmt;
    use core::time::Duration;

    /// The tokio runtime: tokio's clock (so `tokio::time::pause` and
    /// `start_paused` tests work) measured from a base instant taken at creation.
    #[derive(Clone)]
    pub struct TokioRuntime {
        base: tokio::time::Instant,
        handle: tokio::runtime::Handle,
    }

    impl TokioRuntime {
        /// The runtime the caller is running in. Fails outside a tokio runtime.
        pub fn current() -> Result<TokioRuntime, tokio::runtime::TryCurrentError> {
            Ok(TokioRuntime::with_handle(
                tokio::runtime::Handle::try_current()?,
            ))
        }

        /// A given runtime (e.g. one built by the application). The clock base is
        /// taken now; with paused tokio time it must be created inside that runtime.
        pub fn with_handle(handle: tokio::runtime::Handle) -> TokioRuntime {
            let base = {
                // Read the clock inside the runtime so a paused test clock is used.
                let _guard = handle.enter();
                tokio::time::Instant::now()
            };
            TokioRuntime { base, handle }
        }
    }

    impl fmt::Debug for TokioRuntime {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TokioRuntime").finish_non_exhaustive()
        }
    }

    impl Runtime for TokioRuntime {
        fn now(&self) -> Instant {
            // Called twice per op: plain `u64` arithmetic, not `as_nanos`'s `u128`
            // (saturating after 584 years).
            let d = tokio::time::Instant::now().saturating_duration_since(self.base);
            let nanos = d
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos()));
            Instant::from_nanos(nanos)
        }

        fn sleep_until(&self, at: Instant) -> BoxFuture {
            // `checked_add` fails only for instants centuries away: sleep "forever"
            // (a year; the driver re-arms whenever the engine's next timer changes).
            let deadline = self
                .base
                .checked_add(at.since_epoch())
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 86_400));
            Box::pin(tokio::time::sleep_until(deadline))
        }

        fn spawn(&self, fut: BoxFuture) {
            // The driver ends by itself when the pool is idle and unreferenced.
            drop(self.handle.spawn(fut));
        }
    }
}
