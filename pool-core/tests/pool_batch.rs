//! Batches: `process` (input order, per-item errors) and `process_stream`
//! (bounded in flight, results as they complete). Seed conformance ids (M…, S…)
//! are in the test names; docs/conformance.md maps them.

mod pool_util;
use futures_util::stream::{self, StreamExt};
use pool_core::*;
use pool_util::*;
use tokio::time::sleep;

#[tokio::test(start_paused = true)]
async fn m26_s04_process_doubles_every_item_in_input_order() {
    let p = pool(2);
    let r = p
        .process(1..=5, RunOptions::new(), |x: i32, _| async move {
            Ok::<_, Oops>(x * 2)
        })
        .await;
    let v: Vec<_> = r.into_iter().map(Result::unwrap).collect();
    assert_eq!(v, [2, 4, 6, 8, 10]);
}

#[tokio::test(start_paused = true)]
async fn m27_m40_m42_m43_a_failing_item_keeps_its_position_and_error() {
    let p = pool(2);
    let r = p
        .process(
            1..=5,
            RunOptions::new().max_attempts(1),
            |x: i32, _| async move {
                if x == 3 {
                    Err(Oops("item 3 failed"))
                } else {
                    Ok(x * 2)
                }
            },
        )
        .await;
    assert_eq!(r.len(), 5);
    assert_eq!(r.iter().filter(|x| x.is_ok()).count(), 4);
    let err = r[2].as_ref().unwrap_err();
    assert_eq!(err.source_error(), Some(&Oops("item 3 failed")));
    assert_eq!(*r[3].as_ref().unwrap(), 8);
}

#[tokio::test(start_paused = true)]
async fn m31_the_body_gets_the_item_and_its_context() {
    let p = pool(2);
    let r = p
        .process(["a", "b"], RunOptions::new(), |item, ctx| async move {
            Ok::<_, Oops>(format!("{item}:{}", ctx.attempt()))
        })
        .await;
    let v: Vec<_> = r.into_iter().map(Result::unwrap).collect();
    assert_eq!(v, ["a:1", "b:1"]);
}

#[tokio::test(start_paused = true)]
async fn m32_batch_options_apply_to_every_item() {
    let p = pool(1);
    let starts = Log::default();
    // A high-priority batch overtakes a queued low-priority op.
    let blocker = tokio::spawn({
        let p = p.clone();
        async move {
            p.run(RunOptions::new(), |_| async {
                sleep(ms(10)).await;
                Ok::<_, Oops>(())
            })
            .await
        }
    });
    settle().await;
    let s = starts.clone();
    let low = tokio::spawn({
        let p = p.clone();
        async move {
            p.run(RunOptions::new().priority(0), move |_| {
                s.push(0);
                async { Ok::<_, Oops>(()) }
            })
            .await
        }
    });
    settle().await;
    let s = starts.clone();
    let r = p
        .process(
            1..=3,
            RunOptions::new().priority(10).max_attempts(5),
            move |x, _| {
                s.push(x);
                async { Ok::<_, Oops>(()) }
            },
        )
        .await;
    assert_eq!(r.len(), 3);
    blocker.await.unwrap().unwrap();
    low.await.unwrap().unwrap();
    assert_eq!(starts.get(), [1, 2, 3, 0]);
}

#[tokio::test(start_paused = true)]
async fn m39_order_is_kept_despite_random_delays() {
    let p = pool(4);
    let delays = [30u64, 5, 20, 1, 15, 7, 25, 3];
    let r = p
        .process(delays, RunOptions::new(), |d, _| async move {
            sleep(ms(d)).await;
            Ok::<_, Oops>(d)
        })
        .await;
    let v: Vec<_> = r.into_iter().map(Result::unwrap).collect();
    assert_eq!(v, delays);
}

#[tokio::test(start_paused = true)]
async fn m33_process_stream_over_an_iterator() {
    let p = pool(2);
    let mut out: Vec<_> = p
        .process_stream(
            stream::iter(1..=3),
            2,
            RunOptions::new(),
            |x: i32, _| async move { Ok::<_, Oops>(x * 2) },
        )
        .map(|(i, r)| (i, r.unwrap()))
        .collect()
        .await;
    out.sort();
    assert_eq!(out, [(0, 2), (1, 4), (2, 6)]);
}

#[tokio::test(start_paused = true)]
async fn m34_process_stream_over_an_async_source() {
    let p = pool(2);
    // A source that produces items over time (like an async generator).
    let source = stream::unfold(1, |n| async move {
        if n > 3 {
            return None;
        }
        sleep(ms(5)).await;
        Some((n, n + 1))
    });
    let mut out: Vec<_> = p
        .process_stream(source, 2, RunOptions::new(), |x: i32, _| async move {
            Ok::<_, Oops>(x * 2)
        })
        .map(|(_, r)| r.unwrap())
        .collect()
        .await;
    out.sort();
    assert_eq!(out, [2, 4, 6]);
}

#[tokio::test(start_paused = true)]
async fn m35_m37_a_failing_item_in_a_stream_is_reported_and_the_rest_complete() {
    let p = pool(2);
    let out: Vec<_> = p
        .process_stream(
            stream::iter(1..=3),
            2,
            RunOptions::new().max_attempts(1),
            |x: i32, _| async move {
                if x == 2 {
                    Err(Oops("bad item"))
                } else {
                    Ok(x)
                }
            },
        )
        .collect()
        .await;
    assert_eq!(out.iter().filter(|(_, r)| r.is_ok()).count(), 2);
    let (i, e) = out.iter().find(|(_, r)| r.is_err()).unwrap();
    assert_eq!(*i, 1);
    assert_eq!(
        e.as_ref().unwrap_err().source_error(),
        Some(&Oops("bad item"))
    );
}

#[tokio::test(start_paused = true)]
async fn m36_abort_mid_stream_stops_the_batch() {
    let p = pool(2);
    let p2 = p.clone();
    let out: Vec<_> = p
        .process_stream(
            stream::iter(0..100),
            4,
            RunOptions::new(),
            move |x: i32, _| {
                if x == 5 {
                    p2.abort();
                }
                async move {
                    sleep(ms(1)).await;
                    Ok::<_, Oops>(x)
                }
            },
        )
        .collect()
        .await;
    // Every item is accounted for, but far fewer than 100 produced a value.
    assert_eq!(out.len(), 100);
    let ok = out.iter().filter(|(_, r)| r.is_ok()).count();
    assert!(ok < 10, "{ok} succeeded");
    assert!(out
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .all(|e| matches!(e, PoolError::Cancelled { .. } | PoolError::ShutDown)));
}

#[tokio::test(start_paused = true)]
async fn m38_f38_a_stream_keeps_at_most_the_bound_in_flight() {
    let p = pool(10);
    let gauge = Gauge::default();
    let pulled = Log::default();
    let pl = pulled.clone();
    let source = stream::iter(0..20).inspect(move |x| pl.push(*x));
    let g = gauge.clone();
    let started = Log::default();
    let st = started.clone();
    let stream = p.process_stream(source, 3, RunOptions::new(), move |x: i32, _| {
        let live = g.enter();
        st.push(x);
        async move {
            let _live = live;
            sleep(ms(10)).await;
            Ok::<_, Oops>(x)
        }
    });
    let mut stream = std::pin::pin!(stream);
    // Items are pulled lazily: after the first result only a few were taken.
    let first = stream.next().await.unwrap();
    assert!(first.1.is_ok());
    assert!(pulled.len() <= 4, "pulled {}", pulled.len());
    let rest: Vec<_> = stream.collect().await;
    assert_eq!(rest.len(), 19);
    assert_eq!(
        gauge.max(),
        3,
        "the pool's limit is 10 but the stream's bound is 3"
    );
    assert_eq!(started.len(), 20);
}
