//! Batches: many items through the pool. `process` keeps input order (the seed's
//! `process`/`processCorresponding`); `process_stream` pulls lazily from any
//! `Stream` with a bound on items in flight (the seed's `processIterable`, but
//! with real backpressure: flaw F38) and yields results as they complete.

use super::ctx::AttemptCtx;
use super::error::PoolError;
use super::options::RunOptions;
use super::Pool;
use core::future::Future;
use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;

impl Pool {
    /// Runs `f` for every item (one op per item, all submitted at once, each
    /// with `opts`) and returns the results in input order, errors per item.
    ///
    /// `f` is called once per attempt with a clone of the item (wrap large items
    /// in an `Arc`).
    pub async fn process<I, T, R, E, F, Fut>(
        &self,
        items: I,
        opts: RunOptions,
        f: F,
    ) -> Vec<Result<R, PoolError<E>>>
    where
        I: IntoIterator<Item = T>,
        T: Clone,
        F: Fn(T, AttemptCtx) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let f = &f;
        let running: FuturesUnordered<_> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let op = self.run(opts.clone(), move |ctx| f(item.clone(), ctx));
                async move { (i, op.await) }
            })
            .collect();
        let mut out: Vec<Option<Result<R, PoolError<E>>>> = std::iter::repeat_with(|| None)
            .take(running.len())
            .collect();
        let mut running = running;
        while let Some((i, r)) = running.next().await {
            out[i] = Some(r);
        }
        // Every index was filled exactly once above.
        out.into_iter().flatten().collect()
    }

    /// Runs `f` for every item of `items`, keeping at most `max_in_flight`
    /// submitted at once (pulling the next item only when one finishes), and
    /// yields `(input index, result)` as they complete.
    ///
    /// `max_in_flight` of 0 is treated as 1.
    pub fn process_stream<S, T, R, E, F, Fut>(
        &self,
        items: S,
        max_in_flight: usize,
        opts: RunOptions,
        f: F,
    ) -> impl Stream<Item = (usize, Result<R, PoolError<E>>)>
    where
        S: Stream<Item = T>,
        T: Clone,
        F: Fn(T, AttemptCtx) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let pool = self.clone();
        let f = Arc::new(f);
        items
            .enumerate()
            .map(move |(i, item)| {
                let f = Arc::clone(&f);
                let op = pool.run(opts.clone(), move |ctx| f(item.clone(), ctx));
                async move { (i, op.await) }
            })
            .buffer_unordered(max_in_flight.max(1))
    }
}
