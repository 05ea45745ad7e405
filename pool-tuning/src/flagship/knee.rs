//! [`KneeTable`]: the delivery rate measured at each concurrency level, and the
//! knee read from it — an online version of the study's oracle (the smallest
//! fixed limit within a tolerance of the best goodput).

use core::time::Duration;
use pool_core::Instant;

/// Levels per octave of concurrency (a level is ~19 % wider than the last).
const PER_OCTAVE: f64 = 4.0;
/// A knee needs a measured level at least this much higher that did not
/// deliver more; otherwise the rate may still be growing with concurrency.
/// Below the flagship's 1.5× cruise gain, so sitting at the cap (rounded
/// down) keeps proving the knee; also startup's short step near a knee.
pub const KNEE_SPAN: f64 = 1.4;
/// Repeat measurements at a level are averaged over up to this many rounds.
const MEAN_OVER: u32 = 4;
/// A new measurement this far (ratio) from the stored one at the same level,
/// or below the best at a level at or above the knee, means the environment
/// changed: every older measurement is dropped.
const REGIME_CHANGE: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    level: f64,
    rate: f64,
    at: Instant,
    n: u32,
}

/// Delivery rate by concurrency level (quarter-octave buckets), each trusted
/// for `window`. See [`KneeTable::knee`].
#[derive(Debug, Clone)]
pub struct KneeTable {
    window: Duration,
    tolerance: f64,
    // Indexed by bucket; a Vec, not a map, so iteration order is fixed.
    slots: Vec<Option<Entry>>,
}

impl KneeTable {
    /// An empty table; `tolerance` as in [`KneeTable::knee`].
    pub fn new(window: Duration, tolerance: f64) -> Self {
        KneeTable {
            window,
            tolerance,
            slots: Vec::new(),
        }
    }

    fn bucket(level: f64) -> usize {
        libm::round(libm::log2(level.max(1.0)) * PER_OCTAVE) as usize
    }

    fn fresh(&self, now: Instant) -> impl Iterator<Item = &Entry> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(move |e| now - e.at <= self.window)
    }

    /// Records a saturated round: mean in-flight `level`, delivery `rate`.
    /// Repeat measurements at a level are averaged (over up to 4 rounds),
    /// unless one differs by more than 1.5× (then the table restarts from it;
    /// so it does when a level at or above the knee delivers 1.5× less than
    /// the best).
    /// A measurement at or above the knee's level that did not beat the best
    /// by more than the tolerance confirms the plateau and refreshes the
    /// knee's measurement, so the knee does not age out while the limit sits
    /// above it.
    pub fn record(&mut self, level: f64, rate: f64, now: Instant) {
        if !(level.is_finite() && rate.is_finite() && rate > 0.0) {
            return;
        }
        let b = Self::bucket(level);
        if self.slots.len() <= b {
            self.slots.resize(b + 1, None);
        }
        let mut e = Entry {
            level,
            rate,
            at: now,
            n: 1,
        };
        if let Some(old) = self.slots[b].filter(|o| now - o.at <= self.window) {
            let ratio = rate.max(old.rate) / rate.min(old.rate);
            if ratio > REGIME_CHANGE {
                self.slots.iter_mut().for_each(|s| *s = None);
            } else {
                // A running mean, then an exponential one over `MEAN_OVER`.
                e.n = (old.n + 1).min(MEAN_OVER);
                let w = 1.0 / f64::from(e.n);
                e.level = old.level + (level - old.level) * w;
                e.rate = old.rate + (rate - old.rate) * w;
            }
        }
        let old_best = self.best(now);
        // A level at or above the knee that now delivers less than the best
        // by more than the regime-change ratio: the server slowed down (a
        // lasting latency shift), so every measurement taken before is stale.
        // Kept, the old plateau would read as a knee and every slower round
        // at the cap would "confirm" it and keep it fresh forever.
        if let (Some(ob), Some(k)) = (old_best, self.knee(now)) {
            if level >= k && rate * REGIME_CHANGE < ob {
                self.slots.iter_mut().for_each(|s| *s = None);
                e = Entry {
                    level,
                    rate,
                    at: now,
                    n: 1,
                };
            }
        }
        self.slots[b] = Some(e);
        // A level at or above the knee that bought no more than the plateau
        // confirms the knee: refresh it, so it does not age out while the
        // limit sits above it.
        let confirms = old_best.is_none_or(|ob| e.rate <= ob * (1.0 + self.tolerance));
        if confirms {
            if let Some(k) = self.knee_bucket(now).filter(|&k| b >= k) {
                if let Some(s) = self.slots[k].as_mut() {
                    s.at = now;
                }
            }
        }
    }

    /// The best fresh rate.
    pub fn best(&self, now: Instant) -> Option<f64> {
        self.fresh(now).map(|e| e.rate).reduce(f64::max)
    }

    fn knee_bucket(&self, now: Instant) -> Option<usize> {
        let best = self.best(now)?;
        self.slots.iter().position(|s| {
            s.is_some_and(|e| now - e.at <= self.window && e.rate >= best * (1.0 - self.tolerance))
        })
    }

    /// The knee: the smallest fresh level whose rate is within the tolerance
    /// of the best fresh rate — provided a fresh level at least 1.4× higher
    /// was measured (more concurrency was tried and bought nothing). `None`
    /// while delivery still grows with concurrency.
    pub fn knee(&self, now: Instant) -> Option<f64> {
        let k = self.slots[self.knee_bucket(now)?]?;
        let top = self.fresh(now).map(|e| e.level).reduce(f64::max)?;
        (top >= k.level * KNEE_SPAN).then_some(k.level)
    }

    /// Forgets every measurement.
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}
