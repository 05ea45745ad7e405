//! An S3 client whose every call runs through a shared [`pool_core::Pool`]:
//! prioritised, limited (globally, per class, per bucket/prefix partition),
//! retried with the pool's backoff and budget, timed out and measured.
//!
//! * [`Client`] wraps an `aws_sdk_s3::Client` and a `Pool`. Several clients
//!   (buckets, credentials, tenants) can share one pool and its limits.
//! * Every call gets a class ([`OpClass`]), a partition (bucket plus
//!   [`Settings::prefix_depth`] key segments), a priority ([`CallOptions`])
//!   and its expected bytes.
//! * The SDK's own retries are off; [`S3Classifier`] tells the pool which
//!   errors are throttling, transient or permanent.
//! * A GET attempt covers reading the whole body, so a body cut mid-stream is
//!   retried like any transient error.
//! * Large transfers (multipart upload and copy, parallel ranged download) run
//!   as one op whose parts are child ops.
//! * [`Client::run_sdk`] runs any other SDK operation through the pool.
//! * [`Config::strategy`] names the pool's adaptive strategy (the
//!   `pool-tuning` registry: `"aimd"`, `"vegas(alpha=3)"`, …).
//! * Observability: a `tracing` span per call (`s3`) and per attempt
//!   (`attempt`); features `tracing` and `metrics` turn on pool-core's own
//!   spans and its `metrics`-facade export; [`write_metrics_snapshot`] saves
//!   the pool's metrics as JSON that `pool-sim` replays as a latency profile.
//!
//! Credentials never appear in `Debug` output, logs or errors.
//!
//! The guide is `docs/s3.md`.

#![warn(missing_docs)]

mod batch;
mod classify;
mod client;
mod config;
mod error;
mod objects;
mod observe;
mod options;
mod transfer;

pub use batch::{DeleteFailure, DeleteReport, ListRequest, DELETE_BATCH};
pub use classify::{classify, S3Classifier, THROTTLING_CODES, TRANSIENT_CODES};
pub use client::Client;
pub use config::{Config, ConfigError, CredentialsSource, Secret};
pub use error::{BoxError, Error, Result, S3Error};
pub use objects::{GetOutput, PutOutput};
pub use observe::{read_metrics_snapshot, write_metrics_snapshot};
pub use options::{
    CallOptions, Settings, TimeoutPolicy, MAX_PARTS, MAX_SINGLE_SIZE, MIN_PART_SIZE,
};

/// The usage guide (`docs/s3.md`); its examples are compiled as doctests.
#[doc = include_str!("../../docs/s3.md")]
pub mod guide {}

pub use aws_sdk_s3;
pub use pool_core;
pub use pool_core::{MetricsSnapshot, OpClass, Pool, PoolError};
pub use pool_tuning;
