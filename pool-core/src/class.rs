//! Operation classes: an open set of small integers with names for the S3 ones.
//!
//! The engine keeps metrics, rate limits and controllers per class. S3 classes are
//! provided as constants so `pool-sim` and `pool-s3` agree on them; other users pick
//! their own numbers (anything from [`OpClass::FIRST_CUSTOM`] up is never used here).

use core::fmt;
use serde::{Deserialize, Serialize};

/// The class of an operation (e.g. S3 GET vs PUT). Cheap to copy, open-ended.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpClass(pub u16);

impl OpClass {
    /// The class of ops that name none.
    pub const DEFAULT: OpClass = OpClass(0);
    /// S3 HeadObject.
    pub const HEAD: OpClass = OpClass(1);
    /// S3 GetObject (whole or ranged).
    pub const GET: OpClass = OpClass(2);
    /// S3 PutObject.
    pub const PUT: OpClass = OpClass(3);
    /// S3 ListObjectsV2.
    pub const LIST: OpClass = OpClass(4);
    /// S3 DeleteObject / DeleteObjects.
    pub const DELETE: OpClass = OpClass(5);
    /// S3 CopyObject / UploadPartCopy.
    pub const COPY: OpClass = OpClass(6);
    /// One part of a multipart upload.
    pub const MULTIPART_PART: OpClass = OpClass(7);
    /// The first number free for users' own classes.
    pub const FIRST_CUSTOM: u16 = 64;

    /// The S3 classes, in number order.
    pub const S3: [OpClass; 7] = [
        OpClass::HEAD,
        OpClass::GET,
        OpClass::PUT,
        OpClass::LIST,
        OpClass::DELETE,
        OpClass::COPY,
        OpClass::MULTIPART_PART,
    ];

    /// A well-known name for built-in classes, `None` for custom ones.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "default",
            1 => "head",
            2 => "get",
            3 => "put",
            4 => "list",
            5 => "delete",
            6 => "copy",
            7 => "multipart_part",
            _ => return None,
        })
    }

    /// Parses a built-in name (as returned by [`OpClass::name`]) or a number.
    pub fn parse(s: &str) -> Option<OpClass> {
        let lower = s.to_ascii_lowercase();
        for n in 0..8u16 {
            if OpClass(n).name() == Some(lower.as_str()) {
                return Some(OpClass(n));
            }
        }
        lower.parse::<u16>().ok().map(OpClass)
    }

    /// Whether S3 counts this class against the per-prefix *write* request rate
    /// (PUT/COPY/POST/DELETE) rather than the read rate (GET/HEAD/LIST).
    pub fn is_s3_write(self) -> bool {
        matches!(
            self,
            OpClass::PUT | OpClass::DELETE | OpClass::COPY | OpClass::MULTIPART_PART
        )
    }
}

impl fmt::Debug for OpClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "class#{}", self.0),
        }
    }
}

impl fmt::Display for OpClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in OpClass::S3 {
            assert_eq!(OpClass::parse(c.name().unwrap()), Some(c));
        }
        assert_eq!(OpClass::parse("GET"), Some(OpClass::GET));
        assert_eq!(OpClass::parse("100"), Some(OpClass(100)));
        assert_eq!(OpClass::parse("nope"), None);
        assert!(OpClass::PUT.is_s3_write());
        assert!(!OpClass::GET.is_s3_write());
    }
}
