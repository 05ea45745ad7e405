//! One error type for every attempt, whatever the SDK operation: what the
//! classifier reads and what callers get back inside [`PoolError`].

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use core::fmt;
use core::time::Duration;
use pool_core::PoolError;

/// The boxed original error (an `SdkError<…>`, a body error, an I/O error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an S3 call returns when it gives no value: the pool's verdict (attempts
/// made, why no retry) with the last attempt's [`S3Error`] inside.
pub type Error = PoolError<S3Error>;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why one attempt of an S3 call failed. Carries the SDK's original error as
/// its [`source`](std::error::Error::source), so callers can downcast to the
/// operation's `SdkError<…>` for details not copied here.
#[derive(Debug)]
#[non_exhaustive]
pub enum S3Error {
    /// The server answered with an error status.
    Service {
        /// The HTTP status (e.g. 503).
        status: u16,
        /// The S3 error code (e.g. `SlowDown`, `NoSuchKey`), when the body had one.
        code: Option<String>,
        /// The server's message, when the body had one.
        message: Option<String>,
        /// The `Retry-After` header, when the server sent one.
        retry_after: Option<Duration>,
        /// The SDK's error.
        source: BoxError,
    },
    /// The request could not be sent or its response not received (connection
    /// refused or reset, DNS, TLS, an SDK timeout).
    Dispatch {
        /// Proven never to have reached the server (the connection was never
        /// established), so even a non-idempotent call may be retried.
        not_sent: bool,
        /// The SDK's error.
        source: BoxError,
    },
    /// The response arrived but could not be read or parsed: a body cut
    /// mid-stream, a truncated XML document, a length mismatch.
    Body {
        /// What went wrong.
        source: BoxError,
    },
    /// The SDK refused to build the request (invalid input).
    Construction {
        /// The SDK's error.
        source: BoxError,
    },
    /// A local file could not be read or written.
    Io(std::io::Error),
    /// The call's input or the server's answer broke a rule of this crate (e.g. a
    /// part size out of bounds, a response without a required field).
    Invalid(String),
}

impl S3Error {
    /// Converts any SDK operation error (from `client.xxx().send()`).
    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            SdkError::ServiceError(_) => {
                let raw = err.raw_response();
                let status = raw.map(|r| r.status().as_u16()).unwrap_or(0);
                let retry_after = raw
                    .and_then(|r| r.headers().get("retry-after"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                S3Error::Service {
                    status,
                    code: err.code().map(str::to_owned),
                    message: err.message().map(str::to_owned),
                    retry_after,
                    source: Box::new(err),
                }
            }
            SdkError::DispatchFailure(d) => S3Error::Dispatch {
                not_sent: d.as_connector_error().is_some_and(never_connected),
                source: Box::new(err),
            },
            SdkError::TimeoutError(_) => S3Error::Dispatch {
                not_sent: false,
                source: Box::new(err),
            },
            // The status line arrived but the rest did not parse: usually a
            // response cut short, which a retry fixes.
            SdkError::ResponseError(_) => S3Error::Body {
                source: Box::new(err),
            },
            SdkError::ConstructionFailure(_) => S3Error::Construction {
                source: Box::new(err),
            },
            // `SdkError` is non-exhaustive: treat anything new as a dispatch error
            // that may have reached the server (retried only if idempotent).
            _ => S3Error::Dispatch {
                not_sent: false,
                source: Box::new(err),
            },
        }
    }

    /// A body read error (from `ByteStream`).
    pub(crate) fn body(e: impl Into<BoxError>) -> S3Error {
        S3Error::Body { source: e.into() }
    }

    /// The HTTP status of a service error.
    pub fn status(&self) -> Option<u16> {
        match self {
            S3Error::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The S3 error code of a service error (e.g. `NoSuchKey`).
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a "no such object/bucket/upload" answer (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::Service { status: 404, .. })
            || matches!(
                self.code(),
                Some("NoSuchKey" | "NotFound" | "NoSuchBucket" | "NoSuchUpload")
            )
    }
}

/// Whether a connector error proves no connection was made: connect errors
/// (refused, unreachable, DNS) happen before any byte of the request is sent.
fn never_connected(e: &aws_sdk_s3::error::ConnectorError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
            if h.is_connect() {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::Service {
                status,
                code,
                message,
                ..
            } => {
                write!(f, "S3 answered {status}")?;
                if let Some(c) = code {
                    write!(f, " {c}")?;
                }
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            S3Error::Dispatch { not_sent, source } => {
                let sent = if *not_sent {
                    "not sent"
                } else {
                    "may have been sent"
                };
                write!(f, "request failed ({sent}): {}", chain(source.as_ref()))
            }
            S3Error::Body { source } => {
                write!(f, "reading the response failed: {}", chain(source.as_ref()))
            }
            S3Error::Construction { source } => {
                write!(f, "invalid request: {}", chain(source.as_ref()))
            }
            S3Error::Io(e) => write!(f, "local I/O error: {e}"),
            S3Error::Invalid(m) => f.write_str(m),
        }
    }
}

/// An error and its sources on one line (the SDK's top-level messages alone
/// say little, e.g. "dispatch failure").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let m = err.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = err.source();
    }
    s
}

impl std::error::Error for S3Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            S3Error::Service { source, .. }
            | S3Error::Dispatch { source, .. }
            | S3Error::Body { source }
            | S3Error::Construction { source } => Some(source.as_ref()),
            S3Error::Io(e) => Some(e),
            S3Error::Invalid(_) => None,
        }
    }
}

impl From<std::io::Error> for S3Error {
    fn from(e: std::io::Error) -> Self {
        S3Error::Io(e)
    }
}
