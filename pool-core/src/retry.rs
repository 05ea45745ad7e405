//! Retry policy: how long to wait before a retry and whether the pool can afford one.
//!
//! Three independent brakes, all pure functions of their inputs:
//! * [`backoff`]: full-jitter exponential backoff (AWS Retry Behavior 2.1 bases), so
//!   retries spread out and throttling backs off *longer* than other errors (seed
//!   flaw F20 halved it instead).
//! * [`RetryQuota`]: the AWS standard-mode token bucket, which fails fast when most
//!   recent attempts are failing.
//! * [`RetryBudget`]: an opt-in Finagle-style budget capping retries to a percentage
//!   of requests, so overload never turns into a retry storm (seed flaw F21).
//!
//! Randomness comes in as a `unit` draw from the engine's seeded RNG and time as an
//! [`Instant`] from the driver, so every decision replays exactly.

use crate::outcome::{ErrorClass, NoRetry};
use crate::time::{duration_nanos, Instant};
use core::time::Duration;
use serde::{Deserialize, Serialize};

const NANOS_PER_MILLI: u64 = 1_000_000;

/// Retry settings. Durations are whole milliseconds so they are easy to write in TOML.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per op, first attempt included; 1 disables retries, 0 is invalid.
    /// Default 3: AWS standard retry mode (`RetryConfig::standard()`).
    pub max_attempts: u32,
    /// Backoff base for transient errors. Default 50 ms: AWS Retry Behavior 2.1.
    pub transient_base_ms: u64,
    /// Backoff base for throttling errors. Default 1000 ms: AWS Retry Behavior 2.1.
    pub throttle_base_ms: u64,
    /// Upper bound of the exponential term before jitter. Default 20 s: AWS standard.
    pub max_backoff_ms: u64,
    /// Whether a server Retry-After hint is honoured. Default true: AWS Retry
    /// Behavior 2.1 honours `x-amz-retry-after`.
    pub honour_retry_after: bool,
    /// Retry-After is clamped to `[t_i, t_i + this]`, so a server can stretch a wait
    /// but neither cut it below our backoff nor park an op indefinitely. Default 5 s:
    /// AWS Retry Behavior 2.1.
    pub retry_after_max_extra_ms: u64,
    /// The AWS retry quota; `None` disables it. Default on with [`QuotaConfig::default`],
    /// as in every AWS SDK's standard mode.
    pub quota: Option<QuotaConfig>,
    /// The percentage retry budget; `None` disables it. Default off (opt-in): the
    /// quota already bounds retries and AWS SDKs ship no such budget.
    pub budget: Option<BudgetConfig>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            transient_base_ms: 50,
            throttle_base_ms: 1_000,
            max_backoff_ms: 20_000,
            honour_retry_after: true,
            retry_after_max_extra_ms: 5_000,
            quota: Some(QuotaConfig::default()),
            budget: None,
        }
    }
}

/// The AWS retry quota (a pool-wide token bucket). Defaults: AWS Retry Behavior 2.1.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Tokens when full (and at start). Default 500: AWS standard mode.
    pub capacity: u32,
    /// Cost of retrying a transient (non-throttling) error. Default 14: Retry Behavior 2.1
    /// (2.0 used 10 for timeouts).
    pub transient_cost: u32,
    /// Cost of retrying a throttling error. Default 5: Retry Behavior 2.1.
    pub throttle_cost: u32,
    /// Tokens a first-attempt success adds, capped at capacity. Default 1: AWS standard.
    pub success_increment: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            capacity: 500,
            transient_cost: 14,
            throttle_cost: 5,
            success_increment: 1,
        }
    }
}

/// A Finagle-style retry budget. Defaults: Finagle's `RetryBudget()` (2016 blog post).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Retries may be at most this percentage of requests (0..=1000). Default 20: Finagle.
    pub percent: f64,
    /// Retries per second allowed regardless of traffic, so a quiet pool can still
    /// retry. Default 10: Finagle.
    pub min_per_sec: f64,
    /// How long deposits and withdrawals count, 1_000..=60_000 ms. Default 10 s; the
    /// range is Finagle's.
    pub ttl_ms: u64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            percent: 20.0,
            min_per_sec: 10.0,
            ttl_ms: 10_000,
        }
    }
}

impl RetryConfig {
    /// Checks every field; the error message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(msg.to_owned()) };
        check(self.max_attempts >= 1, "retry.max_attempts must be >= 1")?;
        let max = self.max_backoff_ms;
        let msg = "retry.transient_base_ms must be <= retry.max_backoff_ms";
        check(self.transient_base_ms <= max, msg)?;
        let msg = "retry.throttle_base_ms must be <= retry.max_backoff_ms";
        check(self.throttle_base_ms <= max, msg)?;
        if let Some(q) = &self.quota {
            let msg = "retry.quota.capacity must be >= 1 (set retry.quota to none to disable it)";
            check(q.capacity >= 1, msg)?;
            // A cost above capacity could never be paid: that class would silently never
            // retry, which is better said with max_attempts = 1.
            let msg = "retry.quota.transient_cost must be <= retry.quota.capacity";
            check(q.transient_cost <= q.capacity, msg)?;
            let msg = "retry.quota.throttle_cost must be <= retry.quota.capacity";
            check(q.throttle_cost <= q.capacity, msg)?;
        }
        if let Some(b) = &self.budget {
            // `contains` is false for NaN; the range excludes the infinities.
            let msg = "retry.budget.percent must be a finite number in 0..=1000";
            check((0.0..=1000.0).contains(&b.percent), msg)?;
            let msg = "retry.budget.min_per_sec must be a finite number >= 0";
            check(b.min_per_sec.is_finite() && b.min_per_sec >= 0.0, msg)?;
            let msg = "retry.budget.ttl_ms must be in 1000..=60000";
            check((1_000..=60_000).contains(&b.ttl_ms), msg)?;
        }
        Ok(())
    }
}

/// Full-jitter exponential backoff (AWS): `t_i = unit * min(base * 2^retry_index, max_backoff)`.
///
/// `base` is `throttle_base_ms` for [`ErrorClass::Throttled`] and `transient_base_ms`
/// otherwise (permanent errors are never retried, but get the transient base rather
/// than a panic). `retry_index` is 0 for the first retry. If `honour_retry_after` and
/// `retry_after` is `Some(r)`, the result is `r` clamped to
/// `[t_i, t_i + retry_after_max_extra_ms]`. `unit` should be in `[0, 1)`; NaN and
/// negatives count as 0 and values >= 1 as 1. All arithmetic saturates.
pub fn backoff(
    cfg: &RetryConfig,
    class: ErrorClass,
    retry_index: u32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Duration {
    let base_ms = match class {
        ErrorClass::Throttled => cfg.throttle_base_ms,
        ErrorClass::Transient | ErrorClass::Permanent => cfg.transient_base_ms,
    };
    let base = base_ms.saturating_mul(NANOS_PER_MILLI);
    // 2^i as a multiplier; for i >= 64 it is "infinite", which the cap absorbs.
    let factor = 1u64.checked_shl(retry_index).unwrap_or(u64::MAX);
    let cap = base
        .saturating_mul(factor)
        .min(cfg.max_backoff_ms.saturating_mul(NANOS_PER_MILLI));
    // NaN fails `> 0.0`, so it lands on 0 with the negatives.
    let unit = if unit > 0.0 { unit.min(1.0) } else { 0.0 };
    // f64 -> u64 `as` saturates; multiplying by a fixed cap keeps this monotone in unit.
    let t = ((cap as f64) * unit) as u64;
    let t = t.min(cap);
    let nanos = match retry_after {
        Some(r) if cfg.honour_retry_after => {
            let extra = cfg.retry_after_max_extra_ms.saturating_mul(NANOS_PER_MILLI);
            duration_nanos(r).max(t).min(t.saturating_add(extra))
        }
        _ => t,
    };
    Duration::from_nanos(nanos)
}

/// The AWS standard-mode retry quota: a pool-wide token bucket that retries pay into
/// and successes refill, so a mostly failing service gets few retries (fail fast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryQuota {
    capacity: u32,
    available: u32,
    transient_cost: u32,
    throttle_cost: u32,
    success_increment: u32,
}

impl RetryQuota {
    /// A full bucket, as AWS SDKs start.
    pub fn new(cfg: &QuotaConfig) -> Self {
        RetryQuota {
            capacity: cfg.capacity,
            available: cfg.capacity,
            transient_cost: cfg.transient_cost,
            throttle_cost: cfg.throttle_cost,
            success_increment: cfg.success_increment,
        }
    }

    /// What retrying an attempt that failed with `class` costs.
    fn cost(&self, class: ErrorClass) -> u32 {
        match class {
            ErrorClass::Throttled => self.throttle_cost,
            ErrorClass::Transient | ErrorClass::Permanent => self.transient_cost,
        }
    }

    fn can_afford(&self, class: ErrorClass) -> bool {
        self.available >= self.cost(class)
    }

    /// Try to pay for a retry of an attempt that failed with `class`. Returns the cost
    /// paid, or `None` (no retry) when fewer tokens than the cost remain.
    pub fn try_acquire(&mut self, class: ErrorClass) -> Option<u32> {
        let cost = self.cost(class);
        let left = self.available.checked_sub(cost)?;
        self.available = left;
        Some(cost)
    }

    /// Returns `cost` tokens (a granted retry that never ran), capped at capacity.
    pub fn refund(&mut self, cost: u32) {
        self.available = self.available.saturating_add(cost).min(self.capacity);
    }

    /// An attempt succeeded. `last_retry_cost` is what the retry that led to it paid
    /// (`None` for a first attempt): that is refunded, otherwise `success_increment`
    /// is added (AWS standard). Capped at capacity.
    pub fn on_success(&mut self, last_retry_cost: Option<u32>) {
        self.refund(last_retry_cost.unwrap_or(self.success_increment));
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Tokens when full.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
}

/// Slices the budget window is cut into. Ten, like Finagle's windowed counters: deposits
/// expire between 0.9 and 1.0 ttl after they were made, memory stays fixed, and every
/// operation touches at most ten slots.
const BUDGET_SLOTS: usize = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// Which slice of time (`now / slot_nanos`) these counts belong to.
    epoch: u64,
    deposits: u64,
    withdrawals: u64,
}

/// A Finagle-style percentage retry budget: each request (first attempt) deposits,
/// each retry withdraws one unit, and both expire after the ttl. A retry is allowed
/// while `deposits * percent / 100 + min_per_sec * ttl_secs - withdrawals >= 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryBudget {
    percent: f64,
    /// `min_per_sec * ttl_secs`: the standing allowance for a quiet pool.
    reserve: f64,
    slot_nanos: u64,
    /// The latest slice recorded; time never runs backwards here, so a driver that reports
    /// an older instant cannot resurrect expired counts or clobber newer ones.
    latest_epoch: u64,
    slots: [Slot; BUDGET_SLOTS],
}

impl RetryBudget {
    /// An empty budget (only the `min_per_sec` reserve is available).
    pub fn new(cfg: &BudgetConfig) -> Self {
        let ttl_nanos = cfg.ttl_ms.saturating_mul(NANOS_PER_MILLI);
        RetryBudget {
            percent: cfg.percent,
            reserve: cfg.min_per_sec * (cfg.ttl_ms as f64 / 1_000.0),
            // max(1) so an unvalidated ttl of 0 cannot divide by zero.
            slot_nanos: (ttl_nanos / BUDGET_SLOTS as u64).max(1),
            latest_epoch: 0,
            slots: [Slot::default(); BUDGET_SLOTS],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        (now.as_nanos() / self.slot_nanos).max(self.latest_epoch)
    }

    /// The slot for `now`, cleared first if it still holds an expired slice.
    fn current_slot(&mut self, now: Instant) -> &mut Slot {
        let e = self.epoch(now);
        self.latest_epoch = e;
        let slot = &mut self.slots[(e % BUDGET_SLOTS as u64) as usize];
        if slot.epoch != e {
            *slot = Slot {
                epoch: e,
                ..Slot::default()
            };
        }
        slot
    }

    /// Deposits and withdrawals still inside the window at `now`.
    fn totals(&self, now: Instant) -> (u64, u64) {
        let e = self.epoch(now);
        self.slots
            .iter()
            .filter(|s| e.saturating_sub(s.epoch) < BUDGET_SLOTS as u64)
            .fold((0u64, 0u64), |(d, w), s| {
                (
                    d.saturating_add(s.deposits),
                    w.saturating_add(s.withdrawals),
                )
            })
    }

    /// Records a request (an op's first attempt).
    pub fn deposit(&mut self, now: Instant) {
        let slot = self.current_slot(now);
        slot.deposits = slot.deposits.saturating_add(1);
    }

    /// Whether one more retry fits. `>=` is false for NaN, so an unvalidated NaN
    /// percent refuses rather than allows.
    fn allows(&self, now: Instant) -> bool {
        self.balance(now) >= 1.0
    }

    /// Withdraws one retry if the balance allows it.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        if self.allows(now) {
            let slot = self.current_slot(now);
            slot.withdrawals = slot.withdrawals.saturating_add(1);
            true
        } else {
            false
        }
    }

    /// Gives back the most recent withdrawal still in the window (a granted retry that
    /// never ran). A withdrawal that already expired needs no refund.
    pub fn refund(&mut self, now: Instant) {
        let e = self.epoch(now);
        for back in 0..BUDGET_SLOTS as u64 {
            let Some(ep) = e.checked_sub(back) else { break };
            let slot = &mut self.slots[(ep % BUDGET_SLOTS as u64) as usize];
            if slot.epoch == ep && slot.withdrawals > 0 {
                slot.withdrawals -= 1;
                return;
            }
        }
    }

    /// Retries currently affordable (may be fractional or negative).
    pub fn balance(&self, now: Instant) -> f64 {
        let (deposits, withdrawals) = self.totals(now);
        // Multiply before dividing so integral cases (100 deposits at 20 %) are exact.
        deposits as f64 * self.percent / 100.0 + self.reserve - withdrawals as f64
    }
}

/// Permission to retry, as returned by [`RetryPolicy::decide`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryGrant {
    /// How long to wait before the op re-enters the queue.
    pub delay: Duration,
    /// Quota tokens paid (`None` when the quota is disabled); hand it back to
    /// [`RetryPolicy::on_success`] or [`RetryPolicy::refund`].
    pub quota_cost: Option<u32>,
}

/// The engine's combined retry decision (pure policy; the engine keeps per-op state).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The settings. `max_attempts` and the backoff fields are read on every call; the
    /// quota and budget state is built from them once, in [`RetryPolicy::new`].
    pub config: RetryConfig,
    quota: Option<RetryQuota>,
    budget: Option<RetryBudget>,
}

impl RetryPolicy {
    /// A policy with a full quota and an empty budget.
    pub fn new(config: RetryConfig) -> Self {
        let quota = config.quota.as_ref().map(RetryQuota::new);
        let budget = config.budget.as_ref().map(RetryBudget::new);
        RetryPolicy {
            config,
            quota,
            budget,
        }
    }

    /// An op's first attempt was dispatched: the budget earns its deposit.
    pub fn on_request(&mut self, now: Instant) {
        if let Some(b) = &mut self.budget {
            b.deposit(now);
        }
    }

    /// Decides whether an op whose attempt failed may retry, and after what delay.
    ///
    /// Checks, in order: permanent error, attempts exhausted (`attempts_so_far >=
    /// max_attempts_override.unwrap_or(config.max_attempts)`), not idempotent and may
    /// have reached the server, quota, budget. Quota and budget are charged only when
    /// every check passes, so a refused retry costs nothing (seed flaw F21 counted
    /// retries that never happened). `unit` is the jitter draw in `[0, 1)`.
    #[allow(clippy::too_many_arguments)] // the engine's call site passes each fact once; a struct would only be built to be torn apart
    pub fn decide(
        &mut self,
        now: Instant,
        class: ErrorClass,
        attempts_so_far: u32,
        max_attempts_override: Option<u32>,
        idempotent: bool,
        may_have_reached_server: bool,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Result<RetryGrant, NoRetry> {
        if class == ErrorClass::Permanent {
            return Err(NoRetry::Permanent);
        }
        let max_attempts = max_attempts_override.unwrap_or(self.config.max_attempts);
        if attempts_so_far >= max_attempts {
            return Err(NoRetry::AttemptsExhausted);
        }
        if !idempotent && may_have_reached_server {
            return Err(NoRetry::NotIdempotent);
        }
        if let Some(q) = &self.quota {
            if !q.can_afford(class) {
                return Err(NoRetry::QuotaExhausted);
            }
        }
        if let Some(b) = &self.budget {
            if !b.allows(now) {
                return Err(NoRetry::BudgetExhausted);
            }
        }
        // Both checks passed, so both charges succeed.
        let quota_cost = self.quota.as_mut().and_then(|q| q.try_acquire(class));
        if let Some(b) = &mut self.budget {
            b.try_withdraw(now);
        }
        let retry_index = attempts_so_far.saturating_sub(1);
        let delay = backoff(&self.config, class, retry_index, retry_after, unit);
        Ok(RetryGrant { delay, quota_cost })
    }

    /// A granted retry was not used (the op was cancelled or hit its deadline before it
    /// ran): its quota cost and budget withdrawal are given back.
    pub fn refund(&mut self, now: Instant, grant_cost: Option<u32>) {
        if let (Some(q), Some(cost)) = (&mut self.quota, grant_cost) {
            q.refund(cost);
        }
        if let Some(b) = &mut self.budget {
            b.refund(now);
        }
    }

    /// An attempt succeeded; see [`RetryQuota::on_success`].
    pub fn on_success(&mut self, last_retry_cost: Option<u32>) {
        if let Some(q) = &mut self.quota {
            q.on_success(last_retry_cost);
        }
    }

    /// Quota tokens left, `None` when the quota is disabled (for metrics).
    pub fn quota_available(&self) -> Option<u32> {
        self.quota.as_ref().map(RetryQuota::available)
    }

    /// Budget balance at `now`, `None` when the budget is disabled (for metrics).
    pub fn budget_balance(&self, now: Instant) -> Option<f64> {
        self.budget.as_ref().map(|b| b.balance(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ErrorClass::{Permanent, Throttled, Transient};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_full_jitter_by_class() {
        let c = RetryConfig::default();
        let b = |class, i, unit| backoff(&c, class, i, None, unit);
        assert_eq!(b(Transient, 0, 0.5), ms(25));
        assert_eq!(b(Transient, 3, 0.5), ms(200));
        assert_eq!(b(Permanent, 0, 0.5), ms(25));
        assert_eq!(b(Throttled, 0, 0.5), ms(500));
        for i in [40, 63, 64, u32::MAX] {
            assert_eq!(b(Throttled, i, 0.5), ms(10_000));
            assert_eq!(b(Transient, i, 1.0), ms(20_000));
        }
        assert_eq!(b(Throttled, 9, 0.0), Duration::ZERO);
        let near_one = b(Throttled, 40, 1.0 - f64::EPSILON);
        assert!(near_one < ms(20_000) && near_one > ms(19_999));
        for bad in [f64::NAN, -1.0, f64::NEG_INFINITY] {
            assert_eq!(b(Transient, 1, bad), Duration::ZERO);
        }
        assert_eq!(b(Transient, 0, f64::INFINITY), ms(50));
    }

    #[test]
    fn retry_after_is_clamped_to_t_i_plus_5s() {
        let mut c = RetryConfig::default();
        let ra = |c: &RetryConfig, r| backoff(c, Throttled, 0, Some(r), 0.5);
        assert_eq!(ra(&c, ms(3_000)), ms(3_000));
        assert_eq!(ra(&c, ms(100_000)), ms(5_500));
        assert_eq!(ra(&c, Duration::ZERO), ms(500));
        assert_eq!(ra(&c, Duration::MAX), ms(5_500));
        c.honour_retry_after = false;
        assert_eq!(ra(&c, ms(3_000)), ms(500));
    }

    #[test]
    fn quota_costs_and_refunds() {
        let mut q = RetryQuota::new(&QuotaConfig::default());
        let granted = (0..100).map_while(|_| q.try_acquire(Transient)).count();
        assert_eq!((granted, q.available()), (35, 10));
        assert_eq!(q.try_acquire(Transient), None);
        assert_eq!(q.try_acquire(Throttled), Some(5));
        q.on_success(Some(5));
        assert_eq!(q.available(), 10);
        q.on_success(None);
        assert_eq!(q.available(), 11);
        q.refund(u32::MAX);
        q.on_success(None);
        assert_eq!((q.available(), q.capacity()), (500, 500));
    }

    fn budget(min_per_sec: f64) -> BudgetConfig {
        let d = BudgetConfig::default();
        BudgetConfig { min_per_sec, ..d }
    }

    #[test]
    fn budget_is_a_percentage_of_recent_requests() {
        let mut b = RetryBudget::new(&budget(0.0));
        let t0 = Instant::from_secs(100);
        assert!(!b.try_withdraw(t0));
        (0..100).for_each(|_| b.deposit(t0));
        assert_eq!((0..100).take_while(|_| b.try_withdraw(t0)).count(), 20);
        b.refund(t0);
        assert!(b.try_withdraw(t0) && !b.try_withdraw(t0));
        let t5 = t0 + ms(5_000);
        (0..100).for_each(|_| b.deposit(t5));
        assert_eq!(b.balance(t5), 20.0);
        // t0's deposits and withdrawals expire by t0 + ttl; t5's by t5 + ttl.
        assert_eq!(b.balance(t0 + ms(9_000)), 20.0);
        assert_eq!(b.balance(t0 + ms(10_000)), 20.0);
        assert!(b.try_withdraw(t0 + ms(10_000)));
        // t5's deposits are gone but the withdrawal at t0 + 10 s still counts.
        assert_eq!(b.balance(t5 + ms(10_000)), -1.0);
        assert_eq!(b.balance(t0 + ms(20_000)), 0.0);
        // An instant from the past counts as the latest one recorded (t0 + 10 s).
        assert_eq!(b.balance(t0), 19.0);
        // The reserve: 10/s over 10 s.
        assert_eq!(RetryBudget::new(&budget(10.0)).balance(t0), 100.0);
        // Unvalidated configs neither panic nor allow.
        let mut b = RetryBudget::new(&BudgetConfig {
            percent: f64::NAN,
            ttl_ms: 0,
            ..budget(0.0)
        });
        b.deposit(Instant::MAX);
        assert!(!b.try_withdraw(Instant::MAX));
    }

    fn ask(
        p: &mut RetryPolicy,
        c: ErrorClass,
        n: u32,
        o: Option<u32>,
        idem: bool,
        sent: bool,
    ) -> Result<RetryGrant, NoRetry> {
        let (now, ra) = (Instant::from_secs(1), Some(ms(2_000)));
        p.decide(now, c, n, o, idem, sent, ra, 0.5)
    }

    #[test]
    fn decide_checks_in_order_and_refusals_are_free() {
        let now = Instant::from_secs(1);
        let mut p = RetryPolicy::new(RetryConfig::default());
        let permanent = Err(NoRetry::Permanent);
        assert_eq!(ask(&mut p, Permanent, 9, None, false, true), permanent);
        let exhausted = Err(NoRetry::AttemptsExhausted);
        assert_eq!(ask(&mut p, Throttled, 3, None, false, true), exhausted);
        assert_eq!(ask(&mut p, Throttled, 1, Some(1), false, true), exhausted);
        let not_idem = Err(NoRetry::NotIdempotent);
        assert_eq!(ask(&mut p, Throttled, 3, Some(4), false, true), not_idem);
        assert_eq!(p.quota_available(), Some(500));
        // Second retry (index 1): t_1 = 0.5 * 2 s = 1 s; Retry-After 2 s is within [1, 6] s.
        let g = ask(&mut p, Throttled, 2, None, false, false).unwrap();
        assert_eq!((g.delay, g.quota_cost), (ms(2_000), Some(5)));
        assert_eq!(p.quota_available(), Some(495));
        p.refund(now, g.quota_cost);
        assert_eq!(p.quota_available(), Some(500));

        // Quota is checked before budget; a budget refusal leaves the quota untouched.
        let mut cfg = RetryConfig::default();
        cfg.quota.as_mut().unwrap().capacity = 14;
        cfg.budget = Some(budget(0.0));
        let mut p = RetryPolicy::new(cfg);
        let no_budget = Err(NoRetry::BudgetExhausted);
        assert_eq!(ask(&mut p, Transient, 1, None, true, true), no_budget);
        assert_eq!(p.quota_available(), Some(14));
        (0..5).for_each(|_| p.on_request(now));
        let g = ask(&mut p, Transient, 1, None, true, true).unwrap();
        assert_eq!(g.quota_cost, Some(14));
        assert_eq!(p.budget_balance(now), Some(0.0));
        (0..5).for_each(|_| p.on_request(now));
        let no_quota = Err(NoRetry::QuotaExhausted);
        assert_eq!(ask(&mut p, Transient, 1, None, true, true), no_quota);
        assert_eq!(p.budget_balance(now), Some(1.0));
        p.refund(now, g.quota_cost);
        let after_refund = (p.quota_available(), p.budget_balance(now));
        assert_eq!(after_refund, (Some(14), Some(2.0)));

        let mut p = RetryPolicy::new(RetryConfig {
            quota: None,
            ..RetryConfig::default()
        });
        let g = ask(&mut p, Transient, 1, None, true, true).unwrap();
        assert_eq!((g.quota_cost, p.quota_available()), (None, None));
    }

    #[test]
    fn config_serde_and_validation() {
        let d = RetryConfig::default();
        assert_eq!(d.validate(), Ok(()));
        let parse = |s: &str| serde_json::from_str::<RetryConfig>(s);
        assert_eq!(parse("{}").unwrap(), d);
        let mut on = d.clone();
        on.budget = Some(BudgetConfig::default());
        assert_eq!(parse(&serde_json::to_string(&on).unwrap()).unwrap(), on);
        assert!(parse(r#"{"max_attemps":2}"#).is_err());
        assert!(parse(r#"{"quota":{"cost":2}}"#).is_err());
        assert_eq!(parse(r#"{"quota":null}"#).unwrap().quota, None);

        fn r(f: impl FnOnce(&mut RetryConfig)) -> RetryConfig {
            let mut c = RetryConfig {
                budget: Some(BudgetConfig::default()),
                ..RetryConfig::default()
            };
            f(&mut c);
            c
        }
        let q = |f: fn(&mut QuotaConfig)| r(|c| c.quota.iter_mut().for_each(f));
        let b = |f: fn(&mut BudgetConfig)| r(|c| c.budget.iter_mut().for_each(f));
        let cases = [
            (r(|c| c.max_attempts = 0), "retry.max_attempts"),
            (
                r(|c| c.transient_base_ms = 20_001),
                "retry.transient_base_ms",
            ),
            (r(|c| c.throttle_base_ms = 30_000), "retry.throttle_base_ms"),
            (q(|q| q.capacity = 0), "retry.quota.capacity"),
            (q(|q| q.transient_cost = 501), "retry.quota.transient_cost"),
            (q(|q| q.throttle_cost = 501), "retry.quota.throttle_cost"),
            (b(|b| b.percent = f64::NAN), "retry.budget.percent"),
            (b(|b| b.percent = -1.0), "retry.budget.percent"),
            (b(|b| b.percent = f64::INFINITY), "retry.budget.percent"),
            (b(|b| b.min_per_sec = f64::NAN), "retry.budget.min_per_sec"),
            (b(|b| b.min_per_sec = -f64::MAX), "retry.budget.min_per_sec"),
            (b(|b| b.min_per_sec = -0.5), "retry.budget.min_per_sec"),
            (b(|b| b.ttl_ms = 999), "retry.budget.ttl_ms"),
            (b(|b| b.ttl_ms = 60_001), "retry.budget.ttl_ms"),
        ];
        assert_eq!(r(|_| ()).validate(), Ok(()));
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err();
            assert!(err.starts_with(field), "{err} should name {field}");
        }
    }

    fn class() -> impl Strategy<Value = ErrorClass> {
        prop_oneof![Just(Throttled), Just(Transient), Just(Permanent)]
    }

    proptest! {
        #[test]
        fn backoff_bounded_and_monotone_in_unit(
            base in 0u64..100_000, max in 0u64..100_000, extra in 0u64..100_000,
            c in class(), i in any::<u32>(), r in proptest::option::of(any::<u64>()),
            a in 0.0f64..1.0, b in 0.0f64..1.0,
        ) {
            let cfg = RetryConfig {
                transient_base_ms: base, throttle_base_ms: base, max_backoff_ms: max,
                retry_after_max_extra_ms: extra, ..RetryConfig::default()
            };
            let r = r.map(Duration::from_nanos);
            let (lo, hi) = (a.min(b), a.max(b));
            let (dlo, dhi) = (backoff(&cfg, c, i, r, lo), backoff(&cfg, c, i, r, hi));
            prop_assert!(dlo <= dhi);
            let slack = if r.is_some() { ms(extra) } else { Duration::ZERO };
            prop_assert!(dhi <= ms(max) + slack);
        }

        #[test]
        fn quota_stays_within_capacity(
            cap in 0u32..1_000, tc in 0u32..50, hc in 0u32..50, inc in 0u32..5,
            ops in proptest::collection::vec((0u8..3, class(), any::<Option<u32>>()), 0..300),
        ) {
            let cfg = QuotaConfig {
                capacity: cap, transient_cost: tc, throttle_cost: hc, success_increment: inc,
            };
            let mut q = RetryQuota::new(&cfg);
            for (op, c, cost) in ops {
                let before = q.available();
                match op {
                    0 => match q.try_acquire(c) {
                        Some(paid) => prop_assert_eq!(q.available(), before - paid),
                        None => prop_assert_eq!(q.available(), before),
                    },
                    1 => q.on_success(cost),
                    _ => q.refund(cost.unwrap_or(0)),
                }
                prop_assert!(q.available() <= q.capacity());
            }
        }
    }
}
