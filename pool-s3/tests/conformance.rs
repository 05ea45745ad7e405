//! The seed's S3-client pool tests (reference §10 group I) that have a
//! meaning here; docs/conformance.md maps all twelve.

use crate::common::{bucket, client, data, pool, start};
use pool_core::Event;
use pool_s3::{CallOptions, OpClass};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i02_i04_a_client_runs_on_the_pool_it_was_given_and_starts_idle() {
    let server = start().await;
    let c = client(&server, pool(25));
    assert_eq!(c.pool().limit(), 25);
    let s = c.pool().stats();
    assert_eq!(
        (
            s.queued,
            s.in_flight,
            s.counters.succeeded,
            s.counters.failed
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i08_i10_calls_emit_pool_events_and_resolve_in_order() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "conf").await;
    let mut events = c.pool().subscribe(256);
    let mut got = Vec::new();
    for i in 0..3u64 {
        let key = format!("k{i}");
        c.put("conf", &key, data(8, i), CallOptions::new())
            .await
            .unwrap();
        let k = key.clone();
        let n = c
            .run_sdk(
                OpClass::HEAD,
                CallOptions::new().target("conf", &key),
                |s| {
                    let k = k.clone();
                    async move { s.head_object().bucket("conf").key(k).send().await }
                },
            )
            .await
            .unwrap()
            .content_length();
        got.push(n);
    }
    assert_eq!(got, vec![Some(8); 3]);
    let s = c.pool().stats().counters;
    assert_eq!((s.succeeded, s.failed), (6, 0));
    let (mut started, mut succeeded) = (0, 0);
    while let Some((_, e)) = events.try_recv() {
        match e {
            Event::Started { .. } => started += 1,
            Event::Succeeded { .. } => succeeded += 1,
            _ => {}
        }
    }
    assert_eq!((started, succeeded), (6, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i12_a_high_priority_call_runs_before_queued_low_ones() {
    let server = start().await;
    let c = client(&server, pool(1));
    bucket(&c, "prio").await;
    c.pool().pause();
    let mut tasks = Vec::new();
    for (key, prio) in [("low1", 0), ("low2", 0), ("high", 100)] {
        let c2 = c.clone();
        tasks.push(tokio::spawn(async move {
            c2.exists("prio", key, CallOptions::new().priority(prio))
                .await
        }));
        // Submitted in this order.
        while c.pool().stats().queued < tasks.len() as u64 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    c.pool().resume();
    for t in tasks {
        assert!(!t.await.unwrap().unwrap());
    }
    let order: Vec<String> = server
        .faults
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("HEAD"))
        .cloned()
        .collect();
    assert_eq!(
        order,
        ["HEAD /prio/high", "HEAD /prio/low1", "HEAD /prio/low2"]
    );
}
