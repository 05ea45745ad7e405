//! Feature `tracing`: a `pool.op` span per op and a `pool.attempt` child per
//! attempt, with their ids, class, partition and outcome. A small hand-written
//! subscriber (`pool_util/capture.rs`) records every span, its parent, its
//! fields and the events inside.
#![cfg(feature = "tracing")]

mod pool_util;
use pool_core::*;
use pool_util::capture::{Capture, SpanRec};
use pool_util::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

fn field<'a>(r: &'a SpanRec, name: &str) -> &'a str {
    r.fields.get(name).map(String::as_str).unwrap_or("<unset>")
}

#[tokio::test(start_paused = true)]
async fn an_op_and_each_attempt_get_a_span_with_ids_class_partition_and_outcome() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let p = pool(2);
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let opts = RunOptions::new().class(OpClass::GET).partition("bucket-a");
    let r = p
        .run(opts, move |ctx| {
            let n = t.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tracing::info!("inside attempt {}", ctx.attempt());
                if n == 1 {
                    Err(Oops("flaky"))
                } else {
                    Ok(ctx.op())
                }
            }
        })
        .await;
    let id = r.expect("second attempt succeeds");

    let ops = capture.named("pool.op");
    assert_eq!(ops.len(), 1);
    let (op_span, op) = &ops[0];
    assert_eq!(field(op, "op"), id.get().to_string());
    assert_eq!(field(op, "class"), "get");
    assert_eq!(field(op, "partition"), "bucket-a");
    assert_eq!(field(op, "attempts"), "2");
    assert_eq!(field(op, "outcome"), "succeeded");

    let mut attempts = capture.named("pool.attempt");
    attempts.sort_by_key(|(_, a)| field(a, "attempt").to_string());
    assert_eq!(attempts.len(), 2);
    for (i, (_, a)) in attempts.iter().enumerate() {
        assert_eq!(a.parent, Some(*op_span), "attempts are children of the op");
        assert_eq!(field(a, "op"), id.get().to_string());
        assert_eq!(field(a, "attempt"), (i + 1).to_string());
        assert_eq!(field(a, "hedge"), "false");
        // The body runs inside its attempt's span.
        assert_eq!(a.events, [format!("inside attempt {}", i + 1)]);
    }
    assert_eq!(field(&attempts[0].1, "outcome"), "error");
    assert_eq!(field(&attempts[0].1, "error_class"), "Transient");
    assert_eq!(field(&attempts[1].1, "outcome"), "ok");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_recorded_as_cancelled_and_the_op_as_timed_out() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let p = pool_with(cfg(1).max_attempts(1));
    let r = p
        .run(RunOptions::new().timeout(ms(10)), |_| async {
            tokio::time::sleep(ms(1_000)).await;
            Ok::<_, Oops>(())
        })
        .await;
    assert!(matches!(r, Err(PoolError::TimedOut { .. })), "{r:?}");
    let ops = capture.named("pool.op");
    assert_eq!(field(&ops[0].1, "outcome"), "timed_out");
    assert_eq!(field(&ops[0].1, "attempts"), "1");
    assert_eq!(field(&ops[0].1, "partition"), "0");
    let attempts = capture.named("pool.attempt");
    assert_eq!(field(&attempts[0].1, "outcome"), "cancelled");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_records_the_op_as_cancelled() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let p = pool(1);
    let mut fut = Box::pin(p.run(RunOptions::new(), |_| async {
        tokio::time::sleep(ms(1_000)).await;
        Ok::<_, Oops>(())
    }));
    assert!(poll_once(&mut fut).await.is_pending());
    drop(fut);
    let ops = capture.named("pool.op");
    assert_eq!(field(&ops[0].1, "outcome"), "cancelled");
    assert_eq!(
        field(&capture.named("pool.attempt")[0].1, "outcome"),
        "cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_submit_still_closes_its_span() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let p = pool(1);
    p.shutdown().await.unwrap();
    let r = p
        .run(RunOptions::new(), |_| async { Ok::<_, Oops>(()) })
        .await;
    assert!(matches!(r, Err(PoolError::ShutDown)));
    let ops = capture.named("pool.op");
    assert_eq!(field(&ops[0].1, "outcome"), "shut_down");
    assert_eq!(field(&ops[0].1, "attempts"), "0");
}
