//! The bulk examples end to end against the embedded server: their own
//! functions, run as `cargo run --example … -- --embedded` would run them.

#[path = "../examples/bulk_download.rs"]
mod bulk_download;
#[path = "../examples/bulk_upload.rs"]
mod bulk_upload;

use bulk_upload::shared;
use std::path::Path;

fn args(list: &[&str]) -> shared::Args {
    shared::parse(list.iter().map(|s| s.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_download_a_directory_round_trips() {
    let src = tempfile::tempdir().unwrap();
    shared::generate(src.path(), 24).unwrap();
    let a = args(&["--embedded", "--quiet", "--prefix", "up/", "--limit", "8"]);
    let target = shared::connect(&a).await.unwrap();
    let (c, b) = (&target.client, target.bucket.as_str());

    let files = bulk_upload::files(src.path(), "up/").unwrap();
    assert_eq!(files.len(), 24);
    assert!(
        files.iter().any(|f| f.1 == "up/part-1/file-00001.bin"),
        "{files:?}"
    );
    let total: u64 = files.iter().map(|f| f.2).sum();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let up = bulk_upload::upload(c, b, &files, |n| {
        seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .await;
    assert!(up.failed.is_empty(), "{:?}", up.failed);
    assert_eq!((up.objects, up.bytes), (24, total));
    assert_eq!(seen.into_inner(), total, "progress saw every byte");

    let listed = bulk_download::objects(c, b, "up/").await.unwrap();
    assert_eq!(listed.len(), 24);
    let dest = tempfile::tempdir().unwrap();
    let down = bulk_download::download(c, b, "up/", &listed, dest.path(), |_| {}).await;
    assert!(down.failed.is_empty(), "{:?}", down.failed);
    assert_eq!((down.objects, down.bytes), (24, total));
    for (path, key, _) in &files {
        let rel = key.strip_prefix("up/").unwrap();
        let got = std::fs::read(dest.path().join(rel)).unwrap();
        assert_eq!(got, std::fs::read(path).unwrap(), "{key} differs");
    }

    let m = c.pool().metrics();
    let s = shared::summary("uploaded", &up, &m);
    assert!(s.starts_with("uploaded 24 objects"), "{s}");
    for col in ["p50 ms", "p99 ms", "retries", "throttled", "put", "get"] {
        assert!(s.contains(col), "{col} missing in\n{s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_run_as_documented_with_embedded() {
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("metrics.json");
    let snap_arg = snap.to_str().unwrap();
    let up = bulk_upload::run(args(&["--embedded", "--quiet", "--metrics-out", snap_arg]))
        .await
        .unwrap();
    assert!(up.starts_with("uploaded 200 objects"), "{up}");
    let m = pool_s3::read_metrics_snapshot(&snap).unwrap();
    assert!(m.counters.succeeded >= 200, "{:?}", m.counters);

    let dest = out.path().join("restore");
    // Each example includes its own copy of `shared`.
    let down_args = [
        "--embedded",
        "--quiet",
        "--strategy",
        "aimd(initial_limit=16)",
        dest.to_str().unwrap(),
    ];
    let down_args = bulk_download::shared::parse(down_args.iter().map(|s| s.to_string()));
    let down = bulk_download::run(down_args.unwrap()).await.unwrap();
    assert!(down.starts_with("downloaded 200 objects"), "{down}");
    assert_eq!(
        count_files(&dest.join("bulk/seed")),
        0,
        "keys lose their prefix"
    );
    assert_eq!(count_files(&dest.join("seed")), 200);
}

#[test]
fn bad_arguments_and_unsafe_keys_are_refused() {
    let e = shared::parse(["--limit".to_string(), "0".into(), "--embedded".into()]).unwrap_err();
    assert!(e.contains("--limit"), "{e}");
    assert!(shared::parse(["x".to_string()])
        .unwrap_err()
        .contains("--bucket"));
    let d = Path::new("/tmp/dest");
    assert_eq!(
        bulk_download::local_path(d, "p/", "p/a/b"),
        Some(d.join("a/b"))
    );
    assert_eq!(bulk_download::local_path(d, "p/", "p/../x"), None);
    assert_eq!(bulk_download::local_path(d, "p/", "p/"), None);
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}
