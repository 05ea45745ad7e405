//! Feature `tower`: `PoolLayer` runs any tower `Service`'s calls through the
//! pool — limits, priorities from a per-request closure, retries, classifiers,
//! the inner service's readiness, and cancellation by dropping the call.
#![cfg(feature = "tower")]

mod pool_util;
use pool_core::pool::tower::PoolLayer;
use pool_core::*;
use pool_util::*;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::sleep;
use tower::{service_fn, Layer, Service, ServiceExt};

#[tokio::test(start_paused = true)]
async fn calls_run_through_the_pool_and_respect_its_limit() {
    let p = pool(2);
    let gauge = Gauge::default();
    let g = gauge.clone();
    let svc = PoolLayer::new(p.clone()).layer(service_fn(move |x: u32| {
        let g = g.clone();
        async move {
            let _live = g.enter();
            sleep(ms(10)).await;
            Ok::<_, Infallible>(x * 2)
        }
    }));
    let calls: Vec<_> = (0..6).map(|i| svc.clone().oneshot(i)).collect();
    let out = futures_util::future::join_all(calls).await;
    let out: Vec<u32> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(out, [0, 2, 4, 6, 8, 10]);
    assert_eq!(gauge.max(), 2, "never more calls at once than the limit");
    assert_eq!(p.stats().counters.succeeded, 6);
}

#[tokio::test(start_paused = true)]
async fn per_request_options_set_the_priority() {
    let p = pool(1);
    let order = Log::default();
    let o = order.clone();
    let svc = PoolLayer::new(p.clone())
        .options(|req: &(u32, i32)| RunOptions::new().priority(req.1))
        .layer(service_fn(move |req: (u32, i32)| {
            let o = o.clone();
            async move {
                o.push(req.0);
                sleep(ms(10)).await;
                Ok::<_, Infallible>(())
            }
        }));
    // The first call takes the only slot; the rest queue and start by priority.
    let calls = [(0, 0), (1, 1), (2, 9), (3, 5)].map(|r| svc.clone().oneshot(r));
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(order.get(), [0, 2, 3, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_call_is_retried_with_a_clone_of_the_request() {
    let p = pool(1);
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let mut svc = PoolLayer::new(p).layer(service_fn(move |req: String| {
        let n = t.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n < 3 {
                Err(Oops("503"))
            } else {
                Ok(format!("{req}:{n}"))
            }
        }
    }));
    let r = svc.ready().await.unwrap().call("get".to_string()).await;
    assert_eq!(r.unwrap(), "get:3");
    assert_eq!(tries.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_classifier_decides_what_is_retried() {
    let p = pool(1);
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let svc = PoolLayer::new(p)
        .classifier(|_: &Oops| AttemptError::permanent())
        .layer(service_fn(move |_: ()| {
            t.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Oops("404")) }
        }));
    let r = svc.oneshot(()).await;
    assert!(
        matches!(
            r,
            Err(PoolError::Failed {
                attempts: 1,
                last: Oops("404"),
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}

/// A service that is not ready until told, then fails readiness once.
#[derive(Clone)]
struct Picky {
    ready_calls: Arc<AtomicU32>,
}

impl Service<u32> for Picky {
    type Response = u32;
    type Error = Oops;
    type Future = std::future::Ready<Result<u32, Oops>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Oops>> {
        match self.ready_calls.fetch_add(1, Ordering::SeqCst) {
            0 => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            1 => Poll::Ready(Err(Oops("not ready"))),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, req: u32) -> Self::Future {
        std::future::ready(Ok(req + 1))
    }
}

#[tokio::test(start_paused = true)]
async fn each_attempt_waits_for_the_inner_service_and_a_readiness_error_is_an_attempt_error() {
    let p = pool(1);
    let calls = Arc::new(AtomicU32::new(0));
    let svc = PoolLayer::new(p.clone()).layer(Picky {
        ready_calls: calls.clone(),
    });
    assert_eq!(svc.oneshot(41).await.unwrap(), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "pending, error, ready");
    assert_eq!(p.stats().counters.retried, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_cancels_its_op_and_frees_the_slot() {
    let p = pool(1);
    let gauge = Gauge::default();
    let g = gauge.clone();
    let svc = PoolLayer::new(p.clone()).layer(service_fn(move |_: ()| {
        let g = g.clone();
        async move {
            let _live = g.enter();
            sleep(ms(1_000)).await;
            Ok::<_, Infallible>(())
        }
    }));
    let mut call = Box::pin(svc.clone().oneshot(()));
    assert!(poll_once(&mut call).await.is_pending());
    assert_eq!(gauge.current(), 1);
    drop(call);
    assert_eq!(gauge.current(), 0, "the attempt's future was dropped");
    assert_eq!(p.stats().in_flight, 0);
    svc.oneshot(()).await.unwrap();
}
