//! # pool-core: the deterministic scheduling engine of opspool
//!
//! [`Engine`] decides *what runs when* for a pool of operations (S3 requests in
//! the main use): priorities with starvation aging, global/partition/class
//! concurrency limits, request-rate limits, a bytes-in-flight budget, retries
//! with backoff, quota and budget, per-attempt timeouts and op deadlines, hedging,
//! nested ops that borrow their parent's slot, pause/resume/shutdown/abort,
//! events and metrics.
//!
//! It is a sans-IO state machine in the style of quinn-proto: it never reads a
//! clock, sleeps, spawns or uses thread-local randomness. The driver passes the
//! current [`Instant`] with every input and carries out the [`Decision`]s it pulls
//! out. The same inputs and seed always give the same decisions, which is what
//! lets `pool-sim` run this very engine on a virtual clock.
//!
//! ```
//! use pool_core::{Engine, EngineConfig, OpOptions, Decision, AttemptOutcome, Instant};
//!
//! let mut engine = Engine::new(EngineConfig::builder().limit(2).build()?)?;
//! let t0 = Instant::ZERO;
//! let op = engine.submit(t0, OpOptions::default().priority(5))?;
//! let Some(Decision::Start { attempt, .. }) = engine.poll_decision() else { panic!() };
//! assert_eq!(attempt.op, op);
//! // ... the driver runs the attempt, then reports it:
//! engine.attempt_finished(Instant::from_millis(20), attempt, AttemptOutcome::Success, 0);
//! assert!(matches!(engine.poll_decision(), Some(Decision::Resolved { op: o, .. }) if o == op));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod class;
pub mod config;
pub mod control;
mod engine;
pub mod event;
pub mod metrics;
pub mod outcome;
pub mod pool;
mod queue;
pub mod rate;
pub mod retry;
mod slab;
pub mod time;
mod timers;

pub use class::OpClass;
pub use config::{ConfigError, EngineConfig, EngineConfigBuilder, HedgeConfig, ScopeLimits};
pub use control::{ControlContext, Controller, RateGate, Scope};
pub use engine::{DrainStatus, Engine, Lifecycle, OpOptions, PartitionId, SubmitError};
pub use event::{Event, Observer};
pub use metrics::{MetricsConfig, MetricsSnapshot};
pub use outcome::{
    AttemptError, AttemptId, AttemptOutcome, AttemptSample, CancelCause, CancelReason, Decision,
    ErrorClass, FailureCause, NoRetry, OpId, OpSample, RejectCause, Resolution, SampleOutcome,
};
pub use pool::{AttemptCtx, Classifier, Pool, PoolError, RunOptions};
pub use rate::RateLimit;
pub use retry::RetryConfig;
pub use time::Instant;
