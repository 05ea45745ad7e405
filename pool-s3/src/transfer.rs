//! Transfers made of many requests: multipart upload and copy, parallel
//! ranged download. Each runs as one coordinating op whose parts are child ops
//! (they borrow its slot, so a transfer never deadlocks a full pool, and each
//! part is retried on its own).

use crate::client::{Client, Spec};
use crate::error::{Error, Result, S3Error};
use crate::objects::{get_once, invalid, GetOutput, PutOutput};
use crate::options::{CallOptions, MAX_PARTS, MIN_PART_SIZE};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use core::future::Future;
use core::ops::Range;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use pool_core::{AttemptCtx, OpClass};
use std::path::Path;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// Splits `0..size` into parts of `part` bytes (the last may be shorter),
/// growing the part size (in MiB steps) if S3's 10,000-part cap needs it.
pub(crate) fn split(size: u64, part: u64) -> Vec<Range<u64>> {
    let mut part = part.max(1);
    if size.div_ceil(part) > MAX_PARTS {
        let mib = 1024 * 1024;
        part = size.div_ceil(MAX_PARTS).div_ceil(mib) * mib;
    }
    (0..size.div_ceil(part))
        .map(|i| i * part..((i + 1) * part).min(size))
        .collect()
}

/// Where upload parts come from; each attempt re-reads its part, so a retry
/// re-sends the same bytes.
pub(crate) enum Source<'a> {
    Memory(&'a Bytes),
    File(&'a Path),
}

impl Source<'_> {
    async fn part(&self, r: &Range<u64>) -> Result<ByteStream, S3Error> {
        match self {
            Source::Memory(b) => Ok(ByteStream::from(b.slice(r.start as usize..r.end as usize))),
            Source::File(p) => ByteStream::read_from()
                .path(p)
                .offset(r.start)
                .length(Length::Exact(r.end - r.start))
                .build()
                .await
                .map_err(|e| S3Error::Io(std::io::Error::other(e))),
        }
    }
}

/// What every part call needs from the multipart upload.
struct Upload<'a> {
    bucket: &'a str,
    key: &'a str,
    id: &'a str,
}

impl Client {
    pub(crate) async fn put_multipart_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        opts: CallOptions,
    ) -> Result<PutOutput> {
        let parts = split(body.len() as u64, self.settings().part_size);
        self.upload_parts(bucket, key, &parts, &Source::Memory(&body), &opts)
            .await
    }

    /// Writes a local file to an object: one PUT, or a multipart upload above
    /// [`Settings::multipart_threshold`](crate::Settings). Each attempt
    /// re-reads its bytes from the file.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        opts: CallOptions,
    ) -> Result<PutOutput> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?
            .len();
        let src = Source::File(path);
        if size > self.settings().multipart_threshold {
            let parts = split(size, self.settings().part_size);
            return self.upload_parts(bucket, key, &parts, &src, &opts).await;
        }
        let spec = Spec::new("put_file", OpClass::PUT, bucket, key, &opts).bytes(size);
        let sdk = self.sdk();
        let src = &src;
        self.call(spec, |_| async move {
            let body = src.part(&(0..size)).await?;
            let out = sdk
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_length(size as i64)
                .body(body)
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

    async fn upload_parts(
        &self,
        bucket: &str,
        key: &str,
        parts: &[Range<u64>],
        src: &Source<'_>,
        opts: &CallOptions,
    ) -> Result<PutOutput> {
        let spec = Spec::new("put_multipart", OpClass::PUT, bucket, key, opts);
        self.multipart(spec, None, parts, &PartKind::Upload(src))
            .await
    }

    /// The multipart protocol: create, parts (at most `transfer_concurrency`
    /// submitted at once), complete; abort on any failure or cancellation.
    async fn multipart(
        &self,
        spec: Spec<'_>,
        like: Option<&aws_sdk_s3::operation::head_object::HeadObjectOutput>,
        parts: &[Range<u64>],
        kind: &PartKind<'_>,
    ) -> Result<PutOutput> {
        let (bucket, key, opts) = (spec.bucket, spec.key, spec.opts);
        let sdk = self.sdk();
        let conc = self.settings().transfer_concurrency;
        self.coordinate(spec, |ctx| async move {
            let create = Spec::new("create_multipart_upload", OpClass::PUT, bucket, key, opts);
            let id: String = self
                .child(&ctx, create, |_| async move {
                    let mut req = sdk.create_multipart_upload().bucket(bucket).key(key);
                    if let Some(h) = like {
                        req = req
                            .set_content_type(h.content_type.clone())
                            .set_metadata(h.metadata.clone());
                    }
                    let out = req.send().await.map_err(S3Error::from_sdk)?;
                    out.upload_id.ok_or_else(|| {
                        S3Error::Invalid("CreateMultipartUpload returned no upload id".into())
                    })
                })
                .await?;
            let mut guard = AbortGuard {
                client: Some(self.clone()),
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                id: id.clone(),
            };
            let up = Upload {
                bucket,
                key,
                id: &id,
            };
            let ctx = &ctx;
            let up = &up;
            let body = async {
                let mut done: Vec<CompletedPart> = stream::iter(parts.iter().enumerate())
                    .map(|(i, r)| self.part(ctx, up, i as i32 + 1, r.clone(), kind, opts))
                    .buffer_unordered(conc)
                    .try_collect()
                    .await?;
                done.sort_by_key(|p| p.part_number);
                self.complete(ctx, up, done, opts).await
            };
            let r = body.await;
            // Settled here: the guard only covers cancellation.
            guard.client = None;
            if r.is_err() {
                self.abort(ctx, up, opts).await;
            }
            r
        })
        .await
    }

    async fn complete(
        &self,
        ctx: &AttemptCtx,
        up: &Upload<'_>,
        parts: Vec<CompletedPart>,
        opts: &CallOptions,
    ) -> Result<PutOutput> {
        let sdk = self.sdk();
        let n = parts.len();
        // S3 assembles the parts before answering: allow ~0.3 s per part on
        // top of the base timeout.
        let spec = Spec::new(
            "complete_multipart_upload",
            OpClass::PUT,
            up.bucket,
            up.key,
            opts,
        )
        .timeout_bytes(n as u64 * MIN_PART_SIZE / 64);
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let (bucket, key, id, done) = (up.bucket, up.key, up.id, &done);
        self.child(ctx, spec, |a| async move {
            let r = sdk
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .multipart_upload(done.clone())
                .send()
                .await;
            match r {
                Ok(out) => Ok(PutOutput {
                    e_tag: out.e_tag,
                    version_id: out.version_id,
                    parts: n as u32,
                }),
                Err(e) => {
                    let e = S3Error::from_sdk(e);
                    // A retry after a completion whose answer was lost finds the
                    // upload gone: the object with N parts is the proof.
                    if a.attempt() > 1 && e.code() == Some("NoSuchUpload") {
                        if let Ok(h) = sdk.head_object().bucket(bucket).key(key).send().await {
                            let suffix = format!("-{n}\"");
                            if h.e_tag().is_some_and(|t| t.ends_with(&suffix)) {
                                return Ok(PutOutput {
                                    e_tag: h.e_tag,
                                    version_id: h.version_id,
                                    parts: n as u32,
                                });
                            }
                        }
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    async fn abort(&self, ctx: &AttemptCtx, up: &Upload<'_>, opts: &CallOptions) {
        let spec = Spec::new(
            "abort_multipart_upload",
            OpClass::DELETE,
            up.bucket,
            up.key,
            opts,
        );
        let (sdk, bucket, key, id) = (self.sdk(), up.bucket, up.key, up.id);
        let r = self
            .child(ctx, spec, |_| abort_request(sdk, bucket, key, id))
            .await;
        if let Err(e) = r {
            tracing::warn!(bucket, key, error = %e, "aborting a multipart upload failed; a lifecycle rule must clean it up");
        }
    }

    /// Reads a whole object into memory with parallel ranged GETs of
    /// [`Settings::part_size`](crate::Settings) bytes, each retried on its own;
    /// every range after the first is conditional on the first one's ETag, so
    /// an object replaced mid-read fails the call instead of mixing versions.
    pub async fn download(&self, bucket: &str, key: &str, opts: CallOptions) -> Result<GetOutput> {
        let mut buf: Vec<u8> = Vec::new();
        let mut head = self
            .ranged(bucket, key, &opts, |total, off, data| {
                if buf.len() as u64 != total {
                    buf = vec![0; total as usize];
                }
                let at = off as usize;
                buf[at..at + data.len()].copy_from_slice(&data);
                async { Ok(()) }
            })
            .await?;
        head.data = Bytes::from(buf);
        Ok(head)
    }

    /// Like [`Client::download`], into a file (created or truncated) at `path`;
    /// returns the object's size.
    pub async fn download_to_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        opts: CallOptions,
    ) -> Result<u64> {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| invalid(format!("cannot create {}: {e}", path.display())))?;
        let file = &tokio::sync::Mutex::new((file, None::<u64>));
        let out = self
            .ranged(bucket, key, &opts, |total, off, data| async move {
                let mut g = file.lock().await;
                let (f, sized) = &mut *g;
                let io = |e: std::io::Error| -> Error { local_io(e) };
                if *sized != Some(total) {
                    f.set_len(total).await.map_err(io)?;
                    *sized = Some(total);
                }
                f.seek(std::io::SeekFrom::Start(off)).await.map_err(io)?;
                f.write_all(&data).await.map_err(io)?;
                Ok(())
            })
            .await?;
        let mut g = file.lock().await;
        g.0.flush().await.map_err(local_io)?;
        g.0.sync_all().await.map_err(local_io)?;
        Ok(out.object_size.unwrap_or(0))
    }

    /// The parallel ranged read; `sink(total, offset, bytes)` gets each range,
    /// one at a time. Returns the first response's metadata (no data).
    async fn ranged<S, SF>(
        &self,
        bucket: &str,
        key: &str,
        opts: &CallOptions,
        mut sink: S,
    ) -> Result<GetOutput>
    where
        S: FnMut(u64, u64, Bytes) -> SF,
        SF: Future<Output = Result<()>>,
    {
        let part = self.settings().part_size;
        let conc = self.settings().transfer_concurrency;
        let sdk = self.sdk();
        let spec = Spec::new("download", OpClass::GET, bucket, key, opts);
        let sink = &mut sink;
        self.coordinate(spec, |ctx| async move {
            let first_range = 0..part;
            let first = Spec::new("get_range", OpClass::GET, bucket, key, opts).bytes(part);
            let r = &first_range;
            let first = match self
                .child(&ctx, first, |_| get_once(sdk, bucket, key, Some(r), None))
                .await
            {
                // An empty object has no byte 0: read it whole.
                Err(e) if e.source_error().and_then(S3Error::status) == Some(416) => {
                    let whole = Spec::new("get", OpClass::GET, bucket, key, opts);
                    self.child(&ctx, whole, |_| get_once(sdk, bucket, key, None, None))
                        .await?
                }
                r => r?,
            };
            let total = first.object_size.unwrap_or(first.data.len() as u64);
            let mut head = GetOutput {
                data: Bytes::new(),
                ..first.clone()
            };
            head.object_size = Some(total);
            sink(total, 0, first.data).await?;
            let etag = first.e_tag.as_deref();
            let ctx = &ctx;
            let rest = split(total, part).into_iter().skip(1);
            let mut parts = stream::iter(rest)
                .map(|r| async move {
                    let spec = Spec::new("get_range", OpClass::GET, bucket, key, opts)
                        .bytes(r.end - r.start);
                    let rr = &r;
                    let out = self
                        .child(ctx, spec, |_| async move {
                            let g = get_once(sdk, bucket, key, Some(rr), etag).await?;
                            if g.data.len() as u64 != rr.end - rr.start {
                                return Err(S3Error::body(format!(
                                    "range {rr:?} returned {} bytes",
                                    g.data.len()
                                )));
                            }
                            Ok(g.data)
                        })
                        .await?;
                    Ok::<_, Error>((r.start, out))
                })
                .buffer_unordered(conc);
            while let Some(p) = parts.next().await {
                let (off, data) = p?;
                sink(total, off, data).await?;
            }
            Ok(head)
        })
        .await
    }

    /// Copies an object within S3 (no bytes through this process): one
    /// CopyObject, or a multipart copy above
    /// [`Settings::multipart_copy_threshold`](crate::Settings), whose parts are
    /// conditional on the source's ETag. Reads the source's size with a HEAD.
    pub async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        opts: CallOptions,
    ) -> Result<PutOutput> {
        let head = self.head(src_bucket, src_key, opts.clone()).await?;
        let size = head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        let source = copy_source(src_bucket, src_key);
        let sdk = self.sdk();
        let source = source.as_str();
        if size <= self.settings().multipart_copy_threshold {
            let spec =
                Spec::new("copy", OpClass::COPY, dst_bucket, dst_key, &opts).timeout_bytes(size);
            return self
                .call(spec, |_| async move {
                    let out = sdk
                        .copy_object()
                        .bucket(dst_bucket)
                        .key(dst_key)
                        .copy_source(source)
                        .send()
                        .await
                        .map_err(S3Error::from_sdk)?;
                    Ok(PutOutput {
                        e_tag: out.copy_object_result.and_then(|r| r.e_tag),
                        version_id: out.version_id,
                        parts: 0,
                    })
                })
                .await;
        }
        let etag = head.e_tag();
        let parts = split(size, self.settings().copy_part_size);
        let spec = Spec::new("copy_multipart", OpClass::COPY, dst_bucket, dst_key, &opts);
        let kind = PartKind::Copy { source, etag };
        self.multipart(spec, Some(&head), &parts, &kind).await
    }
}

/// What the parts of a multipart write are made of.
enum PartKind<'a> {
    /// Bytes from memory or a file.
    Upload(&'a Source<'a>),
    /// A range of another object (server-side), conditional on its ETag.
    Copy {
        source: &'a str,
        etag: Option<&'a str>,
    },
}

impl Client {
    /// One part, as a child op of the multipart transfer.
    async fn part(
        &self,
        ctx: &AttemptCtx,
        up: &Upload<'_>,
        n: i32,
        r: Range<u64>,
        kind: &PartKind<'_>,
        opts: &CallOptions,
    ) -> Result<CompletedPart> {
        let sdk = self.sdk();
        let (bucket, key, id) = (up.bucket, up.key, up.id);
        let len = r.end - r.start;
        let r = &r;
        match *kind {
            PartKind::Upload(src) => {
                let spec =
                    Spec::new("upload_part", OpClass::MULTIPART_PART, bucket, key, opts).bytes(len);
                self.child(ctx, spec, |_| async move {
                    let body = src.part(r).await?;
                    let out = sdk
                        .upload_part()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(id)
                        .part_number(n)
                        .content_length(len as i64)
                        .body(body)
                        .send()
                        .await
                        .map_err(S3Error::from_sdk)?;
                    Ok(CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(out.e_tag)
                        .build())
                })
                .await
            }
            PartKind::Copy { source, etag } => {
                // Server-side: no bytes in flight here, but the timeout grows with size.
                let spec = Spec::new("upload_part_copy", OpClass::COPY, bucket, key, opts)
                    .timeout_bytes(len);
                let range = &format!("bytes={}-{}", r.start, r.end - 1);
                self.child(ctx, spec, |_| async move {
                    let mut req = sdk
                        .upload_part_copy()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(id)
                        .part_number(n)
                        .copy_source(source)
                        .copy_source_range(range);
                    if let Some(t) = etag {
                        req = req.copy_source_if_match(t);
                    }
                    let out = req.send().await.map_err(S3Error::from_sdk)?;
                    Ok(CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(out.copy_part_result.and_then(|r| r.e_tag))
                        .build())
                })
                .await
            }
        }
    }
}

fn local_io(e: std::io::Error) -> Error {
    invalid(format!("local file: {e}"))
}

/// `bucket/key` with the key percent-encoded, as `x-amz-copy-source` wants.
pub(crate) fn copy_source(bucket: &str, key: &str) -> String {
    let mut s = String::with_capacity(bucket.len() + key.len() + 8);
    s.push_str(bucket);
    s.push('/');
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Aborts a multipart upload if the transfer is dropped (cancelled) before it
/// completed or aborted: the abort runs on its own task, through the pool.
struct AbortGuard {
    client: Option<Client>,
    bucket: String,
    key: String,
    id: String,
}

/// One AbortMultipartUpload request (the body of both abort paths).
async fn abort_request(
    sdk: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<(), S3Error> {
    sdk.abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(S3Error::from_sdk)
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(bucket = %self.bucket, key = %self.key, "multipart upload dropped outside a runtime: not aborted");
            return;
        };
        let (bucket, key, id) = (
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.id),
        );
        rt.spawn(async move {
            let opts = CallOptions::new();
            let spec = Spec::new("abort_multipart_upload", OpClass::DELETE, &bucket, &key, &opts);
            let sdk = client.sdk();
            let r = client
                .call(spec, |_| abort_request(sdk, &bucket, &key, &id))
                .await;
            if let Err(e) = r {
                tracing::warn!(%bucket, %key, error = %e, "aborting a cancelled multipart upload failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_everything_and_respects_the_part_cap() {
        assert_eq!(split(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(split(8, 4), vec![0..4, 4..8]);
        assert!(split(0, 4).is_empty());
        let big = 100 * 1024 * 1024 * 1024u64;
        let parts = split(big, 5 * 1024 * 1024);
        assert!(parts.len() as u64 <= MAX_PARTS);
        assert_eq!(parts.last().unwrap().end, big);
    }

    #[test]
    fn copy_source_is_percent_encoded() {
        assert_eq!(copy_source("b", "a/b c+d.txt"), "b/a/b%20c%2Bd.txt");
        assert_eq!(copy_source("b", "é"), "b/%C3%A9");
    }
}
