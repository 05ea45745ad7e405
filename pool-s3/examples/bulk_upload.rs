//! Bulk upload of a local directory: every file through the pool, with a
//! progress bar and a closing metrics summary.
//!
//! ```text
//! cargo run -p pool-s3 --example bulk_upload -- --embedded
//! cargo run -p pool-s3 --example bulk_upload -- --bucket my-bucket --prefix backup/ ./data
//! ```
//!
//! With `--embedded` an in-process S3 server is started on 127.0.0.1 and,
//! without a directory, 200 generated files (1 KiB to 2 MiB, one of 20 MiB,
//! uploaded in parts) are uploaded. Options: `shared::OPTIONS`.

pub mod shared;

use futures_util::stream::{self, StreamExt};
use pool_s3::{CallOptions, Client};
use shared::{Args, Transfer};
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "bulk_upload [OPTIONS] [DIR]";

/// Every regular file under `dir`, with its key (`prefix` + its relative path,
/// `/`-separated) and size, in path order.
pub fn files(dir: &Path, prefix: &str) -> std::io::Result<Vec<(PathBuf, String, u64)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let path = entry.path();
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let rel: Vec<_> = rel.iter().map(|c| c.to_string_lossy()).collect();
                out.push((
                    path.clone(),
                    format!("{prefix}{}", rel.join("/")),
                    meta.len(),
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads `files` into `bucket`. All are handed to the pool at once (up to
/// four times its limit, to bound open files): the pool decides how many run,
/// retries what fails and keeps its metrics. `on_done(bytes)` is called per
/// object uploaded.
pub async fn upload(
    client: &Client,
    bucket: &str,
    files: &[(PathBuf, String, u64)],
    on_done: impl Fn(u64),
) -> Transfer {
    let started = Instant::now();
    let window = 4 * client.pool().limit().max(1) as usize;
    let mut results = stream::iter(files)
        .map(|(path, key, size)| async move {
            let r = client.put_file(bucket, key, path, CallOptions::new()).await;
            (key, *size, r)
        })
        .buffer_unordered(window);
    let mut t = Transfer::default();
    while let Some((key, size, r)) = results.next().await {
        match r {
            Ok(_) => {
                t.objects += 1;
                t.bytes += size;
                on_done(size);
            }
            Err(e) => t.failed.push((key.clone(), e.to_string())),
        }
    }
    t.elapsed = started.elapsed();
    t
}

/// The whole example: connect, find (or generate) the files, upload, summarise.
pub async fn run(args: Args) -> Result<String, String> {
    let target = shared::connect(&args).await?;
    let generated;
    let dir = match &args.path {
        Some(p) => p.clone(),
        None if args.embedded => {
            generated = tempfile::tempdir().map_err(|e| e.to_string())?;
            shared::generate(generated.path(), 200).map_err(|e| e.to_string())?;
            generated.path().to_path_buf()
        }
        None => return Err(format!("no directory given; usage: {USAGE}")),
    };
    let files = files(&dir, &args.prefix).map_err(|e| format!("{}: {e}", dir.display()))?;
    let total = files.iter().map(|f| f.2).sum();
    let bar = shared::progress(total, args.quiet, "upload");
    let t = upload(&target.client, &target.bucket, &files, |n| bar.inc(n)).await;
    bar.finish_and_clear();
    shared::finish("upload", &args, &t, &target.client)
}

#[allow(dead_code)] // not called when a test includes this file
fn main() -> std::process::ExitCode {
    shared::main_with(USAGE, run)
}
