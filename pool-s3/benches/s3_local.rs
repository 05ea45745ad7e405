//! 4 KiB PUT and GET at concurrency 32 against the embedded s3s-fs server: the
//! pooled client (limit 32) against the bare SDK with `buffer_unordered(32)`.
//! Runs alternate (pool, raw, raw, pool, …: each pair swaps who goes first)
//! because this machine's throughput swings by 20–40 % from run to run; the
//! figure is the median over pairs of pool throughput ÷ raw throughput.
//!
//! `cargo bench -p pool-s3 --bench s3_local` prints, after the per-run lines:
//!
//! ```text
//! put: pool/raw = 0.97 (median of 11 pairs)
//! put: cpu per op pool/raw = 1.01 (median of 11 pairs; lower is better)
//! get: pool/raw = 0.98 (median of 11 pairs)
//! get: cpu per op pool/raw = 1.00 (median of 11 pairs; lower is better)
//! ```
//!
//! The CPU line (client and server together, from Linux `schedstat`) is the
//! steadier of the two on a busy machine: it is what the pool adds per call.
//!
//! `S3_BENCH_PAIRS` (default 11) and `S3_BENCH_OPS` (ops per run, default
//! 1500: short runs keep the two halves of a pair close together in time)
//! change the amount of work; `S3_BENCH_ONLY=put|get` runs one op;
//! `S3_BENCH_WINDOW=N` hands the pool N ops at a time instead of all at once.

#[path = "../tests/common/mod.rs"]
mod common;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use pool_core::{EngineConfig, Pool};
use pool_s3::{CallOptions, Client, Settings};
use std::time::Instant;

const SIZE: usize = 4 * 1024;
const CONCURRENCY: usize = 32;
const BUCKET: &str = "bench";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn key(i: usize) -> String {
    format!("obj/{i:06}")
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Put,
    Get,
}

/// The pooled client: every op submitted at once, the pool runs 32.
async fn pooled(c: &Client, op: Op, ops: usize, body: &Bytes) {
    let window = env_or("S3_BENCH_WINDOW", ops);
    let mut done = stream::iter(0..ops)
        .map(|i| async move {
            let k = key(i);
            match op {
                Op::Put => c
                    .put(BUCKET, &k, body.clone(), CallOptions::new())
                    .await
                    .map(|_| ()),
                Op::Get => c
                    .get(BUCKET, &k, CallOptions::new())
                    .await
                    .map(|g| assert_eq!(g.data.len(), SIZE)),
            }
        })
        .buffer_unordered(window);
    while let Some(r) = done.next().await {
        r.expect("pooled call failed");
    }
}

/// The bare SDK: 32 at a time, each GET reading its whole body.
async fn raw(sdk: &aws_sdk_s3::Client, op: Op, ops: usize, body: &Bytes) {
    let mut done = stream::iter(0..ops)
        .map(|i| async move {
            let k = key(i);
            match op {
                Op::Put => {
                    sdk.put_object()
                        .bucket(BUCKET)
                        .key(k)
                        .body(body.clone().into())
                        .send()
                        .await
                        .expect("raw put failed");
                }
                Op::Get => {
                    let out = sdk
                        .get_object()
                        .bucket(BUCKET)
                        .key(k)
                        .send()
                        .await
                        .expect("raw get failed");
                    let data = out.body.collect().await.expect("raw body").into_bytes();
                    assert_eq!(data.len(), SIZE);
                }
            }
        })
        .buffer_unordered(CONCURRENCY);
    while done.next().await.is_some() {}
}

/// CPU time of every thread of this process so far (ns; Linux `schedstat`,
/// `None` elsewhere): per-op CPU cost is steadier than wall-clock throughput
/// on a busy machine.
fn cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let pairs = env_or("S3_BENCH_PAIRS", 11);
    let ops = env_or("S3_BENCH_OPS", 1500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let server = common::start().await;
        let config = common::config(&server).settings(Settings::default());
        let pool = Pool::new(
            EngineConfig::builder()
                .limit(CONCURRENCY as u32)
                .build()
                .expect("engine config"),
        )
        .expect("pool");
        let client = Client::new(&config, pool).expect("client");
        // The bare SDK built the same way (retries off, same HTTP client settings).
        let (_, max) = client.pool().limit_bounds();
        let sdk = config
            .build_sdk_client((max as usize).min(1024))
            .expect("sdk");
        common::bucket(&client, BUCKET).await;
        let body = common::data(SIZE, 7);
        // Warm-up: the objects GET reads, and warm connections for both.
        pooled(&client, Op::Put, ops, &body).await;
        raw(&sdk, Op::Put, ops, &body).await;
        raw(&sdk, Op::Get, ops.min(500), &body).await;
        pooled(&client, Op::Get, ops.min(500), &body).await;

        let only = std::env::var("S3_BENCH_ONLY").unwrap_or_default();
        for (name, op) in [("put", Op::Put), ("get", Op::Get)] {
            if !only.is_empty() && only != name {
                continue;
            }
            let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
            for pair in 0..pairs {
                let (mut p, mut r) = (0.0, 0.0);
                let (mut p_cpu, mut r_cpu) = (0.0, 0.0);
                // Swap who goes first each pair so drift hits both alike.
                for pool_turn in [pair % 2 == 0, pair % 2 == 1] {
                    let (t, cpu) = (Instant::now(), cpu_ns());
                    if pool_turn {
                        pooled(&client, op, ops, &body).await;
                    } else {
                        raw(&sdk, op, ops, &body).await;
                    }
                    let rate = ops as f64 / t.elapsed().as_secs_f64();
                    let cpu_us = match (cpu, cpu_ns()) {
                        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e3 / ops as f64,
                        _ => f64::NAN,
                    };
                    if pool_turn {
                        (p, p_cpu) = (rate, cpu_us);
                    } else {
                        (r, r_cpu) = (rate, cpu_us);
                    }
                }
                println!(
                    "{name} pair {}: pool {p:.0} ops/s, raw {r:.0} ops/s, ratio {:.3}; \
                     cpu per op (client + server): pool {p_cpu:.0} µs, raw {r_cpu:.0} µs",
                    pair + 1,
                    p / r
                );
                ratios.push(p / r);
                cpu_ratios.push(p_cpu / r_cpu);
            }
            println!(
                "{name}: pool/raw = {:.2} (median of {pairs} pairs)",
                median(ratios)
            );
            println!(
                "{name}: cpu per op pool/raw = {:.2} (median of {pairs} pairs; lower is better)",
                median(cpu_ratios)
            );
        }
        let stats = client.pool().stats().counters;
        assert_eq!(stats.failed, 0, "no pooled call may fail");
    });
}
