//! Per-call options and per-client settings.

use core::time::Duration;

/// Per-call options: how this one call is scheduled. `Default` uses the
/// client's [`Settings`] and the pool's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallOptions {
    /// Priority (higher runs first); `None`: the client's default priority.
    pub priority: Option<i32>,
    /// Per-attempt timeout; `None`: the client's [`TimeoutPolicy`].
    pub timeout: Option<Duration>,
    /// Whole-call deadline (queue wait, attempts and backoff included).
    pub deadline: Option<Duration>,
    /// Maximum attempts; `None`: the pool's retry policy.
    pub max_attempts: Option<u32>,
    /// For [`S3Pool::run_sdk`](crate::S3Pool::run_sdk): the bucket and key the
    /// call touches, so it is counted in the right partition.
    pub target: Option<(String, String)>,
    /// For [`S3Pool::run_sdk`](crate::S3Pool::run_sdk): the call must not be
    /// repeated once it may have reached the server.
    pub not_idempotent: bool,
}

impl CallOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// With this priority (higher runs first).
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = Some(p);
        self
    }
    /// With this per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// With this whole-call deadline.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    /// With at most this many attempts (1: no retry).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    /// Counted in the partition of this bucket and key (for `run_sdk`).
    pub fn target(mut self, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        self.target = Some((bucket.into(), key.into()));
        self
    }
    /// Not idempotent (for `run_sdk`): retried only when the request provably
    /// never left.
    pub fn not_idempotent(mut self) -> Self {
        self.not_idempotent = true;
        self
    }
}

impl From<i32> for CallOptions {
    /// Just a priority.
    fn from(p: i32) -> Self {
        CallOptions::new().priority(p)
    }
}

/// The per-attempt timeout a call gets when its options name none:
/// `base + expected_bytes / min_throughput`, so a 1 KiB HEAD and an 8 MiB part
/// are each cut off when they stall, not when they are merely large.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeoutPolicy {
    /// The fixed part; `None`: no per-call timeout from this client (the pool's
    /// configured timeout, if any, applies).
    pub base: Option<Duration>,
    /// The slowest transfer rate tolerated, in bytes per second (>= 1).
    pub min_throughput: u64,
}

impl Default for TimeoutPolicy {
    /// 30 s plus 256 KiB/s: an 8 MiB part gets 62 s.
    fn default() -> Self {
        TimeoutPolicy {
            base: Some(Duration::from_secs(30)),
            min_throughput: 256 * 1024,
        }
    }
}

impl TimeoutPolicy {
    /// The timeout for an attempt moving `bytes` bytes.
    pub fn for_bytes(&self, bytes: u64) -> Option<Duration> {
        let base = self.base?;
        let per = bytes as f64 / self.min_throughput.max(1) as f64;
        Some(base + Duration::from_secs_f64(per.min(86_400.0)))
    }
}

/// Per-client settings: partitions, transfer sizes, defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// How many `/`-separated key segments (after the bucket) name a partition:
    /// 0 (default) = one partition per bucket; 1 = per top-level prefix, … S3
    /// scales request rates per prefix, so deeper partitions let hot prefixes
    /// be limited on their own.
    pub prefix_depth: usize,
    /// Priority of calls whose options name none.
    pub default_priority: i32,
    /// Per-attempt timeouts of calls whose options name none.
    pub timeout: TimeoutPolicy,
    /// Bodies larger than this are uploaded in parts (>= `part_size`).
    pub multipart_threshold: u64,
    /// Size of upload parts and download ranges (>= 5 MiB for uploads: S3's
    /// minimum part size).
    pub part_size: u64,
    /// Objects larger than this are copied in parts (S3 refuses single copies
    /// above 5 GiB).
    pub multipart_copy_threshold: u64,
    /// Size of copy parts (>= 5 MiB, <= 5 GiB).
    pub copy_part_size: u64,
    /// Parts of one transfer submitted at once (the pool still limits how many
    /// run).
    pub transfer_concurrency: usize,
}

/// S3's smallest allowed part (the last part may be smaller).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest single PUT or copy, and largest part.
pub const MAX_SINGLE_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's maximum number of parts in an upload.
pub const MAX_PARTS: u64 = 10_000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix_depth: 0,
            default_priority: 0,
            timeout: TimeoutPolicy::default(),
            multipart_threshold: 16 * 1024 * 1024,
            // S3's guidance: byte ranges of 8 or 16 MB.
            part_size: 8 * 1024 * 1024,
            multipart_copy_threshold: MAX_SINGLE_SIZE,
            copy_part_size: 64 * 1024 * 1024,
            transfer_concurrency: 8,
        }
    }
}

impl Settings {
    /// Checks the bounds S3 imposes.
    pub fn validate(&self) -> Result<(), String> {
        if self.part_size < MIN_PART_SIZE || self.part_size > MAX_SINGLE_SIZE {
            return Err(format!(
                "part_size must be within 5 MiB..=5 GiB, got {}",
                self.part_size
            ));
        }
        if self.copy_part_size < MIN_PART_SIZE || self.copy_part_size > MAX_SINGLE_SIZE {
            return Err(format!(
                "copy_part_size must be within 5 MiB..=5 GiB, got {}",
                self.copy_part_size
            ));
        }
        if self.multipart_threshold < self.part_size {
            return Err("multipart_threshold must be >= part_size".into());
        }
        if self.multipart_copy_threshold > MAX_SINGLE_SIZE {
            return Err("multipart_copy_threshold must be <= 5 GiB".into());
        }
        if self.transfer_concurrency == 0 {
            return Err("transfer_concurrency must be >= 1".into());
        }
        if self.timeout.min_throughput == 0 {
            return Err("timeout.min_throughput must be >= 1".into());
        }
        Ok(())
    }

    /// The partition key of an object: the bucket plus up to `prefix_depth`
    /// leading key segments.
    pub fn partition_of(&self, bucket: &str, key: &str) -> String {
        let mut p = String::with_capacity(bucket.len() + 1 + key.len().min(64));
        p.push_str(bucket);
        p.push('/');
        if self.prefix_depth > 0 {
            let mut segs = 0;
            for (i, c) in key.char_indices() {
                if c == '/' {
                    segs += 1;
                    if segs == self.prefix_depth {
                        p.push_str(&key[..=i]);
                        return p;
                    }
                }
            }
            // Fewer segments than the depth: the key's directory part.
            if let Some(i) = key.rfind('/') {
                p.push_str(&key[..=i]);
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_prefix_depth() {
        let mut s = Settings::default();
        assert_eq!(s.partition_of("b", "x/y/z"), "b/");
        s.prefix_depth = 1;
        assert_eq!(s.partition_of("b", "x/y/z"), "b/x/");
        assert_eq!(s.partition_of("b", "z"), "b/");
        s.prefix_depth = 2;
        assert_eq!(s.partition_of("b", "x/y/z"), "b/x/y/");
        assert_eq!(s.partition_of("b", "x/z"), "b/x/");
    }

    #[test]
    fn timeouts_grow_with_bytes() {
        let p = TimeoutPolicy::default();
        assert_eq!(p.for_bytes(0), Some(Duration::from_secs(30)));
        assert_eq!(p.for_bytes(8 * 1024 * 1024), Some(Duration::from_secs(62)));
        let none = TimeoutPolicy { base: None, ..p };
        assert_eq!(none.for_bytes(1), None);
    }

    #[test]
    fn settings_bounds_are_checked() {
        assert!(Settings::default().validate().is_ok());
        let s = Settings {
            part_size: 1024,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("part_size"));
        let s = Settings {
            transfer_concurrency: 0,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }
}
