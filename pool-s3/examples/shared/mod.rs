//! What the bulk examples share: command-line options, connecting to an
//! embedded s3s-fs server or a real endpoint, demo data, the progress bar and
//! the closing metrics summary.
#![allow(dead_code)]

/// The embedded S3 server of the crate's tests (s3s-fs on 127.0.0.1:0).
#[path = "../../tests/common/mod.rs"]
pub mod server;

use pool_core::{EngineConfig, MetricsSnapshot, Pool};
use pool_s3::{Client, Config, CredentialsSource, Settings};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command-line options of both examples.
#[derive(Clone, Debug, Default)]
pub struct Args {
    /// Start an in-process S3 server on 127.0.0.1 instead of using the
    /// environment's endpoint and credentials.
    pub embedded: bool,
    pub bucket: Option<String>,
    /// Key prefix uploaded under or downloaded from.
    pub prefix: String,
    /// The pool's concurrency limit.
    pub limit: u32,
    /// The pool's strategy by name (`Config::strategy`), e.g. `aimd`.
    pub strategy: Option<String>,
    /// Where to write the pool's metrics snapshot (JSON, for pool-sim).
    pub metrics_out: Option<PathBuf>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// The local directory (upload source, download destination).
    pub path: Option<PathBuf>,
}

pub const OPTIONS: &str = "options:
  --embedded          start an in-process S3 server (s3s-fs) on 127.0.0.1; without it
                      the endpoint and credentials come from the environment:
                      S3_ENDPOINT (optional), AWS_REGION (default us-east-1),
                      S3_FORCE_PATH_STYLE=1, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
  --bucket NAME       bucket (default with --embedded: demo)
  --prefix P          key prefix (default: bulk/)
  --limit N           the pool's concurrency limit (default 32)
  --strategy SPEC     the pool's adaptive strategy, e.g. aimd or \"vegas(alpha=3)\"
  --metrics-out FILE  write the pool's metrics snapshot (JSON; pool-sim replays it)
  --quiet             no progress bar";

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        prefix: "bulk/".into(),
        limit: 32,
        ..Args::default()
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--embedded" => a.embedded = true,
            "--quiet" => a.quiet = true,
            "--bucket" => a.bucket = Some(value("--bucket")?),
            "--prefix" => a.prefix = value("--prefix")?,
            "--limit" => {
                let v = value("--limit")?;
                a.limit = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--limit must be a positive number, got {v:?}"))?;
            }
            "--strategy" => a.strategy = Some(value("--strategy")?),
            "--metrics-out" => a.metrics_out = Some(value("--metrics-out")?.into()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if a.path.is_none() => a.path = Some(s.into()),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    if !a.embedded && a.bucket.is_none() {
        return Err("--bucket is required without --embedded".into());
    }
    Ok(a)
}

/// A client and the bucket to use (and the embedded server, kept running).
pub struct Target {
    pub client: Client,
    pub bucket: String,
    pub server: Option<server::Server>,
}

/// Connects as `args` say: an embedded server (with a fresh bucket) or the
/// environment's endpoint and credentials.
pub async fn connect(args: &Args) -> Result<Target, String> {
    let pool = Pool::new(
        EngineConfig::builder()
            .limit(args.limit)
            .build()
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let (config, server) = if args.embedded {
        let s = server::start().await;
        let config = server::config(&s).settings(Settings::default());
        (config, Some(s))
    } else {
        let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let mut c = Config::new(env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()))
            .credentials(CredentialsSource::Environment)
            .force_path_style(env("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "1"));
        if let Some(url) = env("S3_ENDPOINT") {
            c = c.endpoint_url(url);
        }
        (c, None)
    };
    let mut config = config;
    config.strategy = args.strategy.clone();
    let client = Client::new(&config, pool).map_err(|e| e.to_string())?;
    let bucket = args.bucket.clone().unwrap_or_else(|| "demo".into());
    if server.is_some() {
        server::bucket(&client, &bucket).await;
    }
    Ok(Target {
        client,
        bucket,
        server,
    })
}

/// Writes `count` files of assorted sizes (1 KiB to 2 MiB, and one of
/// 20 MiB, uploaded in parts) under `dir`, some in subdirectories.
pub fn generate(dir: &Path, count: usize) -> std::io::Result<u64> {
    let mut total = 0;
    for i in 0..count {
        let sub = dir.join(format!("part-{}", i % 4));
        std::fs::create_dir_all(&sub)?;
        let len = if i == 0 { 20 << 20 } else { 1024 << (i % 12) };
        std::fs::write(
            sub.join(format!("file-{i:05}.bin")),
            server::data(len, i as u64),
        )?;
        total += len as u64;
    }
    Ok(total)
}

/// A progress bar in bytes (hidden with `--quiet` or when stderr is no
/// terminal).
pub fn progress(total: u64, quiet: bool, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// What a bulk transfer did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transfer {
    pub objects: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// (key, error) of each object that failed.
    pub failed: Vec<(String, String)>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

/// The closing summary: throughput, then per class the attempts, p50/p99
/// attempt latency, retries and throttles, from the pool's metrics.
pub fn summary(verb: &str, t: &Transfer, m: &MetricsSnapshot) -> String {
    let secs = t.elapsed.as_secs_f64().max(1e-9);
    let mut s = format!(
        "{verb} {} objects, {:.1} MiB in {secs:.2} s: {:.1} MiB/s, {:.0} objects/s, {} failed\n",
        t.objects,
        t.bytes as f64 / (1024.0 * 1024.0),
        t.bytes as f64 / (1024.0 * 1024.0) / secs,
        t.objects as f64 / secs,
        t.failed.len()
    );
    s.push_str(&format!(
        "{:<16}{:>9}{:>9}{:>9}{:>9}{:>10}{:>9}\n",
        "class", "attempts", "p50 ms", "p99 ms", "retries", "throttled", "failed"
    ));
    for c in &m.classes {
        let name = c.name.clone().unwrap_or_else(|| c.class.to_string());
        let h = &c.attempt_latency;
        s.push_str(&format!(
            "{name:<16}{:>9}{:>9.1}{:>9.1}{:>9}{:>10}{:>9}\n",
            c.counters.started,
            ms(h.p50),
            ms(h.p99),
            c.counters.retried,
            c.counters.throttled,
            c.counters.failed
        ));
    }
    let k = &m.counters;
    s.push_str(&format!(
        "pool: {} ops, {} attempts, {} retries, {} throttled, {} timed out, {} failed",
        k.submitted, k.started, k.retried, k.throttled, k.timed_out, k.failed
    ));
    s
}

/// Ends a transfer of `what` ("upload", "download"): prints its first failures,
/// writes the metrics snapshot where `--metrics-out` says, and returns the
/// summary, as an error if any object failed.
pub fn finish(what: &str, args: &Args, t: &Transfer, c: &Client) -> Result<String, String> {
    for (key, e) in t.failed.iter().take(5) {
        eprintln!("failed: {key}: {e}");
    }
    let m = c.pool().metrics();
    if let Some(path) = &args.metrics_out {
        pool_s3::write_metrics_snapshot(&m, path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let s = summary(&format!("{what}ed"), t, &m);
    if t.failed.is_empty() {
        Ok(s)
    } else {
        Err(format!("{s}\n{} {what}s failed", t.failed.len()))
    }
}

/// Runs an example's async body on a multi-thread runtime, printing its
/// summary or its error (exit status 1, 2 for bad arguments).
pub fn main_with<F, Fut>(usage: &str, body: F) -> std::process::ExitCode
where
    F: FnOnce(Args) -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\nusage: {usage}\n{OPTIONS}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(body(args)) {
        Ok(summary) => {
            println!("{summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
