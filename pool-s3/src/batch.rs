//! Calls over many keys: batched delete and paginated listing.

use crate::client::{Client, Spec};
use crate::error::{Error, Result, S3Error};
use crate::options::CallOptions;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::types::{Delete, Object, ObjectIdentifier};
use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use pool_core::OpClass;

/// S3's limit of keys per DeleteObjects request.
pub const DELETE_BATCH: usize = 1_000;

/// The outcome of [`Client::delete_objects`]: every key is in exactly one list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Keys deleted (or already absent: S3 treats both alike).
    pub deleted: Vec<String>,
    /// Keys not deleted, each with why.
    pub failed: Vec<DeleteFailure>,
}

/// A key [`Client::delete_objects`] could not delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The key.
    pub key: String,
    /// S3's per-key error code (e.g. `AccessDenied`), or the code of the
    /// failed batch request.
    pub code: Option<String>,
    /// What went wrong.
    pub message: String,
    /// Attempts of the batch request that carried this key.
    pub attempts: u32,
}

/// A ListObjectsV2 request. `Default`: everything in the bucket, 1,000 keys
/// per page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Group keys sharing a prefix up to this into `common_prefixes`.
    pub delimiter: Option<String>,
    /// Start after this key.
    pub start_after: Option<String>,
    /// Keys per page (S3 caps it at 1,000).
    pub max_keys: Option<i32>,
}

impl ListRequest {
    /// Keys under `prefix`.
    pub fn prefix(p: impl Into<String>) -> Self {
        ListRequest {
            prefix: Some(p.into()),
            ..Self::default()
        }
    }
}

impl Client {
    /// Deletes many keys with DeleteObjects, up to 1,000 per request, the
    /// requests running concurrently through the pool. Per-key errors are
    /// reported, not raised; a batch request that fails after its retries
    /// reports each of its keys as failed. No HEAD per key (seed flaw F37).
    pub async fn delete_objects<I>(&self, bucket: &str, keys: I, opts: CallOptions) -> DeleteReport
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        let opts = &opts;
        let reports: Vec<DeleteReport> = stream::iter(keys.chunks(DELETE_BATCH))
            .map(|chunk| self.delete_batch(bucket, chunk, opts))
            // Submitted together; the pool decides how many run.
            .buffered(keys.len().div_ceil(DELETE_BATCH).max(1))
            .collect()
            .await;
        let mut all = DeleteReport::default();
        for r in reports {
            all.deleted.extend(r.deleted);
            all.failed.extend(r.failed);
        }
        all
    }

    async fn delete_batch(
        &self,
        bucket: &str,
        chunk: &[String],
        opts: &CallOptions,
    ) -> DeleteReport {
        let first = chunk.first().map(String::as_str).unwrap_or("");
        let spec = Spec::new("delete_objects", OpClass::DELETE, bucket, first, opts);
        let sdk = self.sdk();
        let r = self
            .call(spec, |_| async move {
                let ids = chunk
                    .iter()
                    .map(|k| ObjectIdentifier::builder().key(k).build())
                    .collect::<core::result::Result<Vec<_>, _>>()
                    .map_err(|e| S3Error::Construction { source: e.into() })?;
                let delete = Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()
                    .map_err(|e| S3Error::Construction { source: e.into() })?;
                sdk.delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(S3Error::from_sdk)
            })
            .await;
        match r {
            Ok(out) => {
                // Quiet mode: only the failures come back; the rest were deleted.
                let failed: Vec<DeleteFailure> = out
                    .errors()
                    .iter()
                    .map(|e| DeleteFailure {
                        key: e.key().unwrap_or_default().to_owned(),
                        code: e.code().map(str::to_owned),
                        message: e.message().unwrap_or("not deleted").to_owned(),
                        attempts: 1,
                    })
                    .collect();
                let deleted = chunk
                    .iter()
                    .filter(|k| !failed.iter().any(|f| &f.key == *k))
                    .cloned()
                    .collect();
                DeleteReport { deleted, failed }
            }
            Err(e) => DeleteReport {
                deleted: Vec::new(),
                failed: chunk
                    .iter()
                    .map(|k| DeleteFailure {
                        key: k.clone(),
                        code: e.source_error().and_then(S3Error::code).map(str::to_owned),
                        message: e.to_string(),
                        attempts: e.attempts(),
                    })
                    .collect(),
            },
        }
    }

    /// ListObjectsV2 as a stream of pages; each page is one pooled call
    /// (retried, prioritised, limited like any other: the seed listed outside
    /// its pool, F36). Pages are fetched as the stream is polled.
    pub fn list_pages<'a>(
        &'a self,
        bucket: &'a str,
        req: ListRequest,
        opts: CallOptions,
    ) -> impl Stream<Item = Result<ListObjectsV2Output>> + 'a {
        enum State {
            Start,
            Next(String),
            Done,
        }
        stream::unfold(
            (State::Start, req, opts),
            move |(state, req, opts)| async move {
                let token = match state {
                    State::Done => return None,
                    State::Start => None,
                    State::Next(t) => Some(t),
                };
                let prefix = req.prefix.as_deref().unwrap_or("");
                let spec = Spec::new("list_objects_v2", OpClass::LIST, bucket, prefix, &opts);
                let sdk = self.sdk();
                let (r, t) = (&req, &token);
                let page = self
                    .call(spec, |_| async move {
                        sdk.list_objects_v2()
                            .bucket(bucket)
                            .set_prefix(r.prefix.clone())
                            .set_delimiter(r.delimiter.clone())
                            .set_start_after(r.start_after.clone())
                            .set_max_keys(r.max_keys)
                            .set_continuation_token(t.clone())
                            .send()
                            .await
                            .map_err(S3Error::from_sdk)
                    })
                    .await;
                let next = match &page {
                    Ok(p) if p.is_truncated() == Some(true) => match p.next_continuation_token() {
                        Some(t) if !t.is_empty() => State::Next(t.to_owned()),
                        // Truncated without a token: stop rather than loop forever.
                        _ => State::Done,
                    },
                    // A failed page ends the stream after reporting it.
                    _ => State::Done,
                };
                Some((page, (next, req, opts)))
            },
        )
    }

    /// The objects of [`Client::list_pages`], one by one.
    pub fn list<'a>(
        &'a self,
        bucket: &'a str,
        req: ListRequest,
        opts: CallOptions,
    ) -> impl Stream<Item = Result<Object>> + 'a {
        self.list_pages(bucket, req, opts)
            .map_ok(|p| {
                stream::iter(
                    p.contents
                        .unwrap_or_default()
                        .into_iter()
                        .map(Ok::<_, Error>),
                )
            })
            .try_flatten()
    }
}
