//! The pool's strategy named in the client's config (`Config::strategy`, the
//! pool-tuning registry) is attached and moves the limit.

use crate::common::{bucket, config, data, pool, start, Fault, Rule};
use pool_s3::{CallOptions, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_strategy_is_attached_and_moves_the_limit() {
    let server = start().await;
    let cfg = config(&server)
        .strategy("aimd(initial_limit=4, min_limit=2, max_limit=64, backoff_ratio=0.5)");
    let c = Client::new(&cfg, pool(64)).unwrap();
    assert_eq!(
        c.pool().limit(),
        4,
        "AIMD's initial limit replaced the pool's"
    );
    bucket(&c, "strat").await;

    // A busy pool: each successful sample adds one.
    let c2 = &c;
    let puts = (0..64u64).map(|i| async move {
        c2.put("strat", &format!("k{i}"), data(256, i), CallOptions::new())
            .await
    });
    for r in futures_util::future::join_all(puts).await {
        r.unwrap();
    }
    let grown = c.pool().limit();
    assert!(grown > 4, "AIMD grew the limit under load: {grown}");

    // Throttles halve it.
    server
        .faults
        .add(Rule::new(Fault::SlowDown).method("GET").times(2));
    c.get("strat", "k0", CallOptions::new()).await.unwrap();
    let cut = c.pool().limit();
    assert!(cut <= (grown / 2).max(2), "SlowDown cut {grown} to {cut}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_strategy_is_a_config_error_naming_the_field() {
    let server = start().await;
    let p = pool(7);
    let e = Client::new(&config(&server).strategy("aimdd"), p.clone()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("strategy = \"aimdd\""), "{msg}");
    assert!(
        msg.contains("unknown strategy") && msg.contains("aimd, vegas"),
        "{msg}"
    );
    // A rate gate where a controller goes, and a bad parameter.
    let e = Client::new(&config(&server).strategy("vegas(alpha=-1)"), p.clone()).unwrap_err();
    assert!(e.to_string().contains("strategy"), "{e}");
    let e = Client::new(&config(&server).strategy("aws-adaptive@get"), p.clone()).unwrap_err();
    assert!(e.to_string().contains("rate gates go"), "{e}");
    // Nothing was attached.
    assert_eq!(p.limit(), 7);
}
