//! Workloads: when ops arrive and what they are.

use super::{check_range, field_err, FieldError, MAX_SECONDS};
use crate::units::Bytes;
use pool_core::OpClass;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How ops arrive (each client runs each workload with its own random stream).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// `ops` ops submitted at `at_s` (default 0), like a bulk upload.
    Batch,
    /// `ops` ops at `at_s`, repeated every `every_s` until `end_s` if set.
    Burst,
    /// Open loop: Poisson arrivals at `rate` ops/s from `start_s` to `end_s`.
    Poisson,
    /// Open loop: Poisson arrivals whose rate goes linearly from `rate` to
    /// `to_rate` between `start_s` and `end_s`.
    Ramp,
    /// Closed loop: `users` callers, each submitting its next op when the last
    /// resolves, `ops` in total.
    Closed,
}

/// One workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// How ops arrive.
    pub kind: WorkloadKind,
    /// Ops per batch or burst; total ops of a closed loop.
    #[serde(default)]
    pub ops: Option<u64>,
    /// Time of a batch or the first burst (s). Default 0.
    #[serde(default)]
    pub at_s: f64,
    /// Burst period (s).
    #[serde(default)]
    pub every_s: Option<f64>,
    /// Arrival rate per client (ops/s): Poisson, and the start of a ramp.
    #[serde(default)]
    pub rate: Option<f64>,
    /// End rate of a ramp (ops/s).
    #[serde(default)]
    pub to_rate: Option<f64>,
    /// Start of arrivals (s). Default 0.
    #[serde(default)]
    pub start_s: f64,
    /// End of arrivals (s). Default: the scenario's duration.
    #[serde(default)]
    pub end_s: Option<f64>,
    /// Callers of a closed loop.
    #[serde(default)]
    pub users: Option<u32>,
    /// Probability that the caller cancels an op after `cancel_after_ms`. Default 0.
    #[serde(default)]
    pub cancel_prob: f64,
    /// Mean delay before such a cancel (ms, exponential). Default 100.
    #[serde(default = "default_cancel_after")]
    pub cancel_after_ms: f64,
    /// What the ops are, chosen by weight.
    pub mix: Vec<OpTemplate>,
}

fn default_cancel_after() -> f64 {
    100.0
}

/// One kind of op in a workload's mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpTemplate {
    /// S3 class: head, get, put, list, delete, copy, multipart_part.
    #[serde(serialize_with = "ser_class", deserialize_with = "de_class")]
    pub class: OpClass,
    /// Relative weight in the mix. Default 1.
    #[serde(default = "one")]
    pub weight: f64,
    /// Object size (bytes, or a string like "16 MiB"). Default 0.
    #[serde(default)]
    pub size: Bytes,
    /// If set, sizes are log-uniform in [size, size_max].
    #[serde(default)]
    pub size_max: Option<Bytes>,
    /// Op priority (higher first). Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Key prefix (the S3 partition and the pool partition). Default "data/".
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Spread ops uniformly over this many prefixes `{prefix}0`, `{prefix}1`, ….
    /// Default 1 (just `prefix`).
    #[serde(default = "one_u32")]
    pub prefixes: u32,
    /// PUT as a multipart upload with parts of this size (a parent op whose
    /// parts are child ops).
    #[serde(default)]
    pub part_size: Option<Bytes>,
    /// Whether the op may be retried after it may have reached the server. Default true.
    #[serde(default = "yes")]
    pub idempotent: bool,
    /// Per-attempt timeout overriding the pool's (ms).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Maximum attempts overriding the pool's.
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_prefix() -> String {
    "data/".into()
}

fn ser_class<S: Serializer>(c: &OpClass, s: S) -> Result<S::Ok, S::Error> {
    match c.name() {
        Some(n) => s.serialize_str(n),
        None => s.serialize_u16(c.0),
    }
}

fn de_class<'de, D: Deserializer<'de>>(d: D) -> Result<OpClass, D::Error> {
    let s = String::deserialize(d)?;
    match OpClass::parse(&s) {
        Some(c) if OpClass::S3.contains(&c) => Ok(c),
        _ => Err(serde::de::Error::custom(format!(
            "unknown class {s:?}: expected head, get, put, list, delete, copy or multipart_part"
        ))),
    }
}

/// Ops per workload are bounded so a typo cannot ask for 10^18 submissions.
pub const MAX_OPS: u64 = 1_000_000_000;
/// Largest part count of one multipart upload (S3's limit).
pub const MAX_PARTS: u64 = 10_000;

impl Workload {
    pub(crate) fn validate(&self, p: &str, duration_s: f64) -> Result<(), FieldError> {
        use WorkloadKind::*;
        let need = |f: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(field_err(
                    format!("{p}.{f}"),
                    format!("is required for kind = \"{}\"", kind_name(self.kind)),
                ))
            }
        };
        match self.kind {
            Batch | Burst => need("ops", self.ops.is_some())?,
            Poisson => need("rate", self.rate.is_some())?,
            Ramp => {
                need("rate", self.rate.is_some())?;
                need("to_rate", self.to_rate.is_some())?;
            }
            Closed => {
                need("ops", self.ops.is_some())?;
                need("users", self.users.is_some())?;
            }
        }
        if let Some(n) = self.ops {
            if !(1..=MAX_OPS).contains(&n) {
                return Err(field_err(
                    format!("{p}.ops"),
                    format!("must be in 1..={MAX_OPS} (got {n})"),
                ));
            }
        }
        if self.users == Some(0) {
            return Err(field_err(format!("{p}.users"), "must be >= 1"));
        }
        check_range(&format!("{p}.at_s"), self.at_s, 0.0, MAX_SECONDS)?;
        check_range(&format!("{p}.start_s"), self.start_s, 0.0, MAX_SECONDS)?;
        if let Some(e) = self.end_s {
            check_range(&format!("{p}.end_s"), e, self.start_s, MAX_SECONDS)?;
        }
        if let Some(e) = self.every_s {
            check_range(&format!("{p}.every_s"), e, 0.001, MAX_SECONDS)?;
        }
        for (f, r) in [("rate", self.rate), ("to_rate", self.to_rate)] {
            if let Some(r) = r {
                check_range(&format!("{p}.{f}"), r, 0.0, 1e8)?;
            }
        }
        if self.kind == Poisson && self.rate == Some(0.0) {
            return Err(field_err(format!("{p}.rate"), "must be > 0"));
        }
        let end = self.end_s.unwrap_or(duration_s);
        if matches!(self.kind, Poisson | Ramp | Burst) && self.start_s > end {
            return Err(field_err(
                format!("{p}.start_s"),
                "is after the end of arrivals",
            ));
        }
        check_range(&format!("{p}.cancel_prob"), self.cancel_prob, 0.0, 1.0)?;
        check_range(
            &format!("{p}.cancel_after_ms"),
            self.cancel_after_ms,
            0.0,
            3_600_000.0,
        )?;
        if self.mix.is_empty() {
            return Err(field_err(
                format!("{p}.mix"),
                "at least one [[workload.mix]] entry is needed",
            ));
        }
        for (i, m) in self.mix.iter().enumerate() {
            m.validate(&format!("{p}.mix[{i}]"))?;
        }
        if self.mix.iter().map(|m| m.weight).sum::<f64>() <= 0.0 {
            return Err(field_err(
                format!("{p}.mix"),
                "the weights must not all be 0",
            ));
        }
        Ok(())
    }
}

fn kind_name(k: WorkloadKind) -> &'static str {
    match k {
        WorkloadKind::Batch => "batch",
        WorkloadKind::Burst => "burst",
        WorkloadKind::Poisson => "poisson",
        WorkloadKind::Ramp => "ramp",
        WorkloadKind::Closed => "closed",
    }
}

impl OpTemplate {
    fn validate(&self, p: &str) -> Result<(), FieldError> {
        check_range(&format!("{p}.weight"), self.weight, 0.0, 1e12)?;
        if let Some(max) = self.size_max {
            if max < self.size {
                return Err(field_err(format!("{p}.size_max"), "must be >= size"));
            }
        }
        if self.size.0 > 5 << 40 || self.size_max.is_some_and(|m| m.0 > 5 << 40) {
            return Err(field_err(
                format!("{p}.size"),
                "must be <= 5 TiB (S3's object size limit)",
            ));
        }
        if self.prefix.is_empty() {
            return Err(field_err(format!("{p}.prefix"), "must not be empty"));
        }
        if !(1..=100_000).contains(&self.prefixes) {
            return Err(field_err(format!("{p}.prefixes"), "must be in 1..=100000"));
        }
        if let Some(ps) = self.part_size {
            if self.class != OpClass::PUT {
                return Err(field_err(
                    format!("{p}.part_size"),
                    "only a put can be a multipart upload",
                ));
            }
            if ps.0 == 0 {
                return Err(field_err(format!("{p}.part_size"), "must be > 0"));
            }
            let biggest = self.size_max.unwrap_or(self.size).0;
            if biggest.div_ceil(ps.0) > MAX_PARTS {
                return Err(field_err(
                    format!("{p}.part_size"),
                    format!("the object would have more than {MAX_PARTS} parts"),
                ));
            }
        }
        if self.timeout_ms == Some(0) {
            return Err(field_err(format!("{p}.timeout_ms"), "must be > 0"));
        }
        if self.max_attempts == Some(0) {
            return Err(field_err(format!("{p}.max_attempts"), "must be >= 1"));
        }
        Ok(())
    }
}
