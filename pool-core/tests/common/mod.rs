//! A tiny synchronous driver for engine tests: collects decisions and tracks
//! which attempts are running, as a real driver would.
#![allow(dead_code)]

use pool_core::*;
use std::collections::BTreeMap;

pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

pub struct Harness {
    pub engine: Engine,
    pub now: Instant,
    pub log: Vec<Decision>,
    pub running: BTreeMap<AttemptId, bool>,
    pub resolved: BTreeMap<OpId, Resolution>,
    pub starts: Vec<AttemptId>,
}

impl Harness {
    pub fn new(cfg: EngineConfig) -> Self {
        Harness {
            engine: Engine::new(cfg).expect("valid config"),
            now: Instant::ZERO,
            log: Vec::new(),
            running: BTreeMap::new(),
            resolved: BTreeMap::new(),
            starts: Vec::new(),
        }
    }

    pub fn with_limit(limit: u32) -> Self {
        Self::new(EngineConfig::builder().limit(limit).build().unwrap())
    }

    /// Pulls every pending decision, updating the running set.
    pub fn pump(&mut self) -> Vec<Decision> {
        let mut out = Vec::new();
        while let Some(d) = self.engine.poll_decision() {
            match d {
                Decision::Start { attempt, hedge } => {
                    assert!(
                        self.running.insert(attempt, hedge).is_none(),
                        "started twice"
                    );
                    self.starts.push(attempt);
                }
                Decision::Cancel { attempt, .. } => {
                    assert!(
                        self.running.remove(&attempt).is_some(),
                        "cancel of non-running {attempt:?}"
                    );
                }
                Decision::Resolved { op, resolution } => {
                    assert!(
                        self.resolved.insert(op, resolution).is_none(),
                        "resolved twice"
                    );
                    assert!(
                        !self.running.keys().any(|a| a.op == op),
                        "resolved with attempts running"
                    );
                }
                Decision::RetryScheduled { .. } => {}
            }
            self.log.push(d);
            out.push(d);
        }
        out
    }

    pub fn submit(&mut self, opts: OpOptions) -> OpId {
        let id = self.engine.submit(self.now, opts).expect("submit");
        self.pump();
        id
    }

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

    pub fn running_of(&self, op: OpId) -> Vec<AttemptId> {
        self.running
            .keys()
            .filter(|a| a.op == op)
            .copied()
            .collect()
    }

    pub fn finish(&mut self, attempt: AttemptId, outcome: AttemptOutcome) -> bool {
        let taken = self.engine.attempt_finished(self.now, attempt, outcome, 0);
        if taken {
            self.running.remove(&attempt);
        }
        self.pump();
        taken
    }

    /// Finishes the oldest running attempt of `op`.
    pub fn finish_op(&mut self, op: OpId, outcome: AttemptOutcome) -> bool {
        let a = *self
            .running_of(op)
            .first()
            .expect("op has a running attempt");
        self.finish(a, outcome)
    }

    pub fn started_ops(&self) -> Vec<OpId> {
        self.starts.iter().map(|a| a.op).collect()
    }
}
