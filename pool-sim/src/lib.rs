//! # pool-sim: the real `pool-core` engine against a modeled S3, on a virtual clock
//!
//! A discrete-event simulator. Each simulated client owns a real
//! [`pool_core::Engine`] (not a copy); the driver feeds it submits, attempt results,
//! cancels and ticks at virtual instants and carries out its decisions against a
//! model of S3 built from published measurements (`docs/sim-model.md`): time to
//! first byte per class, per-connection transfer rates shared under a NIC cap,
//! per-prefix request-rate buckets that answer 503 SlowDown, random 500s, resets
//! and stalls, brownouts and capacity steps, an HTTP connection limit.
//!
//! Determinism: events run in (time, sequence) order; every draw comes from a
//! `ChaCha8Rng` seeded from the scenario seed per purpose and client; maths that
//! needs `exp`/`ln`/`pow` goes through `libm`. The same scenario and seed give a
//! byte-identical [`Report`]. Nothing here reads the wall clock.
//!
//! ```
//! use pool_sim::{run, Scenario};
//! let sc = Scenario::parse("inline", r#"
//!     name = "tiny"
//!     duration_s = 1
//!     [pool]
//!     limit = 8
//!     [[workload]]
//!     kind = "batch"
//!     ops = 100
//!     [[workload.mix]]
//!     class = "get"
//!     size = "4 KiB"
//! "#)?;
//! let report = run(&sc, 1)?;
//! assert_eq!(report.conservation.succeeded, 100);
//! assert_eq!(report.to_json(), run(&sc, 1)?.to_json());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod report;
mod rng;
mod s3;
pub mod scenario;
mod sim;
pub mod strategy;
pub mod units;

pub use pool_core;
pub use pool_tuning;
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};
pub use sim::{run, run_with, RunOptions, Series, ServerCounts, SimError, MULTIPART_UPLOAD};
pub use strategy::{run_fixed_limit, run_with_strategy, ScenarioStrategy};
