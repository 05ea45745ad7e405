//! # pool-tuning: adaptive concurrency and send-rate strategies for opspool
//!
//! Each strategy is a small type implementing the engine's
//! [`Controller`](pool_core::Controller) (moves a concurrency limit) or
//! [`RateGate`](pool_core::RateGate) (paces sends), with its source and formula
//! in its module docs:
//!
//! | Name (registry) | Type | Kind | Source |
//! |---|---|---|---|
//! | `fixed` | [`Fixed`] | controller | Netflix `FixedLimit` |
//! | `aimd` | [`Aimd`] | controller | Netflix `AIMDLimit` |
//! | `vegas` | [`Vegas`] | controller | Netflix `VegasLimit` |
//! | `gradient2` | [`Gradient2`] | controller | Netflix `Gradient2Limit` (+ `WindowedLimit`) |
//! | `envoy-gradient` | [`EnvoyGradient`] | controller | Envoy adaptive concurrency |
//! | `s3db-adaptive` | [`SeedAdaptiveTuning`] | controller | s3db.js `AdaptiveTuning` (faithful port) |
//! | `aws-adaptive` | [`AwsAdaptiveRateLimiter`] | rate gate | AWS SDK adaptive retry (CUBIC) |
//! | `flagship` | [`Flagship`] | controller | ours: online knee search (Little's law) + throttle-capacity CUBIC |
//!
//! All are deterministic: time comes from the engine, randomness only from the
//! engine's seeded RNG, floating-point transcendental maths from `libm`, and no
//! hash-map iteration.
//!
//! [`spec`] names them with their parameters in TOML/JSON or a compact string
//! (`"vegas(alpha=3)"`, `"aimd+aws-adaptive"`), and [`TuningConfig`] attaches a
//! global, per-class and per-partition set to an [`Engine`](pool_core::Engine)
//! or a [`Pool`](pool_core::Pool):
//!
//! ```
//! use pool_tuning::{StrategySpec, TuningConfig};
//! use pool_core::{Engine, EngineConfig};
//!
//! let spec: StrategySpec = "vegas(alpha=3)".parse()?;
//! assert_eq!(spec.to_string(), "vegas(alpha=3)");
//! let cfg: TuningConfig = "aimd+aws-adaptive".parse()?;
//! let mut engine = Engine::new(EngineConfig::default())?;
//! cfg.apply(&mut engine)?;
//! assert_eq!(engine.limit(), 20); // AIMD's initial limit
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Strategies are written against [`env::Env`], a small trait over the
//! engine's [`ControlContext`](pool_core::ControlContext), so they also run in
//! tests and replays without an engine ([`env::TestEnv`]). Writing your own:
//! see `docs/custom-strategy.md` and `examples/custom_strategy.rs`.
#![warn(missing_docs)]

pub mod aimd;
pub mod aws;
pub mod env;
pub mod envoy;
pub mod fixed;
pub mod flagship;
pub mod gradient2;
pub mod seed;
pub mod signal;
pub mod spec;
pub mod vegas;
pub mod window;

pub use aimd::{Aimd, AimdParams};
pub use aws::{AwsAdaptiveParams, AwsAdaptiveRateLimiter};
pub use envoy::{EnvoyGradient, EnvoyParams};
pub use fixed::{Fixed, FixedParams};
pub use flagship::{Flagship, FlagshipParams};
pub use gradient2::{Gradient2, Gradient2Params};
pub use pool_core;
pub use seed::{SeedAdaptiveTuning, SeedParams};
pub use spec::{Built, SpecError, StrategySpec, TuningConfig};
pub use vegas::{Vegas, VegasParams};
pub use window::WindowConfig;
