//! One op's future: submit, then carry out what the engine decides for it —
//! start attempts (calling the closure once per attempt, polling its future in
//! the caller's task), drop cancelled ones, report outcomes — until it resolves.
//!
//! [`Run`] is written by hand (not an `async fn`) so it stays small: the options
//! it submits share their space with the running attempt, and nothing is
//! allocated per op (a hedge running beside the first attempt is boxed).

use super::classify::Classifier;
use super::ctx::AttemptCtx;
use super::error::PoolError;
use super::mailbox::{peek, Mail, Peek, WakerKey};
use super::options::RunOptions;
use super::shared::{Inner, OpRef, Shared};
use super::trace::{AttemptEnd, OpTrace};
use crate::engine::SubmitError;
use crate::outcome::{
    AttemptError, AttemptId, AttemptOutcome, CancelCause, ErrorClass, FailureCause, OpId,
    Resolution,
};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use pin_project_lite::pin_project;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Makes one attempt's future; called once per attempt. Implemented for every
/// `FnMut(AttemptCtx) -> Fut`, which is what [`super::Pool::run`] takes.
pub trait MakeAttempt<Fut> {
    /// The future of the attempt described by `ctx`.
    fn make(&mut self, ctx: AttemptCtx) -> Fut;
}

impl<F: FnMut(AttemptCtx) -> Fut, Fut> MakeAttempt<Fut> for F {
    fn make(&mut self, ctx: AttemptCtx) -> Fut {
        self(ctx)
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        // Not polled yet: nothing is submitted.
        Init { opts: RunOptions },
        // Submitted, with mailbox `op_box` where `waker` (see `WakerKey`) is
        // registered; `fut` is attempt number `n` (0: none running in place).
        Live { id: OpId, op_box: u32, waker: WakerKey, n: u32, #[pin] fut: Option<Fut> },
        Done,
    }
}

/// What an op rarely needs, boxed on first use.
struct Rare<Fut> {
    /// Attempts running beside the one in place (a hedge).
    others: Vec<(u32, Pin<Box<Fut>>)>,
    /// The message of a panic caught in the closure or an attempt.
    panicked: Option<String>,
}

impl<Fut> Default for Rare<Fut> {
    fn default() -> Self {
        Rare {
            others: Vec::new(),
            panicked: None,
        }
    }
}

pin_project! {
    /// The future of [`Pool::run`](super::Pool::run) and its variants: resolves to
    /// the first successful attempt's value or a [`PoolError`] saying why there is
    /// none. Nothing happens until it is first polled (then the op is submitted);
    /// dropping it cancels the op.
    #[must_use = "an op is only submitted when its future is polled"]
    pub struct Run<T, E, C, F, Fut> {
        shared: OpRef,
        classifier: C,
        make: F,
        value: Option<T>,
        last_err: Option<(E, ErrorClass)>,
        rare: Option<Box<Rare<Fut>>>,
        trace: OpTrace,
        #[pin]
        state: State<Fut>,
    }

    impl<T, E, C, F, Fut> PinnedDrop for Run<T, E, C, F, Fut> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let StateProj::Live { id, op_box, .. } = this.state.as_mut().project() else {
                return;
            };
            let (id, op_box) = (*id, *op_box);
            // Drop the attempts before cancelling, so the slot is freed only once
            // they are really gone (flaw F24).
            this.state.set(State::Done);
            *this.rare = None;
            this.trace.dropped();
            cancel(this.shared.get(), id, op_box);
        }
    }
}

impl<T, E, C, F, Fut> fmt::Debug for Run<T, E, C, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Init { .. } => "not submitted",
            State::Live { .. } => "submitted",
            State::Done => "done",
        };
        f.debug_struct("Run")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<T, E, C, F, Fut> Run<T, E, C, F, Fut> {
    pub(crate) fn new(shared: OpRef, opts: RunOptions, classifier: C, make: F) -> Self {
        Run {
            shared,
            classifier,
            make,
            value: None,
            last_err: None,
            rare: None,
            trace: OpTrace::new(),
            state: State::Init { opts },
        }
    }
}

impl<T, E, C, F, Fut> Future for Run<T, E, C, F, Fut>
where
    C: Classifier<E>,
    F: MakeAttempt<Fut>,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, PoolError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared: &Shared = this.shared.get();
        let mut mail = match this.state.as_mut().project() {
            StateProj::Live {
                id, op_box, waker, ..
            } => {
                // Without the lock when this task's waker is the one registered
                // and the mail word holds nothing or a plain start. (Another
                // waker must be registered under the lock, and the word must
                // then be read there too: it is not touched here.)
                let peeked = if *waker == WakerKey::of(cx.waker()) {
                    peek(&shared.words, *op_box)
                } else {
                    Peek::Locked
                };
                match peeked {
                    Peek::Empty => Mail::default(),
                    Peek::Start(a) => Mail::start(a),
                    Peek::Locked => take_mail(&mut shared.lock(), *id, *op_box, cx.waker(), waker),
                }
            }
            StateProj::Init { opts } => {
                let opts = std::mem::take(opts);
                this.trace.begin(&opts);
                let mut waker = WakerKey::default();
                match submit(shared, opts, cx.waker(), &mut waker) {
                    Ok((id, op_box, mail)) => {
                        this.trace.submitted(id);
                        let n = 0;
                        this.state.set(State::Live {
                            id,
                            op_box,
                            waker,
                            n,
                            fut: None,
                        });
                        mail
                    }
                    Err(e) => {
                        this.state.set(State::Done);
                        let out = Err(e.into());
                        this.trace.end(&out, 0);
                        return Poll::Ready(out);
                    }
                }
            }
            StateProj::Done => panic!("`Run` polled after it completed"),
        };
        loop {
            let StateProj::Live {
                id,
                op_box,
                waker,
                n,
                mut fut,
            } = this.state.as_mut().project()
            else {
                // Only a resolution (which returns) leaves the live state.
                return Poll::Pending;
            };
            let (id, op_box) = (*id, *op_box);
            let mut again = mail.more;
            if !mail.is_empty() {
                // Drop cancelled attempts before starting anything (no overlap, F24).
                if mail.has_cancels() {
                    drop_cancelled(&mail, fut.as_mut(), n, this.rare, this.trace);
                }
                if let Some(r) = mail.resolution {
                    this.state.set(State::Done);
                    let panicked = this.rare.take().and_then(|r| r.panicked);
                    let out = output(r, this.value.take(), this.last_err.take(), panicked);
                    this.trace.end(&out, r.attempts());
                    return Poll::Ready(out);
                }
                for (a, hedge) in mail.starts() {
                    let ctx = AttemptCtx {
                        shared: this.shared.clone(),
                        op: id,
                        op_box,
                        attempt: a,
                        hedge,
                    };
                    this.trace.attempt(a, hedge);
                    let made = {
                        let _in_span = this.trace.enter(a);
                        catch_unwind(AssertUnwindSafe(|| this.make.make(ctx)))
                    };
                    match made {
                        Ok(f) if *n == 0 => {
                            fut.set(Some(f));
                            *n = a;
                        }
                        Ok(f) => run_beside(this.rare, a, f),
                        Err(p) => {
                            closure_panicked(shared, id, a, p, this.rare, this.trace);
                            again = true;
                        }
                    }
                }
            }
            // Poll the running attempts; report the first that ends and loop.
            let mut ended = None;
            if let Some(f) = fut.as_mut().as_pin_mut() {
                let _in_span = this.trace.enter(*n);
                if let Some(r) = poll_attempt(f, cx) {
                    fut.set(None);
                    ended = Some((std::mem::take(n), r));
                }
            }
            if let (None, Some(rare)) = (&ended, this.rare.as_mut()) {
                ended = poll_others(rare, this.trace, cx);
            }
            mail = match ended {
                Some((a, Ok(r))) => {
                    let outcome = match r {
                        Ok(v) => {
                            *this.value = Some(v);
                            this.trace.attempt_ended(a, AttemptEnd::Ok);
                            AttemptOutcome::Success
                        }
                        Err(e) => {
                            let c = this.classifier.classify(&e);
                            *this.last_err = Some((e, c.class));
                            this.trace.attempt_ended(a, AttemptEnd::Error(c.class));
                            AttemptOutcome::Failed(c)
                        }
                    };
                    report(shared, id, a, outcome, Some((op_box, cx.waker(), waker)))
                        .unwrap_or_default()
                }
                Some((a, Err(p))) => {
                    attempt_panicked(shared, id, a, p, fut.as_mut(), n, this.rare, this.trace);
                    take_mail(&mut shared.lock(), id, op_box, cx.waker(), waker)
                }
                None if !again => return Poll::Pending,
                None => take_mail(&mut shared.lock(), id, op_box, cx.waker(), waker),
            };
        }
    }
}

fn rare<Fut>(r: &mut Option<Box<Rare<Fut>>>) -> &mut Rare<Fut> {
    r.get_or_insert_with(Box::default)
}

// What follows `Run::poll` calls only for cancels, hedges and panics. Kept out
// of line (`#[cold]`) so the path every op takes stays compact: per op it runs
// beside the engine, the futures and the runtime, and together they barely fit
// the instruction cache.

/// Drops the attempts `mail` cancels.
#[cold]
#[inline(never)]
fn drop_cancelled<Fut>(
    mail: &Mail,
    mut fut: Pin<&mut Option<Fut>>,
    n: &mut u32,
    rare: &mut Option<Box<Rare<Fut>>>,
    trace: &mut OpTrace,
) {
    for c in mail.cancels() {
        if *n == c {
            fut.set(None);
            *n = 0;
        }
        if let Some(r) = rare.as_mut() {
            r.others.retain(|(m, _)| *m != c);
        }
        trace.attempt_ended(c, AttemptEnd::Cancelled);
    }
}

/// Keeps attempt `a` (a hedge) running beside the one in place.
#[cold]
#[inline(never)]
fn run_beside<Fut>(r: &mut Option<Box<Rare<Fut>>>, a: u32, f: Fut) {
    rare(r).others.push((a, Box::pin(f)));
}

/// Polls the attempts running beside the one in place: the first that ended.
#[cold]
#[inline(never)]
fn poll_others<Fut: Future>(
    rare: &mut Rare<Fut>,
    trace: &mut OpTrace,
    cx: &mut Context<'_>,
) -> Option<(u32, Polled<Fut::Output>)> {
    for i in 0..rare.others.len() {
        let _in_span = trace.enter(rare.others[i].0);
        if let Some(r) = poll_attempt(rare.others[i].1.as_mut(), cx) {
            return Some((rare.others.swap_remove(i).0, r));
        }
    }
    None
}

/// The closure panicked making attempt `a`: the panic is the op's error and the
/// attempt fails permanently (the slot is freed, nothing is retried).
#[cold]
#[inline(never)]
fn closure_panicked<Fut>(
    shared: &Shared,
    id: OpId,
    a: u32,
    p: Box<dyn Any + Send>,
    r: &mut Option<Box<Rare<Fut>>>,
    trace: &mut OpTrace,
) {
    rare(r).panicked = Some(panic_message(&*p));
    trace.attempt_ended(a, AttemptEnd::Panicked);
    report(shared, id, a, AttemptOutcome::Failed(permanent()), None);
}

/// Attempt `a` panicked: a panic is the op's error, so every attempt is dropped
/// and failed permanently (the engine frees the slot and never retries).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn attempt_panicked<Fut>(
    shared: &Shared,
    id: OpId,
    a: u32,
    p: Box<dyn Any + Send>,
    mut fut: Pin<&mut Option<Fut>>,
    n: &mut u32,
    r: &mut Option<Box<Rare<Fut>>>,
    trace: &mut OpTrace,
) {
    let r = rare(r);
    r.panicked = Some(panic_message(&*p));
    trace.attempt_ended(a, AttemptEnd::Panicked);
    let fail = || AttemptOutcome::Failed(permanent());
    report(shared, id, a, fail(), None);
    fut.set(None);
    if *n != 0 {
        report(shared, id, std::mem::take(n), fail(), None);
    }
    for (m, _) in r.others.drain(..) {
        report(shared, id, m, fail(), None);
    }
}

fn permanent() -> AttemptError {
    AttemptError::permanent()
}

/// Submits, and reads the op's first mail (it may start at once) under the same
/// lock, registering the waker (its key goes to `key`). The clock is read before
/// locking: the engine never goes back in time.
fn submit(
    shared: &Shared,
    opts: RunOptions,
    waker: &Waker,
    key: &mut WakerKey,
) -> Result<(OpId, u32, Mail), SubmitError> {
    let now = shared.rt.now();
    let mut g = shared.lock();
    let mut op = opts.op;
    #[cfg(feature = "metrics")]
    let class = op.class;
    if let Some(k) = &opts.partition_key {
        // Interned under the lock, so the partition is live when submitted.
        op.partition = g.engine.partition(k);
    }
    match g.engine.submit(now, op) {
        Ok(id) => {
            let op_box = g.ops.insert(id);
            g.route(Some(id));
            let mail = take_mail(&mut g, id, op_box, waker, key);
            Ok((id, op_box, mail))
        }
        Err(e) => {
            #[cfg(feature = "metrics")]
            if let (SubmitError::QueueFull, Some(x)) = (&e, &g.export) {
                x.refused(class);
            }
            // Even a refused submit can resolve another op (a lower priority
            // evicted).
            g.route(None);
            Err(e)
        }
    }
}

/// Empties the op's mailbox under the lock and (unless it resolved) registers
/// the waker, noting its key.
fn take_mail(g: &mut Inner, id: OpId, op_box: u32, waker: &Waker, key: &mut WakerKey) -> Mail {
    let mut mail = Mail::default();
    match g.ops.take(op_box, id, waker, &mut mail) {
        Some(k) => *key = k,
        // Unreachable: only this op's future frees its mailbox.
        None => {
            mail.resolution = Some(Resolution::Cancelled {
                attempts: 0,
                cause: CancelCause::Caller,
            })
        }
    }
    mail
}

/// Reports an attempt's end and routes what the engine decides next; with the
/// op's mailbox and waker, also reads the mail under the same lock.
fn report(
    shared: &Shared,
    op: OpId,
    number: u32,
    outcome: AttemptOutcome,
    take: Option<(u32, &Waker, &mut WakerKey)>,
) -> Option<Mail> {
    let now = shared.rt.now();
    let mut g = shared.lock();
    // `false` means the engine already cancelled it: the report is ignored.
    let _ = g
        .engine
        .attempt_finished(now, AttemptId { op, number }, outcome, 0);
    // Our own decisions go straight to our box only if we read it below.
    g.route(take.as_ref().map(|_| op));
    take.map(|(op_box, w, key)| take_mail(&mut g, op, op_box, w, key))
}

/// Cancels an op whose future was dropped before it resolved.
fn cancel(shared: &Shared, id: OpId, op_box: u32) {
    let now = shared.rt.now();
    let mut g = shared.lock();
    g.ops.free(op_box, id, true);
    g.engine.cancel(now, id);
    g.route(None);
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// An ended attempt's output, or the panic it ended with.
type Polled<T> = Result<T, Box<dyn Any + Send>>;

/// Polls an attempt's future, catching a panic: `None` while it is pending.
fn poll_attempt<Fut: Future>(
    fut: Pin<&mut Fut>,
    cx: &mut Context<'_>,
) -> Option<Polled<Fut::Output>> {
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Pending) => None,
        Ok(Poll::Ready(r)) => Some(Ok(r)),
        Err(p) => Some(Err(p)),
    }
}

/// The op's result from its resolution and what its attempts produced.
#[inline]
fn output<T, E>(
    resolution: Resolution,
    value: Option<T>,
    last_err: Option<(E, ErrorClass)>,
    panicked: Option<String>,
) -> Result<T, PoolError<E>> {
    match (resolution, value, panicked) {
        (Resolution::Succeeded { .. }, Some(v), None) => Ok(v),
        (resolution, value, panicked) => error_output(resolution, value, last_err, panicked),
    }
}

/// [`output`] for every case but a plain success, out of line.
#[cold]
#[inline(never)]
fn error_output<T, E>(
    resolution: Resolution,
    value: Option<T>,
    last_err: Option<(E, ErrorClass)>,
    panicked: Option<String>,
) -> Result<T, PoolError<E>> {
    if let Some(message) = panicked {
        if !resolution.is_success() {
            return Err(PoolError::Panicked { message });
        }
    }
    match resolution {
        Resolution::Succeeded { .. } => value.ok_or_else(|| PoolError::Panicked {
            message: "internal: success reported without a value".into(),
        }),
        Resolution::Failed { attempts, cause } => Err(match cause {
            FailureCause::AttemptFailed {
                timed_out: true,
                why,
                ..
            } => PoolError::TimedOut { attempts, why },
            FailureCause::AttemptFailed { why, .. } => match last_err {
                Some((last, class)) => PoolError::Failed {
                    attempts,
                    last,
                    class,
                    why,
                },
                None => PoolError::TimedOut { attempts, why },
            },
            FailureCause::DeadlineExceeded => PoolError::DeadlineExceeded {
                attempts,
                last: last_err.map(|(e, _)| e),
            },
        }),
        Resolution::Cancelled { cause, .. } => Err(PoolError::Cancelled { cause }),
        Resolution::Rejected { .. } => Err(PoolError::Rejected),
    }
}
