//! [`TuningConfig`]: which strategy runs where, and attaching it.

use super::{compact, Kind, SpecError, StrategySpec};
use core::fmt;
use core::str::FromStr;
use pool_core::control::{ControllerFactory, RateGateFactory};
use pool_core::{AttemptSample, ControlContext, Controller, Engine, OpClass, Pool, RateGate};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Strategies for every scope of an engine or pool.
///
/// Table form (TOML):
/// ```toml
/// global = "flagship"
/// rate_limiter = "aws-adaptive"
/// per_partition = { name = "aimd", min_limit = 1 }
/// partition_rate_limiter = "aws-adaptive"
/// [per_class]
/// put = "vegas(alpha=3)"
/// ```
/// Compact form: `+`-joined specs with an optional `@scope` (`@global`, the
/// default; `@partition`; or a class name such as `@get`). Controllers and rate
/// gates go to their own slots: `"flagship + aws-adaptive@partition + aimd@put"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TuningConfig {
    /// The global concurrency controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<StrategySpec>,
    /// A global send-rate gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<StrategySpec>,
    /// A controller per class (by class name or number, see [`OpClass::parse`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_class: BTreeMap<String, StrategySpec>,
    /// A controller made for every partition key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_partition: Option<StrategySpec>,
    /// A send-rate gate made for every partition key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_rate_limiter: Option<StrategySpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
struct Repr {
    global: Option<StrategySpec>,
    rate_limiter: Option<StrategySpec>,
    per_class: BTreeMap<String, StrategySpec>,
    per_partition: Option<StrategySpec>,
    partition_rate_limiter: Option<StrategySpec>,
}

/// Stand-in that never acts; only reachable if a validated controller spec
/// failed to make a controller, which `validate` rules out.
struct Inert;
impl Controller for Inert {
    fn on_sample(&mut self, _: &mut ControlContext<'_>, _: &AttemptSample) {}
}
struct InertGate;
impl RateGate for InertGate {
    fn try_acquire(&mut self, _: pool_core::Instant) -> Result<(), pool_core::Instant> {
        Ok(())
    }
    fn on_sample(&mut self, _: pool_core::Instant, _: &AttemptSample) {}
}

/// The attach calls `Engine` and `Pool` share.
trait Target {
    fn controller(&mut self, c: Box<dyn Controller>);
    fn class_controller(&mut self, class: OpClass, c: Box<dyn Controller>);
    fn partition_controllers(&mut self, f: ControllerFactory);
    fn gate(&mut self, g: Box<dyn RateGate>);
    fn partition_gates(&mut self, f: RateGateFactory);
}

impl Target for Engine {
    fn controller(&mut self, c: Box<dyn Controller>) {
        self.set_controller(c)
    }
    fn class_controller(&mut self, class: OpClass, c: Box<dyn Controller>) {
        self.set_class_controller(class, c)
    }
    fn partition_controllers(&mut self, f: ControllerFactory) {
        self.set_partition_controller_factory(f)
    }
    fn gate(&mut self, g: Box<dyn RateGate>) {
        self.set_rate_gate(g)
    }
    fn partition_gates(&mut self, f: RateGateFactory) {
        self.set_partition_rate_gate_factory(f)
    }
}

struct PoolTarget<'a>(&'a Pool);

impl Target for PoolTarget<'_> {
    fn controller(&mut self, c: Box<dyn Controller>) {
        self.0.set_controller(c)
    }
    fn class_controller(&mut self, class: OpClass, c: Box<dyn Controller>) {
        self.0.set_class_controller(class, c)
    }
    fn partition_controllers(&mut self, f: ControllerFactory) {
        self.0.set_partition_controller_factory(f)
    }
    fn gate(&mut self, g: Box<dyn RateGate>) {
        self.0.set_rate_gate(g)
    }
    fn partition_gates(&mut self, f: RateGateFactory) {
        self.0.set_partition_rate_gate_factory(f)
    }
}

fn check(slot: &str, spec: &StrategySpec, want: Kind) -> Result<(), SpecError> {
    if spec.kind() != want {
        let hint = match want {
            Kind::Controller => {
                "it is a rate gate: put it in `rate_limiter` or `partition_rate_limiter`"
            }
            Kind::RateGate => {
                "it is a concurrency controller: put it in `global`, `per_class` or `per_partition`"
            }
        };
        return Err(SpecError::new(format!(
            "{slot}: `{}` does not fit here; {hint}",
            spec.name()
        )));
    }
    spec.validate()
        .map_err(|e| SpecError::new(format!("{slot}: {e}")))
}

fn class_of(key: &str) -> Result<OpClass, SpecError> {
    OpClass::parse(key).ok_or_else(|| {
        SpecError::new(format!(
            "per_class: unknown class `{key}`; use a number or one of default, head, get, put, \
             list, delete, copy, multipart_part"
        ))
    })
}

impl TuningConfig {
    /// A config with just a global spec (a controller or a rate gate).
    pub fn single(spec: StrategySpec) -> Self {
        let mut c = TuningConfig::default();
        match spec.kind() {
            Kind::Controller => c.global = Some(spec),
            Kind::RateGate => c.rate_limiter = Some(spec),
        }
        c
    }

    /// Checks every spec, its slot and the class names.
    pub fn validate(&self) -> Result<(), SpecError> {
        if let Some(s) = &self.global {
            check("global", s, Kind::Controller)?;
        }
        if let Some(s) = &self.rate_limiter {
            check("rate_limiter", s, Kind::RateGate)?;
        }
        for (k, s) in &self.per_class {
            class_of(k)?;
            check(&format!("per_class.{k}"), s, Kind::Controller)?;
        }
        if let Some(s) = &self.per_partition {
            check("per_partition", s, Kind::Controller)?;
        }
        if let Some(s) = &self.partition_rate_limiter {
            check("partition_rate_limiter", s, Kind::RateGate)?;
        }
        Ok(())
    }

    /// Validates, then attaches everything to `engine`.
    pub fn apply(&self, engine: &mut Engine) -> Result<(), SpecError> {
        self.validate()?;
        self.attach(engine);
        Ok(())
    }

    /// Validates, then attaches everything to `pool`.
    pub fn apply_pool(&self, pool: &Pool) -> Result<(), SpecError> {
        self.validate()?;
        self.attach(&mut PoolTarget(pool));
        Ok(())
    }

    fn attach(&self, t: &mut dyn Target) {
        if let Some(s) = self.per_partition.clone() {
            t.partition_controllers(Box::new(move |_key| {
                s.make().controller.unwrap_or_else(|| Box::new(Inert))
            }));
        }
        if let Some(s) = self.partition_rate_limiter.clone() {
            t.partition_gates(Box::new(move |_key| {
                s.make().rate_gate.unwrap_or_else(|| Box::new(InertGate))
            }));
        }
        for (k, s) in &self.per_class {
            if let (Ok(class), Some(c)) = (class_of(k), s.make().controller) {
                t.class_controller(class, c);
            }
        }
        if let Some(c) = self.global.as_ref().and_then(|s| s.make().controller) {
            t.controller(c);
        }
        if let Some(g) = self.rate_limiter.as_ref().and_then(|s| s.make().rate_gate) {
            t.gate(g);
        }
    }
}

impl FromStr for TuningConfig {
    type Err = SpecError;
    /// Parses the compact form (`"none"` is the empty config).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let mut c = TuningConfig::default();
        if s.trim() == "none" {
            return Ok(c);
        }
        for part in compact::split_top(s, '+') {
            let tokens = compact::split_top(part, '@');
            let (spec, scope) = match tokens.as_slice() {
                [spec] => (*spec, "global"),
                [spec, scope] => (*spec, scope.trim()),
                _ => {
                    return Err(SpecError::new(format!(
                        "`{}`: more than one `@scope`",
                        part.trim()
                    )))
                }
            };
            let spec: StrategySpec = spec.parse()?;
            let slot = match (scope, spec.kind()) {
                ("global", Kind::Controller) => &mut c.global,
                ("global", Kind::RateGate) => &mut c.rate_limiter,
                ("partition", Kind::Controller) => &mut c.per_partition,
                ("partition", Kind::RateGate) => &mut c.partition_rate_limiter,
                (class, Kind::Controller) => {
                    class_of(class)?;
                    if c.per_class.insert(class.to_string(), spec).is_some() {
                        return Err(SpecError::new(format!(
                            "two controllers for class `{class}`"
                        )));
                    }
                    continue;
                }
                (class, Kind::RateGate) => {
                    return Err(SpecError::new(format!(
                        "`{}@{class}`: rate gates go @global or @partition (no per-class gates)",
                        spec.name()
                    )))
                }
            };
            if slot.replace(spec).is_some() {
                return Err(SpecError::new(format!(
                    "`{s}`: two strategies for the same slot (@{scope})"
                )));
            }
        }
        Ok(c)
    }
}

impl fmt::Display for TuningConfig {
    /// The compact form, e.g. `flagship+aws-adaptive@partition`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = &self.global {
            parts.push(s.to_string());
        }
        if let Some(s) = &self.rate_limiter {
            parts.push(s.to_string());
        }
        for (k, s) in &self.per_class {
            parts.push(format!("{s}@{k}"));
        }
        if let Some(s) = &self.per_partition {
            parts.push(format!("{s}@partition"));
        }
        if let Some(s) = &self.partition_rate_limiter {
            parts.push(format!("{s}@partition"));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&parts.join("+"))
    }
}

impl<'de> Deserialize<'de> for TuningConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TuningConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compact tuning string or a table")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TuningConfig, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<TuningConfig, A::Error> {
                let r = Repr::deserialize(de::value::MapAccessDeserializer::new(a))?;
                Ok(TuningConfig {
                    global: r.global,
                    rate_limiter: r.rate_limiter,
                    per_class: r.per_class,
                    per_partition: r.per_partition,
                    partition_rate_limiter: r.partition_rate_limiter,
                })
            }
        }
        d.deserialize_any(V)
    }
}
