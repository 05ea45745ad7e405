//! The built-in library runs cleanly, reproduces itself, and bad files get
//! errors that name the file, the line and the field.

use pool_sim::scenario::{builtin_names, Scenario};
use pool_sim::{run, run_with, RunOptions};

fn checked() -> RunOptions {
    RunOptions {
        check_invariants: true,
        ..RunOptions::default()
    }
}

#[test]
fn every_builtin_parses_runs_and_conserves_ops() {
    let names = builtin_names();
    assert!(names.len() >= 13);
    let study = names
        .iter()
        .filter(|n| !Scenario::load(n).unwrap().calibration)
        .count();
    assert!(study >= 8, "{study} study scenarios");
    for name in names {
        let sc = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sc.name, name, "file stem and name differ");
        assert!(!sc.description.is_empty(), "{name} has no description");
        let r = run_with(&sc, 1, &checked()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = r.conservation;
        assert!(c.ok, "{name}");
        assert_eq!(
            c.submitted,
            c.succeeded + c.failed + c.cancelled + c.rejected,
            "{name}"
        );
        assert!(c.succeeded > 0, "{name}: nothing succeeded");
        assert!(r.goodput.ops_per_s > 0.0, "{name}");
        assert_eq!(r.series.t_ms.len(), r.series.limit.len());
    }
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    for name in [
        "flaky-server",
        "bulk-upload-multipart",
        "fleet-50-one-prefix",
    ] {
        let sc = Scenario::load(name).unwrap();
        let a = run(&sc, 42).unwrap();
        let b = run(&sc, 42).unwrap();
        assert_eq!(a.to_json(), b.to_json(), "{name}");
        assert_eq!(a.to_csv(), b.to_csv(), "{name}");
        let c = run(&sc, 43).unwrap();
        assert_ne!(a.to_json(), c.to_json(), "{name}: seeds 42 and 43 agree");
    }
}

#[test]
fn multipart_parts_are_child_ops() {
    let sc = Scenario::load("bulk-upload-multipart").unwrap();
    let r = run(&sc, 1).unwrap();
    // 50 uploads of 128 MiB in 8 MiB parts: 50 parents + 800 parts.
    assert_eq!(r.conservation.submitted, 850);
    assert_eq!(r.conservation.succeeded, 850);
    assert!((r.goodput.bytes_per_s * r.window_s - 50.0 * 128.0 * 1_048_576.0).abs() < 1.0);
    let classes: Vec<_> = r.by_class.iter().map(|c| c.class.as_str()).collect();
    assert_eq!(classes, ["multipart_part", "multipart_upload"]);
}

#[test]
fn throttled_prefix_answers_503_and_fleet_is_fair() {
    let hot = run(&Scenario::load("hot-prefix-throttled").unwrap(), 1).unwrap();
    assert!(hot.rate_503 > 0.1, "503 rate {}", hot.rate_503);
    assert!(hot.engine.throttled > 0);
    // 5,500/s sustained plus a 1 s burst, over 10 s.
    assert!(hot.goodput.ops_per_s < 6_600.0, "{}", hot.goodput.ops_per_s);
    let fleet = run(&Scenario::load("fleet-50-one-prefix").unwrap(), 1).unwrap();
    let f = fleet.fairness.expect("a fleet reports fairness");
    assert!(f.jain > 0.9 && f.jain <= 1.0, "jain {}", f.jain);
}

#[test]
fn limit_override_changes_throughput() {
    let sc = Scenario::load("small-get-burst").unwrap();
    let at = |l| {
        let o = RunOptions {
            limit: Some(l),
            ..RunOptions::default()
        };
        run_with(&sc, 1, &o).unwrap().goodput.ops_per_s
    };
    let (a, b) = (at(16), at(64));
    assert!(b > 3.0 * a, "limit 16: {a}/s, limit 64: {b}/s");
}

fn err(src: &str) -> String {
    Scenario::parse("bad.toml", src).unwrap_err().to_string()
}

const OK: &str = "name = \"x\"\nduration_s = 1\n[pool]\nlimit = 4\n[[workload]]\nkind = \"batch\"\nops = 3\n[[workload.mix]]\nclass = \"get\"\n";

#[test]
fn errors_name_file_line_and_field() {
    assert!(Scenario::parse("ok.toml", OK).is_ok());
    let e = err(&OK.replace("limit = 4", "limt = 4"));
    assert!(e.starts_with("bad.toml:4:"), "{e}");
    assert!(
        e.contains("pool.limt") && e.contains("unknown field"),
        "{e}"
    );
    let e = err(&OK.replace("ops = 3", "ops = \"three\""));
    assert!(
        e.starts_with("bad.toml:7:") && e.contains("workload[0].ops"),
        "{e}"
    );
    let e = err(&OK.replace("class = \"get\"", "class = \"got\""));
    assert!(
        e.starts_with("bad.toml:9:") && e.contains("unknown class"),
        "{e}"
    );
    // Semantic errors (after parsing) are located by their field path.
    let e = err(&OK.replace("limit = 4", "limit = 0"));
    assert!(e.starts_with("bad.toml:4: field `pool.limit`"), "{e}");
    let e = err(&OK.replace("ops = 3", "ops = 0"));
    assert!(e.starts_with("bad.toml:7: field `workload[0].ops`"), "{e}");
    let e = err(&format!("{OK}size = \"12 parsecs\"\n"));
    assert!(
        e.starts_with("bad.toml:10:") && e.contains("invalid size"),
        "{e}"
    );
    let e = err(&OK.replace("duration_s = 1", "duration_s = 1\nstrategy = \"nope\""));
    assert!(
        e.contains("strategy") && e.contains("valid names") && e.contains("flagship"),
        "{e}"
    );
    let e = err(&OK.replace("kind = \"batch\"\nops = 3", "kind = \"poisson\""));
    assert!(
        e.contains("workload[0].rate") && e.contains("required"),
        "{e}"
    );
    let e = Scenario::load("no-such-scenario").unwrap_err().to_string();
    assert!(e.contains("small-get-burst"), "{e}");
}
