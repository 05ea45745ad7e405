//! `Fixed`: no adaptation at all.
//!
//! Source: Netflix `concurrency-limits` `FixedLimit` (`_update` returns the
//! current limit). Formula: `L' = L`.
//!
//! It sets `limit` when attached and then ignores every sample. A manual
//! `set_limit` is left alone (the controller does not fight the user). It is
//! the baseline every adaptive strategy is compared against, and the oracle
//! sweep of the study is a set of `Fixed` runs.

use crate::env::{controller_via_tuner, Env, Tuner};
use pool_core::AttemptSample;
use serde::{Deserialize, Serialize};

/// [`Fixed`] parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixedParams {
    /// The limit (default 10, the engine's and the seed pool's default).
    pub limit: u32,
}

impl Default for FixedParams {
    fn default() -> Self {
        FixedParams { limit: 10 }
    }
}

impl FixedParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.limit == 0 {
            return Err("limit must be >= 1".into());
        }
        Ok(())
    }
}

/// Holds one limit. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    limit: u32,
}

impl Fixed {
    /// Holds `limit` (the engine clamps it to its bounds; at least 1).
    pub fn new(limit: u32) -> Self {
        Fixed {
            limit: limit.max(1),
        }
    }

    /// The limit held.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

impl Tuner for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn initial(&self) -> Option<u32> {
        Some(self.limit)
    }
    fn sample(&mut self, _env: &mut dyn Env, _sample: &AttemptSample) {}
}

controller_via_tuner!(Fixed);
