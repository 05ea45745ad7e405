//! Windowed extremum filters (BBR's `minmax`, kept simple): a max over the
//! last `n` rounds and a min over the last `d` of time.

use core::time::Duration;
use pool_core::Instant;
use std::collections::VecDeque;

/// The maximum of values seen in the last `window` rounds.
#[derive(Debug, Clone)]
pub struct MaxByRound {
    window: u64,
    // Monotone deque: values strictly decreasing from front to back.
    q: VecDeque<(u64, f64)>,
}

impl MaxByRound {
    /// A filter over `window` rounds (at least 1).
    pub fn new(window: u32) -> Self {
        MaxByRound {
            window: u64::from(window.max(1)),
            q: VecDeque::new(),
        }
    }
    /// Adds `value` measured in round `round` (rounds never go back).
    pub fn push(&mut self, round: u64, value: f64) {
        while self.q.back().is_some_and(|&(_, v)| v <= value) {
            self.q.pop_back();
        }
        self.q.push_back((round, value));
        self.expire(round);
    }
    /// Drops values older than the window, as of `round`.
    pub fn expire(&mut self, round: u64) {
        while self
            .q
            .front()
            .is_some_and(|&(r, _)| r + self.window <= round)
        {
            self.q.pop_front();
        }
    }
    /// The current maximum.
    pub fn get(&self) -> Option<f64> {
        self.q.front().map(|&(_, v)| v)
    }
    /// Forgets everything but `value` (e.g. after a throttle showed the old
    /// maximum is no longer deliverable).
    pub fn reset_to(&mut self, round: u64, value: f64) {
        self.q.clear();
        self.q.push_back((round, value));
    }
}

/// The minimum of values seen in the last `window` of time.
#[derive(Debug, Clone)]
pub struct MinByTime {
    window: Duration,
    // Monotone deque: values strictly increasing from front to back.
    q: VecDeque<(Instant, f64)>,
}

impl MinByTime {
    /// A filter over `window`.
    pub fn new(window: Duration) -> Self {
        MinByTime {
            window,
            q: VecDeque::new(),
        }
    }
    /// Adds `value` measured at `at` (time never goes back).
    pub fn push(&mut self, at: Instant, value: f64) {
        while self.q.back().is_some_and(|&(_, v)| v >= value) {
            self.q.pop_back();
        }
        self.q.push_back((at, value));
        self.expire(at);
    }
    /// Drops values older than the window, as of `now`.
    pub fn expire(&mut self, now: Instant) {
        // Keep the newest value even if it is old: an estimate is better than none.
        while self.q.len() > 1 && self.q.front().is_some_and(|&(t, _)| now - t > self.window) {
            self.q.pop_front();
        }
    }
    /// The current minimum.
    pub fn get(&self) -> Option<f64> {
        self.q.front().map(|&(_, v)| v)
    }
}
