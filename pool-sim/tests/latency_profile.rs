//! Empirical latency profiles: a scenario's time to first byte drawn from a
//! `pool_core::MetricsSnapshot`, with clear errors for bad files.
//!
//! The example snapshot shipped in `scenarios/profiles/` is made here, by the
//! real engine: ops finish after latencies that follow a distribution shaped on
//! published S3 figures, and the engine's own snapshot is written out. After an
//! intended change: `UPDATE_GOLDEN=1 cargo test -p pool-sim --test latency_profile`.

use pool_core::metrics::HistogramSnapshot;
use pool_core::{
    AttemptOutcome, Decision, Engine, EngineConfig, Instant, MetricsConfig, OpClass, OpOptions,
};
use pool_sim::scenario::{Empirical, ProfileBase, Scenario};
use pool_sim::{run, run_with, RunOptions};
use std::path::{Path, PathBuf};

/// Samples per class in the example.
const SAMPLES: u32 = 5_000;

/// Quantile knots `(q, ms)` of the example, interpolated log-linearly.
/// GET (small objects): p50 27 ms, p95 75 ms, max just over 10 s (Bodner et al.
/// 2025, 1 KiB, [U]); p99 110 ms, between TopicPartition's 86 ms and AWS's
/// example 140 ms. PUT: p50 40 ms (Bodner); p95 101, p99 137 ms (TopicPartition
/// 2025, 500 KiB, [U]). The low end and p99.9 are assumptions.
const GET_KNOTS: &[(f64, f64)] = &[
    (0.0, 12.0),
    (0.5, 27.0),
    (0.9, 48.0),
    (0.95, 75.0),
    (0.99, 110.0),
    (0.999, 350.0),
    (1.0, 10_500.0),
];
const PUT_KNOTS: &[(f64, f64)] = &[
    (0.0, 18.0),
    (0.5, 40.0),
    (0.9, 72.0),
    (0.95, 101.0),
    (0.99, 137.0),
    (0.999, 450.0),
    (1.0, 10_500.0),
];

fn quantile_ms(knots: &[(f64, f64)], q: f64) -> f64 {
    let i = knots
        .iter()
        .position(|k| k.0 >= q)
        .unwrap_or(knots.len() - 1)
        .max(1);
    let ((q0, v0), (q1, v1)) = (knots[i - 1], knots[i]);
    let f = ((q - q0) / (q1 - q0)).clamp(0.0, 1.0);
    (v0.ln() + f * (v1.ln() - v0.ln())).exp()
}

/// The example snapshot, as the engine exports it. Stratified quantiles (no
/// randomness) in a shuffled order; one op at a time, so each attempt's latency
/// is exactly the chosen value. The histograms other than attempt latency are
/// emptied to keep the file small (the simulator reads only that one).
fn example_snapshot() -> String {
    let cfg = EngineConfig {
        limit: 1,
        metrics: MetricsConfig {
            significant_figures: 2,
            ..MetricsConfig::default()
        },
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg).expect("valid config");
    let mut now = Instant::ZERO;
    for (class, knots) in [(OpClass::GET, GET_KNOTS), (OpClass::PUT, PUT_KNOTS)] {
        for i in 0..SAMPLES {
            // A fixed permutation of the strata (7919 is prime to SAMPLES).
            let k = (u64::from(i) * 7919 % u64::from(SAMPLES)) as f64;
            let ms = quantile_ms(knots, (k + 0.5) / f64::from(SAMPLES));
            let opts = OpOptions {
                class,
                ..OpOptions::default()
            };
            e.submit(now, opts).expect("submit");
            let mut started = None;
            while let Some(d) = e.poll_decision() {
                if let Decision::Start { attempt, .. } = d {
                    started = Some(attempt);
                }
            }
            let attempt = started.expect("an idle pool starts the op at once");
            now = now + core::time::Duration::from_micros((ms * 1e3).round() as u64);
            assert!(e.attempt_finished(now, attempt, AttemptOutcome::Success, 1024));
            while e.poll_decision().is_some() {}
        }
    }
    let mut snap = e.snapshot();
    for c in &mut snap.classes {
        c.end_to_end = HistogramSnapshot::default();
        c.service = HistogramSnapshot::default();
        c.queue_wait = HistogramSnapshot::default();
    }
    let mut json = serde_json::to_string(&snap).expect("serialises");
    json.push('\n');
    json
}

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[test]
fn example_snapshot_file_is_current() {
    let path = scenarios_dir().join("profiles/example-get-put.json");
    let got = example_snapshot();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == got,
        "{} is stale (regenerate: UPDATE_GOLDEN=1 cargo test -p pool-sim --test latency_profile)",
        path.display()
    );
}

/// The simulated time to first byte follows the profile: with no transfer (HEAD
/// is not profiled, so use tiny GETs), service latency ≈ the profile's.
#[test]
fn builtin_scenario_replays_the_measured_distribution() {
    let sc = Scenario::load("measured-latency").unwrap_or_else(|e| panic!("{e}"));
    let profiles = sc
        .s3
        .loaded_profiles
        .clone()
        .expect("loaded with the scenario");
    let get = &profiles
        .classes
        .iter()
        .find(|c| c.0 == OpClass::GET)
        .expect("GET profile")
        .1;
    let r = run_with(
        &sc,
        1,
        &RunOptions {
            check_invariants: true,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(r.conservation.ok);
    let svc = r
        .by_class
        .iter()
        .find(|c| c.class == "get")
        .expect("gets ran");
    let model_p50_ms = get.quantile(0.5) / 1e6;
    let model_p99_ms = get.quantile(0.99) / 1e6;
    let (p50, p99) = (svc.p50_us as f64 / 1e3, svc.p99_us as f64 / 1e3);
    assert!(
        (p50 / model_p50_ms - 1.0).abs() < 0.08,
        "p50 {p50} vs profile {model_p50_ms}"
    );
    assert!(
        (p99 / model_p99_ms - 1.0).abs() < 0.25,
        "p99 {p99} vs profile {model_p99_ms}"
    );
    // Deterministic, and the seed matters.
    assert_eq!(r.to_json(), run(&sc, 1).unwrap().to_json());
    assert_ne!(r.to_json(), run(&sc, 2).unwrap().to_json());
}

/// A scratch directory of its own per test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pool-sim-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SCENARIO: &str = "name = \"p\"\nduration_s = 1\n[s3]\nLINE\n[[workload]]\nkind = \"batch\"\nops = 50\n[[workload.mix]]\nclass = \"get\"\nsize = 100\n";

fn write_scenario(dir: &Path, line: &str) -> String {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, SCENARIO.replace("LINE", line)).unwrap();
    path.display().to_string()
}

#[test]
fn relative_paths_resolve_against_the_scenario_file() {
    let dir = scratch("relative");
    std::fs::create_dir_all(dir.join("measured")).unwrap();
    std::fs::write(dir.join("measured/snap.json"), example_snapshot()).unwrap();
    let path = write_scenario(&dir, "latency_profile = { get = \"measured/snap.json\" }");
    // From any working directory: the path is the scenario file's.
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let l = sc.s3.loaded_profiles.as_ref().unwrap();
    assert_eq!(l.classes.len(), 1);
    assert_eq!(l.base, ProfileBase::Dir(dir.clone()));
    let r = run(&sc, 3).unwrap();
    assert_eq!(r.conservation.succeeded, 50);
    // Every GET took at least the profile's smallest value (12 ms).
    assert!(r.latency.service.min >= 11_500, "{}", r.latency.service.min);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_profiles_get_errors_naming_the_file_and_the_class() {
    let dir = scratch("errors");
    let load = |line: &str| {
        let path = write_scenario(&dir, line);
        Scenario::load(&path).unwrap_err().to_string()
    };
    // Missing: the scenario's line and field, and the snapshot's full path.
    let e = load("latency_profile = \"nope.json\"");
    assert!(
        e.contains("scenario.toml:4: field `s3.latency_profile`"),
        "{e}"
    );
    assert!(e.contains("nope.json") && e.contains("cannot read"), "{e}");
    // Malformed JSON: the snapshot's line and column.
    std::fs::write(
        dir.join("bad.json"),
        "{\"classes\": [\n  {\"class\": 2,,}\n]}",
    )
    .unwrap();
    let e = load("latency_profile = \"bad.json\"");
    assert!(
        e.contains("bad.json:2:") && e.contains("not a pool_core::MetricsSnapshot"),
        "{e}"
    );
    // Valid, but no such class.
    std::fs::write(dir.join("snap.json"), example_snapshot()).unwrap();
    let e = load("latency_profile = { list = \"snap.json\" }");
    assert!(e.contains("field `s3.latency_profile.list`"), "{e}");
    assert!(
        e.contains("has no class `list`") && e.contains("get (5000 samples)"),
        "{e}"
    );
    // Unknown class name: found before any file is read.
    let e = load("latency_profile = { gett = \"snap.json\" }");
    assert!(e.contains("unknown class \"gett\""), "{e}");
    // A class whose histogram is empty.
    let empty = example_snapshot().replace(
        "\"unit\":\"us\",\"count\":5000",
        "\"unit\":\"us\",\"count\":0",
    );
    let mut v: serde_json::Value = serde_json::from_str(&empty).unwrap();
    v["classes"][0]["attempt_latency"]["buckets"] = serde_json::json!([]);
    std::fs::write(dir.join("empty.json"), v.to_string()).unwrap();
    let e = load("latency_profile = { get = \"empty.json\" }");
    assert!(
        e.contains("empty.json, class `get`") && e.contains("no samples"),
        "{e}"
    );
    // No class at all with samples.
    std::fs::write(dir.join("none.json"), "{\"classes\": []}").unwrap();
    let e = load("latency_profile = \"none.json\"");
    assert!(
        e.contains("none.json has no class with attempt-latency samples"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A scenario built in code: `run` reads the profile itself, from the working
/// directory, and reports a missing file as a configuration error.
#[test]
fn run_reads_profiles_of_scenarios_built_in_code() {
    let mut sc = Scenario::parse("inline", &SCENARIO.replace("LINE", "")).unwrap();
    sc.s3.latency_profile = Some(pool_sim::scenario::LatencyProfile::All(
        "/nonexistent/snap.json".into(),
    ));
    let e = run(&sc, 1).unwrap_err().to_string();
    assert!(
        e.contains("s3.latency_profile") && e.contains("/nonexistent/snap.json"),
        "{e}"
    );
    let snap: serde_json::Value = serde_json::from_str(&example_snapshot()).unwrap();
    let h: HistogramSnapshot =
        serde_json::from_value(snap["classes"][0]["attempt_latency"].clone()).unwrap();
    let e = Empirical::from_snapshot(&h).unwrap();
    assert_eq!(e.count(), u64::from(SAMPLES));
    // The 2-significant-figure buckets are recognised: draws spread over each.
    let p50 = e.quantile(0.5) / 1e6;
    assert!((p50 - 27.0).abs() < 0.5, "{p50}");
}
