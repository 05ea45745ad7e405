//! [`BurstBudget`]: a virtual copy of the server's request-rate token bucket,
//! so the flagship spends a prefix's burst allowance on purpose instead of
//! finding its end in a wave of 503s.
//!
//! S3 admits `rate` requests per second per prefix plus a bucket of
//! `rate × burst_s` requests (model §4). A client faster than `rate` borrows
//! from that bucket; when it is empty, everything above `rate` is throttled at
//! once. The budget tracks what has been *borrowed*, `∫ (ok rate − rate) dt`
//! (never below 0: the real bucket refills while the client runs slower, and
//! never above the depth: the real bucket cannot hold less than nothing).
//! Once `spend ×` the depth is borrowed it is *settled*: it sets a ceiling on
//! the success rate that starts at `rate` and grows by `growth` per second —
//! a slow probe that spends the rest of the allowance over about a second
//! rather than in one latency. The probe keeps the search for more capacity
//! (a partition split) alive: if the whole depth is borrowed and no 503
//! came, the documented rate is not the ceiling here (a raised or split
//! prefix, or many prefixes), and the budget stands down. A 503 also stands
//! it down (the real bucket is empty: the throttle response measures the
//! capacity from then on). It re-arms once the borrowing is paid back.

use pool_core::Instant;

/// The borrowed share of a request-rate bucket's burst; see the
/// [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstBudget {
    rate: f64,
    depth: f64,
    spend: f64,
    growth: f64,
    borrowed: f64,
    armed: bool,
    settled_at: Option<Instant>,
}

impl BurstBudget {
    /// A budget for a bucket of `rate` requests/s holding `burst_s` seconds of
    /// it, settling once `spend` of that is borrowed and then probing upward
    /// by `growth` per second. `burst_s = 0` turns it off.
    pub fn new(rate: f64, burst_s: f64, spend: f64, growth: f64) -> Self {
        let depth = rate * burst_s;
        BurstBudget {
            rate,
            depth,
            spend,
            growth,
            borrowed: 0.0,
            armed: depth > 0.0,
            settled_at: None,
        }
    }

    /// Accounts one round of `dt` seconds that delivered `ok_rate` successful
    /// ops/s; `throttled`: whether any of its answers was a 503.
    pub fn record(&mut self, ok_rate: f64, dt: f64, throttled: bool, now: Instant) {
        if self.depth <= 0.0 || !(ok_rate.is_finite() && dt.is_finite()) {
            return;
        }
        let borrowed = self.borrowed + (ok_rate - self.rate) * dt;
        if throttled {
            // The real bucket is empty: the throttle response takes over.
            self.armed = false;
            self.borrowed = self.depth;
        } else {
            if borrowed >= self.depth {
                // More than a full burst above the rate and no 503: the rate is
                // not this server's ceiling.
                self.armed = false;
            }
            self.borrowed = borrowed.clamp(0.0, self.depth);
        }
        if !self.armed && self.borrowed <= 0.0 {
            self.armed = true;
        }
        if !self.armed || self.borrowed <= 0.0 {
            self.settled_at = None;
        } else if self.borrowed >= self.spend * self.depth {
            // The probe's clock runs until the borrowing is paid back: rounds
            // slowed below the rate (a timeout's cut) must not restart it,
            // or it never gets past the rate.
            self.settled_at.get_or_insert(now);
        }
    }

    /// The ceiling on successful ops/s as of `now`, while settled: the rate,
    /// grown by `growth` per second since settling.
    pub fn ceiling(&self, now: Instant, backlog: f64) -> Option<f64> {
        let at = self.settled_at?;
        let t = (now - at).as_secs_f64();
        let probe = self.rate * libm::pow(1.0 + self.growth, t);
        // A backlog that the rest of the burst can carry goes faster: at
        // `r`, draining it borrows `backlog × (1 − rate / r)`.
        let left = (self.depth - self.borrowed) * self.spend;
        if backlog <= left {
            return None;
        }
        Some(probe.max(self.rate / (1.0 - left / backlog)))
    }

    /// Requests borrowed above the rate (0 ..= depth).
    pub fn borrowed(&self) -> f64 {
        self.borrowed
    }

    /// Whether the budget still applies (no 503 and no disproof since it was
    /// last paid back).
    pub fn armed(&self) -> bool {
        self.armed
    }
}
