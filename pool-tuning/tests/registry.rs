//! The registry: names, parameters, both spellings, round trips, errors, and
//! attaching a composed config to an engine.

mod common;
use common::*;
use pool_core::{AttemptError, AttemptOutcome, EngineConfig, OpClass, OpOptions};
use pool_tuning::spec::Kind;
use pool_tuning::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Scenario {
    strategy: StrategySpec,
}

#[test]
fn every_name_parses_with_defaults_and_prints_back_bare() {
    assert_eq!(
        StrategySpec::all_defaults().len(),
        StrategySpec::NAMES.len()
    );
    for name in StrategySpec::NAMES {
        let s: StrategySpec = name.parse().unwrap();
        assert_eq!(s.name(), name);
        assert_eq!(s.to_string(), name, "defaults print as the bare name");
        let built = s.build().unwrap();
        match s.kind() {
            Kind::Controller => assert!(built.controller.is_some() && built.rate_gate.is_none()),
            Kind::RateGate => assert!(built.rate_gate.is_some() && built.controller.is_none()),
        }
        let n = built
            .controller
            .as_ref()
            .map(|c| c.name().to_string())
            .or(built.rate_gate.as_ref().map(|g| g.name().to_string()));
        assert_eq!(
            n.as_deref(),
            Some(name),
            "the strategy reports its registry name"
        );
    }
}

#[test]
fn compact_parameters_parse_and_print_canonically() {
    let s: StrategySpec = " vegas( alpha = 3 , smoothing=0.5 ) ".parse().unwrap();
    let StrategySpec::Vegas(p) = &s else { panic!() };
    assert_eq!(p.alpha, Some(3));
    assert_eq!(p.smoothing, 0.5);
    assert_eq!(s.to_string(), "vegas(alpha=3, smoothing=0.5)");
    let s: StrategySpec = "gradient2(window=false)".parse().unwrap();
    let StrategySpec::Gradient2(p) = &s else {
        panic!()
    };
    assert_eq!(p.window, None);
    assert_eq!(s.to_string(), "gradient2(window=false)");
    let s: StrategySpec = r#"aimd(window={"size": 20})"#.parse().unwrap();
    let StrategySpec::Aimd(p) = &s else { panic!() };
    assert_eq!(p.window.unwrap().size, 20);
    assert_eq!(s.to_string().parse::<StrategySpec>().unwrap(), s);
}

#[test]
fn toml_and_json_accept_both_spellings_and_round_trip() {
    let table: Scenario =
        toml::from_str(r#"strategy = { name = "aimd", backoff_ratio = 0.8, min_limit = 1 }"#)
            .unwrap();
    let StrategySpec::Aimd(p) = table.strategy else {
        panic!()
    };
    assert_eq!((p.backoff_ratio, p.min_limit, p.max_limit), (0.8, 1, 200));
    let compact: Scenario =
        toml::from_str(r#"strategy = "aimd(backoff_ratio=0.8, min_limit=1)""#).unwrap();
    assert_eq!(compact.strategy, StrategySpec::Aimd(p));

    for spec in StrategySpec::all_defaults().into_iter().chain([
        "vegas(alpha=3, beta=9)".parse().unwrap(),
        "envoy-gradient(fixed_min_rtt_ms=5, jitter_percent=0)"
            .parse()
            .unwrap(),
        "flagship(cruise_gain=1.05, size_ref_bytes=0)"
            .parse()
            .unwrap(),
        "s3db-adaptive(target_latency_ms=80.5)".parse().unwrap(),
        "aws-adaptive(cost=2)".parse().unwrap(),
    ]) {
        let sc = Scenario {
            strategy: spec.clone(),
        };
        let t = toml::to_string(&sc).unwrap();
        assert_eq!(toml::from_str::<Scenario>(&t).unwrap(), sc, "TOML:\n{t}");
        let j = serde_json::to_string(&sc).unwrap();
        assert_eq!(
            serde_json::from_str::<Scenario>(&j).unwrap(),
            sc,
            "JSON: {j}"
        );
        assert_eq!(spec.to_string().parse::<StrategySpec>().unwrap(), spec);
    }
}

#[test]
fn unknown_names_and_parameters_are_clear_errors() {
    let e = "bbr".parse::<StrategySpec>().unwrap_err().to_string();
    assert!(e.contains("unknown strategy `bbr`"), "{e}");
    for n in StrategySpec::NAMES {
        assert!(e.contains(n), "{e} should list {n}");
    }
    let e = "vegas(alpah=3)"
        .parse::<StrategySpec>()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown field `alpah`") && e.contains("alpha"),
        "{e}"
    );
    let e = "aimd(min_limit=1.5)"
        .parse::<StrategySpec>()
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("aimd:") && e.contains("1.5"), "{e}");
    let e = "aimd(3)".parse::<StrategySpec>().unwrap_err().to_string();
    assert!(e.contains("key=value"), "{e}");
    let e = "aimd(min_limit=1"
        .parse::<StrategySpec>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("closing"), "{e}");
    let e = toml::from_str::<Scenario>(r#"strategy = { backoff_ratio = 0.8 }"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing `name`") && e.contains("flagship"),
        "{e}"
    );
    let e = "aimd+vegas"
        .parse::<StrategySpec>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("TuningConfig"), "{e}");
}

#[test]
fn invalid_values_fail_at_build_with_the_field_named() {
    let cases = [
        ("aimd(backoff_ratio=0.3)", "backoff_ratio"),
        ("vegas(smoothing=0)", "smoothing"),
        ("gradient2(rtt_tolerance=0.5)", "rtt_tolerance"),
        ("envoy-gradient(min_concurrency=0)", "min_concurrency"),
        ("s3db-adaptive(target_latency_ms=-1)", "target_latency_ms"),
        ("aws-adaptive(cost=0)", "cost"),
        ("flagship(throttle_beta=1)", "throttle_beta"),
        ("fixed(limit=0)", "limit"),
        (r#"aimd(window={"size": 5})"#, "window size"),
    ];
    for (spec, field) in cases {
        let s: StrategySpec = spec.parse().unwrap();
        let e = s.build().unwrap_err().to_string();
        assert!(e.contains(field) && e.starts_with(s.name()), "{spec}: {e}");
    }
}

#[test]
fn tuning_config_compact_form_routes_by_kind_and_scope() {
    let c: TuningConfig =
        "flagship + aws-adaptive + aimd@put + vegas@partition + aws-adaptive(cost=2)@partition"
            .parse()
            .unwrap();
    assert_eq!(c.global.as_ref().map(|s| s.name()), Some("flagship"));
    assert_eq!(
        c.rate_limiter.as_ref().map(|s| s.name()),
        Some("aws-adaptive")
    );
    assert_eq!(c.per_class["put"].name(), "aimd");
    assert_eq!(c.per_partition.as_ref().map(|s| s.name()), Some("vegas"));
    assert_eq!(
        c.partition_rate_limiter
            .as_ref()
            .map(|s| s.to_string())
            .as_deref(),
        Some("aws-adaptive(cost=2.0)")
    );
    let text = c.to_string();
    assert_eq!(
        text,
        "flagship+aws-adaptive+aimd@put+vegas@partition+aws-adaptive(cost=2.0)@partition"
    );
    assert_eq!(text.parse::<TuningConfig>().unwrap(), c);
    assert_eq!(
        "none".parse::<TuningConfig>().unwrap(),
        TuningConfig::default()
    );
    assert_eq!(TuningConfig::default().to_string(), "none");

    // TOML table form, with compact strings inside.
    let t: TuningConfig = toml::from_str(
        r#"
        global = "flagship"
        rate_limiter = { name = "aws-adaptive" }
        [per_class]
        put = "aimd"
        "#,
    )
    .unwrap();
    assert_eq!(t.to_string(), "flagship+aws-adaptive+aimd@put");
    let back: TuningConfig = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn tuning_config_rejects_misplaced_strategies() {
    let e = "aws-adaptive@get"
        .parse::<TuningConfig>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("no per-class gates"), "{e}");
    let e = "aimd@nope".parse::<TuningConfig>().unwrap_err().to_string();
    assert!(e.contains("unknown class `nope`"), "{e}");
    let e = "aimd+vegas"
        .parse::<TuningConfig>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("same slot"), "{e}");
    let c = TuningConfig {
        global: Some("aws-adaptive".parse().unwrap()),
        ..TuningConfig::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("global") && e.contains("rate_limiter"), "{e}");
    let c = TuningConfig {
        per_partition: Some("aimd(backoff_ratio=2)".parse().unwrap()),
        ..TuningConfig::default()
    };
    let mut engine = pool_core::Engine::new(EngineConfig::default()).unwrap();
    let e = c.apply(&mut engine).unwrap_err().to_string();
    assert!(e.starts_with("per_partition: aimd: backoff_ratio"), "{e}");
}

#[test]
fn apply_attaches_global_and_per_class_controllers() {
    // Global: fixed at 100. Class PUT: AIMD starting at 20.
    let c: TuningConfig = "fixed(limit=100) + aimd@put".parse().unwrap();
    let mut d = Driver::new(EngineConfig::default());
    c.apply(&mut d.engine).unwrap();
    assert_eq!(d.engine.limit(), 100);
    d.submit(50, OpOptions::default().class(OpClass::PUT));
    d.submit(50, OpOptions::default().class(OpClass::GET));
    // 20 PUTs (the class limit) and every GET (global room) start.
    assert_eq!(d.running.len(), 70);
}

#[test]
fn apply_attaches_a_rate_gate_per_partition() {
    let c: TuningConfig = "fixed(limit=100) + aws-adaptive@partition".parse().unwrap();
    let mut d = Driver::new(EngineConfig::default());
    c.apply(&mut d.engine).unwrap();
    let a = d.engine.partition("bucket/a");
    let b = d.engine.partition("bucket/b");
    d.submit(1, OpOptions::default().partition(a));
    d.advance_to(ms(1_000));
    d.finish_all(AttemptOutcome::Failed(AttemptError::throttled()), 0);
    // Partition a is now paced (fill rate 0.5/s, empty bucket); b is not.
    d.submit(3, OpOptions::default().partition(a));
    d.submit(3, OpOptions::default().partition(b));
    assert_eq!(d.running.len(), 3, "only b's ops start");
}
