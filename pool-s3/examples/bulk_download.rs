//! Bulk download of every object under a prefix into a local directory,
//! through the pool, with a progress bar and a closing metrics summary.
//!
//! ```text
//! cargo run -p pool-s3 --example bulk_download -- --embedded
//! cargo run -p pool-s3 --example bulk_download -- --bucket my-bucket --prefix backup/ ./restore
//! ```
//!
//! With `--embedded` an in-process S3 server is started on 127.0.0.1 and the
//! prefix is first filled with 200 generated objects; without a directory
//! they are downloaded into a temporary one. Options: `shared::OPTIONS`.

pub mod shared;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use pool_s3::{CallOptions, Client, ListRequest};
use shared::{Args, Transfer};
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "bulk_download [OPTIONS] [DIR]";

/// Every object under `prefix` (key, size), listed through the pool.
pub async fn objects(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> pool_s3::Result<Vec<(String, u64)>> {
    client
        .list(bucket, ListRequest::prefix(prefix), CallOptions::new())
        .map_ok(|o| {
            let size = o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
            (o.key.unwrap_or_default(), size)
        })
        .try_collect()
        .await
}

/// Where `key` goes under `dest`: its part after `prefix`, refusing `..` and
/// absolute paths so a key can never write outside `dest`.
pub fn local_path(dest: &Path, prefix: &str, key: &str) -> Option<PathBuf> {
    let rel = key.strip_prefix(prefix).unwrap_or(key);
    let mut p = dest.to_path_buf();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => p.push(s),
        }
    }
    (p != dest).then_some(p)
}

/// Downloads `objects` into `dest` (large ones as parallel ranged GETs, each
/// range a child op). All are handed to the pool at once, up to four times its
/// limit; `on_done(bytes)` is called per object written.
pub async fn download(
    client: &Client,
    bucket: &str,
    prefix: &str,
    objects: &[(String, u64)],
    dest: &Path,
    on_done: impl Fn(u64),
) -> Transfer {
    let started = Instant::now();
    let window = 4 * client.pool().limit().max(1) as usize;
    let mut results = stream::iter(objects)
        .map(|(key, _)| async move {
            let Some(path) = local_path(dest, prefix, key) else {
                return (key, Err(format!("unsafe key {key:?} skipped")));
            };
            if let Some(dir) = path.parent() {
                if let Err(e) = tokio::fs::create_dir_all(dir).await {
                    return (key, Err(format!("{}: {e}", dir.display())));
                }
            }
            let r = client
                .download_to_file(bucket, key, &path, CallOptions::new())
                .await
                .map_err(|e| e.to_string());
            (key, r)
        })
        .buffer_unordered(window);
    let mut t = Transfer::default();
    while let Some((key, r)) = results.next().await {
        match r {
            Ok(n) => {
                t.objects += 1;
                t.bytes += n;
                on_done(n);
            }
            Err(e) => t.failed.push((key.clone(), e)),
        }
    }
    t.elapsed = started.elapsed();
    t
}

/// The whole example: connect (seeding the embedded server), list, download,
/// summarise.
pub async fn run(args: Args) -> Result<String, String> {
    let target = shared::connect(&args).await?;
    if let Some(server) = &target.server {
        // Something to download: generated files put under the prefix, by a
        // client on a pool of its own so the summary counts only the download.
        let src = tempfile::tempdir().map_err(|e| e.to_string())?;
        shared::generate(src.path(), 200).map_err(|e| e.to_string())?;
        let seeder = shared::server::client(server, shared::server::pool(32));
        let (c, b, prefix) = (&seeder, target.bucket.as_str(), &args.prefix);
        let files = walk(src.path());
        stream::iter(files.iter().enumerate())
            .map(|(i, path)| async move {
                let key = format!("{prefix}seed/{i:05}");
                c.put_file(b, &key, path, CallOptions::new()).await
            })
            .buffer_unordered(64)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| e.to_string())?;
    }
    let temp;
    let dest = match &args.path {
        Some(p) => p.clone(),
        None if args.embedded => {
            temp = tempfile::tempdir().map_err(|e| e.to_string())?;
            temp.path().to_path_buf()
        }
        None => return Err(format!("no directory given; usage: {USAGE}")),
    };
    let list = objects(&target.client, &target.bucket, &args.prefix)
        .await
        .map_err(|e| format!("listing {}: {e}", args.prefix))?;
    let total = list.iter().map(|o| o.1).sum();
    let bar = shared::progress(total, args.quiet, "download");
    let t = download(
        &target.client,
        &target.bucket,
        &args.prefix,
        &list,
        &dest,
        |n| bar.inc(n),
    )
    .await;
    bar.finish_and_clear();
    shared::finish("download", &args, &t, &target.client)
}

/// The files under `dir`, in path order.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[allow(dead_code)] // not called when a test includes this file
fn main() -> std::process::ExitCode {
    shared::main_with(USAGE, run)
}
