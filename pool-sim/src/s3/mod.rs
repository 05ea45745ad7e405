//! The modeled S3: what happens to one request (time to first byte, transfer
//! rate, faults), and the server-side request-rate buckets shared by all clients.
//! Parameters and their sources: `docs/sim-model.md`.

pub(crate) mod nic;

use crate::rng::{lognormal, pareto, unit};
use crate::scenario::{Empirical, RateProfile, S3Config};
use pool_core::OpClass;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

const MIB: f64 = 1_048_576.0;

/// What the server will do with a request, decided when it arrives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Answers normally.
    Ok,
    /// 503 SlowDown: the prefix's bucket was empty.
    SlowDown,
    /// 500 InternalError.
    ServerError,
    /// The connection resets; `sent` says whether the request got out first.
    Reset { sent: bool },
    /// Never answers.
    Stall,
}

/// Per-request draws, precomputed from the scenario's `[s3]` table.
pub(crate) struct Model {
    /// Median TTFB per class number (ns); unknown classes use GET's.
    medians: [f64; 8],
    /// Measured TTFB distributions replacing the model, per class number.
    profiles: [Option<Arc<Empirical>>; 8],
    sigma: f64,
    tail_prob: f64,
    tail_scale: f64,
    tail_alpha: f64,
    tail_cap: f64,
    stall: f64,
    server_error: f64,
    reset: f64,
    reset_unsent: f64,
    profile: RateProfile,
    ab_median: f64,
    ab_sigma: f64,
    ab_min: f64,
    ab_max: f64,
    aws: f64,
    /// Server-side copy rate (bytes/ns).
    pub copy_rate: f64,
    /// `(start, end, factor)` in ns.
    brownouts: Vec<(u64, u64, f64)>,
}

pub(crate) fn secs_to_ns(s: f64) -> u64 {
    (s * 1e9).round().clamp(0.0, 9.0e18) as u64
}

impl Model {
    pub fn new(c: &S3Config) -> Model {
        let m = &c.ttfb.median_ms;
        let ms = 1e6;
        Model {
            medians: [
                m.get * ms,
                m.head * ms,
                m.get * ms,
                m.put * ms,
                m.list * ms,
                m.delete * ms,
                m.copy * ms,
                m.multipart_part * ms,
            ],
            profiles: core::array::from_fn(|i| {
                let l = c.latency_profile.as_ref().and(c.loaded_profiles.as_ref())?;
                let class = OpClass(i as u16);
                l.classes
                    .iter()
                    .find(|(k, _)| *k == class)
                    .map(|(_, e)| Arc::clone(e))
            }),
            sigma: c.ttfb.sigma,
            tail_prob: c.ttfb.tail_prob,
            tail_scale: c.ttfb.tail_scale_ms * ms,
            tail_alpha: c.ttfb.tail_alpha,
            tail_cap: c.ttfb.tail_cap_ms * ms,
            stall: c.faults.stall_prob,
            server_error: c.faults.server_error_prob,
            reset: c.faults.reset_prob,
            reset_unsent: c.faults.reset_unsent_share,
            profile: c.profile,
            ab_median: c.anyblob_median_mib_s * MIB / 1e9,
            ab_sigma: c.anyblob_sigma,
            ab_min: c.anyblob_min_mib_s * MIB / 1e9,
            ab_max: c.anyblob_max_mib_s * MIB / 1e9,
            aws: c.aws_mb_s * 1e6 / 1e9,
            copy_rate: c.copy_mib_s * MIB / 1e9,
            brownouts: c
                .brownouts
                .iter()
                .map(|b| {
                    let end = b.end_s.map_or(u64::MAX, secs_to_ns);
                    (secs_to_ns(b.start_s), end, b.factor)
                })
                .collect(),
        }
    }

    /// The fate of a request arriving now (one uniform draw).
    #[inline]
    pub fn fate(&self, rng: &mut ChaCha8Rng) -> Fate {
        if self.stall + self.server_error + self.reset == 0.0 {
            return Fate::Ok;
        }
        let u = unit(rng);
        if u < self.stall {
            Fate::Stall
        } else if u < self.stall + self.server_error {
            Fate::ServerError
        } else if u < self.stall + self.server_error + self.reset {
            // Reuse the draw: where u falls inside the reset band says sent or not.
            let share = (u - self.stall - self.server_error) / self.reset;
            Fate::Reset {
                sent: share >= self.reset_unsent,
            }
        } else {
            Fate::Ok
        }
    }

    /// Time to first byte (ns) of a request of `class` arriving at `now`.
    #[inline]
    pub fn ttfb(&self, rng: &mut ChaCha8Rng, class: OpClass, now: u64) -> u64 {
        let i = usize::from(class.0);
        let i = if i < self.medians.len() { i } else { 2 };
        let mut t = if let Some(p) = &self.profiles[i] {
            // A measured distribution has its own tail.
            p.sample(rng)
        } else if self.tail_prob > 0.0 && unit(rng) < self.tail_prob {
            pareto(rng, self.tail_scale, self.tail_alpha).min(self.tail_cap)
        } else {
            lognormal(rng, self.medians[i], self.sigma)
        };
        for &(s, e, k) in &self.brownouts {
            if now >= s && now < e {
                t *= k;
            }
        }
        t.clamp(1.0, 3.6e12) as u64
    }

    /// The per-connection transfer cap of one request (bytes/ns).
    #[inline]
    pub fn conn_rate(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self.profile {
            RateProfile::Aws => self.aws,
            RateProfile::Anyblob => {
                lognormal(rng, self.ab_median, self.ab_sigma).clamp(self.ab_min, self.ab_max)
            }
        }
    }
}

/// One prefix's request-rate bucket for reads or for writes.
struct Bucket {
    base: f64,
    step: f64,
    scale: f64,
    tokens: f64,
    at: u64,
    next_step: usize,
    window: u64,
    window_count: u64,
    loaded_s: u64,
}

impl Bucket {
    fn rate(&self) -> f64 {
        self.base * self.step * self.scale
    }
    fn refill(&mut self, now: u64, burst_s: f64) {
        if now > self.at {
            let dt = (now - self.at) as f64 / 1e9;
            self.tokens = (self.tokens + dt * self.rate()).min(self.rate() * burst_s);
            self.at = now;
        }
    }
}

/// The server side shared by every client: a read and a write bucket per prefix.
pub(crate) struct Server {
    names: Vec<String>,
    buckets: Vec<[Bucket; 2]>,
    read_rate: f64,
    write_rate: f64,
    burst_s: f64,
    /// `(at, factor, prefix filter)`, by time.
    steps: Vec<(u64, f64, Option<String>)>,
    scale_up: Option<crate::scenario::ScaleUp>,
    /// Partition splits that happened.
    pub splits: u64,
}

impl Server {
    pub fn new(c: &S3Config) -> Server {
        let mut steps: Vec<_> = c
            .capacity_steps
            .iter()
            .map(|s| (secs_to_ns(s.at_s), s.factor, s.prefix.clone()))
            .collect();
        steps.sort_by_key(|s| s.0);
        Server {
            names: Vec::new(),
            buckets: Vec::new(),
            read_rate: c.read_rate,
            write_rate: c.write_rate,
            burst_s: c.burst_s,
            steps,
            scale_up: c.scale_up.clone(),
            splits: 0,
        }
    }

    /// The index of a prefix, created (with full buckets) on first use.
    pub fn prefix(&mut self, name: &str) -> u32 {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i as u32;
        }
        let b = |base: f64| Bucket {
            base,
            step: 1.0,
            scale: 1.0,
            tokens: base * self.burst_s,
            at: 0,
            next_step: 0,
            window: 0,
            window_count: 0,
            loaded_s: 0,
        };
        self.buckets.push([b(self.read_rate), b(self.write_rate)]);
        self.names.push(name.to_string());
        (self.names.len() - 1) as u32
    }

    /// The prefix names, by index.
    pub fn prefix_names(&self) -> &[String] {
        &self.names
    }

    /// A request of `class` reaches the server: spends a token, or is throttled.
    pub fn admit(&mut self, now: u64, prefix: u32, class: OpClass) -> bool {
        let burst_s = self.burst_s;
        let name = &self.names[prefix as usize];
        let b = &mut self.buckets[prefix as usize][usize::from(class.is_s3_write())];
        // Capacity steps that took effect since the last touch, in order.
        while let Some((at, k, filter)) = self.steps.get(b.next_step) {
            if *at > now {
                break;
            }
            b.refill(*at, burst_s);
            if filter.as_deref().is_none_or(|p| name.starts_with(p)) {
                b.step *= k;
                b.tokens = b.tokens.min(b.rate() * burst_s);
            }
            b.next_step += 1;
        }
        if let Some(s) = &self.scale_up {
            let w = now / 1_000_000_000;
            if w != b.window {
                let loaded = b.window_count as f64 >= s.threshold * b.rate();
                b.loaded_s = if loaded && w == b.window + 1 {
                    b.loaded_s + 1
                } else {
                    0
                };
                if b.loaded_s as f64 >= s.after_s && b.scale < s.max_factor {
                    b.refill(now, burst_s);
                    b.scale = (b.scale * s.factor).min(s.max_factor);
                    b.loaded_s = 0;
                    self.splits += 1;
                }
                b.window = w;
                b.window_count = 0;
            }
            b.window_count += 1;
        }
        b.refill(now, burst_s);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    #[test]
    fn bucket_admits_burst_then_rate() {
        let cfg = S3Config {
            read_rate: 100.0,
            burst_s: 1.0,
            ..S3Config::default()
        };
        let mut s = Server::new(&cfg);
        let p = s.prefix("a/");
        let ok = (0..150).filter(|_| s.admit(0, p, OpClass::GET)).count();
        assert_eq!(ok, 100);
        // 0.5 s later: 50 more tokens.
        let ok = (0..100)
            .filter(|_| s.admit(500_000_000, p, OpClass::GET))
            .count();
        assert_eq!(ok, 50);
        // Writes have their own bucket.
        assert!(s.admit(500_000_000, p, OpClass::PUT));
    }

    #[test]
    fn capacity_step_applies_at_its_time() {
        let cfg = S3Config {
            read_rate: 100.0,
            capacity_steps: vec![crate::scenario::CapacityStep {
                at_s: 1.0,
                factor: 0.1,
                prefix: Some("hot".into()),
            }],
            ..S3Config::default()
        };
        let mut s = Server::new(&cfg);
        let hot = s.prefix("hot/");
        let cold = s.prefix("cold/");
        let t = 2_000_000_000;
        assert_eq!(
            (0..200).filter(|_| s.admit(t, hot, OpClass::GET)).count(),
            10
        );
        assert_eq!(
            (0..200).filter(|_| s.admit(t, cold, OpClass::GET)).count(),
            100
        );
    }

    #[test]
    fn scale_up_after_sustained_load() {
        let cfg = S3Config {
            read_rate: 10.0,
            scale_up: Some(crate::scenario::ScaleUp {
                after_s: 3.0,
                ..Default::default()
            }),
            ..S3Config::default()
        };
        let mut s = Server::new(&cfg);
        let p = s.prefix("p");
        for sec in 0..6u64 {
            for i in 0..20u64 {
                s.admit(sec * 1_000_000_000 + i * 1_000_000, p, OpClass::GET);
            }
        }
        assert_eq!(s.splits, 1);
    }

    #[test]
    fn ttfb_median_and_brownout() {
        let mut cfg = S3Config::default();
        cfg.ttfb.tail_prob = 0.0;
        cfg.brownouts = vec![crate::scenario::Brownout {
            start_s: 10.0,
            end_s: None,
            factor: 4.0,
        }];
        let m = Model::new(&cfg);
        let mut r = stream(3, Purpose::S3, 0, 0);
        let med = |r: &mut ChaCha8Rng, now| {
            let mut v: Vec<u64> = (0..4001).map(|_| m.ttfb(r, OpClass::GET, now)).collect();
            v.sort_unstable();
            v[2000] as f64 / 1e6
        };
        let a = med(&mut r, 0);
        let b = med(&mut r, 20_000_000_000);
        assert!((a - 27.0).abs() < 2.0, "{a}");
        assert!((b - 108.0).abs() < 8.0, "{b}");
    }
}
