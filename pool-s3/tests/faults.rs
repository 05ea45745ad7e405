//! Injected faults (503 SlowDown bursts, 500s, latency, stalls, connection
//! resets, bodies cut mid-stream) between the client and a real S3 server.

use crate::common::{bucket, client, data, pool, start, Fault, Rule};
use pool_core::{ErrorClass, Event, NoRetry};
use pool_s3::{CallOptions, S3Classifier, S3Error};
use std::sync::atomic::Ordering;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowdown_bursts_are_retried_with_backoff() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "flt").await;
    let mut events = c.pool().subscribe(1024);
    server.faults.add(
        Rule::new(Fault::SlowDown)
            .method("PUT")
            .path("/flt/slow")
            .times(2),
    );
    let body = data(5_000, 7);
    c.put("flt", "slow", body.clone(), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(server.faults.count("PUT", "/flt/slow"), 3);
    let s = c.pool().stats().counters;
    assert_eq!((s.throttled, s.retried), (2, 2), "{s:?}");
    // Each retry waited a backoff within the configured cap (100 ms).
    let mut delays = Vec::new();
    while let Some((at, e)) = events.try_recv() {
        if let Event::RetryScheduled { at: when, .. } = e {
            delays.push(when.saturating_duration_since(at));
        }
    }
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert!(
        delays.iter().all(|d| *d <= Duration::from_millis(100)),
        "{delays:?}"
    );
    assert_eq!(
        c.get("flt", "slow", CallOptions::new()).await.unwrap().data,
        body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_resets_and_request_timeouts_are_retried() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "flt").await;
    let body = data(20_000, 8);
    c.put("flt", "k", body.clone(), CallOptions::new())
        .await
        .unwrap();
    let f = &server.faults;
    f.add(
        Rule::new(Fault::Status(500, "InternalError"))
            .method("GET")
            .path("/flt/k")
            .times(1),
    );
    f.add(
        Rule::new(Fault::Reset)
            .method("GET")
            .path("/flt/k")
            .times(1),
    );
    // S3 sends RequestTimeout as HTTP 400: still worth a retry.
    f.add(
        Rule::new(Fault::Status(400, "RequestTimeout"))
            .method("GET")
            .path("/flt/k")
            .times(1),
    );
    let got = c.get("flt", "k", CallOptions::new()).await.unwrap();
    assert_eq!(got.data, body);
    assert_eq!(f.count("GET", "/flt/k"), 4);
    assert_eq!(f.applied(), vec![1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_mid_stream_fails_the_attempt_and_is_retried() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "flt").await;
    let body = data(300_000, 9);
    c.put("flt", "cut", body.clone(), CallOptions::new())
        .await
        .unwrap();
    server.faults.add(
        Rule::new(Fault::CutBody(70_000))
            .method("GET")
            .path("/flt/cut")
            .times(2),
    );
    let got = c.get("flt", "cut", CallOptions::new()).await.unwrap();
    assert!(got.data == body, "bytes differ");
    assert_eq!(server.faults.count("GET", "/flt/cut"), 3);
    assert_eq!(c.pool().stats().counters.attempt_failures, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_is_cut_by_the_pool_timeout_and_retried() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "flt").await;
    c.put("flt", "stall", data(100, 1), CallOptions::new())
        .await
        .unwrap();
    server.faults.add(
        Rule::new(Fault::Delay(Duration::from_secs(30)))
            .method("GET")
            .path("/flt/stall")
            .times(1),
    );
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let got = c.get("flt", "stall", opts).await.unwrap();
    assert_eq!(got.data.len(), 100);
    assert_eq!(c.pool().stats().counters.timed_out, 1);
    assert_eq!(server.faults.count("GET", "/flt/stall"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_failures_carry_their_cause_and_attempt_count() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "flt").await;
    server.faults.add(
        Rule::new(Fault::Status(500, "InternalError"))
            .method("PUT")
            .path("/flt/down"),
    );
    let err = c
        .put("flt", "down", data(10, 1), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 4, "{err}");
    match &err {
        pool_s3::PoolError::Failed {
            last, class, why, ..
        } => {
            assert_eq!(
                (last.status(), last.code()),
                (Some(500), Some("InternalError"))
            );
            assert_eq!(*class, ErrorClass::Transient);
            assert_eq!(*why, NoRetry::AttemptsExhausted);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("4 attempt"), "{err}");
    assert!(err.to_string().contains("InternalError"), "{err}");

    server.faults.add(
        Rule::new(Fault::Status(403, "AccessDenied"))
            .method("GET")
            .path("/flt/denied"),
    );
    let err = c
        .get("flt", "denied", CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.source_error().unwrap().code(), Some("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_known_not_sent() {
    let free = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let endpoint = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let cfg = pool_s3::Config::new("us-east-1")
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials(pool_s3::CredentialsSource::fixed("test", "testtest"))
        .settings(crate::common::settings());
    let c = pool_s3::Client::new(&cfg, pool(2)).unwrap();
    let err = c
        .get("bbb", "k", CallOptions::new().max_attempts(1))
        .await
        .unwrap_err();
    let last = err.source_error().expect("an S3 error");
    assert!(
        matches!(last, S3Error::Dispatch { not_sent: true, .. }),
        "{last:?}"
    );
    let class = pool_core::Classifier::classify(&S3Classifier, last);
    assert!(!class.may_have_reached_server);
    // So even a non-idempotent call is retried.
    let err = c
        .run_sdk(
            pool_s3::OpClass::PUT,
            CallOptions::new().not_idempotent().max_attempts(3),
            |s| async move { s.put_object().bucket("bbb").key("k").send().await },
        )
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 3, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_retry_alone_and_a_failed_upload_is_aborted() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "mpu").await;
    let body = data(16 * MIB, 11);
    let f = &server.faults;
    f.add(
        Rule::new(Fault::SlowDown)
            .method("PUT")
            .path("partNumber=2")
            .times(2),
    );
    let put = c
        .put("mpu", "ok", body.clone(), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(put.parts, 4);
    assert_eq!(f.count("PUT", "partNumber=2"), 3);
    assert_eq!(f.count("PUT", "partNumber=1"), 1);
    assert!(
        c.download("mpu", "ok", CallOptions::new())
            .await
            .unwrap()
            .data
            == body
    );

    f.clear();
    f.add(
        Rule::new(Fault::Status(500, "InternalError"))
            .method("PUT")
            .path("partNumber=3"),
    );
    let err = c
        .put("mpu", "bad", body.clone(), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 4, "the part's attempts: {err}");
    assert_eq!(err.source_error().unwrap().status(), Some(500), "{err:?}");
    assert_eq!(
        f.count("DELETE", "/mpu/bad?x-id=AbortMultipartUpload"),
        1,
        "aborted"
    );
    assert!(!c.exists("mpu", "bad", CallOptions::new()).await.unwrap());
    assert_eq!(c.pool().stats().live_ops, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_multipart_upload_is_aborted() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "mpu").await;
    let f = &server.faults;
    f.add(
        Rule::new(Fault::Delay(Duration::from_secs(30)))
            .method("PUT")
            .path("partNumber=2"),
    );
    let put = c.put("mpu", "gone", data(12 * MIB, 3), CallOptions::new());
    // The caller gives up (drops the future) while part 2 hangs.
    assert!(tokio::time::timeout(Duration::from_millis(500), put)
        .await
        .is_err());
    let mut waited = 0;
    while f.count("DELETE", "/mpu/gone?x-id=AbortMultipartUpload") == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(
        f.count("DELETE", "/mpu/gone?x-id=AbortMultipartUpload"),
        1,
        "aborted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_nothing_acknowledged_is_lost() {
    let server = start().await;
    let c = client(&server, pool(8));
    bucket(&c, "chaos").await;
    let f = &server.faults;
    f.add(Rule::new(Fault::SlowDown).every(7));
    f.add(Rule::new(Fault::Status(500, "InternalError")).every(11));
    f.add(Rule::new(Fault::Reset).every(13));
    f.add(Rule::new(Fault::ResetAfterApply).method("PUT").every(5));
    f.add(Rule::new(Fault::CutBody(1_000)).method("GET").every(4));
    f.add(Rule::new(Fault::Delay(Duration::from_millis(20))).every(3));
    let items: Vec<(String, bytes::Bytes)> = (0..120u64)
        .map(|i| {
            let len = if i % 40 == 0 {
                7 * MIB
            } else {
                2_000 + (i as usize * 997) % 30_000
            };
            (format!("k/{i}"), data(len, i))
        })
        .collect();
    let puts = items
        .iter()
        .map(|(k, b)| c.put("chaos", k, b.clone(), CallOptions::new()));
    let results = futures_util::future::join_all(puts).await;
    let acked: Vec<_> = items
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert!(
        acked.len() >= 100,
        "only {} of 120 acknowledged",
        acked.len()
    );
    // Reads under the same faults (cut bodies included) return the exact bytes.
    for (k, b) in &acked {
        let got = c.download("chaos", k, CallOptions::new()).await;
        if let Ok(got) = got {
            assert!(got.data == *b, "{k} differs");
        }
    }
    f.clear();
    for (k, b) in &acked {
        let got = c.get("chaos", k, CallOptions::new()).await.unwrap();
        assert!(got.data == *b, "{k} differs");
    }
    assert!(
        f.applied().iter().all(|&n| n > 0),
        "every fault fired: {:?}",
        f.applied()
    );
    assert_eq!(c.pool().stats().live_ops, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_one_pool_never_exceed_its_limit() {
    let server = start().await;
    let shared = pool(4);
    let clients: Vec<_> = (0..3).map(|_| client(&server, shared.clone())).collect();
    for (i, c) in clients.iter().enumerate() {
        bucket(c, &format!("tenant{i}")).await;
    }
    server.faults.latency_ms.store(10, Ordering::SeqCst);
    server.faults.max_in_flight.store(0, Ordering::SeqCst);
    let puts = clients.iter().enumerate().flat_map(|(i, c)| {
        (0..20).map(move |k| async move {
            c.put(
                &format!("tenant{i}"),
                &format!("k{k}"),
                data(100, k),
                CallOptions::new(),
            )
            .await
        })
    });
    for r in futures_util::future::join_all(puts).await {
        r.unwrap();
    }
    let max = server.faults.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 4, "{max} requests at once through a pool of 4");
    assert!(max >= 2, "the pool ran them concurrently ({max})");

    // The seed's design, one pool per client, multiplies the limit (F40).
    let own: Vec<_> = (0..3).map(|_| client(&server, pool(4))).collect();
    server.faults.max_in_flight.store(0, Ordering::SeqCst);
    let puts = own.iter().enumerate().flat_map(|(i, c)| {
        (0..20).map(move |k| async move {
            c.put(
                &format!("tenant{i}"),
                &format!("j{k}"),
                data(100, k),
                CallOptions::new(),
            )
            .await
        })
    });
    for r in futures_util::future::join_all(puts).await {
        r.unwrap();
    }
    assert!(server.faults.max_in_flight.load(Ordering::SeqCst) > 4);
}
