//! Shared helpers: synthetic samples and a tiny synchronous engine driver.
#![allow(dead_code)]

use core::time::Duration;
use pool_core::{
    AttemptId, AttemptSample, Instant, OpClass, OpId, OpSample, Resolution, SampleOutcome,
};

pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// An `OpId` for synthetic samples (its field is private to pool-core; serde
/// is the public way in).
pub fn op_id(n: u64) -> OpId {
    serde_json::from_str(&n.to_string()).expect("OpId is a transparent u64")
}

/// A synthetic attempt sample.
#[derive(Clone, Copy)]
pub struct S {
    pub op: u64,
    pub start_ns: u64,
    pub latency_ns: u64,
    pub outcome: SampleOutcome,
    pub in_flight: u32,
    pub bytes: u64,
}

impl S {
    pub fn ok(start_ms: u64, latency_ms: u64, in_flight: u32) -> S {
        S {
            op: 1,
            start_ns: start_ms * 1_000_000,
            latency_ns: latency_ms * 1_000_000,
            outcome: SampleOutcome::Success,
            in_flight,
            bytes: 0,
        }
    }
    pub fn outcome(mut self, o: SampleOutcome) -> S {
        self.outcome = o;
        self
    }
    pub fn bytes(mut self, b: u64) -> S {
        self.bytes = b;
        self
    }
    pub fn op(mut self, op: u64) -> S {
        self.op = op;
        self
    }
    pub fn end(&self) -> Instant {
        Instant::from_nanos(self.start_ns + self.latency_ns)
    }
    pub fn build(&self) -> AttemptSample {
        AttemptSample {
            attempt: AttemptId {
                op: op_id(self.op),
                number: 1,
            },
            class: OpClass::DEFAULT,
            partition: 0,
            started_at: Instant::from_nanos(self.start_ns),
            ended_at: self.end(),
            queue_wait: Duration::ZERO,
            in_flight_at_start: self.in_flight,
            hedge: false,
            outcome: self.outcome,
            bytes: self.bytes,
        }
    }
}

/// A synthetic resolved op.
pub fn op_sample(op: u64, at: Instant, resolution: Resolution) -> OpSample {
    OpSample {
        op: op_id(op),
        class: OpClass::DEFAULT,
        partition: 0,
        submitted_at: Instant::ZERO,
        first_started_at: Some(Instant::ZERO),
        resolved_at: at,
        attempts: resolution.attempts(),
        resolution,
    }
}

pub fn succeeded() -> Resolution {
    Resolution::Succeeded { attempts: 1 }
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

use pool_core::{AttemptOutcome, Decision, Engine, EngineConfig, OpOptions};
use std::collections::BTreeMap;

/// A tiny synchronous engine driver: submits ops, finishes running attempts
/// when told, and fires the engine's timers (controller wake-ups included).
pub struct Driver {
    pub engine: Engine,
    pub now: Instant,
    /// Running attempts and when they started.
    pub running: BTreeMap<AttemptId, Instant>,
    pub resolved: Vec<(OpId, Resolution)>,
}

impl Driver {
    pub fn new(cfg: EngineConfig) -> Self {
        Driver {
            engine: Engine::new(cfg).expect("valid config"),
            now: Instant::ZERO,
            running: BTreeMap::new(),
            resolved: Vec::new(),
        }
    }

    pub fn pump(&mut self) {
        while let Some(d) = self.engine.poll_decision() {
            match d {
                Decision::Start { attempt, .. } => {
                    self.running.insert(attempt, self.now);
                }
                Decision::Cancel { attempt, .. } => {
                    self.running.remove(&attempt);
                }
                Decision::Resolved { op, resolution } => self.resolved.push((op, resolution)),
                Decision::RetryScheduled { .. } => {}
            }
        }
    }

    /// Moves time to `t`, firing every timer due on the way.
    pub fn advance_to(&mut self, t: Instant) {
        while let Some(w) = self.engine.poll_timeout() {
            if w > t {
                break;
            }
            self.now = self.now.max(w);
            self.engine.tick(self.now);
            self.pump();
        }
        self.now = self.now.max(t);
        self.engine.tick(self.now);
        self.pump();
    }

    pub fn submit(&mut self, n: usize, opts: OpOptions) -> Vec<OpId> {
        let ids = (0..n)
            .map(|_| self.engine.submit(self.now, opts.clone()).expect("submit"))
            .collect();
        self.pump();
        ids
    }

    /// Finishes every running attempt now with `outcome`, reporting `bytes`.
    pub fn finish_all(&mut self, outcome: AttemptOutcome, bytes: u64) -> usize {
        let running: Vec<AttemptId> = self.running.keys().copied().collect();
        for a in &running {
            self.running.remove(a);
            self.engine.attempt_finished(self.now, *a, outcome, bytes);
            self.pump();
        }
        running.len()
    }
}
