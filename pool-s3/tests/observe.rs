//! Observability: metrics through the `metrics` facade (feature `metrics`), and
//! a metrics snapshot file that pool-sim loads as an empirical latency profile.
//! (Spans: `spans.rs`.)

use crate::common::{bucket, data, pool, start, Fault, Rule};
use pool_s3::{CallOptions, OpClass};

// The recorder pool-core's own metrics test uses.
#[path = "../../pool-core/tests/pool_util/recorder.rs"]
mod recorder;
use recorder::TestRecorder;

// ---- metrics ---------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn metrics_go_through_the_metrics_facade() {
    let rec = TestRecorder::new("s3");
    let _local = metrics::set_default_local_recorder(&rec);
    let server = start().await;
    let c = crate::common::client(&server, pool(4));
    c.pool().export_metrics("s3");
    bucket(&c, "met").await;
    for i in 0..3u64 {
        c.put("met", &format!("k{i}"), data(64, i), CallOptions::new())
            .await
            .unwrap();
    }
    server
        .faults
        .add(Rule::new(Fault::SlowDown).method("GET").times(1));
    c.get("met", "k0", CallOptions::new()).await.unwrap();

    assert_eq!(rec.counter("pool_ops_succeeded_total", "put"), 3);
    assert_eq!(rec.counter("pool_ops_succeeded_total", "get"), 1);
    assert_eq!(rec.counter("pool_attempts_total", "get"), 2);
    assert_eq!(rec.counter("pool_retries_total", "get"), 1);
    assert_eq!(rec.counter("pool_attempts_throttled_total", "get"), 1);
    assert_eq!(rec.samples("pool_attempt_duration_seconds", "put").len(), 3);
    assert_eq!(rec.samples("pool_op_duration_seconds", "get").len(), 1);
    assert_eq!(rec.gauge("pool_limit"), 4.0);
}

// ---- snapshot → pool-sim ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_written_snapshot_loads_in_pool_sim_as_a_latency_profile() {
    let server = start().await;
    server
        .faults
        .latency_ms
        .store(2, std::sync::atomic::Ordering::Relaxed);
    let c = crate::common::client(&server, pool(8));
    bucket(&c, "snap").await;
    let c2 = &c;
    let ops = (0..40u64).map(|i| async move {
        let k = format!("k{i}");
        c2.put("snap", &k, data(1024, i), CallOptions::new())
            .await?;
        c2.get("snap", &k, CallOptions::new()).await.map(|_| ())
    });
    for r in futures_util::future::join_all(ops).await {
        r.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("measured.json");
    c.write_metrics_snapshot(&file).unwrap();
    let snap = pool_s3::read_metrics_snapshot(&file).unwrap();
    let now = c.pool().metrics();
    assert_eq!((&snap.classes, snap.counters), (&now.classes, now.counters));

    // A scenario replaying it, loaded the way `cargo xtask sim` loads files.
    let scenario = dir.path().join("replay.toml");
    std::fs::write(
        &scenario,
        r#"
name = "replay"
duration_s = 1
[pool]
limit = 8
[s3]
latency_profile = "measured.json"
[[workload]]
kind = "batch"
ops = 200
[[workload.mix]]
class = "get"
size = "1 KiB"
"#,
    )
    .unwrap();
    let sc = pool_sim::Scenario::load(scenario.to_str().unwrap()).unwrap();
    let loaded = sc.s3.loaded_profiles.as_ref().expect("profiles loaded");
    let classes: Vec<OpClass> = loaded.classes.iter().map(|c| c.0).collect();
    assert_eq!(classes, [OpClass::GET, OpClass::PUT]);
    for (class, e) in &loaded.classes {
        let h = &snap.class(*class).unwrap().attempt_latency;
        assert_eq!(e.count(), h.count);
        // The replayed distribution is the measured one: its median lies
        // between the measured 40th and 60th percentiles (µs vs ns).
        let p50_us = e.quantile(0.5) / 1e3;
        let (lo, hi) = (h.quantile(0.4) as f64, h.quantile(0.6) as f64 + 1.0);
        assert!(
            (lo..=hi).contains(&p50_us),
            "{class}: replayed p50 {p50_us} µs outside the measured [{lo}, {hi}]"
        );
    }
    let report = pool_sim::run(&sc, 1).unwrap();
    assert_eq!(report.conservation.succeeded, 200);
}
