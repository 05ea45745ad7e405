//! The traits adaptive strategies implement: [`Controller`] sets concurrency
//! limits, [`RateGate`] paces sends. `pool-tuning` provides the built-in ones; a
//! fixed limit (no controller) is the default.

use crate::class::OpClass;
use crate::outcome::{AttemptSample, OpSample};
use crate::time::Instant;
use rand::RngCore;

/// Where a controller is attached, and so which limit it moves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The global concurrency limit.
    Global,
    /// One class's concurrency limit.
    Class(OpClass),
    /// One partition's concurrency limit (index of the interned key).
    Partition(u32),
}

/// What a controller sees and may change when the engine calls it.
pub struct ControlContext<'a> {
    pub(crate) now: Instant,
    pub(crate) scope: Scope,
    pub(crate) limit: u32,
    pub(crate) min: u32,
    pub(crate) max: u32,
    pub(crate) in_flight: u32,
    pub(crate) queued: u64,
    pub(crate) external: Option<f64>,
    pub(crate) rng: &'a mut dyn RngCore,
    pub(crate) new_limit: Option<u32>,
    pub(crate) wake_at: Option<Instant>,
}

impl<'a> ControlContext<'a> {
    /// The engine's current time.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Which limit this controller moves.
    pub fn scope(&self) -> Scope {
        self.scope
    }
    /// The limit in force for this scope.
    pub fn limit(&self) -> u32 {
        self.new_limit.unwrap_or(self.limit)
    }
    /// Bounds every limit is clamped to (`set_limit_bounds`).
    pub fn bounds(&self) -> (u32, u32) {
        (self.min, self.max)
    }
    /// Attempts in flight in this scope.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
    /// Ops waiting in the queue (whole engine).
    pub fn queued(&self) -> u64 {
        self.queued
    }
    /// The driver's external input (e.g. a memory-pressure reading), if any.
    pub fn external_input(&self) -> Option<f64> {
        self.external
    }
    /// The engine's seeded RNG: the only randomness a strategy may use.
    pub fn rng(&mut self) -> &mut dyn RngCore {
        self.rng
    }
    /// Sets this scope's limit (clamped to the bounds; at least 1).
    pub fn set_limit(&mut self, limit: u32) {
        self.new_limit = Some(limit.clamp(self.min.max(1), self.max.max(1)));
    }
    /// Asks for an `on_tick` call at `at` (the earliest request wins).
    pub fn wake_at(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// A concurrency-limit strategy. The engine calls it; it never calls the engine.
pub trait Controller: Send {
    /// A short name for events and reports.
    fn name(&self) -> &str {
        "custom"
    }
    /// The limit to start from, if the strategy has an opinion (clamped to bounds).
    fn initial_limit(&self) -> Option<u32> {
        None
    }
    /// One finished attempt (successes, failures, timeouts and cancels alike).
    fn on_sample(&mut self, ctx: &mut ControlContext<'_>, sample: &AttemptSample);
    /// One resolved op, for strategies that learn per op.
    fn on_op_resolved(&mut self, _ctx: &mut ControlContext<'_>, _op: &OpSample) {}
    /// A wake-up the controller asked for with [`ControlContext::wake_at`].
    fn on_tick(&mut self, _ctx: &mut ControlContext<'_>) {}
    /// The user set the limit by hand; continue from `limit`.
    fn on_limit_overridden(&mut self, _limit: u32) {}
}

/// A send-rate strategy (token bucket): decides whether a request may be sent now.
pub trait RateGate: Send {
    /// A short name for events and reports.
    fn name(&self) -> &str {
        "custom-rate"
    }
    /// `None` if a send token is available now (without spending it), otherwise
    /// when one will be. The engine asks every gate in an op's scopes before it
    /// spends any token, so a refusal by one gate does not waste another's.
    /// The default says "always ready" and leaves the decision to `try_acquire`.
    fn ready_at(&mut self, _now: Instant) -> Option<Instant> {
        None
    }
    /// Spends a send token and returns `Ok`, or returns when to try again.
    fn try_acquire(&mut self, now: Instant) -> Result<(), Instant>;
    /// One finished attempt that this gate let through.
    fn on_sample(&mut self, now: Instant, sample: &AttemptSample);
}

/// Makes a controller for a partition the first time its key is seen.
pub type ControllerFactory = Box<dyn FnMut(&str) -> Box<dyn Controller> + Send>;
/// Makes a rate gate for a partition the first time its key is seen.
pub type RateGateFactory = Box<dyn FnMut(&str) -> Box<dyn RateGate> + Send>;
