//! Scenarios are data: a TOML file says what the clients do, how the pool is
//! configured and how S3 behaves. [`Scenario::parse`] reads one and validates it;
//! every error names the file, the line and the field ([`ScenarioError`]).
//!
//! ```toml
//! name = "example"
//! duration_s = 5          # virtual seconds of arrivals
//! [pool]                  # a pool_core::EngineConfig
//! limit = 32
//! timeout_ms = 5000
//! [s3]
//! profile = "anyblob"     # or "aws"
//! [[workload]]
//! kind = "poisson"
//! rate = 500              # ops/s per client
//! [[workload.mix]]
//! class = "get"
//! size = "64 KiB"
//! ```

mod library;
mod locate;
mod profile;
mod s3;
mod workload;

pub use library::{builtin, builtin_names, BUILTIN};
pub use locate::ScenarioError;
pub use profile::{Empirical, LatencyProfile, LoadedProfiles, ProfileBase};
pub use s3::{
    Brownout, CapacityStep, FaultConfig, RateProfile, S3Config, ScaleUp, TtfbConfig, TtfbMedians,
};
pub use workload::{OpTemplate, Workload, WorkloadKind};

use pool_core::EngineConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// A complete simulation setup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short identifier (the built-in library's file stem).
    pub name: String,
    /// What the scenario is for, one or two sentences.
    #[serde(default)]
    pub description: String,
    /// A calibration experiment (E1–E5), left out of strategy studies.
    #[serde(default)]
    pub calibration: bool,
    /// Virtual seconds during which open-loop workloads arrive. Batches may finish
    /// earlier; work still running at the end gets up to `drain_s` more.
    pub duration_s: f64,
    /// Extra virtual seconds to finish accepted work before the rest is aborted.
    /// Default 120.
    #[serde(default = "default_drain")]
    pub drain_s: f64,
    /// Simulated clients, each with its own engine, NIC and connections, sharing
    /// one modeled S3. Default 1.
    #[serde(default = "one")]
    pub clients: u32,
    /// Interval of the time series (ms). Default: the duration / 100, at least 10 ms.
    #[serde(default)]
    pub sample_interval_ms: Option<u64>,
    /// Concurrency and send-rate strategies of every client: any `pool-tuning`
    /// spec, compact (`"vegas(alpha=3)"`) or a table (see
    /// [`ScenarioStrategy`](crate::strategy::ScenarioStrategy)). `None` or a bare
    /// `"fixed"`: the pool's configured limit.
    #[serde(default)]
    pub strategy: Option<crate::strategy::ScenarioStrategy>,
    /// The pool configuration of every client (a `pool_core::EngineConfig`).
    #[serde(default)]
    pub pool: EngineConfig,
    /// The modeled S3.
    #[serde(default)]
    pub s3: S3Config,
    /// What the clients do; each client runs every workload.
    #[serde(rename = "workload", default)]
    pub workloads: Vec<Workload>,
}

fn default_drain() -> f64 {
    120.0
}
fn one() -> u32 {
    1
}

/// Upper bound on clients: each has an engine, and a study runs many scenarios.
pub const MAX_CLIENTS: u32 = 10_000;
/// Upper bound on virtual time (a week), so time arithmetic in ns never overflows.
pub const MAX_SECONDS: f64 = 7.0 * 86_400.0;

/// A semantic error before it is located in the source: the field path and why.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// Dotted path, e.g. `workload[1].mix[0].size`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

pub(crate) fn field_err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// `Ok` if `v` is finite and within `[lo, hi]`.
pub(crate) fn check_range(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), FieldError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(field_err(
            field,
            format!("must be a finite number in [{lo}, {hi}] (got {v})"),
        ))
    }
}

impl Scenario {
    /// Parses and validates TOML text; `origin` (a file name or `builtin:NAME`)
    /// goes into error messages.
    pub fn parse(origin: &str, src: &str) -> Result<Scenario, ScenarioError> {
        let sc: Scenario =
            toml::from_str(src).map_err(|e| ScenarioError::from_toml(origin, src, &e))?;
        sc.validate()
            .map_err(|e| ScenarioError::from_field(origin, src, e))?;
        Ok(sc)
    }

    /// A built-in scenario by name, or else a TOML file at that path. Also reads
    /// the latency profile files it names (relative to the file's directory).
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        let with_profiles = |origin: &str, src: &str, base: ProfileBase| {
            let mut sc = Scenario::parse(origin, src)?;
            sc.load_latency_profiles(&base)
                .map_err(|e| ScenarioError::from_field(origin, src, e))?;
            Ok(sc)
        };
        if let Some(src) = builtin(name_or_path) {
            let origin = format!("builtin:{name_or_path}");
            return with_profiles(&origin, src, ProfileBase::Builtin);
        }
        let path = Path::new(name_or_path);
        match std::fs::read_to_string(path) {
            Ok(src) => with_profiles(
                &path.display().to_string(),
                &src,
                profile::base_of_file(path),
            ),
            Err(e) => Err(ScenarioError::plain(
                name_or_path,
                format!(
                    "not a built-in scenario and not a readable file ({e}); built-in scenarios: {}",
                    builtin_names().join(", ")
                ),
            )),
        }
    }

    /// Reads the snapshot files `s3.latency_profile` names, relative paths from
    /// `base` (nothing to do without one). [`Scenario::load`] calls this; call it
    /// for a scenario built in code, or let `run` read them from the working
    /// directory. The error names the field, the file and the class.
    pub fn load_latency_profiles(&mut self, base: &ProfileBase) -> Result<(), FieldError> {
        self.s3.loaded_profiles = match &self.s3.latency_profile {
            Some(spec) => Some(Arc::new(profile::load(spec, base)?)),
            None => None,
        };
        Ok(())
    }

    /// Like [`Scenario::load_latency_profiles`], unless what is loaded is
    /// already for the current `latency_profile` (then nothing is read); a
    /// profile never loaded is read relative to the working directory.
    pub(crate) fn ensure_latency_profiles(&mut self) -> Result<(), FieldError> {
        let base = match (&self.s3.latency_profile, &self.s3.loaded_profiles) {
            (None, _) => {
                self.s3.loaded_profiles = None;
                return Ok(());
            }
            (Some(spec), Some(l)) if l.spec == *spec => return Ok(()),
            (Some(_), Some(l)) => l.base.clone(),
            (Some(_), None) => ProfileBase::Dir(".".into()),
        };
        self.load_latency_profiles(&base)
    }

    /// Checks what serde cannot: ranges, and fields that depend on each other.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.name.trim().is_empty() {
            return Err(field_err("name", "must not be empty"));
        }
        check_range("duration_s", self.duration_s, 0.0, MAX_SECONDS)?;
        check_range("drain_s", self.drain_s, 0.0, MAX_SECONDS)?;
        if !(1..=MAX_CLIENTS).contains(&self.clients) {
            return Err(field_err(
                "clients",
                format!("must be in 1..={MAX_CLIENTS} (got {})", self.clients),
            ));
        }
        if self.sample_interval_ms == Some(0) {
            return Err(field_err("sample_interval_ms", "must be > 0"));
        }
        if let Some(s) = &self.strategy {
            s.validate()
                .map_err(|e| field_err("strategy", e.message()))?;
        }
        self.pool.validate().map_err(|e| {
            let field = format!("pool.{}", e.field);
            field_err(field, e.message)
        })?;
        self.s3.validate()?;
        if self.workloads.is_empty() {
            return Err(field_err("workload", "at least one [[workload]] is needed"));
        }
        for (i, w) in self.workloads.iter().enumerate() {
            w.validate(&format!("workload[{i}]"), self.duration_s)?;
        }
        Ok(())
    }
}
