//! A `tracing` span per call (`s3`) and per attempt (`attempt`), with
//! pool-core's `pool.op`/`pool.attempt` (feature `tracing`) nested inside; no
//! credential in any span or event. One test in its own binary: tracing
//! caches per-callsite interest process-wide, so a test running alongside
//! without a subscriber could hide callsites from this one's.

mod common;

use common::{bucket, data, pool, start_with_keys, Fault, Rule};
use pool_s3::{CallOptions, Client, CredentialsSource};

// The subscriber pool-core's own tracing test uses.
#[path = "../../pool-core/tests/pool_util/capture.rs"]
mod capture;
use capture::Capture;

// One thread, so the thread-local subscriber sees the server, the SDK and the
// pool alike.
#[tokio::test(flavor = "current_thread")]
async fn spans_per_call_and_attempt_and_no_secret_anywhere() {
    const AKID: &str = "AKIDOBSERVE4471";
    const SECRET: &str = "SECRETOBSERVE9913xyz";
    const TOKEN: &str = "TOKENOBSERVE5521";
    let cap = Capture::default();
    let _guard = tracing::subscriber::set_default(cap.clone());
    let server = start_with_keys(AKID, SECRET).await;
    let cfg = common::config(&server).credentials(CredentialsSource::Static {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: Some(TOKEN.into()),
    });
    let c = Client::new(&cfg, pool(4)).unwrap();
    bucket(&c, "obs").await;
    c.put("obs", "k", data(100, 1), CallOptions::new())
        .await
        .unwrap();
    server
        .faults
        .add(Rule::new(Fault::SlowDown).method("GET").times(1));
    let got = c.get("obs", "k", CallOptions::new()).await.unwrap();
    assert_eq!(got.data.len(), 100);
    // A failure too: its error is logged inside the call's span.
    let missing = c.get("obs", "missing", CallOptions::new()).await;
    assert!(missing.is_err());

    let gets: Vec<_> = cap
        .named("s3")
        .into_iter()
        .filter(|(_, s)| s.fields.get("op").map(String::as_str) == Some("get"))
        .collect();
    assert_eq!(gets.len(), 2, "one `s3` span per call");
    let (get_id, get) = &gets[0];
    assert_eq!(get.fields["bucket"], "obs");
    assert_eq!(get.fields["key"], "k");
    // This crate's `attempt` spans: two (503, then success) under the call.
    let attempts: Vec<_> = cap
        .named("attempt")
        .into_iter()
        .filter(|(id, _)| cap.under(*id, *get_id))
        .map(|(_, s)| s.fields["n"].clone())
        .collect();
    assert_eq!(attempts, ["1", "2"]);
    // pool-core's own spans (feature `tracing`): the op, then its attempts.
    let ops: Vec<_> = cap
        .named("pool.op")
        .into_iter()
        .filter(|(id, _)| cap.under(*id, *get_id))
        .collect();
    assert_eq!(ops.len(), 1, "one pool.op under the call");
    let (op_id, op) = &ops[0];
    assert_eq!(op.fields["class"], "get");
    assert_eq!(op.fields["outcome"], "succeeded");
    assert_eq!(op.fields["attempts"], "2");
    let pool_attempts = cap
        .named("pool.attempt")
        .into_iter()
        .filter(|(id, _)| cap.under(*id, *op_id))
        .count();
    assert_eq!(pool_attempts, 2);

    // The secret key and session token appear in no client-side span or event,
    // at any level, of any crate (the SDK redacts them too; the test server,
    // `s3s*`, logs the request headers it receives, so it is left out). The
    // access key id is no secret to AWS (it is in every request's
    // Authorization header) and the SDK's own DEBUG/TRACE events print it;
    // this crate's and the pool's never do.
    let all = cap.text(|t| !t.starts_with("s3s"));
    assert!(all.len() > 1_000, "the SDK's own spans and events are in");
    for s in [SECRET, TOKEN] {
        assert!(!all.contains(s), "{s} appears in a span or event");
    }
    let ours = cap.text(|t| t.starts_with("pool_s3") || t.starts_with("pool_core"));
    assert!(ours.contains("s3 call failed"), "{ours}");
    assert!(!ours.contains(AKID), "{ours}");
}
