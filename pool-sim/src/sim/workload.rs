//! Workloads compiled for the run: prefixes interned, times in ns, weights summed.

use crate::rng::{exponential, log_uniform, unit};
use crate::s3::{secs_to_ns, Server};
use crate::scenario::{Scenario, WorkloadKind};
use pool_core::OpClass;
use rand_chacha::ChaCha8Rng;

/// The class number given to a multipart upload's parent op (the first custom
/// class): its latency is the whole upload's, so it must not mix with PUT's.
pub const MULTIPART_UPLOAD: OpClass = OpClass(OpClass::FIRST_CUSTOM);

pub(crate) struct MixSpec {
    pub class: OpClass,
    pub size: u64,
    pub size_max: Option<u64>,
    pub priority: i32,
    pub prefixes: Vec<u32>,
    pub part_size: Option<u64>,
    pub idempotent: bool,
    pub timeout_ms: Option<u64>,
    pub max_attempts: Option<u32>,
}

pub(crate) struct WlSpec {
    pub kind: WorkloadKind,
    pub ops: u64,
    pub at: u64,
    pub every: Option<u64>,
    pub rate: f64,
    pub to_rate: f64,
    pub start: u64,
    pub end: u64,
    pub users: u64,
    pub cancel_prob: f64,
    pub cancel_after_ns: f64,
    pub mix: Vec<MixSpec>,
    cum: Vec<f64>,
}

/// What one arrival submits.
pub(crate) struct OpDraw {
    pub mix: usize,
    pub size: u64,
    pub prefix: u32,
    /// Delay after which the caller cancels it, if it does.
    pub cancel_after: Option<u64>,
}

impl WlSpec {
    pub fn compile(sc: &Scenario, server: &mut Server) -> Vec<WlSpec> {
        let dur = secs_to_ns(sc.duration_s);
        sc.workloads
            .iter()
            .map(|w| {
                let mix: Vec<MixSpec> = w
                    .mix
                    .iter()
                    .map(|m| MixSpec {
                        class: m.class,
                        size: m.size.0,
                        size_max: m.size_max.map(|b| b.0),
                        priority: m.priority,
                        prefixes: if m.prefixes <= 1 {
                            vec![server.prefix(&m.prefix)]
                        } else {
                            (0..m.prefixes)
                                .map(|i| server.prefix(&format!("{}{i}", m.prefix)))
                                .collect()
                        },
                        part_size: m.part_size.map(|b| b.0),
                        idempotent: m.idempotent,
                        timeout_ms: m.timeout_ms,
                        max_attempts: m.max_attempts,
                    })
                    .collect();
                let mut acc = 0.0;
                let cum = w
                    .mix
                    .iter()
                    .map(|m| {
                        acc += m.weight;
                        acc
                    })
                    .collect();
                WlSpec {
                    kind: w.kind,
                    ops: w.ops.unwrap_or(0),
                    at: secs_to_ns(w.at_s),
                    every: w.every_s.map(secs_to_ns),
                    rate: w.rate.unwrap_or(0.0),
                    to_rate: w.to_rate.unwrap_or(0.0),
                    start: secs_to_ns(w.start_s),
                    end: w.end_s.map_or(dur, secs_to_ns),
                    users: u64::from(w.users.unwrap_or(0)),
                    cancel_prob: w.cancel_prob,
                    cancel_after_ns: w.cancel_after_ms * 1e6,
                    mix,
                    cum,
                }
            })
            .collect()
    }

    /// The first arrival time, if any.
    pub fn first(&self, rng: &mut ChaCha8Rng) -> Option<u64> {
        match self.kind {
            WorkloadKind::Batch | WorkloadKind::Burst | WorkloadKind::Closed => Some(self.at),
            WorkloadKind::Poisson | WorkloadKind::Ramp => self.next_after(rng, self.start),
        }
    }

    /// The open-loop or burst arrival after one at `t`, if before the end.
    pub fn next_after(&self, rng: &mut ChaCha8Rng, t: u64) -> Option<u64> {
        match self.kind {
            WorkloadKind::Batch | WorkloadKind::Closed => None,
            WorkloadKind::Burst => {
                let n = t.checked_add(self.every?)?;
                (n < self.end).then_some(n)
            }
            WorkloadKind::Poisson => {
                let n = t.saturating_add(exponential(rng, 1e9 / self.rate) as u64);
                (n < self.end).then_some(n)
            }
            WorkloadKind::Ramp => {
                // Thinning: candidates at the peak rate, kept with rate(t) / peak.
                let peak = self.rate.max(self.to_rate);
                if peak <= 0.0 {
                    return None;
                }
                let span = self.end.saturating_sub(self.start).max(1) as f64;
                let mut n = t;
                loop {
                    n = n.saturating_add(exponential(rng, 1e9 / peak) as u64);
                    if n >= self.end {
                        return None;
                    }
                    let x = (n - self.start) as f64 / span;
                    let r = self.rate + (self.to_rate - self.rate) * x;
                    if unit(rng) * peak < r {
                        return Some(n);
                    }
                }
            }
        }
    }

    /// Whether arrivals follow the clock (not the pool's progress): then
    /// throughput is measured over the arrival window, not the makespan.
    pub fn open_loop(&self) -> bool {
        match self.kind {
            WorkloadKind::Poisson | WorkloadKind::Ramp => true,
            WorkloadKind::Burst => self.every.is_some(),
            WorkloadKind::Batch | WorkloadKind::Closed => false,
        }
    }

    /// How many ops an arrival event submits.
    pub fn batch_size(&self) -> u64 {
        match self.kind {
            WorkloadKind::Batch | WorkloadKind::Burst => self.ops,
            WorkloadKind::Closed => self.users.min(self.ops),
            WorkloadKind::Poisson | WorkloadKind::Ramp => 1,
        }
    }

    /// Draws one op.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> OpDraw {
        let mix = if self.mix.len() == 1 {
            0
        } else {
            let total = *self.cum.last().unwrap_or(&1.0);
            let u = unit(rng) * total;
            self.cum
                .iter()
                .position(|&c| u < c)
                .unwrap_or(self.mix.len() - 1)
        };
        let m = &self.mix[mix];
        let size = match m.size_max {
            Some(max) if max > m.size => {
                (log_uniform(rng, m.size as f64, max as f64).round() as u64).clamp(m.size, max)
            }
            _ => m.size,
        };
        let prefix = if m.prefixes.len() == 1 {
            m.prefixes[0]
        } else {
            m.prefixes[((unit(rng) * m.prefixes.len() as f64) as usize).min(m.prefixes.len() - 1)]
        };
        let cancel_after = (self.cancel_prob > 0.0 && unit(rng) < self.cancel_prob)
            .then(|| exponential(rng, self.cancel_after_ns) as u64);
        OpDraw {
            mix,
            size,
            prefix,
            cancel_after,
        }
    }
}
