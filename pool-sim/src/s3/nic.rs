//! One direction of a client's NIC: transfers share the usable capacity by
//! water-filling (each gets min(its own per-connection rate, a fair share)).
//!
//! While the sum of the per-connection caps fits under the NIC, every transfer runs
//! at its own cap and nothing interacts: a start or an end costs O(1) plus one heap
//! push for its end event. Only a saturated NIC recomputes every active transfer
//! (O(active · log active) for the sort) and then keeps a single wake-up event
//! for the earliest end, instead of re-scheduling every transfer.

use crate::sim::queue::{Dir, Ev, Queue};

struct Flow {
    req: u32,
    /// Bytes to move in all.
    bytes: f64,
    /// Bytes left at `at`.
    remaining: f64,
    /// Per-connection cap (bytes/ns).
    cap: f64,
    /// Current rate (bytes/ns).
    rate: f64,
    /// When `remaining` was last brought up to date (ns).
    at: u64,
    /// Bumped on every rate change and on free: stale end events are ignored.
    gen: u32,
    /// Index in `active`.
    pos: u32,
    live: bool,
}

/// One NIC direction of one client.
pub(crate) struct Nic {
    /// Usable capacity (bytes/ns).
    cap: f64,
    flows: Vec<Flow>,
    free: Vec<u32>,
    active: Vec<u32>,
    sum_caps: f64,
    saturated: bool,
    gen: u32,
    scratch: Vec<(f64, u32)>,
    client: u32,
    dir: Dir,
    /// Bytes moved by transfers that were cancelled (wasted work).
    pub wasted_bytes: f64,
}

/// Bytes left that count as "done" (float rounding of rate × time).
const DONE_EPS: f64 = 1e-3;

#[inline]
fn finish_after(remaining: f64, rate: f64) -> u64 {
    let t = libm::ceil(remaining.max(0.0) / rate);
    if t >= 1e18 {
        u64::MAX / 4
    } else {
        (t as u64).max(1)
    }
}

impl Nic {
    /// A NIC with `cap` usable bytes per second.
    pub fn new(cap_bytes_per_s: f64, client: u32, dir: Dir) -> Nic {
        Nic {
            cap: cap_bytes_per_s / 1e9,
            flows: Vec::new(),
            free: Vec::new(),
            active: Vec::new(),
            sum_caps: 0.0,
            saturated: false,
            gen: 0,
            scratch: Vec::new(),
            client,
            dir,
            wasted_bytes: 0.0,
        }
    }

    /// Starts moving `bytes` for request `req` at up to `cap` bytes/ns.
    pub fn start(&mut self, q: &mut Queue, now: u64, req: u32, bytes: u64, cap: f64) -> u32 {
        let flow = Flow {
            req,
            bytes: bytes as f64,
            remaining: bytes as f64,
            cap,
            rate: cap,
            at: now,
            gen: 0,
            pos: self.active.len() as u32,
            live: true,
        };
        let id = match self.free.pop() {
            Some(id) => {
                let f = &mut self.flows[id as usize];
                let gen = f.gen.wrapping_add(1);
                *f = flow;
                f.gen = gen;
                id
            }
            None => {
                self.flows.push(flow);
                (self.flows.len() - 1) as u32
            }
        };
        self.active.push(id);
        self.sum_caps += cap;
        if !self.saturated && self.sum_caps <= self.cap {
            let f = &self.flows[id as usize];
            let at = now + finish_after(f.remaining, f.rate);
            q.push(at, self.flow_event(id, f.gen));
        } else {
            self.recompute(q, now);
        }
        id
    }

    /// Drops a transfer (its request was cancelled); its bandwidth goes to the others.
    pub fn cancel(&mut self, q: &mut Queue, now: u64, id: u32) {
        let f = &self.flows[id as usize];
        if !f.live {
            return;
        }
        let left = (f.remaining - f.rate * (now.saturating_sub(f.at)) as f64).max(0.0);
        self.wasted_bytes += (f.bytes - left).max(0.0);
        self.remove(id);
        if self.saturated {
            self.recompute(q, now);
        }
    }

    /// A per-transfer end event fired; returns the finished request if still valid.
    pub fn flow_done(&mut self, id: u32, gen: u32) -> Option<u32> {
        let f = self.flows.get(id as usize)?;
        if !f.live || f.gen != gen || self.saturated {
            return None;
        }
        let req = f.req;
        self.remove(id);
        Some(req)
    }

    /// The saturated NIC's wake-up fired: pushes the finished requests to `done`.
    pub fn wake(&mut self, q: &mut Queue, now: u64, gen: u32, done: &mut Vec<u32>) {
        if !self.saturated || gen != self.gen {
            return;
        }
        self.advance(now);
        let mut i = 0;
        while i < self.active.len() {
            let id = self.active[i];
            let f = &self.flows[id as usize];
            if f.remaining <= DONE_EPS {
                done.push(f.req);
                self.remove(id); // swap-removes: index i now holds another flow
            } else {
                i += 1;
            }
        }
        self.recompute(q, now);
    }

    fn flow_event(&self, flow: u32, gen: u32) -> Ev {
        Ev::FlowDone {
            client: self.client,
            dir: self.dir,
            flow,
            gen,
        }
    }

    fn remove(&mut self, id: u32) {
        let (pos, cap) = {
            let f = &mut self.flows[id as usize];
            f.live = false;
            f.gen = f.gen.wrapping_add(1);
            (f.pos as usize, f.cap)
        };
        self.active.swap_remove(pos);
        if let Some(&moved) = self.active.get(pos) {
            self.flows[moved as usize].pos = pos as u32;
        }
        self.sum_caps -= cap;
        if self.active.is_empty() {
            // Resets float drift of the running sum.
            self.sum_caps = 0.0;
        }
        self.free.push(id);
    }

    /// Brings every active transfer's `remaining` up to `now`.
    fn advance(&mut self, now: u64) {
        for &id in &self.active {
            let f = &mut self.flows[id as usize];
            let dt = now.saturating_sub(f.at) as f64;
            f.remaining = (f.remaining - f.rate * dt).max(0.0);
            f.at = now;
        }
    }

    /// Recomputes every rate and re-schedules: per-transfer events when the caps
    /// fit, else one wake-up for the earliest end.
    fn recompute(&mut self, q: &mut Queue, now: u64) {
        self.advance(now);
        self.sum_caps = self
            .active
            .iter()
            .map(|&id| self.flows[id as usize].cap)
            .sum();
        if self.sum_caps <= self.cap {
            self.saturated = false;
            for &id in &self.active {
                let f = &mut self.flows[id as usize];
                f.rate = f.cap;
                f.gen = f.gen.wrapping_add(1);
                let at = now + finish_after(f.remaining, f.rate);
                let ev = Ev::FlowDone {
                    client: self.client,
                    dir: self.dir,
                    flow: id,
                    gen: f.gen,
                };
                q.push(at, ev);
            }
            return;
        }
        self.saturated = true;
        self.gen = self.gen.wrapping_add(1);
        // Water-filling: smallest caps first; each gets min(cap, equal share of the rest).
        self.scratch.clear();
        for &id in &self.active {
            self.scratch.push((self.flows[id as usize].cap, id));
        }
        self.scratch
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut left = self.cap;
        let n = self.scratch.len();
        let mut next = u64::MAX;
        for (k, &(cap, id)) in self.scratch.iter().enumerate() {
            let share = left / (n - k) as f64;
            let rate = cap.min(share);
            left -= rate;
            let f = &mut self.flows[id as usize];
            f.rate = rate;
            f.gen = f.gen.wrapping_add(1);
            next = next.min(finish_after(f.remaining, rate));
        }
        q.push(
            now.saturating_add(next),
            Ev::NicWake {
                client: self.client,
                dir: self.dir,
                gen: self.gen,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(nic: &mut Nic, q: &mut Queue) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        let mut done = Vec::new();
        while let Some((t, ev)) = q.pop() {
            match ev {
                Ev::FlowDone { flow, gen, .. } => {
                    if let Some(r) = nic.flow_done(flow, gen) {
                        out.push((t, r));
                    }
                }
                Ev::NicWake { gen, .. } => {
                    done.clear();
                    nic.wake(q, t, gen, &mut done);
                    out.extend(done.iter().map(|&r| (t, r)));
                }
                _ => unreachable!(),
            }
        }
        // Simultaneous ends come out in removal order; compare them sorted.
        out.sort_unstable();
        out
    }

    #[test]
    fn unsaturated_flows_run_at_their_cap() {
        let mut q = Queue::default();
        let mut nic = Nic::new(1e9, 0, Dir::Rx); // 1 byte/ns
        nic.start(&mut q, 0, 1, 1000, 0.25);
        nic.start(&mut q, 0, 2, 1000, 0.5);
        assert_eq!(run(&mut nic, &mut q), [(2000, 2), (4000, 1)]);
    }

    #[test]
    fn saturated_flows_share_fairly_and_recover() {
        let mut q = Queue::default();
        let mut nic = Nic::new(1e9, 0, Dir::Rx);
        // Two flows capped at 1 byte/ns on a 1 byte/ns NIC: 0.5 each.
        nic.start(&mut q, 0, 1, 1000, 1.0);
        nic.start(&mut q, 0, 2, 3000, 1.0);
        // Flow 1 ends at 2000 (1000 bytes at 0.5); flow 2 then has 2000 left at 1.0.
        assert_eq!(run(&mut nic, &mut q), [(2000, 1), (4000, 2)]);
    }

    #[test]
    fn water_filling_gives_spare_to_the_uncapped() {
        let mut q = Queue::default();
        let mut nic = Nic::new(1e9, 0, Dir::Rx);
        nic.start(&mut q, 0, 1, 100, 0.1);
        nic.start(&mut q, 0, 2, 900, 1.0);
        nic.start(&mut q, 0, 3, 900, 1.0);
        // 0.1 for flow 1, 0.45 each for the others.
        assert_eq!(run(&mut nic, &mut q), [(1000, 1), (1900, 2), (1900, 3)]);
    }

    #[test]
    fn cancel_frees_bandwidth() {
        let mut q = Queue::default();
        let mut nic = Nic::new(1e9, 0, Dir::Rx);
        let a = nic.start(&mut q, 0, 1, 10_000, 1.0);
        nic.start(&mut q, 0, 2, 2000, 1.0);
        nic.cancel(&mut q, 1000, a);
        // Flow 2 moved 500 bytes by t=1000, then runs at 1.0: done at 2500.
        assert_eq!(run(&mut nic, &mut q), [(2500, 2)]);
        assert!((nic.wasted_bytes - 500.0).abs() < 1e-6);
    }
}
