//! The pooled client: construction and the one path every call takes.

use crate::classify::S3Classifier;
use crate::config::{adopt, Config, ConfigError};
use crate::error::{Error, Result, S3Error};
use crate::options::{CallOptions, Settings};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use core::fmt;
use core::future::Future;
use core::time::Duration;
use pool_core::{AttemptCtx, AttemptError, OpClass, Pool, PoolError, RunOptions};
use std::sync::Arc;
use tracing::Instrument;

/// An S3 client whose every call runs through a [`Pool`]: prioritised,
/// limited (globally, per class and per bucket/prefix partition), retried with
/// backoff, timed out and measured. Cheap to clone.
///
/// Several clients (buckets, credentials, tenants) can share one `Pool` and
/// its limits: build each with a clone of the same pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    sdk: aws_sdk_s3::Client,
    pool: Pool,
    settings: Settings,
}

impl fmt::Debug for Client {
    // The SDK client is left out on purpose: its config holds the credentials
    // provider.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("settings", &self.inner.settings)
            .field("pool_limit", &self.inner.pool.limit())
            .finish_non_exhaustive()
    }
}

/// A parent op that coordinates child ops runs once: its children retry.
pub(crate) const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(20 * 86_400);

/// What one call is, for scheduling.
pub(crate) struct Spec<'a> {
    pub name: &'static str,
    pub class: OpClass,
    pub bucket: &'a str,
    pub key: &'a str,
    /// Bytes moved through this process (the bytes-in-flight budget).
    pub bytes: u64,
    /// Bytes the server moves (sizes the default timeout; server-side copies
    /// move bytes without using ours).
    pub timeout_bytes: u64,
    pub opts: &'a CallOptions,
}

impl<'a> Spec<'a> {
    pub fn new(
        name: &'static str,
        class: OpClass,
        bucket: &'a str,
        key: &'a str,
        opts: &'a CallOptions,
    ) -> Self {
        Spec {
            name,
            class,
            bucket,
            key,
            bytes: 0,
            timeout_bytes: 0,
            opts,
        }
    }
    pub fn bytes(mut self, b: u64) -> Self {
        self.bytes = b;
        self.timeout_bytes = b;
        self
    }
    pub fn timeout_bytes(mut self, b: u64) -> Self {
        self.timeout_bytes = b;
        self
    }
}

impl Client {
    /// A client for `config` running its calls through `pool` (which it shares
    /// with every other clone of that pool). The SDK's HTTP client keeps as
    /// many idle connections as the pool's upper limit bound allows (capped
    /// at 1,024). A [`Config::strategy`] is attached to `pool`, replacing the
    /// strategies it had in the same slots (so with a shared pool, name it in
    /// one client's config only).
    pub fn new(config: &Config, pool: Pool) -> Result<Client, ConfigError> {
        let tuning = config.tuning()?;
        let (_, max) = pool.limit_bounds();
        let sdk = config.build_sdk_client((max as usize).min(1024))?;
        if let Some(t) = tuning {
            // Already validated by `tuning()`: this cannot fail.
            t.apply_pool(&pool)
                .map_err(|e| ConfigError(format!("strategy: {e}")))?;
        }
        Ok(Client::assemble(sdk, pool, config.settings.clone()))
    }

    /// Wraps a ready SDK client. Its config is copied with the SDK's retries and
    /// stalled-stream protection turned off and checksums set to
    /// `WhenRequired`, so the pool alone retries and times out; its HTTP client,
    /// credentials, endpoint and timeouts are kept (set no SDK operation
    /// timeout shorter than the pool's).
    pub fn from_sdk(
        sdk: &aws_sdk_s3::Client,
        pool: Pool,
        settings: Settings,
    ) -> Result<Client, ConfigError> {
        settings.validate().map_err(ConfigError)?;
        let conf = adopt(sdk.config().to_builder()).build();
        Ok(Client::assemble(
            aws_sdk_s3::Client::from_conf(conf),
            pool,
            settings,
        ))
    }

    fn assemble(sdk: aws_sdk_s3::Client, pool: Pool, settings: Settings) -> Client {
        Client {
            inner: Arc::new(Inner {
                sdk,
                pool,
                settings,
            }),
        }
    }

    /// The pool every call runs through.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The SDK client (for calls made outside the pool: prefer
    /// [`Client::run_sdk`], which keeps them inside it).
    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.inner.sdk
    }

    /// This client's settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The pool options of a call.
    pub(crate) fn run_options(&self, s: &Spec<'_>) -> RunOptions {
        let st = &self.inner.settings;
        let mut o = RunOptions::new()
            .class(s.class)
            .priority(s.opts.priority.unwrap_or(st.default_priority))
            .partition(st.partition_of(s.bucket, s.key))
            .expected_bytes(s.bytes);
        if let Some(t) = s
            .opts
            .timeout
            .or_else(|| st.timeout.for_bytes(s.timeout_bytes))
        {
            o = o.timeout(t);
        }
        if let Some(d) = s.opts.deadline {
            o = o.deadline(d);
        }
        if let Some(n) = s.opts.max_attempts {
            o = o.max_attempts(n);
        }
        if s.opts.not_idempotent {
            o = o.not_idempotent();
        }
        o
    }

    /// Runs one call through the pool with a span per op and per attempt.
    pub(crate) async fn call<T, F, Fut>(&self, spec: Spec<'_>, mut f: F) -> Result<T>
    where
        F: FnMut(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let opts = self.run_options(&spec);
        let span = op_span(&spec);
        let attempts = move |ctx: AttemptCtx| {
            let a = tracing::debug_span!("attempt", n = ctx.attempt(), hedge = ctx.is_hedge());
            f(ctx).instrument(a)
        };
        let r = self
            .inner
            .pool
            .run_classified(opts, S3Classifier, attempts)
            .instrument(span.clone())
            .await;
        if let Err(e) = &r {
            span.in_scope(|| tracing::debug!(error = %e, "s3 call failed"));
        }
        r
    }

    /// A child call of an op (a part of a transfer): it may borrow the parent's
    /// slot and is retried on its own.
    pub(crate) async fn child<T, F, Fut>(
        &self,
        parent: &AttemptCtx,
        spec: Spec<'_>,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let opts = self.run_options(&spec);
        let span = op_span(&spec);
        let attempts = move |ctx: AttemptCtx| {
            let a = tracing::debug_span!("attempt", n = ctx.attempt());
            f(ctx).instrument(a)
        };
        parent
            .run_classified(opts, S3Classifier, attempts)
            .instrument(span)
            .await
    }

    /// Runs a coordinating op (multipart transfers) once: its children carry the
    /// retries, and their error comes back as the call's error, attempts and all.
    pub(crate) async fn coordinate<T, F, Fut>(&self, spec: Spec<'_>, f: F) -> Result<T>
    where
        F: FnOnce(AttemptCtx) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        // Unsampled: its one attempt spans the whole transfer, which says nothing
        // about S3's latency (the parts are the samples).
        let mut opts = self.run_options(&spec).max_attempts(1).unsampled();
        opts.op.timeout = Some(spec.opts.timeout.unwrap_or(COORDINATOR_TIMEOUT));
        let never_retry = |_: &Error| AttemptError::permanent();
        // One attempt at most (max_attempts 1), so the body can be `FnOnce`.
        let mut f = Some(f);
        let once = move |ctx: AttemptCtx| {
            let f = f.take();
            async move {
                match f {
                    Some(f) => f(ctx).await,
                    None => Err(crate::objects::invalid(
                        "internal: a coordinator ran twice".into(),
                    )),
                }
            }
        };
        // Boxed: a transfer's state machine is deep, and inlining it into every
        // caller's future can exceed rustc's type-layout depth limit there.
        let run = Box::pin(self.inner.pool.run_classified(opts, never_retry, once));
        run.instrument(op_span(&spec)).await.map_err(flatten)
    }

    /// Runs any SDK operation through the pool: tagging, versioning, ACLs,
    /// conditional writes, SSE or metadata parameters, anything this crate has
    /// no method for. `f` is called once per attempt with the SDK client.
    ///
    /// ```no_run
    /// # async fn demo(s3: pool_s3::Client) -> pool_s3::Result<()> {
    /// use pool_s3::{CallOptions, OpClass};
    /// let tags = s3
    ///     .run_sdk(OpClass::GET, CallOptions::new().priority(5).target("b", "k"), |c| async move {
    ///         c.get_object_tagging().bucket("b").key("k").send().await
    ///     })
    ///     .await?;
    /// # let _ = tags; Ok(()) }
    /// ```
    pub async fn run_sdk<T, E, F, Fut>(
        &self,
        class: OpClass,
        opts: CallOptions,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut(aws_sdk_s3::Client) -> Fut,
        Fut: Future<Output = core::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (bucket, key) = opts.target.clone().unwrap_or_default();
        let spec = Spec::new("run_sdk", class, &bucket, &key, &opts);
        let sdk = &self.inner.sdk;
        self.call(spec, |_| {
            let fut = f(sdk.clone());
            async move { fut.await.map_err(S3Error::from_sdk) }
        })
        .await
    }
}

fn op_span(s: &Spec<'_>) -> tracing::Span {
    tracing::debug_span!("s3", op = s.name, bucket = s.bucket, key = s.key)
}

/// A coordinator's error is its child's error (with the child's attempts).
pub(crate) fn flatten(e: PoolError<Error>) -> Error {
    match e {
        PoolError::Failed { last, .. } => last,
        PoolError::DeadlineExceeded { attempts, last } => match last {
            Some(inner) => inner,
            None => PoolError::DeadlineExceeded {
                attempts,
                last: None,
            },
        },
        other => other.map_err(|_| S3Error::Invalid("unreachable: no inner error".into())),
    }
}
