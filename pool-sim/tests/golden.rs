//! Golden report digests of built-in scenarios at fixed seeds, so any change to
//! simulation results shows up in review. After an intended change, regenerate:
//! `UPDATE_GOLDEN=1 cargo test -p pool-sim --test golden` and commit the files.

use pool_sim::{run, Scenario};
use std::path::PathBuf;

const CASES: [(&str, u64); 3] = [
    ("small-get-burst", 1),
    ("bulk-upload-multipart", 7),
    ("flaky-server", 3),
];

fn summary(name: &str, seed: u64) -> String {
    let r = run(&Scenario::load(name).unwrap(), seed).unwrap();
    let c = r.conservation;
    format!(
        "digest {:016x}\nsubmitted {}\nsucceeded {}\nfailed {}\ncancelled {}\nrejected {}\ngoodput_ops_per_s {}\nservice_p99_us {}\n",
        r.digest(),
        c.submitted,
        c.succeeded,
        c.failed,
        c.cancelled,
        c.rejected,
        r.goodput.ops_per_s,
        r.latency.service.p99
    )
}

#[test]
fn reports_match_golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut bad = Vec::new();
    for (name, seed) in CASES {
        let got = summary(name, seed);
        let path = dir.join(format!("{name}-seed{seed}.txt"));
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            bad.push(format!(
                "{}:\n--- golden\n{want}--- now\n{got}",
                path.display()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "simulation results changed (if intended: UPDATE_GOLDEN=1 cargo test -p pool-sim --test golden):\n{}",
        bad.join("\n")
    );
}
