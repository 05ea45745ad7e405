//! A `metrics` recorder for tests: keeps every counter, gauge and histogram
//! sample by `name{labels}` (labels sorted). Shared by pool-core's
//! `pool_metrics.rs` and pool-s3's `observe.rs` (which includes this file by path).
#![allow(dead_code)]

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Metric name plus its labels, `name{k=v,…}` with labels sorted.
fn key_string(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

/// Keeps what the pool exported as `pool` (the name given to `export_metrics`).
#[derive(Default)]
pub struct TestRecorder {
    pool: String,
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut m = self.counters.lock().unwrap();
        Counter::from_arc(m.entry(key_string(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut m = self.gauges.lock().unwrap();
        Gauge::from_arc(m.entry(key_string(key)).or_default().clone())
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut m = self.histograms.lock().unwrap();
        Histogram::from_arc(m.entry(key_string(key)).or_default().clone())
    }
}

impl TestRecorder {
    pub fn new(pool: &str) -> TestRecorder {
        TestRecorder {
            pool: pool.to_string(),
            ..TestRecorder::default()
        }
    }
    /// A class's counter (0 if never registered).
    pub fn counter(&self, name: &str, class: &str) -> u64 {
        let k = format!("{name}{{class={class},pool={}}}", self.pool);
        let m = self.counters.lock().unwrap();
        m.get(&k).map_or(0, |c| c.load(Ordering::SeqCst))
    }
    /// A pool-wide gauge (panics if never registered).
    pub fn gauge(&self, name: &str) -> f64 {
        let k = format!("{name}{{pool={}}}", self.pool);
        let m = self.gauges.lock().unwrap();
        f64::from_bits(m.get(&k).expect("gauge registered").load(Ordering::SeqCst))
    }
    /// A class's histogram samples (none if never registered).
    pub fn samples(&self, name: &str, class: &str) -> Vec<f64> {
        let k = format!("{name}{{class={class},pool={}}}", self.pool);
        let m = self.histograms.lock().unwrap();
        m.get(&k)
            .map_or(Vec::new(), |s| s.0.lock().unwrap().clone())
    }
}
