//! Why an op did not produce a value, and why a control call failed.

use crate::engine::SubmitError;
use crate::outcome::{CancelCause, ErrorClass, NoRetry};
use core::fmt;

/// Why `Pool::run` returned no value. `E` is the op's own error type.
#[derive(Debug)]
pub enum PoolError<E> {
    /// Every allowed attempt failed; `last` is the last attempt's error.
    Failed {
        /// Attempts started, hedges included.
        attempts: u32,
        /// The last attempt's error.
        last: E,
        /// How the engine classified it.
        class: ErrorClass,
        /// Why no further attempt was made.
        why: NoRetry,
    },
    /// The last attempt hit its per-attempt timeout (its future was dropped) and
    /// no retry was allowed.
    TimedOut {
        /// Attempts started, hedges included.
        attempts: u32,
        /// Why no further attempt was made.
        why: NoRetry,
    },
    /// The op's deadline passed (queued, running or backing off).
    DeadlineExceeded {
        /// Attempts started, hedges included.
        attempts: u32,
        /// The error of the last attempt that failed, if one did.
        last: Option<E>,
    },
    /// The op was cancelled: by the caller, or by `Pool::abort`.
    Cancelled {
        /// Who cancelled it.
        cause: CancelCause,
    },
    /// The bounded queue was full and this op had the lowest priority.
    Rejected,
    /// The pool is shut down (or shutting down): no new ops are accepted.
    ShutDown,
    /// The options were invalid (the message names the field).
    InvalidOptions {
        /// The option.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An attempt panicked; the panic was caught and the op failed.
    Panicked {
        /// The panic message, when it was a string.
        message: String,
    },
}

impl<E> PoolError<E> {
    /// The op's own error, if the pool error carries one.
    pub fn source_error(&self) -> Option<&E> {
        match self {
            PoolError::Failed { last, .. } => Some(last),
            PoolError::DeadlineExceeded { last, .. } => last.as_ref(),
            _ => None,
        }
    }

    /// Attempts the op started (0 if it never started or was refused).
    pub fn attempts(&self) -> u32 {
        match self {
            PoolError::Failed { attempts, .. }
            | PoolError::TimedOut { attempts, .. }
            | PoolError::DeadlineExceeded { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// Maps the op's error type.
    pub fn map_err<F, G: FnOnce(E) -> F>(self, g: G) -> PoolError<F> {
        match self {
            PoolError::Failed {
                attempts,
                last,
                class,
                why,
            } => PoolError::Failed {
                attempts,
                last: g(last),
                class,
                why,
            },
            PoolError::TimedOut { attempts, why } => PoolError::TimedOut { attempts, why },
            PoolError::DeadlineExceeded { attempts, last } => PoolError::DeadlineExceeded {
                attempts,
                last: last.map(g),
            },
            PoolError::Cancelled { cause } => PoolError::Cancelled { cause },
            PoolError::Rejected => PoolError::Rejected,
            PoolError::ShutDown => PoolError::ShutDown,
            PoolError::InvalidOptions { field, message } => {
                PoolError::InvalidOptions { field, message }
            }
            PoolError::Panicked { message } => PoolError::Panicked { message },
        }
    }
}

impl<E> From<SubmitError> for PoolError<E> {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Closed => PoolError::ShutDown,
            SubmitError::QueueFull => PoolError::Rejected,
            SubmitError::UnknownPartition => PoolError::InvalidOptions {
                field: "partition",
                message: "unknown partition id (use a partition key instead)".into(),
            },
            SubmitError::InvalidOptions { field, message } => {
                PoolError::InvalidOptions { field, message }
            }
        }
    }
}

impl<E: fmt::Display> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Failed {
                attempts,
                last,
                why,
                ..
            } => write!(
                f,
                "operation failed after {attempts} attempt(s) ({why:?}): {last}"
            ),
            PoolError::TimedOut { attempts, .. } => {
                write!(f, "operation timed out (attempt {attempts})")
            }
            PoolError::DeadlineExceeded { attempts, .. } => {
                write!(f, "operation deadline exceeded after {attempts} attempt(s)")
            }
            PoolError::Cancelled {
                cause: CancelCause::Caller,
            } => f.write_str("operation cancelled by the caller"),
            PoolError::Cancelled {
                cause: CancelCause::Aborted,
            } => f.write_str("operation cancelled: the pool was aborted"),
            PoolError::Rejected => f.write_str("operation rejected: the pool's queue is full"),
            PoolError::ShutDown => {
                f.write_str("the pool is shut down: no new operations are accepted")
            }
            PoolError::InvalidOptions { field, message } => {
                write!(f, "invalid operation option `{field}`: {message}")
            }
            PoolError::Panicked { message } => write!(f, "operation panicked: {message}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display + 'static> std::error::Error for PoolError<E> {}

/// Why `drain` or `shutdown` returned without the pool becoming idle.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The pool is paused with queued work, so waiting would never end (the
    /// seed's drain hangs here, flaw F1). Resume (or abort) first.
    PausedWithWork,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::PausedWithWork => f.write_str(
                "the pool is paused with queued work: it would never become idle (resume or abort it)",
            ),
        }
    }
}

impl std::error::Error for WaitError {}
