//! Engine configuration: serde-friendly (durations as `*_ms` integers), validated
//! once at construction. Invalid values are an error naming the field — never a
//! panic and never a pool that silently stalls (the seed accepts NaN, flaw F7).

use crate::metrics::MetricsConfig;
use crate::rate::RateLimit;
use crate::retry::RetryConfig;
use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A configuration value that cannot be used. `field` is the dotted path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `retry.max_attempts`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
    /// From a sub-config's `validate` message, which starts with the field path.
    fn from_message(prefix: &str, message: String) -> Self {
        let field = message
            .split_whitespace()
            .next()
            .unwrap_or(prefix)
            .trim_end_matches(':')
            .to_string();
        ConfigError { field, message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.starts_with(&self.field) {
            write!(f, "invalid configuration: {}", self.message)
        } else {
            write!(f, "invalid configuration: {}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Hedged requests: a second attempt when the first is slower than a percentile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// Attempt-latency quantile of the op's class after which to hedge (0 < q < 1).
    /// Default 0.95 ("The Tail at Scale", Dean & Barroso 2013).
    pub quantile: f64,
    /// Attempts of a class that must be recorded before hedging it. Default 100.
    pub min_samples: u64,
    /// Hedges may be at most this percentage of first attempts. Default 5.
    pub budget_percent: f64,
    /// Never hedge sooner than this after the start (ms). Default 5.
    pub min_delay_ms: u64,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig {
            quantile: 0.95,
            min_samples: 100,
            budget_percent: 5.0,
            min_delay_ms: 5,
        }
    }
}

/// Limits for one partition or class, set in config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeLimits {
    /// Concurrency limit of this scope (under the global one).
    pub limit: Option<u32>,
    /// Fixed request-rate limit.
    pub rate: Option<RateLimit>,
}

/// Everything the engine needs to start. `Default` is the documented default pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Global concurrency limit. Default 10 (the seed pool's default).
    pub limit: u32,
    /// Lower bound for any limit set by hand or by a controller. Default 1.
    pub min_limit: u32,
    /// Upper bound for any limit. Default 10,000.
    pub max_limit: u32,
    /// Aging quantum: one priority point is worth this much waiting (ms). Default
    /// 250 (the seed's `queue.agingMs`, but uncapped). `None`: strict priority.
    pub aging_ms: Option<u64>,
    /// Per-attempt timeout (ms). `None` (default): no timeout.
    pub timeout_ms: Option<u64>,
    /// Whole-op deadline from submit (ms), covering queue wait, attempts and
    /// backoff. `None` (default): no deadline.
    pub deadline_ms: Option<u64>,
    /// Bound on queued ops that never started; when full, the lowest priority (newest
    /// first among equals) is rejected. Ops coming back from a retry backoff were
    /// admitted already and are never rejected, so the queue may briefly hold more.
    /// `None` (default): unbounded.
    pub max_queued: Option<u64>,
    /// Budget of declared bytes in flight (size-aware admission). `None`: unlimited.
    pub max_bytes_in_flight: Option<u64>,
    /// Default concurrency limit of every partition. `None`: only the global limit.
    pub partition_limit: Option<u32>,
    /// Default request-rate limit of every partition.
    pub partition_rate: Option<RateLimit>,
    /// Limits of named partitions (interned at construction, never evicted).
    pub partitions: BTreeMap<String, ScopeLimits>,
    /// Limits of classes, by name (`get`, `put`, …) or number.
    pub classes: BTreeMap<String, ScopeLimits>,
    /// Idle partitions' state (controllers, gates, buckets) is dropped after this (ms).
    pub partition_idle_ms: u64,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Hedging; `None` (default): off.
    pub hedge: Option<HedgeConfig>,
    /// Metrics.
    pub metrics: MetricsConfig,
    /// Seed of the engine's RNG (jitter, strategy probing).
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limit: 10,
            min_limit: 1,
            max_limit: 10_000,
            aging_ms: Some(250),
            timeout_ms: None,
            deadline_ms: None,
            max_queued: None,
            max_bytes_in_flight: None,
            partition_limit: None,
            partition_rate: None,
            partitions: BTreeMap::new(),
            classes: BTreeMap::new(),
            partition_idle_ms: 60_000,
            retry: RetryConfig::default(),
            hedge: None,
            metrics: MetricsConfig::default(),
            seed: 0,
        }
    }
}

fn positive(field: &str, v: Option<u64>) -> Result<(), ConfigError> {
    match v {
        Some(0) => Err(ConfigError::new(field, "must be > 0 (omit it for none)")),
        _ => Ok(()),
    }
}

fn limit_ok(field: &str, v: u32) -> Result<(), ConfigError> {
    if v == 0 {
        Err(ConfigError::new(field, "must be >= 1"))
    } else {
        Ok(())
    }
}

impl EngineConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder(EngineConfig::default())
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        limit_ok("limit", self.limit)?;
        limit_ok("min_limit", self.min_limit)?;
        limit_ok("max_limit", self.max_limit)?;
        if self.min_limit > self.max_limit {
            return Err(ConfigError::new(
                "min_limit",
                format!(
                    "min_limit ({}) > max_limit ({})",
                    self.min_limit, self.max_limit
                ),
            ));
        }
        if self.limit < self.min_limit || self.limit > self.max_limit {
            return Err(ConfigError::new(
                "limit",
                format!(
                    "limit ({}) is outside [min_limit, max_limit] = [{}, {}]",
                    self.limit, self.min_limit, self.max_limit
                ),
            ));
        }
        positive("aging_ms", self.aging_ms)?;
        if self.aging_ms.is_some_and(|q| q > 86_400_000) {
            return Err(ConfigError::new(
                "aging_ms",
                "must be at most 86,400,000 (one day)",
            ));
        }
        positive("timeout_ms", self.timeout_ms)?;
        positive("deadline_ms", self.deadline_ms)?;
        for (field, v) in [
            ("timeout_ms", self.timeout_ms),
            ("deadline_ms", self.deadline_ms),
        ] {
            if v.is_some_and(|v| v >= 1 << 31) {
                return Err(ConfigError::new(
                    field,
                    "must be at most 2,147,483,647 (24 days)",
                ));
            }
        }
        positive("max_queued", self.max_queued)?;
        positive("max_bytes_in_flight", self.max_bytes_in_flight)?;
        if let (Some(t), Some(d)) = (self.timeout_ms, self.deadline_ms) {
            if d < t {
                return Err(ConfigError::new(
                    "deadline_ms",
                    format!("deadline ({d} ms) is shorter than the per-attempt timeout ({t} ms)"),
                ));
            }
        }
        if let Some(l) = self.partition_limit {
            limit_ok("partition_limit", l)?;
        }
        if let Some(r) = &self.partition_rate {
            r.validate("partition_rate")
                .map_err(|m| ConfigError::from_message("partition_rate", m))?;
        }
        for (name, s) in &self.partitions {
            s.validate(&format!("partitions.{name}"))?;
        }
        for (name, s) in &self.classes {
            let field = format!("classes.{name}");
            if crate::class::OpClass::parse(name).is_none() {
                return Err(ConfigError::new(
                    field,
                    "unknown class: use a name (head, get, put, list, delete, copy, multipart_part) or a number",
                ));
            }
            s.validate(&field)?;
        }
        if self.partition_idle_ms == 0 {
            return Err(ConfigError::new("partition_idle_ms", "must be > 0"));
        }
        self.retry
            .validate()
            .map_err(|m| ConfigError::from_message("retry", m))?;
        if let Some(h) = &self.hedge {
            if !(h.quantile > 0.0 && h.quantile < 1.0) {
                return Err(ConfigError::new(
                    "hedge.quantile",
                    format!("must be in (0, 1) (got {})", h.quantile),
                ));
            }
            if !(h.budget_percent.is_finite()
                && h.budget_percent > 0.0
                && h.budget_percent <= 100.0)
            {
                return Err(ConfigError::new(
                    "hedge.budget_percent",
                    format!("must be in (0, 100] (got {})", h.budget_percent),
                ));
            }
        }
        self.metrics
            .validate()
            .map_err(|m| ConfigError::from_message("metrics", m))?;
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.deadline_ms.map(Duration::from_millis)
    }
}

impl ScopeLimits {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        if let Some(l) = self.limit {
            limit_ok(&format!("{field}.limit"), l)?;
        }
        if let Some(r) = &self.rate {
            r.validate(&format!("{field}.rate"))
                .map_err(|m| ConfigError::from_message(field, m))?;
        }
        Ok(())
    }
}

/// Builds an [`EngineConfig`]; `build` validates.
#[derive(Clone, Debug)]
pub struct EngineConfigBuilder(EngineConfig);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl EngineConfigBuilder {
    /// Global concurrency limit.
    pub fn limit(mut self, n: u32) -> Self {
        self.0.limit = n;
        self
    }
    /// Bounds for every limit.
    pub fn limit_bounds(mut self, min: u32, max: u32) -> Self {
        self.0.min_limit = min;
        self.0.max_limit = max;
        self
    }
    /// Aging quantum (`None`: strict priority).
    pub fn aging(mut self, quantum: Option<Duration>) -> Self {
        self.0.aging_ms = quantum.map(ms);
        self
    }
    /// Default per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.0.timeout_ms = Some(ms(d));
        self
    }
    /// Default whole-op deadline.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.0.deadline_ms = Some(ms(d));
        self
    }
    /// Bounded queue.
    pub fn max_queued(mut self, n: u64) -> Self {
        self.0.max_queued = Some(n);
        self
    }
    /// Bytes-in-flight budget.
    pub fn max_bytes_in_flight(mut self, n: u64) -> Self {
        self.0.max_bytes_in_flight = Some(n);
        self
    }
    /// Default per-partition concurrency limit.
    pub fn partition_limit(mut self, n: u32) -> Self {
        self.0.partition_limit = Some(n);
        self
    }
    /// Default per-partition rate limit.
    pub fn partition_rate(mut self, r: RateLimit) -> Self {
        self.0.partition_rate = Some(r);
        self
    }
    /// Retry policy.
    pub fn retry(mut self, r: RetryConfig) -> Self {
        self.0.retry = r;
        self
    }
    /// Maximum attempts per op (shortcut into the retry policy).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.0.retry.max_attempts = n;
        self
    }
    /// Hedging.
    pub fn hedge(mut self, h: HedgeConfig) -> Self {
        self.0.hedge = Some(h);
        self
    }
    /// RNG seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
    /// Validates and returns the config.
    pub fn build(self) -> Result<EngineConfig, ConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}
