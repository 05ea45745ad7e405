//! One simulated client (its engine, NIC, HTTP connections and ops) and the
//! driver code that carries out its engine's decisions.

use super::attempts::Attempts;
use super::optable::OpTable;
use super::queue::Ev;
use super::stats::{record, Tally};
use super::workload::{WlSpec, MULTIPART_UPLOAD};
use super::Sim;
use crate::s3::nic::Nic;
use crate::s3::Fate;
use crate::scenario::WorkloadKind;
use core::time::Duration;
use pool_core::{
    AttemptError, AttemptId, AttemptOutcome, Decision, Engine, Instant, OpClass, OpId, OpOptions,
    PartitionId, Resolution, SubmitError,
};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

const NEVER: u64 = u64::MAX;
const NONE: u32 = u32::MAX;
/// Per-attempt timeout of a multipart upload's parent op: the parts carry the
/// real timeouts; the parent spans the whole upload.
const PARENT_TIMEOUT: Duration = Duration::from_secs(86_400);

pub(crate) struct WlState {
    pub rng: ChaCha8Rng,
    /// Ops a closed loop may still submit.
    pub remaining: u64,
}

/// A multipart upload in progress (its parent op's current attempt).
struct Multipart {
    parts: u32,
    part_size: u64,
    /// The parent attempt doing the upload, if one runs.
    attempt: Option<AttemptId>,
    children: Vec<OpId>,
    done: u32,
    failed: u32,
}

pub(crate) struct OpRec {
    submitted: u64,
    first_start: u64,
    queued_since: u64,
    size: u64,
    prefix: u32,
    priority: i32,
    class: OpClass,
    workload: u32,
    top: bool,
    parent: Option<OpId>,
    mp: Option<Box<Multipart>>,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Role {
    /// The request is the attempt.
    Attempt,
    /// CreateMultipartUpload of a parent attempt.
    MpCreate,
    /// CompleteMultipartUpload of a parent attempt.
    MpComplete,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Phase {
    Free,
    WaitConn,
    Upload(u32),
    Server,
    Download(u32),
    Stalled,
}

pub(crate) struct Request {
    client: u32,
    attempt: AttemptId,
    gen: u32,
    role: Role,
    class: OpClass,
    prefix: u32,
    bytes: u64,
    phase: Phase,
    fate: Fate,
    conn: bool,
}

pub(crate) struct Client {
    pub engine: Engine,
    pub rx: Nic,
    pub tx: Nic,
    conns_free: u32,
    conn_wait: VecDeque<(u32, u32)>,
    ops: OpTable<OpRec>,
    /// Running attempts and their S3 request (or NONE: a parent between
    /// requests, an idle hedge).
    attempts: Attempts,
    s3_rng: ChaCha8Rng,
    pub wl: Vec<WlState>,
    parts: Vec<Option<PartitionId>>,
    pub next_tick: u64,
    pub tally: Tally,
    /// Attempts whose end we reported after the engine had cancelled them.
    ended_early: Vec<AttemptId>,
}

impl Client {
    pub fn new(
        engine: Engine,
        rx: Nic,
        tx: Nic,
        max_conns: Option<u32>,
        s3_rng: ChaCha8Rng,
        wl_rngs: Vec<ChaCha8Rng>,
        wl: &[WlSpec],
    ) -> Client {
        Client {
            engine,
            rx,
            tx,
            conns_free: max_conns.unwrap_or(u32::MAX),
            conn_wait: VecDeque::new(),
            ops: OpTable::default(),
            attempts: Attempts::default(),
            s3_rng,
            wl: wl_rngs
                .into_iter()
                .zip(wl)
                .map(|(rng, w)| WlState {
                    rng,
                    remaining: if w.kind == WorkloadKind::Closed {
                        w.ops
                    } else {
                        0
                    },
                })
                .collect(),
            parts: Vec::new(),
            next_tick: NEVER,
            tally: Tally::default(),
            ended_early: Vec::new(),
        }
    }
}

/// Which way a class's body flows.
fn body_dir(class: OpClass) -> Option<bool> {
    match class {
        OpClass::GET => Some(false),
        OpClass::PUT | OpClass::MULTIPART_PART => Some(true),
        _ => None,
    }
}

impl Sim {
    #[inline]
    fn at(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    // ----- arrivals -----------------------------------------------------------

    pub(super) fn on_arrival(&mut self, c: usize, w: usize) -> Result<(), super::SimError> {
        let n = self.wl[w].batch_size();
        for _ in 0..n {
            if self.wl[w].kind == WorkloadKind::Closed {
                self.clients[c].wl[w].remaining -= 1;
            }
            self.submit_drawn(c, w)?;
        }
        let next = {
            let cl = &mut self.clients[c];
            self.wl[w].next_after(&mut cl.wl[w].rng, self.now)
        };
        if let Some(t) = next {
            self.push_arrival(t, c as u32, w as u32);
        }
        Ok(())
    }

    fn submit_drawn(&mut self, c: usize, w: usize) -> Result<(), super::SimError> {
        if self.aborting {
            return Ok(());
        }
        let d = {
            let cl = &mut self.clients[c];
            self.wl[w].draw(&mut cl.wl[w].rng)
        };
        let m = &self.wl[w].mix[d.mix];
        let mp = m.part_size.map(|ps| {
            Box::new(Multipart {
                parts: d.size.div_ceil(ps).max(1) as u32,
                part_size: ps,
                attempt: None,
                children: Vec::new(),
                done: 0,
                failed: 0,
            })
        });
        let class = if mp.is_some() {
            MULTIPART_UPLOAD
        } else {
            m.class
        };
        let mut opts = OpOptions {
            priority: m.priority,
            class,
            partition: PartitionId::DEFAULT,
            expected_bytes: d.size,
            timeout: m.timeout_ms.map(Duration::from_millis),
            deadline: None,
            max_attempts: m.max_attempts,
            idempotent: m.idempotent,
            parent: None,
            // A multipart parent only coordinates its parts (its attempt spans
            // the whole upload): like pool-s3's coordinators, it is no sample.
            sampled: mp.is_none(),
        };
        if mp.is_some() {
            opts.timeout = Some(PARENT_TIMEOUT);
            // The parts hold the bytes; the parent declares none of its own.
            opts.expected_bytes = 0;
        }
        let rec = OpRec {
            submitted: self.now,
            first_start: NEVER,
            queued_since: self.now,
            size: d.size,
            prefix: d.prefix,
            priority: m.priority,
            class,
            workload: w as u32,
            top: true,
            parent: None,
            mp,
        };
        if let Some(op) = self.submit(c, opts, rec)? {
            if let Some(after) = d.cancel_after {
                self.q.push(
                    self.now.saturating_add(after),
                    Ev::CallerCancel {
                        client: c as u32,
                        op,
                    },
                );
            }
        }
        Ok(())
    }

    /// Submits an op; `None` if the engine rejected it (counted as rejected).
    fn submit(
        &mut self,
        c: usize,
        mut opts: OpOptions,
        rec: OpRec,
    ) -> Result<Option<OpId>, super::SimError> {
        let now = self.at();
        let prefix = rec.prefix as usize;
        let mut reinterned = false;
        loop {
            let cl = &mut self.clients[c];
            if cl.parts.len() <= prefix {
                cl.parts.resize(prefix + 1, None);
            }
            opts.partition = match cl.parts[prefix] {
                Some(p) => p,
                None => {
                    let p = cl.engine.partition(&self.server.prefix_names()[prefix]);
                    cl.parts[prefix] = Some(p);
                    p
                }
            };
            match cl.engine.submit(now, opts.clone()) {
                Ok(op) => {
                    cl.tally.submitted += 1;
                    if !cl.ops.insert(op, rec) {
                        self.violate(format!("the engine returned the live op id {op:?} again"));
                    }
                    self.live += 1;
                    self.pump(c);
                    return Ok(Some(op));
                }
                Err(SubmitError::QueueFull) => {
                    cl.tally.submitted += 1;
                    cl.tally.rejected += 1;
                    return Ok(None);
                }
                // An idle partition was evicted: intern its key again, once.
                Err(SubmitError::UnknownPartition) if !reinterned => {
                    cl.parts[prefix] = None;
                    reinterned = true;
                }
                Err(e) => return Err(super::SimError::Config(format!("submit refused: {e}"))),
            }
        }
    }

    // ----- decisions ------------------------------------------------------------

    /// Carries out every pending decision of client `c`, then schedules its tick.
    pub(super) fn pump(&mut self, c: usize) {
        while let Some(d) = self.clients[c].engine.poll_decision() {
            match d {
                Decision::Start { attempt, hedge } => self.on_start(c, attempt, hedge),
                Decision::Cancel { attempt, .. } => self.on_cancel(c, attempt),
                Decision::RetryScheduled { op, at } => {
                    if let Some(r) = self.clients[c].ops.get_mut(&op) {
                        r.queued_since = at.as_nanos();
                    }
                }
                Decision::Resolved { op, resolution } => self.on_resolved(c, op, resolution),
            }
        }
        if self.check {
            self.check_client(c);
        }
        let cl = &mut self.clients[c];
        if let Some(t) = cl.engine.poll_timeout() {
            let t = t.as_nanos().max(self.now);
            if t < cl.next_tick {
                cl.next_tick = t;
                self.q.push(t, Ev::Tick { client: c as u32 });
            }
        }
    }

    fn check_client(&mut self, c: usize) {
        let cl = &self.clients[c];
        let e = &cl.engine;
        let problem = if cl.attempts.len() != e.running_attempts() as usize {
            Some(format!(
                "client {c}: driver runs {} attempts, engine {}",
                cl.attempts.len(),
                e.running_attempts()
            ))
        } else if cl.ops.len() != e.live_ops() {
            Some(format!(
                "client {c}: driver tracks {} live ops, engine {}",
                cl.ops.len(),
                e.live_ops()
            ))
        } else if e.in_flight() > e.limit() {
            Some(format!(
                "client {c}: {} in flight over the limit {}",
                e.in_flight(),
                e.limit()
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            self.violate(p);
        }
    }

    fn on_start(&mut self, c: usize, attempt: AttemptId, hedge: bool) {
        let now = self.now;
        if !self.clients[c].ops.contains_key(&attempt.op) {
            self.violate(format!("start of unknown op {attempt:?}"));
            return;
        }
        let cl = &mut self.clients[c];
        let Some(rec) = cl.ops.get_mut(&attempt.op) else {
            return;
        };
        if rec.first_start == NEVER {
            rec.first_start = now;
        }
        if !hedge {
            record(
                &mut self.stats.queue_wait,
                now.saturating_sub(rec.queued_since),
            );
        }
        let (class, prefix, size) = (rec.class, rec.prefix, rec.size);
        let begin = match rec.mp.as_deref_mut() {
            None => Some((Role::Attempt, class, size)),
            Some(mp) if mp.attempt.is_none() => {
                mp.attempt = Some(attempt);
                mp.done = 0;
                mp.failed = 0;
                Some((Role::MpCreate, OpClass::PUT, 0))
            }
            // A hedge of an upload already running: it idles until the engine
            // drops it (the upload is not duplicated).
            Some(_) => None,
        };
        if !cl.attempts.insert(attempt, NONE) {
            self.violate(format!("attempt {attempt:?} started twice"));
            return;
        }
        if let Some((role, class, bytes)) = begin {
            self.begin_request(c, attempt, role, class, prefix, bytes);
        }
    }

    fn on_cancel(&mut self, c: usize, attempt: AttemptId) {
        let Some(req) = self.clients[c].attempts.remove(&attempt) else {
            // We reported its end while the engine's cancel was still queued.
            let early = &mut self.clients[c].ended_early;
            if let Some(i) = early.iter().position(|&a| a == attempt) {
                early.swap_remove(i);
            } else {
                self.violate(format!("cancel of an attempt not running: {attempt:?}"));
            }
            return;
        };
        if req != NONE {
            self.drop_request(req);
        }
        self.stop_upload(c, attempt);
    }

    /// If `attempt` was a multipart upload's, stops it: its parts are cancelled.
    fn stop_upload(&mut self, c: usize, attempt: AttemptId) {
        let now = self.at();
        let cl = &mut self.clients[c];
        let Some(mp) = cl
            .ops
            .get_mut(&attempt.op)
            .and_then(|r| r.mp.as_deref_mut())
        else {
            return;
        };
        if mp.attempt != Some(attempt) {
            return;
        }
        mp.attempt = None;
        let children = core::mem::take(&mut mp.children);
        for child in children {
            cl.engine.cancel(now, child);
        }
        // Their Cancel/Resolved decisions are in the queue the caller is pumping.
    }

    fn on_resolved(&mut self, c: usize, op: OpId, res: Resolution) {
        let now = self.now;
        let Some(rec) = self.clients[c].ops.remove(&op) else {
            self.violate(format!(
                "resolution of unknown (or already resolved) op {op:?}"
            ));
            return;
        };
        self.live -= 1;
        self.stats.last_resolution = now;
        let cl = &mut self.clients[c];
        let t = &mut cl.tally;
        match res {
            Resolution::Succeeded { .. } => t.succeeded += 1,
            Resolution::Failed { .. } => t.failed += 1,
            Resolution::Cancelled { .. } => t.cancelled += 1,
            Resolution::Rejected { .. } => t.rejected += 1,
        }
        let verdict = matches!(
            res,
            Resolution::Succeeded { .. } | Resolution::Failed { .. }
        );
        if rec.top && verdict {
            record(&mut self.stats.end_to_end, now - rec.submitted);
            if rec.first_start != NEVER {
                record(&mut self.stats.service, now - rec.first_start);
            }
            if self.stats.single_priority.is_none() {
                let h = self
                    .stats
                    .by_priority
                    .entry(rec.priority)
                    .or_insert_with(super::stats::hist);
                record(h, now - rec.submitted);
            }
        }
        if verdict && rec.first_start != NEVER && self.stats.single_class.is_none() {
            let h = self
                .stats
                .by_class
                .entry(rec.class.0)
                .or_insert_with(super::stats::hist);
            record(h, now - rec.first_start);
        }
        if rec.top && res.is_success() {
            t.top_succeeded += 1;
            t.top_bytes += rec.size;
        }
        if let Some(parent) = rec.parent {
            // A cancelled part was cancelled with its upload (or by an abort that
            // also cancels the parent): only a failed or rejected part fails it.
            let failed = matches!(res, Resolution::Failed { .. } | Resolution::Rejected { .. });
            self.on_part_resolved(c, parent, op, res.is_success(), failed);
        }
        let w = rec.workload as usize;
        if !self.wl[w].open_loop() {
            self.stats.last_batch_resolution = now;
        }
        let cl = &mut self.clients[c];
        if rec.top && self.wl[w].kind == WorkloadKind::Closed && cl.wl[w].remaining > 0 {
            cl.wl[w].remaining -= 1;
            // A closed loop's submit error cannot be returned from here; it is
            // reported as a violation instead (it would mean a broken scenario).
            if let Err(e) = self.submit_drawn(c, w) {
                self.violate(e.to_string());
            }
        }
    }

    fn on_part_resolved(&mut self, c: usize, parent: OpId, child: OpId, ok: bool, failed: bool) {
        let cl = &mut self.clients[c];
        let Some(mp) = cl.ops.get_mut(&parent).and_then(|r| r.mp.as_deref_mut()) else {
            return;
        };
        let Some(attempt) = mp.attempt else { return };
        let Some(i) = mp.children.iter().position(|&x| x == child) else {
            return;
        };
        mp.children.swap_remove(i);
        if ok {
            mp.done += 1;
        } else if failed {
            mp.failed += 1;
        }
        if mp.failed > 0 {
            // A part failed for good: the upload fails (and the other parts stop).
            self.finish_attempt(
                c,
                attempt,
                AttemptOutcome::Failed(AttemptError::permanent()),
                0,
            );
        } else if mp.done == mp.parts {
            let prefix = cl.ops.get(&parent).map_or(0, |r| r.prefix);
            self.begin_request(c, attempt, Role::MpComplete, OpClass::PUT, prefix, 0);
        }
    }

    /// Reports an attempt's end to the engine (unless it is no longer running).
    fn finish_attempt(
        &mut self,
        c: usize,
        attempt: AttemptId,
        outcome: AttemptOutcome,
        bytes: u64,
    ) {
        self.finish(c, attempt, outcome, bytes, true);
    }

    /// `upload`: the attempt may be a multipart upload's (whose parts must stop).
    fn finish(
        &mut self,
        c: usize,
        attempt: AttemptId,
        outcome: AttemptOutcome,
        bytes: u64,
        upload: bool,
    ) {
        if self.clients[c].attempts.remove(&attempt).is_none() {
            return;
        }
        if upload {
            self.stop_upload(c, attempt);
        }
        let now = self.at();
        let cl = &mut self.clients[c];
        if !cl.engine.attempt_finished(now, attempt, outcome, bytes) {
            // The engine already ended it; its Cancel decision is still queued
            // behind the decision being handled now.
            cl.ended_early.push(attempt);
        }
        self.pump(c);
    }

    // ----- requests -----------------------------------------------------------

    fn begin_request(
        &mut self,
        c: usize,
        attempt: AttemptId,
        role: Role,
        class: OpClass,
        prefix: u32,
        bytes: u64,
    ) {
        let r = Request {
            client: c as u32,
            attempt,
            gen: 0,
            role,
            class,
            prefix,
            bytes,
            phase: Phase::WaitConn,
            fate: Fate::Ok,
            conn: false,
        };
        let id = match self.free_reqs.pop() {
            Some(id) => {
                let gen = self.reqs[id as usize].gen.wrapping_add(1);
                self.reqs[id as usize] = r;
                self.reqs[id as usize].gen = gen;
                id
            }
            None => {
                self.reqs.push(r);
                (self.reqs.len() - 1) as u32
            }
        };
        self.bytes_in_flight += bytes;
        self.stats.peak_bytes_in_flight = self.stats.peak_bytes_in_flight.max(self.bytes_in_flight);
        if let Some(req) = self.clients[c].attempts.get_mut(&attempt) {
            *req = id;
        }
        let cl = &mut self.clients[c];
        if cl.conns_free > 0 {
            cl.conns_free -= 1;
            self.reqs[id as usize].conn = true;
            self.send(id);
        } else {
            self.stats.server.waited_for_connection += 1;
            let gen = self.reqs[id as usize].gen;
            cl.conn_wait.push_back((id, gen));
        }
    }

    /// The request goes out on its connection and reaches the server.
    fn send(&mut self, id: u32) {
        let now = self.now;
        let (c, class, prefix, bytes) = {
            let r = &self.reqs[id as usize];
            (r.client as usize, r.class, r.prefix, r.bytes)
        };
        let rng = &mut self.clients[c].s3_rng;
        let mut fate = self.model.fate(rng);
        let ttfb = self.model.ttfb(rng, class, now);
        let sent = !matches!(fate, Fate::Reset { sent: false });
        if sent {
            self.stats.server.requests += 1;
            if !self.server.admit(now, prefix, class) && fate != Fate::Stall {
                fate = Fate::SlowDown;
            }
        }
        let r = &mut self.reqs[id as usize];
        r.fate = fate;
        let gen = r.gen;
        match fate {
            Fate::Stall => {
                self.stats.server.stalls += 1;
                r.phase = Phase::Stalled;
            }
            Fate::Reset { .. } => {
                self.stats.server.resets += 1;
                r.phase = Phase::Server;
                let u = crate::rng::unit(&mut self.clients[c].s3_rng);
                self.q
                    .push(now + (ttfb as f64 * u) as u64, Ev::Reply { req: id, gen });
            }
            Fate::Ok if body_dir(class) == Some(true) && bytes > 0 => {
                let cap = self.model.conn_rate(&mut self.clients[c].s3_rng);
                let flow = self.clients[c].tx.start(&mut self.q, now, id, bytes, cap);
                self.reqs[id as usize].phase = Phase::Upload(flow);
            }
            _ => {
                r.phase = Phase::Server;
                let mut t = ttfb;
                if class == OpClass::COPY && fate == Fate::Ok {
                    t += (bytes as f64 / self.model.copy_rate) as u64;
                }
                self.q.push(now + t, Ev::Reply { req: id, gen });
            }
        }
    }

    pub(super) fn on_reply(&mut self, id: u32, gen: u32) {
        let r = &self.reqs[id as usize];
        if r.gen != gen || r.phase != Phase::Server {
            return;
        }
        let (c, class, bytes, fate) = (r.client as usize, r.class, r.bytes, r.fate);
        let outcome = match fate {
            Fate::Ok if body_dir(class) == Some(false) && bytes > 0 => {
                let cap = self.model.conn_rate(&mut self.clients[c].s3_rng);
                let flow = self.clients[c]
                    .rx
                    .start(&mut self.q, self.now, id, bytes, cap);
                self.reqs[id as usize].phase = Phase::Download(flow);
                return;
            }
            Fate::Ok => AttemptOutcome::Success,
            Fate::SlowDown => {
                self.stats.server.slow_down += 1;
                AttemptOutcome::Failed(AttemptError::throttled())
            }
            Fate::ServerError => {
                self.stats.server.server_errors += 1;
                AttemptOutcome::Failed(AttemptError::transient())
            }
            Fate::Reset { sent: false } => {
                AttemptOutcome::Failed(AttemptError::transient().not_sent())
            }
            Fate::Reset { sent: true } => AttemptOutcome::Failed(AttemptError::transient()),
            Fate::Stall => return,
        };
        self.complete(id, outcome);
    }

    pub(super) fn on_transfer_end(&mut self, id: u32) {
        let r = &mut self.reqs[id as usize];
        self.stats.bytes_moved += r.bytes as f64;
        match r.phase {
            Phase::Upload(_) => {
                // Body sent: the server now answers after its time to first byte.
                r.phase = Phase::Server;
                let (c, class, gen) = (r.client as usize, r.class, r.gen);
                let ttfb = self
                    .model
                    .ttfb(&mut self.clients[c].s3_rng, class, self.now);
                self.q.push(self.now + ttfb, Ev::Reply { req: id, gen });
            }
            Phase::Download(_) => self.complete(id, AttemptOutcome::Success),
            _ => {}
        }
    }

    /// A request ended with an answer: free it, then report its attempt.
    fn complete(&mut self, id: u32, outcome: AttemptOutcome) {
        let (c, attempt, role, bytes) = {
            let r = &self.reqs[id as usize];
            (r.client as usize, r.attempt, r.role, r.bytes)
        };
        self.stats.attempts_done += 1;
        self.free_request(id);
        if let Some(req) = self.clients[c].attempts.get_mut(&attempt) {
            if *req == id {
                *req = NONE;
            }
        }
        let ok = outcome == AttemptOutcome::Success;
        match role {
            // A plain request's op is never an upload parent: no parts to stop.
            Role::Attempt => self.finish(c, attempt, outcome, if ok { bytes } else { 0 }, false),
            Role::MpCreate if ok => self.submit_parts(c, attempt),
            Role::MpComplete if ok => {
                let size = self.clients[c].ops.get(&attempt.op).map_or(0, |r| r.size);
                self.finish_attempt(c, attempt, outcome, size);
            }
            Role::MpCreate | Role::MpComplete => self.finish_attempt(c, attempt, outcome, 0),
        }
    }

    fn submit_parts(&mut self, c: usize, attempt: AttemptId) {
        let Some(rec) = self.clients[c].ops.get(&attempt.op) else {
            return;
        };
        let Some(mp) = rec.mp.as_deref() else { return };
        let (parts, part_size, size) = (mp.parts, mp.part_size, rec.size);
        let (prefix, priority, workload) = (rec.prefix, rec.priority, rec.workload);
        for i in 0..parts {
            let bytes = part_size
                .min(size.saturating_sub(u64::from(i) * part_size))
                .max(1);
            let opts = OpOptions {
                priority,
                class: OpClass::MULTIPART_PART,
                expected_bytes: bytes,
                parent: Some(attempt.op),
                ..OpOptions::default()
            };
            let rec = OpRec {
                submitted: self.now,
                first_start: NEVER,
                queued_since: self.now,
                size: bytes,
                prefix,
                priority,
                class: OpClass::MULTIPART_PART,
                workload,
                top: false,
                parent: Some(attempt.op),
                mp: None,
            };
            match self.submit(c, opts, rec) {
                Ok(Some(child)) => {
                    // The submit may already have ended this attempt (a part
                    // rejected or failed at once); then the child is orphaned.
                    let now = self.at();
                    let cl = &mut self.clients[c];
                    match cl
                        .ops
                        .get_mut(&attempt.op)
                        .and_then(|r| r.mp.as_deref_mut())
                    {
                        Some(mp) if mp.attempt == Some(attempt) => mp.children.push(child),
                        _ => {
                            cl.engine.cancel(now, child);
                            self.pump(c);
                        }
                    }
                }
                Ok(None) => {
                    // A rejected part fails the upload.
                    self.finish_attempt(
                        c,
                        attempt,
                        AttemptOutcome::Failed(AttemptError::permanent()),
                        0,
                    );
                    return;
                }
                Err(e) => {
                    self.violate(e.to_string());
                    return;
                }
            }
            let still = self.clients[c]
                .ops
                .get(&attempt.op)
                .and_then(|r| r.mp.as_deref())
                .is_some_and(|mp| mp.attempt == Some(attempt));
            if !still {
                return;
            }
        }
    }

    /// The client drops a request (its attempt was cancelled).
    fn drop_request(&mut self, id: u32) {
        let now = self.now;
        let (c, phase) = {
            let r = &self.reqs[id as usize];
            (r.client as usize, r.phase)
        };
        match phase {
            Phase::Upload(f) => self.clients[c].tx.cancel(&mut self.q, now, f),
            Phase::Download(f) => self.clients[c].rx.cancel(&mut self.q, now, f),
            _ => {}
        }
        if phase != Phase::WaitConn {
            self.stats.server.cancelled_in_flight += 1;
        }
        self.stats.attempts_done += 1;
        self.free_request(id);
    }

    /// Frees a request slot and its connection (handing it to the next waiter).
    fn free_request(&mut self, id: u32) {
        let r = &mut self.reqs[id as usize];
        let c = r.client as usize;
        let had_conn = r.conn;
        r.conn = false;
        r.phase = Phase::Free;
        r.gen = r.gen.wrapping_add(1);
        self.bytes_in_flight -= r.bytes;
        self.free_reqs.push(id);
        if had_conn {
            self.clients[c].conns_free += 1;
            while self.clients[c].conns_free > 0 {
                let Some((next, gen)) = self.clients[c].conn_wait.pop_front() else {
                    break;
                };
                let n = &mut self.reqs[next as usize];
                if n.gen != gen || n.phase != Phase::WaitConn {
                    continue; // cancelled while waiting
                }
                n.conn = true;
                self.clients[c].conns_free -= 1;
                self.send(next);
            }
        }
    }
}
