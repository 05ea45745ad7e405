//! What a strategy sees of its surroundings, behind a small trait, so the same
//! strategy code runs inside the engine ([`ControlContext`]) and in unit tests
//! or sample replays ([`TestEnv`]) without an engine.
//!
//! Every built-in controller implements [`Tuner`] and, through it, the engine's
//! [`Controller`] trait. [`AsController`] does the same for your own `Tuner`s.

use pool_core::{AttemptSample, ControlContext, Controller, Instant, OpSample, Scope};

/// The view a strategy has when it is called: time, limits, load, the driver's
/// external input, the seeded RNG, and the two things it may do (set the limit,
/// ask for a wake-up). Mirrors [`ControlContext`].
pub trait Env {
    /// The current time.
    fn now(&self) -> Instant;
    /// The limit in force for this scope (after any `set_limit` in this call).
    fn limit(&self) -> u32;
    /// The engine's bounds `(min, max)`; every limit is clamped to them.
    fn bounds(&self) -> (u32, u32);
    /// Attempts in flight in this scope now.
    fn in_flight(&self) -> u32;
    /// Ops waiting in the queue (whole engine).
    fn queued(&self) -> u64;
    /// The driver's external input (e.g. memory pressure), if any.
    fn external_input(&self) -> Option<f64>;
    /// Whether this strategy moves the global limit (not a class or partition one).
    fn is_global(&self) -> bool;
    /// 64 random bits from the engine's seeded RNG: the only randomness allowed.
    fn random_u64(&mut self) -> u64;
    /// Sets this scope's limit.
    fn set_limit(&mut self, limit: u32);
    /// Asks for a [`Tuner::tick`] at `at`. Every request is honoured (the engine
    /// does not merge them), so strategies remember what they asked for.
    fn wake_at(&mut self, at: Instant);
}

impl Env for ControlContext<'_> {
    fn now(&self) -> Instant {
        ControlContext::now(self)
    }
    fn limit(&self) -> u32 {
        ControlContext::limit(self)
    }
    fn bounds(&self) -> (u32, u32) {
        ControlContext::bounds(self)
    }
    fn in_flight(&self) -> u32 {
        ControlContext::in_flight(self)
    }
    fn queued(&self) -> u64 {
        ControlContext::queued(self)
    }
    fn external_input(&self) -> Option<f64> {
        ControlContext::external_input(self)
    }
    fn is_global(&self) -> bool {
        self.scope() == Scope::Global
    }
    fn random_u64(&mut self) -> u64 {
        self.rng().next_u64()
    }
    fn set_limit(&mut self, limit: u32) {
        ControlContext::set_limit(self, limit)
    }
    fn wake_at(&mut self, at: Instant) {
        ControlContext::wake_at(self, at)
    }
}

/// A uniform draw in `[0, 1)` from the environment's RNG (53 random bits).
pub fn unit_f64(env: &mut dyn Env) -> f64 {
    (env.random_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A concurrency strategy written against [`Env`]. The built-in strategies
/// implement it; wrap your own in [`AsController`] to attach it to an engine.
pub trait Tuner {
    /// A short name for events and reports.
    fn name(&self) -> &str;
    /// The limit to start from, if any.
    fn initial(&self) -> Option<u32> {
        None
    }
    /// One finished attempt.
    fn sample(&mut self, env: &mut dyn Env, sample: &AttemptSample);
    /// One resolved op.
    fn op_resolved(&mut self, _env: &mut dyn Env, _op: &OpSample) {}
    /// A wake-up asked for with [`Env::wake_at`].
    fn tick(&mut self, _env: &mut dyn Env) {}
    /// The limit was set by hand; continue from it.
    fn overridden(&mut self, _limit: u32) {}
}

/// Implements the engine's `Controller` for a type implementing [`Tuner`].
macro_rules! controller_via_tuner {
    ($ty:ty) => {
        impl pool_core::Controller for $ty {
            fn name(&self) -> &str {
                $crate::env::Tuner::name(self)
            }
            fn initial_limit(&self) -> Option<u32> {
                $crate::env::Tuner::initial(self)
            }
            fn on_sample(
                &mut self,
                ctx: &mut pool_core::ControlContext<'_>,
                sample: &pool_core::AttemptSample,
            ) {
                $crate::env::Tuner::sample(self, ctx, sample)
            }
            fn on_op_resolved(
                &mut self,
                ctx: &mut pool_core::ControlContext<'_>,
                op: &pool_core::OpSample,
            ) {
                $crate::env::Tuner::op_resolved(self, ctx, op)
            }
            fn on_tick(&mut self, ctx: &mut pool_core::ControlContext<'_>) {
                $crate::env::Tuner::tick(self, ctx)
            }
            fn on_limit_overridden(&mut self, limit: u32) {
                $crate::env::Tuner::overridden(self, limit)
            }
        }
    };
}
pub(crate) use controller_via_tuner;

/// Adapts any [`Tuner`] into an engine [`Controller`].
#[derive(Debug, Clone)]
pub struct AsController<T>(pub T);

impl<T: Tuner + Send> Controller for AsController<T> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn initial_limit(&self) -> Option<u32> {
        self.0.initial()
    }
    fn on_sample(&mut self, ctx: &mut ControlContext<'_>, sample: &AttemptSample) {
        self.0.sample(ctx, sample)
    }
    fn on_op_resolved(&mut self, ctx: &mut ControlContext<'_>, op: &OpSample) {
        self.0.op_resolved(ctx, op)
    }
    fn on_tick(&mut self, ctx: &mut ControlContext<'_>) {
        self.0.tick(ctx)
    }
    fn on_limit_overridden(&mut self, limit: u32) {
        self.0.overridden(limit)
    }
}

/// A scripted [`Env`] for tests and replays: you set the time, load and limit,
/// call a strategy, and read back what it asked for. Unlike the engine it does
/// not clamp `set_limit`, so a test can check a strategy's own arithmetic and
/// that it respects the bounds by itself.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Current time.
    pub now: Instant,
    /// Limit in force.
    pub limit: u32,
    /// Engine bounds.
    pub bounds: (u32, u32),
    /// In-flight attempts in scope.
    pub in_flight: u32,
    /// Queued ops.
    pub queued: u64,
    /// External input.
    pub external: Option<f64>,
    /// Whether the scope is global.
    pub global: bool,
    /// Every `set_limit` request, unclamped, in order.
    pub set_limits: Vec<u32>,
    /// Every `wake_at` request, in order.
    pub wakes: Vec<Instant>,
    rng: u64,
}

impl TestEnv {
    /// Time zero, limit `limit`, bounds `[1, 10_000]`, global scope, RNG seed 1.
    pub fn new(limit: u32) -> Self {
        TestEnv {
            now: Instant::ZERO,
            limit,
            bounds: (1, 10_000),
            in_flight: 0,
            queued: 0,
            external: None,
            global: true,
            set_limits: Vec::new(),
            wakes: Vec::new(),
            rng: 1,
        }
    }

    /// Reseeds the RNG (a SplitMix64 stream).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = seed;
        self
    }

    /// The earliest wake-up requested at or after `now`, if any.
    pub fn next_wake(&self) -> Option<Instant> {
        self.wakes.iter().copied().filter(|w| *w >= self.now).min()
    }
}

impl Env for TestEnv {
    fn now(&self) -> Instant {
        self.now
    }
    fn limit(&self) -> u32 {
        self.limit
    }
    fn bounds(&self) -> (u32, u32) {
        self.bounds
    }
    fn in_flight(&self) -> u32 {
        self.in_flight
    }
    fn queued(&self) -> u64 {
        self.queued
    }
    fn external_input(&self) -> Option<f64> {
        self.external
    }
    fn is_global(&self) -> bool {
        self.global
    }
    fn random_u64(&mut self) -> u64 {
        // SplitMix64: tiny, good enough for tests, fully deterministic.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn set_limit(&mut self, limit: u32) {
        self.set_limits.push(limit);
        self.limit = limit;
    }
    fn wake_at(&mut self, at: Instant) {
        self.wakes.push(at);
    }
}
