//! Turning an attempt's error into what the engine needs to decide on a retry.

use crate::outcome::AttemptError;

/// Classifies an op's error for the engine's retry rules. Implemented for any
/// `Fn(&E) -> AttemptError`, so a closure works.
pub trait Classifier<E> {
    /// How the engine should treat this failed attempt.
    fn classify(&self, error: &E) -> AttemptError;
}

impl<E, F: Fn(&E) -> AttemptError> Classifier<E> for F {
    fn classify(&self, error: &E) -> AttemptError {
        self(error)
    }
}

/// The default classifier: every error is transient and may have reached the
/// server, so idempotent ops are retried within the pool's retry policy.
#[derive(Copy, Clone, Debug, Default)]
pub struct AllTransient;

impl<E> Classifier<E> for AllTransient {
    fn classify(&self, _error: &E) -> AttemptError {
        AttemptError::transient()
    }
}
