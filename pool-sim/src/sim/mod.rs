//! The discrete-event loop that drives one real `pool_core::Engine` per client
//! against the modeled S3.
//!
//! Events are ordered by (virtual time, sequence number). After every engine input
//! the driver pulls the engine's decisions and carries them out:
//! `Start` begins a modeled request, `Cancel` drops it (its server token stays
//! spent, its NIC share is released), `Resolved` does the workload's bookkeeping,
//! and the engine's `poll_timeout` becomes a `Tick` event.

mod attempts;
mod client;
pub(crate) mod fastmap;
mod optable;
pub(crate) mod queue;
pub(crate) mod stats;
mod workload;

pub use stats::{Series, ServerCounts};
pub use workload::MULTIPART_UPLOAD;

use crate::report::Report;
use crate::rng::{stream, Purpose};
use crate::s3::nic::Nic;
use crate::s3::{secs_to_ns, Model, Server};
use crate::scenario::Scenario;
use client::{Client, Request};
use pool_core::{Engine, EngineConfig, Instant};
use queue::{Dir, Ev, Queue};
use stats::Stats;
use workload::WlSpec;

/// Why a run failed. A run that loses or double-counts an op fails loudly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The scenario cannot be run as configured.
    Config(String),
    /// An engine invariant or the driver's bookkeeping was violated.
    Invariant(String),
    /// Submitted ≠ succeeded + failed + cancelled + rejected.
    Conservation(String),
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SimError::Config(m) => write!(f, "scenario cannot run: {m}"),
            SimError::Invariant(m) => write!(f, "invariant violated: {m}"),
            SimError::Conservation(m) => write!(f, "conservation check failed: {m}"),
        }
    }
}

impl std::error::Error for SimError {}

/// Knobs of a run that are not part of the scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Check engine invariants after every engine call (slower; for tests).
    pub check_invariants: bool,
    /// Record the time series.
    pub series: bool,
    /// Overrides the pool's limit (for sweeps), if set.
    pub limit: Option<u32>,
    /// Overrides the scenario's duration (s), if set.
    pub duration_s: Option<f64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check_invariants: false,
            series: true,
            limit: None,
            duration_s: None,
        }
    }
}

/// Most rows a time series gets; longer runs sample less often.
const MAX_ROWS: u64 = 2_000;

/// Runs `scenario` with `seed` and the default options.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, SimError> {
    run_with(scenario, seed, &RunOptions::default())
}

/// Runs `scenario` with `seed`.
pub fn run_with(scenario: &Scenario, seed: u64, opts: &RunOptions) -> Result<Report, SimError> {
    let mut sc = scenario.clone();
    if let Some(l) = opts.limit {
        sc.pool.limit = l;
        sc.pool.max_limit = sc.pool.max_limit.max(l);
    }
    if let Some(d) = opts.duration_s {
        sc.duration_s = d;
    }
    sc.validate()
        .and_then(|()| sc.ensure_latency_profiles())
        .map_err(|e| SimError::Config(format!("{}: {}", e.field, e.message)))?;
    let mut sim = Sim::new(&sc, seed, opts)?;
    sim.run()?;
    crate::report::build(&sc, seed, &mut sim)
}

pub(crate) struct Sim {
    pub now: u64,
    q: Queue,
    pub clients: Vec<Client>,
    pub server: Server,
    model: Model,
    reqs: Vec<Request>,
    free_reqs: Vec<u32>,
    wl: Vec<WlSpec>,
    pub stats: Stats,
    /// Arrival events in the queue.
    pending_arrivals: u64,
    /// Ops submitted and not yet resolved, over all clients.
    live: u64,
    /// When leftover work is aborted.
    hard_end: u64,
    aborting: bool,
    check: bool,
    violation: Option<String>,
    interval: u64,
    done_buf: Vec<u32>,
    /// Bytes of requests in flight over all clients.
    bytes_in_flight: u64,
}

impl Sim {
    /// The window throughput is measured over (ns): open-loop arrivals are
    /// measured over their arrival window (a straggler finishing after it must
    /// not dilute the rate); batches and closed loops over their makespan.
    pub(crate) fn measure_window(&self) -> u64 {
        let open_end = self
            .wl
            .iter()
            .filter(|w| w.open_loop())
            .map(|w| w.end)
            .max()
            .unwrap_or(0);
        open_end.max(self.stats.last_batch_resolution).max(1)
    }
}

impl Sim {
    fn new(sc: &Scenario, seed: u64, opts: &RunOptions) -> Result<Sim, SimError> {
        let mut server = Server::new(&sc.s3);
        let wl = WlSpec::compile(sc, &mut server);
        let nic = sc.s3.nic_gbps * 1e9 / 8.0 * sc.s3.nic_efficiency;
        let mut clients = Vec::with_capacity(sc.clients as usize);
        for c in 0..sc.clients {
            let mut cfg = EngineConfig {
                seed: crate::rng::sub_seed(seed, Purpose::Engine, c, 0),
                ..sc.pool.clone()
            };
            // The simulator keeps its own latency statistics (`stats`); the
            // engine's histograms would be recorded and never read. No decision
            // depends on them (hedging keeps what it needs).
            cfg.metrics.histograms = false;
            let mut engine = Engine::new(cfg).map_err(|e| SimError::Config(e.to_string()))?;
            crate::strategy::attach(sc, &mut engine)?;
            let wl_rngs = (0..wl.len() as u32)
                .map(|w| stream(seed, Purpose::Workload, c, w))
                .collect();
            clients.push(Client::new(
                engine,
                Nic::new(nic, c, Dir::Rx),
                Nic::new(nic, c, Dir::Tx),
                sc.s3.max_connections,
                stream(seed, Purpose::S3, c, 0),
                wl_rngs,
                &wl,
            ));
        }
        let duration = secs_to_ns(sc.duration_s);
        let last_arrival = wl.iter().map(|w| w.end.max(w.at)).max().unwrap_or(0);
        let hard_end = duration
            .max(last_arrival)
            .saturating_add(secs_to_ns(sc.drain_s));
        let interval_ms = sc
            .sample_interval_ms
            .unwrap_or_else(|| (secs_to_ns(sc.duration_s) / 100 / 1_000_000).max(10));
        let interval = (interval_ms * 1_000_000).max(hard_end / MAX_ROWS);
        let mut sim = Sim {
            now: 0,
            q: Queue::default(),
            clients,
            server,
            model: Model::new(&sc.s3),
            reqs: Vec::new(),
            free_reqs: Vec::new(),
            wl,
            stats: Stats::new(),
            pending_arrivals: 0,
            live: 0,
            hard_end,
            aborting: false,
            check: opts.check_invariants,
            violation: None,
            interval: if opts.series { interval } else { 0 },
            done_buf: Vec::new(),
            bytes_in_flight: 0,
        };
        sim.stats.series.interval_ms = interval / 1_000_000;
        let mixes = || sim.wl.iter().flat_map(|w| &w.mix);
        let first = mixes().next();
        if let Some(m) = first {
            if mixes().all(|x| x.priority == m.priority) {
                sim.stats.single_priority = Some(m.priority);
            }
            // Multipart uploads add parts (not top-level) and a parent class.
            if mixes().all(|x| x.class == m.class && x.part_size.is_none()) {
                sim.stats.single_class = Some(m.class.0);
            }
        }
        for c in 0..sim.clients.len() {
            for w in 0..sim.wl.len() {
                let first = {
                    let cl = &mut sim.clients[c];
                    sim.wl[w].first(&mut cl.wl[w].rng)
                };
                if let Some(t) = first {
                    sim.push_arrival(t, c as u32, w as u32);
                }
            }
        }
        if sim.interval > 0 {
            sim.q.push(sim.interval, Ev::Sample);
        }
        Ok(sim)
    }

    fn push_arrival(&mut self, at: u64, client: u32, workload: u32) {
        self.pending_arrivals += 1;
        self.q.push(at, Ev::Arrival { client, workload });
    }

    fn run(&mut self) -> Result<(), SimError> {
        while let Some((t, ev)) = self.q.pop() {
            if t > self.hard_end && !self.aborting {
                self.now = self.hard_end;
                self.abort_all();
                self.check_violation()?;
                break;
            }
            self.now = t;
            match ev {
                Ev::Arrival { client, workload } => {
                    self.pending_arrivals -= 1;
                    self.on_arrival(client as usize, workload as usize)?;
                }
                Ev::Tick { client } => self.on_tick(client as usize),
                Ev::Reply { req, gen } => self.on_reply(req, gen),
                Ev::FlowDone {
                    client,
                    dir,
                    flow,
                    gen,
                } => {
                    let cl = &mut self.clients[client as usize];
                    let nic = match dir {
                        Dir::Rx => &mut cl.rx,
                        Dir::Tx => &mut cl.tx,
                    };
                    if let Some(req) = nic.flow_done(flow, gen) {
                        self.on_transfer_end(req);
                    }
                }
                Ev::NicWake { client, dir, gen } => {
                    let mut done = core::mem::take(&mut self.done_buf);
                    done.clear();
                    let cl = &mut self.clients[client as usize];
                    let nic = match dir {
                        Dir::Rx => &mut cl.rx,
                        Dir::Tx => &mut cl.tx,
                    };
                    nic.wake(&mut self.q, t, gen, &mut done);
                    for &req in &done {
                        self.on_transfer_end(req);
                    }
                    self.done_buf = done;
                }
                Ev::CallerCancel { client, op } => {
                    let c = client as usize;
                    self.clients[c].engine.cancel(Instant::from_nanos(t), op);
                    self.pump(c);
                }
                Ev::Sample => self.on_sample(),
            }
            self.check_violation()?;
            if self.live == 0 && self.pending_arrivals == 0 {
                break;
            }
        }
        if self.live != 0 {
            return Err(SimError::Conservation(format!(
                "{} ops were never resolved when the run ended",
                self.live
            )));
        }
        self.stats.server.splits = self.server.splits;
        self.stats.finish();
        Ok(())
    }

    fn check_violation(&mut self) -> Result<(), SimError> {
        match self.violation.take() {
            Some(v) => Err(SimError::Invariant(v)),
            None => Ok(()),
        }
    }

    fn violate(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("at t = {} ns: {what}", self.now));
        }
    }

    fn abort_all(&mut self) {
        self.aborting = true;
        let now = Instant::from_nanos(self.now);
        for c in 0..self.clients.len() {
            self.clients[c].engine.abort(now);
            self.pump(c);
        }
    }

    fn on_tick(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        if cl.next_tick != self.now {
            return; // superseded by an earlier tick that already ran
        }
        cl.next_tick = u64::MAX;
        cl.engine.tick(Instant::from_nanos(self.now));
        self.pump(c);
    }

    fn on_sample(&mut self) {
        let s = &mut self.stats.series;
        let (mut limit, mut in_flight, mut queued) = (0u64, 0u64, 0u64);
        let (mut ok, mut bytes) = (0u64, 0u64);
        for cl in &self.clients {
            limit += u64::from(cl.engine.limit());
            in_flight += u64::from(cl.engine.in_flight());
            queued += cl.engine.queued();
            ok += cl.tally.top_succeeded;
            bytes += cl.tally.top_bytes;
        }
        let thr = self.stats.server.slow_down;
        let (p_ok, p_bytes, p_thr) = self.stats.series_prev;
        let (d_ok, d_bytes, d_thr) = (ok - p_ok, bytes - p_bytes, thr - p_thr);
        self.stats.series_prev = (ok, bytes, thr);
        s.t_ms.push(self.now / 1_000_000);
        s.limit.push(limit);
        s.in_flight.push(in_flight);
        s.queued.push(queued);
        s.bytes_in_flight.push(self.bytes_in_flight);
        s.succeeded.push(d_ok);
        s.bytes.push(d_bytes);
        s.throttled.push(d_thr);
        if (s.t_ms.len() as u64) < MAX_ROWS * 2 {
            self.q.push(self.now + self.interval, Ev::Sample);
        }
    }
}
