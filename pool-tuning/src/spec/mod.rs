//! The registry: every strategy named with its parameters, in one spelling for
//! serde configs (TOML/JSON), scenario files, `--strategy` and the `Pool`.
//!
//! * Table form: `{ name = "aimd", backoff_ratio = 0.8 }` (TOML) or
//!   `{"name": "aimd", "backoff_ratio": 0.8}` (JSON). Omitted parameters take
//!   their defaults; unknown ones are errors.
//! * Compact form: `"aimd"`, `"vegas(alpha=3, smoothing=0.5)"`. A string is
//!   accepted wherever a table is. [`StrategySpec`]'s `Display` writes the
//!   compact form with only the non-default parameters, and parsing it back
//!   gives the same spec.
//!
//! Names: `fixed`, `aimd`, `vegas`, `gradient2`, `envoy-gradient`,
//! `s3db-adaptive`, `aws-adaptive` (a rate gate), `flagship`. An unknown name
//! is an error listing them. [`TuningConfig`] composes global, per-class and
//! per-partition strategies and attaches them.

mod compact;
mod config;

pub use config::TuningConfig;

use crate::{
    Aimd, AimdParams, AwsAdaptiveParams, AwsAdaptiveRateLimiter, EnvoyGradient, EnvoyParams, Fixed,
    FixedParams, Flagship, FlagshipParams, Gradient2, Gradient2Params, SeedAdaptiveTuning,
    SeedParams, Vegas, VegasParams,
};
use core::fmt;
use core::str::FromStr;
use pool_core::{Controller, RateGate};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A configuration error: bad name, bad parameter, or a strategy in the wrong
/// slot. The message says what was wrong and, for names, lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    message: String,
}

impl SpecError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        SpecError {
            message: message.into(),
        }
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// What a strategy drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A concurrency [`Controller`].
    Controller,
    /// A send-rate [`RateGate`].
    RateGate,
}

/// One named strategy with its parameters. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub enum StrategySpec {
    /// [`Fixed`].
    Fixed(FixedParams),
    /// [`Aimd`].
    Aimd(AimdParams),
    /// [`Vegas`].
    Vegas(VegasParams),
    /// [`Gradient2`].
    Gradient2(Gradient2Params),
    /// [`EnvoyGradient`].
    EnvoyGradient(EnvoyParams),
    /// [`SeedAdaptiveTuning`].
    SeedAdaptive(SeedParams),
    /// [`AwsAdaptiveRateLimiter`] (a rate gate).
    AwsAdaptive(AwsAdaptiveParams),
    /// [`Flagship`].
    Flagship(FlagshipParams),
}

/// What [`StrategySpec::build`] makes: a controller or a rate gate.
#[derive(Default)]
pub struct Built {
    /// The concurrency controller, if the strategy is one.
    pub controller: Option<Box<dyn Controller>>,
    /// The send-rate gate, if the strategy is one.
    pub rate_gate: Option<Box<dyn RateGate>>,
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field(
                "controller",
                &self.controller.as_ref().map(|c| c.name().to_string()),
            )
            .field(
                "rate_gate",
                &self.rate_gate.as_ref().map(|g| g.name().to_string()),
            )
            .finish()
    }
}

fn to_object<T: Serialize>(params: &T) -> Map<String, Value> {
    match serde_json::to_value(params) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn from_object<T: for<'de> Deserialize<'de>>(
    name: &str,
    m: Map<String, Value>,
) -> Result<T, SpecError> {
    serde_json::from_value(Value::Object(m)).map_err(|e| SpecError::new(format!("{name}: {e}")))
}

impl StrategySpec {
    /// Every registry name, in the order of the table in the crate docs.
    pub const NAMES: [&'static str; 8] = [
        "fixed",
        "aimd",
        "vegas",
        "gradient2",
        "envoy-gradient",
        "s3db-adaptive",
        "aws-adaptive",
        "flagship",
    ];

    /// The registry name.
    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::Fixed(_) => "fixed",
            StrategySpec::Aimd(_) => "aimd",
            StrategySpec::Vegas(_) => "vegas",
            StrategySpec::Gradient2(_) => "gradient2",
            StrategySpec::EnvoyGradient(_) => "envoy-gradient",
            StrategySpec::SeedAdaptive(_) => "s3db-adaptive",
            StrategySpec::AwsAdaptive(_) => "aws-adaptive",
            StrategySpec::Flagship(_) => "flagship",
        }
    }

    /// Whether it is a controller or a rate gate.
    pub fn kind(&self) -> Kind {
        match self {
            StrategySpec::AwsAdaptive(_) => Kind::RateGate,
            _ => Kind::Controller,
        }
    }

    /// The spec of `name` with default parameters.
    pub fn default_for(name: &str) -> Result<StrategySpec, SpecError> {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(name.to_string()));
        StrategySpec::from_map(m)
    }

    /// Every built-in strategy with its defaults (one per name).
    pub fn all_defaults() -> Vec<StrategySpec> {
        Self::NAMES
            .iter()
            .filter_map(|n| StrategySpec::default_for(n).ok())
            .collect()
    }

    fn unknown(name: &str) -> SpecError {
        SpecError::new(format!(
            "unknown strategy `{name}`; valid names: {}",
            Self::NAMES.join(", ")
        ))
    }

    /// Builds a spec from a JSON object with a `name` key and parameters.
    pub fn from_map(mut m: Map<String, Value>) -> Result<StrategySpec, SpecError> {
        let name = match m.remove("name") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(SpecError::new(format!(
                    "`name` must be a string (got {other})"
                )))
            }
            None => {
                return Err(SpecError::new(format!(
                    "missing `name`; valid names: {}",
                    Self::NAMES.join(", ")
                )))
            }
        };
        let n = name.as_str();
        let spec = match n {
            "fixed" => StrategySpec::Fixed(from_object(n, m)?),
            "aimd" => StrategySpec::Aimd(from_object(n, m)?),
            "vegas" => StrategySpec::Vegas(from_object(n, m)?),
            "gradient2" => StrategySpec::Gradient2(from_object(n, m)?),
            "envoy-gradient" => StrategySpec::EnvoyGradient(from_object(n, m)?),
            "s3db-adaptive" => StrategySpec::SeedAdaptive(from_object(n, m)?),
            "aws-adaptive" => StrategySpec::AwsAdaptive(from_object(n, m)?),
            "flagship" => StrategySpec::Flagship(from_object(n, m)?),
            _ => return Err(Self::unknown(n)),
        };
        Ok(spec)
    }

    /// The parameters as a JSON object (no `name`; `None`s left out).
    pub fn params(&self) -> Map<String, Value> {
        let mut m = match self {
            StrategySpec::Fixed(p) => to_object(p),
            StrategySpec::Aimd(p) => to_object(p),
            StrategySpec::Vegas(p) => to_object(p),
            StrategySpec::Gradient2(p) => to_object(p),
            StrategySpec::EnvoyGradient(p) => to_object(p),
            StrategySpec::SeedAdaptive(p) => to_object(p),
            StrategySpec::AwsAdaptive(p) => to_object(p),
            StrategySpec::Flagship(p) => to_object(p),
        };
        m.retain(|_, v| !v.is_null());
        m
    }

    /// Checks the parameters; the error names the strategy and the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        let r = match self {
            StrategySpec::Fixed(p) => p.validate(),
            StrategySpec::Aimd(p) => p.validate(),
            StrategySpec::Vegas(p) => p.validate(),
            StrategySpec::Gradient2(p) => p.validate(),
            StrategySpec::EnvoyGradient(p) => p.validate(),
            StrategySpec::SeedAdaptive(p) => p.validate(),
            StrategySpec::AwsAdaptive(p) => p.validate(),
            StrategySpec::Flagship(p) => p.validate(),
        };
        r.map_err(|e| SpecError::new(format!("{}: {e}", self.name())))
    }

    /// Validates, then makes the strategy.
    pub fn build(&self) -> Result<Built, SpecError> {
        self.validate()?;
        Ok(self.make())
    }

    /// Makes the strategy without validating (for factories, after `build`
    /// succeeded once).
    pub(crate) fn make(&self) -> Built {
        let c = |c: Box<dyn Controller>| Built {
            controller: Some(c),
            rate_gate: None,
        };
        match *self {
            StrategySpec::Fixed(p) => c(Box::new(Fixed::new(p.limit))),
            StrategySpec::Aimd(p) => c(Box::new(Aimd::new(p))),
            StrategySpec::Vegas(p) => c(Box::new(Vegas::new(p))),
            StrategySpec::Gradient2(p) => c(Box::new(Gradient2::new(p))),
            StrategySpec::EnvoyGradient(p) => c(Box::new(EnvoyGradient::new(p))),
            StrategySpec::SeedAdaptive(p) => c(Box::new(SeedAdaptiveTuning::new(p))),
            StrategySpec::Flagship(p) => c(Box::new(Flagship::new(p))),
            StrategySpec::AwsAdaptive(p) => Built {
                controller: None,
                rate_gate: Some(Box::new(AwsAdaptiveRateLimiter::new(p))),
            },
        }
    }
}

impl fmt::Display for StrategySpec {
    /// The compact form with the non-default parameters, e.g. `vegas(alpha=3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let defaults = StrategySpec::default_for(self.name())
            .map(|d| d.params())
            .unwrap_or_default();
        let args: Vec<String> = self
            .params()
            .iter()
            .filter(|(k, v)| defaults.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}={}", compact::format_value(v)))
            .collect();
        f.write_str(self.name())?;
        if !args.is_empty() {
            write!(f, "({})", args.join(", "))?;
        }
        Ok(())
    }
}

impl FromStr for StrategySpec {
    type Err = SpecError;
    /// Parses `name` or `name(key=value, ...)`.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        if compact::split_top(s, '+').len() > 1 {
            return Err(SpecError::new(format!(
                "`{s}` combines strategies; parse it as a TuningConfig"
            )));
        }
        StrategySpec::from_map(compact::parse_call(s)?)
    }
}

impl Serialize for StrategySpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name().into()));
        m.extend(self.params());
        m.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StrategySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrategySpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a strategy name, `name(key=value, ...)`, or a table with `name`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrategySpec, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<StrategySpec, A::Error> {
                let m =
                    Map::<String, Value>::deserialize(de::value::MapAccessDeserializer::new(a))?;
                StrategySpec::from_map(m).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}
