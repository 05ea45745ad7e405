//! The scenario's `strategy`: any `pool-tuning` spec, attached to every
//! client's engine when the client is made, and runs with a strategy or a
//! fixed limit chosen by the caller (the strategy study and its oracle sweep).
//!
//! Spellings (the same as `--strategy` and the `Pool`'s config):
//!
//! ```toml
//! strategy = "vegas(alpha=3)"                        # compact, one strategy
//! strategy = "flagship + aws-adaptive@partition"     # compact, composed
//! strategy = { name = "aimd", backoff_ratio = 0.8 }  # one spec as a table
//! strategy = { global = "flagship", rate_limiter = "aws-adaptive" }  # a TuningConfig table
//! ```
//!
//! `fixed` without a `limit` holds the scenario's own `pool.limit` (no
//! controller is attached, exactly as with no `strategy` at all), so a scenario
//! keeps its configured baseline; `fixed(limit=N)` holds `N`.

use crate::report::Report;
use crate::scenario::Scenario;
use crate::sim::{run_with, RunOptions, SimError};
use core::fmt;
use core::str::FromStr;
use pool_core::Engine;
use pool_tuning::{SpecError, StrategySpec, TuningConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A scenario's strategy: a [`TuningConfig`], plus whether a bare `fixed`
/// means "the pool's configured limit". See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioStrategy {
    config: TuningConfig,
    /// The global controller is a `fixed` written without a limit.
    fixed_at_pool_limit: bool,
}

impl ScenarioStrategy {
    /// The composed strategies.
    pub fn config(&self) -> &TuningConfig {
        &self.config
    }

    /// Whether the global controller is a `fixed` without a limit (the pool's
    /// configured limit holds, no controller is attached).
    pub fn is_pool_limit(&self) -> bool {
        self.fixed_at_pool_limit
    }

    /// Checks every spec and its slot.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.config.validate()
    }

    /// Attaches the strategies to a client's engine (made from the scenario's
    /// pool config).
    pub fn apply(&self, engine: &mut Engine) -> Result<(), SpecError> {
        if self.fixed_at_pool_limit {
            let mut rest = self.config.clone();
            rest.global = None;
            rest.apply(engine)
        } else {
            self.config.apply(engine)
        }
    }

    fn from_config(config: TuningConfig, fixed_without_limit: bool) -> Self {
        let is_fixed = matches!(config.global, Some(StrategySpec::Fixed(_)));
        ScenarioStrategy {
            fixed_at_pool_limit: is_fixed && fixed_without_limit,
            config,
        }
    }

    /// From a JSON value: a compact string, one spec as a table (`name` key),
    /// or a [`TuningConfig`] table.
    pub fn from_value(v: Value) -> Result<Self, SpecError> {
        match v {
            Value::String(s) => s.parse(),
            Value::Object(m) if m.contains_key("name") => {
                let no_limit = !m.contains_key("limit");
                let spec = StrategySpec::from_map(m)?;
                Ok(Self::from_config(TuningConfig::single(spec), no_limit))
            }
            Value::Object(m) => {
                let no_limit = match m.get("global") {
                    Some(Value::String(s)) => !s.contains('('),
                    Some(Value::Object(g)) => !g.contains_key("limit"),
                    _ => false,
                };
                let config: TuningConfig = serde_json::from_value(Value::Object(m))
                    .map_err(|e| SpecError::new(e.to_string()))?;
                Ok(Self::from_config(config, no_limit))
            }
            other => Err(SpecError::new(format!(
                "expected a strategy string or table, got {other}"
            ))),
        }
    }
}

impl From<TuningConfig> for ScenarioStrategy {
    /// Taken literally: a `fixed` in it holds its own `limit`.
    fn from(config: TuningConfig) -> Self {
        Self::from_config(config, false)
    }
}

impl From<StrategySpec> for ScenarioStrategy {
    /// Taken literally: a `fixed` holds its own `limit`.
    fn from(spec: StrategySpec) -> Self {
        TuningConfig::single(spec).into()
    }
}

impl FromStr for ScenarioStrategy {
    type Err = SpecError;
    /// The compact form, e.g. `"vegas(alpha=3)"` or `"flagship+aws-adaptive"`.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let config: TuningConfig = s.parse()?;
        // A `fixed` part with no argument list: `fixed` or `fixed@global`.
        let bare_fixed = s.split('+').any(|p| {
            let p = p.trim();
            p == "fixed" || p.replace(' ', "") == "fixed@global"
        });
        Ok(Self::from_config(config, bare_fixed))
    }
}

impl fmt::Display for ScenarioStrategy {
    /// The compact form (`fixed` when the pool's limit holds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.config)
    }
}

impl Serialize for ScenarioStrategy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ScenarioStrategy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ScenarioStrategy::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// Attaches `sc.strategy` (if any) to a client's engine.
pub(crate) fn attach(sc: &Scenario, engine: &mut Engine) -> Result<(), SimError> {
    match &sc.strategy {
        Some(s) => s
            .apply(engine)
            .map_err(|e| SimError::Config(format!("strategy: {e}"))),
        None => Ok(()),
    }
}

/// Runs `scenario` with `strategy` in place of its own (see
/// [`ScenarioStrategy`]; a `&str` spec parses with `.parse()`).
///
/// ```
/// use pool_sim::{run_with_strategy, RunOptions, Scenario};
/// let sc = Scenario::load("small-get-burst")?;
/// let opts = RunOptions { series: false, duration_s: Some(0.5), ..RunOptions::default() };
/// let r = run_with_strategy(&sc, 1, &"aimd".parse()?, &opts)?;
/// assert_eq!(r.strategy, "aimd");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_with_strategy(
    scenario: &Scenario,
    seed: u64,
    strategy: &ScenarioStrategy,
    opts: &RunOptions,
) -> Result<Report, SimError> {
    let mut sc = scenario.clone();
    sc.strategy = Some(strategy.clone());
    run_with(&sc, seed, opts)
}

/// Runs `scenario` with no controller and every client's limit fixed at
/// `limit` (one point of an oracle sweep); the scenario's own strategy is
/// ignored.
pub fn run_fixed_limit(
    scenario: &Scenario,
    seed: u64,
    limit: u32,
    opts: &RunOptions,
) -> Result<Report, SimError> {
    let mut sc = scenario.clone();
    sc.strategy = None;
    let opts = RunOptions {
        limit: Some(limit),
        ..opts.clone()
    };
    run_with(&sc, seed, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let s: ScenarioStrategy = "vegas(alpha=3)".parse().unwrap();
        assert_eq!(s.to_string(), "vegas(alpha=3)");
        assert!(!s.is_pool_limit());
        assert!("fixed".parse::<ScenarioStrategy>().unwrap().is_pool_limit());
        assert!("fixed + aws-adaptive"
            .parse::<ScenarioStrategy>()
            .unwrap()
            .is_pool_limit());
        assert!(!"fixed(limit=5)"
            .parse::<ScenarioStrategy>()
            .unwrap()
            .is_pool_limit());
        let t = ScenarioStrategy::from_value(serde_json::json!({"name": "aimd"})).unwrap();
        assert_eq!(t.to_string(), "aimd");
        let g = ScenarioStrategy::from_value(
            serde_json::json!({"global": "flagship", "rate_limiter": "aws-adaptive"}),
        )
        .unwrap();
        assert_eq!(g.to_string(), "flagship+aws-adaptive");
        let e = "nope".parse::<ScenarioStrategy>().unwrap_err();
        assert!(e.message().contains("flagship"), "{e}");
    }
}
