//! Engine behaviour found while wiring strategies, kept as regression tests.

mod common;
use common::*;
use pool_core::{AttemptSample, EngineConfig, Instant, OpOptions, RateGate};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Grants every request and counts the grants.
struct Counting(Arc<AtomicU32>);
impl RateGate for Counting {
    fn try_acquire(&mut self, _now: Instant) -> Result<(), Instant> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn on_sample(&mut self, _: Instant, _: &AttemptSample) {}
}

/// Refuses until `open_at`.
struct ClosedUntil(Instant);
impl RateGate for ClosedUntil {
    fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        (now < self.0).then_some(self.0)
    }
    fn try_acquire(&mut self, now: Instant) -> Result<(), Instant> {
        if now < self.0 {
            Err(self.0)
        } else {
            Ok(())
        }
    }
    fn on_sample(&mut self, _: Instant, _: &AttemptSample) {}
}

#[test]
fn a_refused_send_spends_no_partition_token() {
    let grants = Arc::new(AtomicU32::new(0));
    let mut d = Driver::new(EngineConfig::default());
    let g = grants.clone();
    d.engine
        .set_partition_rate_gate_factory(Box::new(move |_| Box::new(Counting(g.clone()))));
    d.engine.set_rate_gate(Box::new(ClosedUntil(ms(1_000))));
    d.submit(1, OpOptions::default());
    d.advance_to(ms(1_000));
    assert_eq!(
        d.running.len(),
        1,
        "the op starts once the global gate opens"
    );
    // One start should cost one partition token; the refused try at t = 0 took one too.
    assert_eq!(grants.load(Ordering::SeqCst), 1);
}
