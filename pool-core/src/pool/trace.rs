//! Spans for `tracing` (feature `tracing`): `pool.op` for each op, from submit to
//! resolution, with a `pool.attempt` child for each attempt, both at DEBUG level.
//!
//! * `pool.op`: `op` (id), `class`, `partition` (the key, or the interned index
//!   when only an id was given), then `attempts` and `outcome` (`succeeded`,
//!   `failed`, `timed_out`, `deadline_exceeded`, `cancelled`, `rejected`,
//!   `shut_down`, `invalid_options`, `panicked`).
//! * `pool.attempt`: `op`, `attempt` (number from 1), `hedge`, then `outcome`
//!   (`ok`, `error` with `error_class`, `cancelled`, `panicked`). The attempt's
//!   future is polled (and the closure called) inside it, so the op's own spans
//!   and events nest under it.
//!
//! Without the feature every method here is an empty inline function and the
//! op future carries no extra field.

use super::error::PoolError;
use super::options::RunOptions;
use crate::outcome::{ErrorClass, OpId};

/// How an attempt ended, for its span.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) enum AttemptEnd {
    Ok,
    Error(ErrorClass),
    Cancelled,
    Panicked,
}

/// The op's outcome name for its span.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn outcome_name<T, E>(r: &Result<T, PoolError<E>>) -> &'static str {
    match r {
        Ok(_) => "succeeded",
        Err(PoolError::Failed { .. }) => "failed",
        Err(PoolError::TimedOut { .. }) => "timed_out",
        Err(PoolError::DeadlineExceeded { .. }) => "deadline_exceeded",
        Err(PoolError::Cancelled { .. }) => "cancelled",
        Err(PoolError::Rejected) => "rejected",
        Err(PoolError::ShutDown) => "shut_down",
        Err(PoolError::InvalidOptions { .. }) => "invalid_options",
        Err(PoolError::Panicked { .. }) => "panicked",
    }
}

#[cfg(feature = "tracing")]
pub(crate) use on::OpTrace;

#[cfg(not(feature = "tracing"))]
pub(crate) use off::OpTrace;

#[cfg(feature = "tracing")]
mod on {
    use super::{outcome_name, AttemptEnd, OpId, PoolError, RunOptions};
    use tracing::field::{display, Empty};
    use tracing::span::Entered;
    use tracing::Span;

    struct Spans {
        op: Span,
        id: u64,
        attempts: Vec<(u32, Span)>,
    }

    /// The op's spans; boxed, and only when a subscriber wants them.
    pub(crate) struct OpTrace(Option<Box<Spans>>);

    impl OpTrace {
        pub(crate) fn new() -> OpTrace {
            OpTrace(None)
        }

        /// Opens the op's span (the op is about to be submitted).
        pub(crate) fn begin(&mut self, opts: &RunOptions) {
            let span = tracing::debug_span!(
                "pool.op",
                op = Empty,
                class = %opts.op.class,
                partition = Empty,
                attempts = Empty,
                outcome = Empty,
            );
            if span.is_disabled() {
                return;
            }
            match &opts.partition_key {
                Some(k) => span.record("partition", display(k)),
                None => span.record("partition", opts.op.partition.index()),
            };
            self.0 = Some(Box::new(Spans {
                op: span,
                id: 0,
                attempts: Vec::new(),
            }));
        }

        /// The engine accepted the op as `id`.
        pub(crate) fn submitted(&mut self, id: OpId) {
            if let Some(s) = &mut self.0 {
                s.id = id.get();
                s.op.record("op", s.id);
            }
        }

        /// Attempt `n` starts: opens its span.
        pub(crate) fn attempt(&mut self, n: u32, hedge: bool) {
            if let Some(s) = &mut self.0 {
                let span = tracing::debug_span!(
                    parent: &s.op,
                    "pool.attempt",
                    op = s.id,
                    attempt = n,
                    hedge,
                    outcome = Empty,
                    error_class = Empty,
                );
                s.attempts.push((n, span));
            }
        }

        /// Enters attempt `n`'s span while its closure or future runs.
        pub(crate) fn enter(&self, n: u32) -> Option<Entered<'_>> {
            let s = self.0.as_ref()?;
            let (_, span) = s.attempts.iter().find(|(m, _)| *m == n)?;
            Some(span.enter())
        }

        /// Attempt `n` ended: records how, and closes its span.
        pub(crate) fn attempt_ended(&mut self, n: u32, end: AttemptEnd) {
            let Some(s) = &mut self.0 else {
                return;
            };
            let Some(i) = s.attempts.iter().position(|(m, _)| *m == n) else {
                return;
            };
            let (_, span) = s.attempts.swap_remove(i);
            match end {
                AttemptEnd::Ok => span.record("outcome", "ok"),
                AttemptEnd::Error(c) => {
                    span.record("outcome", "error");
                    span.record("error_class", tracing::field::debug(c))
                }
                AttemptEnd::Cancelled => span.record("outcome", "cancelled"),
                AttemptEnd::Panicked => span.record("outcome", "panicked"),
            };
        }

        /// The op resolved (or failed to submit) after `attempts` attempts:
        /// records the outcome and closes every span (attempts still open were
        /// dropped: cancelled).
        pub(crate) fn end<T, E>(&mut self, r: &Result<T, PoolError<E>>, attempts: u32) {
            let Some(s) = self.0.take() else {
                return;
            };
            for (_, span) in &s.attempts {
                span.record("outcome", "cancelled");
            }
            s.op.record("outcome", outcome_name(r));
            s.op.record("attempts", attempts);
        }

        /// The op's future was dropped before it resolved.
        pub(crate) fn dropped(&mut self) {
            if let Some(s) = self.0.take() {
                for (_, span) in &s.attempts {
                    span.record("outcome", "cancelled");
                }
                s.op.record("outcome", "cancelled");
            }
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use super::{AttemptEnd, OpId, PoolError, RunOptions};

    /// Nothing to trace: every method is empty.
    pub(crate) struct OpTrace;

    /// Stands for an entered span.
    pub(crate) struct NoGuard;

    impl OpTrace {
        #[inline(always)]
        pub(crate) fn new() -> OpTrace {
            OpTrace
        }
        #[inline(always)]
        pub(crate) fn begin(&mut self, _opts: &RunOptions) {}
        #[inline(always)]
        pub(crate) fn submitted(&mut self, _id: OpId) {}
        #[inline(always)]
        pub(crate) fn attempt(&mut self, _n: u32, _hedge: bool) {}
        #[inline(always)]
        pub(crate) fn enter(&self, _n: u32) -> NoGuard {
            NoGuard
        }
        #[inline(always)]
        pub(crate) fn attempt_ended(&mut self, _n: u32, _end: AttemptEnd) {}
        #[inline(always)]
        pub(crate) fn end<T, E>(&mut self, _r: &Result<T, PoolError<E>>, _attempts: u32) {}
        #[inline(always)]
        pub(crate) fn dropped(&mut self) {}
    }
}
