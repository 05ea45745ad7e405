//! How an [`S3Error`] is treated by the pool's retry rules.
//!
//! The SDK's own retries are off, so this is the only place that decides what
//! is throttling, what is worth another try and what is final. The lists follow
//! the AWS SDKs' classifiers (anchors §3.3) with S3's own additions.

use crate::error::S3Error;
use pool_core::{AttemptError, Classifier};

/// Throttling error codes: the AWS SDKs' `THROTTLING_ERRORS` (botocore's list
/// is the same). S3 itself sends `SlowDown`; S3-compatible stores send others.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Transient error codes whatever their status: `RequestTimeout` comes with
/// HTTP 400 from S3 (the socket was not read or written in time), and S3
/// marks `InternalError` retryable.
pub const TRANSIENT_CODES: &[&str] =
    &["RequestTimeout", "RequestTimeoutException", "InternalError"];

/// The classifier of every call this crate makes; usable on its own with
/// [`pool_core::Pool::run_classified`] for errors converted with
/// [`S3Error::from_sdk`].
#[derive(Copy, Clone, Debug, Default)]
pub struct S3Classifier;

impl Classifier<S3Error> for S3Classifier {
    fn classify(&self, e: &S3Error) -> AttemptError {
        classify(e)
    }
}

/// The rules, as a function.
pub fn classify(e: &S3Error) -> AttemptError {
    match e {
        S3Error::Service {
            status,
            code,
            retry_after,
            ..
        } => {
            let code = code.as_deref();
            let c = if code.is_some_and(|c| THROTTLING_CODES.contains(&c))
                // 429, and a 503 with any other code or none: S3 sends 503 when
                // overloaded, so slowing down is the right answer.
                || *status == 429
                || *status == 503
            {
                AttemptError::throttled()
            } else if code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) || *status >= 500 {
                AttemptError::transient()
            } else {
                // Other 4xx (NoSuchKey, AccessDenied, PreconditionFailed, …) and
                // anything odd (a status of 0 or 3xx): retrying gives the same.
                AttemptError::permanent()
            };
            match retry_after {
                Some(d) => c.with_retry_after(*d),
                None => c,
            }
        }
        S3Error::Dispatch { not_sent: true, .. } => AttemptError::transient().not_sent(),
        S3Error::Dispatch { .. } | S3Error::Body { .. } => AttemptError::transient(),
        S3Error::Construction { .. } | S3Error::Io(_) | S3Error::Invalid(_) => {
            AttemptError::permanent()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_core::ErrorClass;

    fn service(status: u16, code: Option<&str>) -> S3Error {
        S3Error::Service {
            status,
            code: code.map(str::to_owned),
            message: None,
            retry_after: None,
            source: "test".into(),
        }
    }

    fn class(status: u16, code: Option<&str>) -> ErrorClass {
        classify(&service(status, code)).class
    }

    #[test]
    fn throttling_statuses_and_codes() {
        assert_eq!(class(503, Some("SlowDown")), ErrorClass::Throttled);
        assert_eq!(class(503, None), ErrorClass::Throttled);
        assert_eq!(
            class(503, Some("ServiceUnavailable")),
            ErrorClass::Throttled
        );
        assert_eq!(class(429, None), ErrorClass::Throttled);
        for c in THROTTLING_CODES {
            assert_eq!(class(400, Some(c)), ErrorClass::Throttled, "{c}");
        }
    }

    #[test]
    fn transient_statuses_and_codes() {
        for s in [500, 502, 504] {
            assert_eq!(class(s, None), ErrorClass::Transient, "{s}");
        }
        assert_eq!(class(500, Some("InternalError")), ErrorClass::Transient);
        assert_eq!(class(400, Some("RequestTimeout")), ErrorClass::Transient);
        let body = S3Error::body("cut");
        assert_eq!(classify(&body).class, ErrorClass::Transient);
        assert!(classify(&body).may_have_reached_server);
    }

    #[test]
    fn permanent_client_errors() {
        for (s, c) in [
            (404, Some("NoSuchKey")),
            (404, None),
            (403, Some("AccessDenied")),
            (400, Some("EntityTooSmall")),
            (412, Some("PreconditionFailed")),
            (301, None),
        ] {
            assert_eq!(class(s, c), ErrorClass::Permanent, "{s} {c:?}");
        }
        assert_eq!(
            classify(&S3Error::Invalid("x".into())).class,
            ErrorClass::Permanent
        );
    }

    #[test]
    fn not_sent_dispatch_errors_say_so() {
        let e = S3Error::Dispatch {
            not_sent: true,
            source: "refused".into(),
        };
        let c = classify(&e);
        assert_eq!(c.class, ErrorClass::Transient);
        assert!(!c.may_have_reached_server);
        let e = S3Error::Dispatch {
            not_sent: false,
            source: "reset".into(),
        };
        assert!(classify(&e).may_have_reached_server);
    }

    #[test]
    fn retry_after_is_passed_on() {
        let e = S3Error::Service {
            status: 503,
            code: Some("SlowDown".into()),
            message: None,
            retry_after: Some(core::time::Duration::from_secs(2)),
            source: "x".into(),
        };
        assert_eq!(
            classify(&e).retry_after,
            Some(core::time::Duration::from_secs(2))
        );
    }
}
