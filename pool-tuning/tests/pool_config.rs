//! A strategy chosen in a study goes into production config by name: the same
//! spelling as `--strategy` and scenario files, read from TOML next to the pool's
//! own settings, attached to a running `Pool` — and it really drives the limit.

use pool_core::pool::Pool;
use pool_core::{EngineConfig, OpOptions};
use pool_tuning::TuningConfig;
use serde::Deserialize;
use std::time::Duration;

/// What an application's config file holds: the pool and its tuning.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppConfig {
    pool: EngineConfig,
    tuning: TuningConfig,
}

const CONFIG: &str = r#"
[pool]
limit = 4
min_limit = 1
max_limit = 64

[tuning]
global = "aimd(initial_limit=4, min_limit=1, max_limit=64)"
"#;

/// Runs `n` ops that each take 10 ms (paused tokio time) and returns the
/// largest limit the pool reported while they ran.
async fn run_ops(pool: &Pool, n: usize) -> u32 {
    let mut peak = pool.limit();
    let mut handles = Vec::new();
    for _ in 0..n {
        let p = pool.clone();
        handles.push(tokio::spawn(async move {
            p.run(OpOptions::default(), |_ctx| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, ()>(())
            })
            .await
        }));
    }
    for h in handles {
        h.await.expect("task").expect("op succeeds");
        peak = peak.max(pool.limit());
    }
    peak
}

#[tokio::test(start_paused = true)]
async fn a_strategy_named_in_config_drives_the_pool_limit() {
    let cfg: AppConfig = toml::from_str(CONFIG).expect("valid config");
    let pool = Pool::new(cfg.pool).expect("valid pool config");
    cfg.tuning.apply_pool(&pool).expect("valid tuning");
    assert_eq!(pool.limit(), 4);
    // AIMD adds one per successful op while the pool is busy: the limit grows.
    let peak = run_ops(&pool, 400).await;
    assert!(
        peak > 8,
        "AIMD should have raised the limit from 4 (peak {peak})"
    );
    assert!(peak <= 64);
    pool.shutdown().await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn without_a_strategy_the_limit_stays_put() {
    let cfg: AppConfig = toml::from_str(&CONFIG.replace(
        r#"global = "aimd(initial_limit=4, min_limit=1, max_limit=64)""#,
        "",
    ))
    .expect("valid config");
    assert_eq!(cfg.tuning, TuningConfig::default());
    let pool = Pool::new(cfg.pool).expect("valid pool config");
    cfg.tuning.apply_pool(&pool).expect("nothing to attach");
    assert_eq!(run_ops(&pool, 100).await, 4);
}

#[test]
fn a_bad_strategy_in_config_is_a_clear_error() {
    for (bad, says) in [
        (r#"global = "no-such-strategy""#, "no-such-strategy"),
        (r#"global = "aimd(backoff_ratio=2)""#, "backoff_ratio"),
        (r#"global = "aimd(nonsense=1)""#, "nonsense"),
    ] {
        let text = CONFIG.replace(
            r#"global = "aimd(initial_limit=4, min_limit=1, max_limit=64)""#,
            bad,
        );
        let err = match toml::from_str::<AppConfig>(&text) {
            Err(e) => e.to_string(),
            Ok(cfg) => match cfg.tuning.validate() {
                Err(e) => e.to_string(),
                Ok(()) => panic!("{bad} was accepted"),
            },
        };
        assert!(
            err.contains(says),
            "{bad}: error {err:?} should name {says}"
        );
    }
}
