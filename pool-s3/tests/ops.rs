//! Every operation end to end against the embedded s3s-fs server.

use crate::common::{bucket, client, data, pool, start};
use futures_util::TryStreamExt;
use pool_s3::{CallOptions, ListRequest, OpClass};

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_head_exists_delete() {
    let server = start().await;
    let c = client(&server, pool(8));
    bucket(&c, "ops").await;
    let body = data(10_000, 1);
    let put = c
        .put("ops", "a/b.bin", body.clone(), CallOptions::new())
        .await
        .unwrap();
    assert!(put.e_tag.is_some());
    assert_eq!(put.parts, 0);

    let got = c
        .get("ops", "a/b.bin", CallOptions::new().priority(5))
        .await
        .unwrap();
    assert_eq!(got.data, body);
    assert_eq!(got.object_size, Some(10_000));
    assert_eq!(got.e_tag, put.e_tag);

    let part = c
        .get_range("ops", "a/b.bin", 100..300, CallOptions::new())
        .await
        .unwrap();
    assert_eq!(part.data, body.slice(100..300));
    assert_eq!(part.object_size, Some(10_000));
    assert!(c
        .get_range("ops", "a/b.bin", 5..5, CallOptions::new())
        .await
        .is_err());

    let head = c.head("ops", "a/b.bin", CallOptions::new()).await.unwrap();
    assert_eq!(head.content_length(), Some(10_000));
    assert!(c
        .exists("ops", "a/b.bin", CallOptions::new())
        .await
        .unwrap());

    c.delete("ops", "a/b.bin", CallOptions::new())
        .await
        .unwrap();
    let before = server.faults.count("HEAD", "/ops/a/b.bin");
    assert!(!c
        .exists("ops", "a/b.bin", CallOptions::new())
        .await
        .unwrap());
    // A 404 is an answer: one request, never retried (seed flaw F17).
    assert_eq!(server.faults.count("HEAD", "/ops/a/b.bin"), before + 1);

    let missing = c
        .get("ops", "a/b.bin", CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(missing.attempts(), 1, "{missing}");
    assert!(missing.source_error().unwrap().is_not_found(), "{missing}");
    let stats = c.pool().stats();
    assert_eq!(stats.live_ops, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_and_parallel_download_of_64_mib_are_byte_identical() {
    let server = start().await;
    let c = client(&server, pool(8));
    bucket(&c, "big").await;
    let body = data(64 * MIB + 12_345, 2);
    let put = c
        .put("big", "large.bin", body.clone(), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(put.parts, 13);
    assert!(put.e_tag.as_deref().unwrap().ends_with("-13\""), "{put:?}");
    assert_eq!(server.faults.count("PUT", "partNumber="), 13);

    let got = c
        .download("big", "large.bin", CallOptions::new())
        .await
        .unwrap();
    assert_eq!(got.object_size, Some(body.len() as u64));
    assert!(got.data == body, "downloaded bytes differ");
    // Ranged GETs, not one whole-object GET.
    assert_eq!(server.faults.count("GET", "/big/large.bin"), 13);
    // The two coordinators (upload, download) ran an attempt each, counted but
    // kept out of the latency histograms: only real requests are samples.
    let snap = c.pool().metrics();
    let started: u64 = snap.classes.iter().map(|k| k.counters.started).sum();
    let sampled: u64 = snap.classes.iter().map(|k| k.attempt_latency.count).sum();
    assert_eq!(started - sampled, 2, "{snap:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.bin");
    let n = c
        .download_to_file("big", "large.bin", &path, CallOptions::new())
        .await
        .unwrap();
    assert_eq!(n, body.len() as u64);
    assert!(
        std::fs::read(&path).unwrap() == body[..],
        "file bytes differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_file_single_and_multipart_and_small_downloads() {
    let server = start().await;
    let c = client(&server, pool(8));
    bucket(&c, "files").await;
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("small", 3_000usize), ("large", 11 * MIB + 7), ("empty", 0)] {
        let body = data(len, len as u64);
        let path = dir.path().join(name);
        std::fs::write(&path, &body).unwrap();
        let put = c
            .put_file("files", name, &path, CallOptions::new())
            .await
            .unwrap();
        assert_eq!(put.parts, if len > 6 * MIB { 3 } else { 0 }, "{name}");
        let got = c.download("files", name, CallOptions::new()).await.unwrap();
        assert_eq!(got.data.len(), len, "{name}");
        assert!(got.data == body, "{name} differs");
    }
    let missing = c
        .put_file("files", "x", &dir.path().join("nope"), CallOptions::new())
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_single_and_multipart() {
    let server = start().await;
    let c = client(&server, pool(8));
    bucket(&c, "src").await;
    bucket(&c, "dst").await;
    let small = data(4_000, 3);
    let large = data(12 * MIB + 1, 4);
    c.put("src", "small key+1", small.clone(), CallOptions::new())
        .await
        .unwrap();
    c.put("src", "dir/large", large.clone(), CallOptions::new())
        .await
        .unwrap();

    let out = c
        .copy("src", "small key+1", "dst", "s", CallOptions::new())
        .await
        .unwrap();
    assert_eq!(out.parts, 0);
    assert_eq!(
        c.get("dst", "s", CallOptions::new()).await.unwrap().data,
        small
    );

    let out = c
        .copy("src", "dir/large", "dst", "l", CallOptions::new())
        .await
        .unwrap();
    assert_eq!(out.parts, 3);
    let got = c.download("dst", "l", CallOptions::new()).await.unwrap();
    assert!(got.data == large, "multipart copy differs");

    let missing = c
        .copy("src", "nope", "dst", "n", CallOptions::new())
        .await
        .unwrap_err();
    assert!(missing.source_error().unwrap().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_streams_across_pages_and_delete_objects_batches() {
    let server = start().await;
    let c = client(&server, pool(16));
    bucket(&c, "many").await;
    let keys: Vec<String> = (0..1_205).map(|i| format!("p/{i:05}")).collect();
    let puts = keys
        .iter()
        .map(|k| c.put("many", k, data(16, 0), CallOptions::new()));
    for r in futures_util::future::join_all(puts).await {
        r.unwrap();
    }
    c.put("many", "other", data(1, 0), CallOptions::new())
        .await
        .unwrap();

    let req = ListRequest {
        max_keys: Some(500),
        ..ListRequest::prefix("p/")
    };
    let listed: Vec<String> = c
        .list("many", req, CallOptions::new())
        .map_ok(|o| o.key.unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, keys);
    assert_eq!(server.faults.count("GET", "list-type=2"), 3);
    assert!(c.pool().metrics().counters.succeeded > 0);

    let report = c
        .delete_objects("many", keys.clone(), CallOptions::new())
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.deleted.len(), keys.len());
    // Two batches (1,000 + 205 keys), and no HEAD per key (seed flaw F37).
    assert_eq!(server.faults.count("POST", "delete"), 2);
    assert_eq!(server.faults.count("HEAD", "/many/"), 0);
    let left: Vec<_> = c
        .list("many", ListRequest::default(), CallOptions::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sdk_runs_any_operation_through_the_pool() {
    let server = start().await;
    let c = client(&server, pool(4));
    bucket(&c, "gen").await;
    c.put("gen", "k", data(10, 5), CallOptions::new())
        .await
        .unwrap();
    let before = c.pool().stats().counters.succeeded;
    let out = c
        .run_sdk(
            OpClass::HEAD,
            CallOptions::new().priority(3).target("gen", "k"),
            |sdk| async move { sdk.head_object().bucket("gen").key("k").send().await },
        )
        .await
        .unwrap();
    assert_eq!(out.content_length(), Some(10));
    assert_eq!(c.pool().stats().counters.succeeded, before + 1);
    let err = c
        .run_sdk(OpClass::GET, CallOptions::new(), |sdk| async move {
            sdk.get_object().bucket("gen").key("missing").send().await
        })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.source_error().unwrap().code(), Some("NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_contains_credentials() {
    let server = start().await;
    let cfg = crate::common::config(&server).credentials(pool_s3::CredentialsSource::Static {
        access_key_id: "AKIDLEAKCHECK".into(),
        secret_access_key: "SECRETLEAKCHECK".into(),
        session_token: Some("TOKENLEAKCHECK".into()),
    });
    let c = pool_s3::Client::new(&cfg, pool(2)).unwrap();
    // A failed call's error (the server does not know these keys) too.
    let err = c
        .get("nobucket", "k", CallOptions::new())
        .await
        .unwrap_err();
    let all = format!("{cfg:?} {c:?} {err:?} {err}");
    for s in ["AKIDLEAKCHECK", "SECRETLEAKCHECK", "TOKENLEAKCHECK"] {
        assert!(!all.contains(s), "{s} leaked: {all}");
    }
}
