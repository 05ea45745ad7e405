//! Single-request object calls: get, head, exists, put, delete.

use crate::client::{Client, Spec};
use crate::error::{Result, S3Error};
use crate::options::CallOptions;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use core::ops::Range;
use pool_core::OpClass;
use std::collections::HashMap;

/// An object (or a range of it) read into memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetOutput {
    /// The bytes.
    pub data: Bytes,
    /// The object's ETag.
    pub e_tag: Option<String>,
    /// The whole object's size (from `Content-Range` for a ranged read).
    pub object_size: Option<u64>,
    /// The object's content type.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: Option<HashMap<String, String>>,
}

/// What a write returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOutput {
    /// The new object's ETag (`"…-N"` for a multipart upload of N parts).
    pub e_tag: Option<String>,
    /// The version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// Parts uploaded (0: a single PUT).
    pub parts: u32,
}

/// `bytes=a-b` for the half-open range `a..b`.
pub(crate) fn range_header(r: &Range<u64>) -> String {
    format!("bytes={}-{}", r.start, r.end - 1)
}

/// The total size from a `Content-Range: bytes a-b/total` header.
pub(crate) fn total_from_content_range(v: &str) -> Option<u64> {
    v.rsplit('/').next()?.trim().parse().ok()
}

/// One GET attempt: headers and the whole body, so a body cut mid-stream
/// fails the attempt (and is retried) instead of the caller's read.
pub(crate) async fn get_once(
    sdk: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    range: Option<&Range<u64>>,
    if_match: Option<&str>,
) -> Result<GetOutput, S3Error> {
    let mut req = sdk.get_object().bucket(bucket).key(key);
    if let Some(r) = range {
        req = req.range(range_header(r));
    }
    if let Some(etag) = if_match {
        req = req.if_match(etag);
    }
    let resp = req.send().await.map_err(S3Error::from_sdk)?;
    let declared = resp.content_length().and_then(|n| u64::try_from(n).ok());
    let object_size = match resp.content_range() {
        Some(cr) => total_from_content_range(cr),
        None => declared,
    };
    let e_tag = resp.e_tag().map(str::to_owned);
    let content_type = resp.content_type().map(str::to_owned);
    let metadata = resp.metadata().cloned();
    let data = resp
        .body
        .collect()
        .await
        .map_err(S3Error::body)?
        .into_bytes();
    if let Some(n) = declared {
        if data.len() as u64 != n {
            return Err(S3Error::body(format!(
                "body has {} bytes, Content-Length said {n}",
                data.len()
            )));
        }
    }
    Ok(GetOutput {
        data,
        e_tag,
        object_size,
        content_type,
        metadata,
    })
}

impl Client {
    /// Reads a whole object into memory (one request; see
    /// [`Client::download`] for large objects).
    pub async fn get(&self, bucket: &str, key: &str, opts: CallOptions) -> Result<GetOutput> {
        let spec = Spec::new("get", OpClass::GET, bucket, key, &opts);
        let sdk = self.sdk();
        self.call(spec, |_| get_once(sdk, bucket, key, None, None))
            .await
    }

    /// Reads the bytes `range` (half-open: `0..10` is the first ten bytes) of an
    /// object. The range is clipped to the object by S3; an empty range is an
    /// error.
    pub async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        opts: CallOptions,
    ) -> Result<GetOutput> {
        if range.is_empty() {
            return Err(invalid(format!("empty range {range:?}")));
        }
        let spec =
            Spec::new("get_range", OpClass::GET, bucket, key, &opts).bytes(range.end - range.start);
        let sdk = self.sdk();
        let r = &range;
        self.call(spec, |_| get_once(sdk, bucket, key, Some(r), None))
            .await
    }

    /// HeadObject. A missing object is an error here ([`S3Error::is_not_found`]);
    /// use [`Client::exists`] to ask.
    pub async fn head(
        &self,
        bucket: &str,
        key: &str,
        opts: CallOptions,
    ) -> Result<HeadObjectOutput> {
        let spec = Spec::new("head", OpClass::HEAD, bucket, key, &opts);
        let sdk = self.sdk();
        self.call(spec, |_| async move {
            sdk.head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(S3Error::from_sdk)
        })
        .await
    }

    /// Whether an object exists. A 404 is an answer, not an error: it is never
    /// retried (the seed retried it for seconds, F17) and counts as a success.
    pub async fn exists(&self, bucket: &str, key: &str, opts: CallOptions) -> Result<bool> {
        let spec = Spec::new("exists", OpClass::HEAD, bucket, key, &opts);
        let sdk = self.sdk();
        self.call(spec, |_| async move {
            match sdk.head_object().bucket(bucket).key(key).send().await {
                Ok(_) => Ok(true),
                Err(e) => match S3Error::from_sdk(e) {
                    S3Error::Service { status: 404, .. } => Ok(false),
                    other => Err(other),
                },
            }
        })
        .await
    }

    /// Deletes an object (deleting a missing key succeeds, as in S3).
    pub async fn delete(&self, bucket: &str, key: &str, opts: CallOptions) -> Result<()> {
        let spec = Spec::new("delete", OpClass::DELETE, bucket, key, &opts);
        let sdk = self.sdk();
        self.call(spec, |_| async move {
            sdk.delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(S3Error::from_sdk)
        })
        .await
    }

    /// Writes an object from memory: one PUT, or a multipart upload when the
    /// body is larger than [`Settings::multipart_threshold`](crate::Settings).
    /// Retries re-send the same bytes (no copy).
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        opts: CallOptions,
    ) -> Result<PutOutput> {
        if body.len() as u64 > self.settings().multipart_threshold {
            return self.put_multipart_bytes(bucket, key, body, opts).await;
        }
        let spec = Spec::new("put", OpClass::PUT, bucket, key, &opts).bytes(body.len() as u64);
        let sdk = self.sdk();
        let body = &body;
        self.call(spec, |_| async move {
            let out = sdk
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(S3Error::from_sdk)?;
            Ok(PutOutput {
                e_tag: out.e_tag,
                version_id: out.version_id,
                parts: 0,
            })
        })
        .await
    }
}

pub(crate) fn invalid(m: String) -> crate::Error {
    pool_core::PoolError::InvalidOptions {
        field: "input",
        message: m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_on_the_wire() {
        assert_eq!(range_header(&(0..10)), "bytes=0-9");
        assert_eq!(total_from_content_range("bytes 0-9/1234"), Some(1234));
        assert_eq!(total_from_content_range("bytes 0-9/*"), None);
    }
}
