//! The test S3 server: s3s-fs embedded on 127.0.0.1:0 (TCP_NODELAY, temp-dir
//! storage) behind a fault-injecting HTTP layer, started by each test.
#![allow(dead_code)]

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use hyper::body::Frame;
use pool_core::{EngineConfig, Pool, RetryConfig};
use pool_s3::{Client, Config, CredentialsSource, Settings};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 503 SlowDown (not processed).
    SlowDown,
    /// This status and S3 error code (not processed).
    Status(u16, &'static str),
    /// Wait, then process normally.
    Delay(Duration),
    /// Close the connection without answering (not processed).
    Reset,
    /// Process, then close the connection without answering: the write
    /// happened but its acknowledgement is lost.
    ResetAfterApply,
    /// Process, then send only the first N body bytes and break the connection.
    CutBody(usize),
}

/// A fault for requests whose method and path (+query) match.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: Option<&'static str>,
    /// Substring of "path?query".
    pub contains: Option<String>,
    pub fault: Fault,
    /// Apply to every Nth matching request (1: all).
    pub every: u64,
    /// Apply at most this many times.
    pub times: u64,
    seen: u64,
    pub applied: u64,
}

impl Rule {
    pub fn new(fault: Fault) -> Self {
        Rule {
            method: None,
            contains: None,
            fault,
            every: 1,
            times: u64::MAX,
            seen: 0,
            applied: 0,
        }
    }
    pub fn method(mut self, m: &'static str) -> Self {
        self.method = Some(m);
        self
    }
    pub fn path(mut self, s: impl Into<String>) -> Self {
        self.contains = Some(s.into());
        self
    }
    pub fn every(mut self, n: u64) -> Self {
        self.every = n;
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.times = n;
        self
    }
}

/// The fault plan and what the server saw.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    /// Requests being handled now, and the most at once.
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub requests: AtomicU64,
    /// Every request's "METHOD path?query", in arrival order.
    pub log: Mutex<Vec<String>>,
    /// Added latency for every request (ms).
    pub latency_ms: AtomicU64,
}

impl Faults {
    pub fn add(&self, r: Rule) {
        self.rules.lock().unwrap().push(r);
    }
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
    /// How many times each rule fired, in the order added.
    pub fn applied(&self) -> Vec<u64> {
        self.rules
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.applied)
            .collect()
    }
    /// Requests whose log line contains `s`.
    pub fn count(&self, method: &str, s: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(method) && l.contains(s))
            .count()
    }
    fn pick(&self, method: &str, target: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        for r in rules.iter_mut() {
            if r.method.is_some_and(|m| m != method) {
                continue;
            }
            if r.contains.as_deref().is_some_and(|c| !target.contains(c)) {
                continue;
            }
            if r.applied >= r.times {
                continue;
            }
            r.seen += 1;
            if r.seen % r.every == 0 {
                r.applied += 1;
                return Some(r.fault.clone());
            }
        }
        None
    }
}

pub struct Server {
    pub endpoint: String,
    pub faults: Arc<Faults>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error_response(status: u16, code: &str) -> http::Response<s3s::Body> {
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>");
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(xml))
        .unwrap()
}

/// Keeps the first `n` bytes of a body, then fails it mid-stream.
fn cut(body: s3s::Body, n: usize) -> s3s::Body {
    let s = stream::unfold((body, n, false), |(mut body, left, done)| async move {
        if done {
            return None;
        }
        match body.next().await {
            Some(Ok(chunk)) if chunk.len() < left => {
                Some((Ok(chunk.clone()), (body, left - chunk.len(), false)))
            }
            Some(Ok(chunk)) => {
                let head: Bytes = chunk.slice(..left);
                if head.is_empty() {
                    Some((Err("injected body cut".into()), (body, 0, true)))
                } else {
                    Some((Ok(head), (body, 0, false)))
                }
            }
            Some(Err(e)) => Some((Err(e), (body, 0, true))),
            None if left == 0 => Some((Err("injected body cut".into()), (body, 0, true))),
            None => None,
        }
    });
    let s = s.map(|r: Result<Bytes, s3s::StdError>| r.map(Frame::data));
    s3s::Body::http_body_unsync(http_body_util::StreamBody::new(s))
}

struct InFlight<'a>(&'a Faults);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub async fn start() -> Server {
    start_with_keys("test", "testtest").await
}

/// A server accepting only this access key and secret.
pub async fn start_with_keys(access_key: &str, secret_key: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let fs = s3s_fs::FileSystem::new(dir.path())
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(access_key, secret_key));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let faults = Arc::new(Faults::default());
    let f2 = Arc::clone(&faults);
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            // Without it every GET on a kept-alive connection stalls ~40 ms (Nagle).
            socket.set_nodelay(true).unwrap();
            let (svc, faults) = (service.clone(), Arc::clone(&f2));
            let faulty =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (svc, faults) = (svc.clone(), Arc::clone(&faults));
                    async move { handle(&svc, &faults, req).await }
                });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(socket), faulty)
                .await;
            });
        }
    });
    Server {
        endpoint,
        faults,
        _dir: dir,
        task,
    }
}

async fn handle(
    svc: &s3s::service::S3Service,
    faults: &Faults,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    let now = faults.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(faults);
    faults.max_in_flight.fetch_max(now, Ordering::SeqCst);
    faults.requests.fetch_add(1, Ordering::SeqCst);
    let method = req.method().as_str().to_owned();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    faults
        .log
        .lock()
        .unwrap()
        .push(format!("{method} {target}"));
    let latency = faults.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let reset = || s3s::HttpError::new("injected connection reset".into());
    match faults.pick(&method, &target) {
        None => hyper::service::Service::call(svc, req).await,
        // Read the request body first, as S3 does, so the client sees the
        // answer rather than a connection closed under its upload.
        Some(Fault::SlowDown) => {
            drain(req).await;
            Ok(error_response(503, "SlowDown"))
        }
        Some(Fault::Status(s, code)) => {
            drain(req).await;
            Ok(error_response(s, code))
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            hyper::service::Service::call(svc, req).await
        }
        Some(Fault::Reset) => Err(reset()),
        Some(Fault::ResetAfterApply) => {
            let _ = hyper::service::Service::call(svc, req).await;
            Err(reset())
        }
        Some(Fault::CutBody(n)) => {
            let resp = hyper::service::Service::call(svc, req).await?;
            let (parts, body) = resp.into_parts();
            Ok(http::Response::from_parts(parts, cut(body, n)))
        }
    }
}

async fn drain(req: http::Request<hyper::body::Incoming>) {
    let _ = http_body_util::BodyExt::collect(req.into_body()).await;
}

/// A pool for tests: quick backoffs so retry tests run in milliseconds.
pub fn pool(limit: u32) -> Pool {
    let retry = RetryConfig {
        max_attempts: 4,
        transient_base_ms: 5,
        throttle_base_ms: 10,
        max_backoff_ms: 100,
        ..RetryConfig::default()
    };
    Pool::new(
        EngineConfig::builder()
            .limit(limit)
            .retry(retry)
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// Small parts (S3's 5 MiB minimum) so multipart paths run on small objects.
pub fn settings() -> Settings {
    let mib = 1024 * 1024;
    Settings {
        multipart_threshold: 6 * mib,
        part_size: 5 * mib,
        multipart_copy_threshold: 6 * mib,
        copy_part_size: 5 * mib,
        ..Settings::default()
    }
}

pub fn config(server: &Server) -> Config {
    Config::new("us-east-1")
        .endpoint_url(&server.endpoint)
        .force_path_style(true)
        .credentials(CredentialsSource::fixed("test", "testtest"))
        .settings(settings())
}

pub fn client(server: &Server, pool: Pool) -> Client {
    Client::new(&config(server), pool).unwrap()
}

pub async fn bucket(c: &Client, name: &str) {
    c.sdk().create_bucket().bucket(name).send().await.unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), so mismatches are caught.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}
