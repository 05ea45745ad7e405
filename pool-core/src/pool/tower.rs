//! tower interop (feature `tower`): [`PoolLayer`] wraps any tower `Service` so
//! that every call runs through the pool as one op — queued by priority, limited,
//! retried, timed out and cancelled like any other (so a non-S3 HTTP client can
//! share the pool and its limits).
//!
//! Each attempt waits for the inner service to be ready and calls it with a clone
//! of the request (so requests must be `Clone`; wrap a body that is not in
//! something that is). The wrapped service is always ready itself: the pool's
//! queue is the backpressure (a bounded queue refuses with
//! [`PoolError::Rejected`]).

use super::classify::{AllTransient, Classifier};
use super::ctx::AttemptCtx;
use super::error::PoolError;
use super::op::{MakeAttempt, Run};
use super::options::RunOptions;
use super::shared::OpRef;
use super::Pool;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use pin_project_lite::pin_project;
use std::sync::Arc;
use tower_layer::Layer;
use tower_service::Service;

/// The options of one request's op. Implemented for [`RunOptions`] (the same for
/// every request) and for any `Fn(&Req) -> RunOptions`.
pub trait RequestOptions<Req> {
    /// The options for `req`.
    fn options(&self, req: &Req) -> RunOptions;
}

impl<Req> RequestOptions<Req> for RunOptions {
    fn options(&self, _req: &Req) -> RunOptions {
        self.clone()
    }
}

impl<Req, F: Fn(&Req) -> RunOptions> RequestOptions<Req> for F {
    fn options(&self, req: &Req) -> RunOptions {
        self(req)
    }
}

/// A tower `Layer` that runs the wrapped service's calls through a pool.
#[derive(Clone)]
pub struct PoolLayer<O = RunOptions, C = AllTransient> {
    pool: Pool,
    options: O,
    classifier: C,
}

impl<O, C> fmt::Debug for PoolLayer<O, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolLayer").finish_non_exhaustive()
    }
}

impl PoolLayer {
    /// Calls run through `pool` with default options; every error is transient.
    pub fn new(pool: Pool) -> PoolLayer {
        PoolLayer {
            pool,
            options: RunOptions::default(),
            classifier: AllTransient,
        }
    }
}

impl<O, C> PoolLayer<O, C> {
    /// Options per request: a [`RunOptions`] for all, or `Fn(&Req) -> RunOptions`
    /// (e.g. priority or class from the request).
    pub fn options<O2>(self, options: O2) -> PoolLayer<O2, C> {
        PoolLayer {
            pool: self.pool,
            options,
            classifier: self.classifier,
        }
    }

    /// How the inner service's errors are treated (see [`Classifier`]).
    pub fn classifier<C2>(self, classifier: C2) -> PoolLayer<O, C2> {
        PoolLayer {
            pool: self.pool,
            options: self.options,
            classifier,
        }
    }
}

impl<S, O: Clone, C: Clone> Layer<S> for PoolLayer<O, C> {
    type Service = PoolService<S, O, C>;

    fn layer(&self, inner: S) -> Self::Service {
        PoolService {
            inner,
            pool: self.pool.clone(),
            options: self.options.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service whose calls run through a pool (made by [`PoolLayer`]). Its errors
/// are [`PoolError`]s carrying the inner service's last error.
#[derive(Clone)]
pub struct PoolService<S, O = RunOptions, C = AllTransient> {
    inner: S,
    pool: Pool,
    options: O,
    classifier: C,
}

impl<S, O, C> fmt::Debug for PoolService<S, O, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolService").finish_non_exhaustive()
    }
}

impl<S, O, C> PoolService<S, O, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The future of a [`PoolService`] call.
pub type PoolServiceFuture<S, Req, C> = Run<
    <S as Service<Req>>::Response,
    <S as Service<Req>>::Error,
    C,
    CallService<S, Req>,
    ReadyCall<S, Req>,
>;

impl<S, Req, O, C> Service<Req> for PoolService<S, O, C>
where
    S: Service<Req> + Clone,
    Req: Clone,
    O: RequestOptions<Req>,
    C: Classifier<S::Error> + Clone,
{
    type Response = S::Response;
    type Error = PoolError<S::Error>;
    type Future = PoolServiceFuture<S, Req, C>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the pool's business: the call queues for a slot, and each
        // attempt waits for the inner service to be ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let opts = self.options.options(&req);
        Run::new(
            OpRef::new(Arc::clone(self.pool.shared())),
            opts,
            self.classifier.clone(),
            CallService {
                svc: self.inner.clone(),
                req,
            },
        )
    }
}

/// Makes each attempt of a [`PoolService`] call: a clone of the service called
/// with a clone of the request.
pub struct CallService<S, Req> {
    svc: S,
    req: Req,
}

impl<S, Req> fmt::Debug for CallService<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallService").finish_non_exhaustive()
    }
}

impl<S: Service<Req> + Clone, Req: Clone> MakeAttempt<ReadyCall<S, Req>> for CallService<S, Req> {
    fn make(&mut self, _ctx: AttemptCtx) -> ReadyCall<S, Req> {
        ReadyCall {
            state: State::Ready {
                svc: self.svc.clone(),
                req: Some(self.req.clone()),
            },
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // Waiting for the service to be ready.
        Ready { svc: S, req: Option<Req> },
        // Called: the service's future.
        Called { #[pin] fut: S::Future },
        Done,
    }
}

pin_project! {
    /// One attempt of a [`PoolService`] call: waits for the service to be ready,
    /// then calls it.
    pub struct ReadyCall<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ReadyCall<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Ready { .. } => "ReadyCall(ready)",
            State::Called { .. } => "ReadyCall(called)",
            State::Done => "ReadyCall(done)",
        })
    }
}

impl<S: Service<Req>, Req> Future for ReadyCall<S, Req> {
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let fut = match state.as_mut().project() {
                StateProj::Ready { svc, req } => match svc.poll_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        state.set(State::Done);
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Ok(())) => match req.take() {
                        Some(r) => svc.call(r),
                        None => panic!("`ReadyCall` polled after it completed"),
                    },
                },
                StateProj::Called { fut } => {
                    let out = match fut.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(out) => out,
                    };
                    state.set(State::Done);
                    return Poll::Ready(out);
                }
                StateProj::Done => panic!("`ReadyCall` polled after it completed"),
            };
            state.set(State::Called { fut });
        }
    }
}
