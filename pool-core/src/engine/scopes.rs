//! Partitions, classes and the controllers and rate gates attached to them.

use super::options::PartitionId;
use super::state::{ClassState, Partition};
use super::Engine;
use crate::class::OpClass;
use crate::config::ConfigError;
use crate::control::{
    ControlContext, Controller, ControllerFactory, RateGate, RateGateFactory, Scope,
};
use crate::event::Event;
use crate::outcome::{AttemptSample, OpSample};
use crate::rate::{RateLimit, TokenBucket};
use crate::timers::{ControllerScope, TimerKind};

impl Engine {
    /// Creates the default partition and the partitions and classes named in config.
    pub(super) fn init_scopes(&mut self) {
        let idx = self.new_partition("");
        debug_assert_eq!(idx, 0);
        if let Some(p) = self.partitions[0].as_mut() {
            p.pinned = true;
        }
        let parts: Vec<_> = self.cfg.partitions.clone().into_iter().collect();
        for (key, limits) in parts {
            let id = self.partition(&key);
            let p = self.partitions[id.index as usize]
                .as_mut()
                .expect("just made");
            p.pinned = true;
            if limits.limit.is_some() {
                p.limit = limits.limit;
            }
            if let Some(r) = limits.rate {
                p.rate = Some(TokenBucket::new(r, self.now));
            }
        }
        let classes: Vec<_> = self.cfg.classes.clone().into_iter().collect();
        for (name, limits) in classes {
            if let Some(c) = OpClass::parse(&name) {
                self.ensure_class(c.0);
                let cs = &mut self.classes[c.0 as usize];
                cs.limit = limits.limit;
                cs.rate = limits.rate.map(|r| TokenBucket::new(r, self.now));
            }
        }
    }

    /// Interns a partition key (e.g. `bucket/prefix`), creating its state (and
    /// its controller and rate gate, if factories are set) on first use.
    pub fn partition(&mut self, key: &str) -> PartitionId {
        if let Some(&idx) = self.partition_index.get(key) {
            let gen = self.partitions[idx as usize].as_ref().map_or(0, |p| p.gen);
            return PartitionId { index: idx, gen };
        }
        let idx = self.new_partition(key);
        let gen = self.partitions[idx as usize].as_ref().map_or(0, |p| p.gen);
        PartitionId { index: idx, gen }
    }

    /// The key a partition index was interned from.
    pub fn partition_key(&self, index: u32) -> Option<&str> {
        self.partitions
            .get(index as usize)?
            .as_ref()
            .map(|p| &*p.key)
    }

    fn new_partition(&mut self, key: &str) -> u32 {
        let controller = self.partition_controllers.as_mut().map(|f| f(key));
        let gate = self.partition_gates.as_mut().map(|f| f(key));
        let (idx, gen) = match self.free_partitions.pop() {
            Some(i) => (i, self.partition_gens[i as usize].wrapping_add(1)),
            None => {
                self.partitions.push(None);
                self.partition_gens.push(0);
                ((self.partitions.len() - 1) as u32, 0)
            }
        };
        let initial = controller
            .as_ref()
            .and_then(|c| c.initial_limit())
            .map(|l| l.clamp(self.min_limit, self.max_limit));
        self.partitions[idx as usize] = Some(Partition {
            key: key.into(),
            gen,
            live_ops: 0,
            in_flight: 0,
            limit: initial.or(self.cfg.partition_limit),
            rate: self
                .cfg
                .partition_rate
                .map(|r| TokenBucket::new(r, self.now)),
            gate,
            controller,
            lanes: Vec::new(),
            idle_since: self.now,
            pinned: false,
        });
        self.partition_index.insert(key.into(), idx);
        if idx != 0 && !self.sweep_pending {
            self.sweep_pending = true;
            let at = self.now + core::time::Duration::from_millis(self.cfg.partition_idle_ms);
            self.timers.schedule(at, TimerKind::Sweep);
        }
        idx
    }

    /// Drops idle partitions' state so memory stays bounded however many keys pass.
    pub(super) fn sweep_partitions(&mut self) {
        let ttl = core::time::Duration::from_millis(self.cfg.partition_idle_ms);
        let mut next: Option<crate::time::Instant> = None;
        for idx in 1..self.partitions.len() {
            let Some(p) = self.partitions[idx].as_ref() else {
                continue;
            };
            if p.pinned || p.live_ops > 0 {
                continue;
            }
            if self.now - p.idle_since >= ttl {
                let p = self.partitions[idx].take().expect("checked");
                self.partition_index.remove(&p.key);
                self.free_lanes.extend(p.lanes.iter().map(|&(_, l)| l));
                // Keep the generation so a stale PartitionId is recognised.
                self.partitions[idx] = None;
                self.free_partitions.push(idx as u32);
                self.partition_gens[idx] = p.gen;
            } else {
                let at = p.idle_since + ttl;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if let Some(at) = next {
            self.sweep_pending = true;
            self.timers.schedule(at, TimerKind::Sweep);
        }
    }

    /// The lane of (partition, class), made on first use.
    #[inline]
    pub(super) fn lane_for(&mut self, partition: u32, class: u16) -> u32 {
        let p = self.partitions[partition as usize]
            .as_ref()
            .expect("live partition");
        if let Some(&(_, lane)) = p.lanes.iter().find(|(c, _)| *c == class) {
            return lane;
        }
        self.new_lane(partition, class)
    }

    /// The first op of a class in a partition: gives the pair a lane.
    #[cold]
    #[inline(never)]
    fn new_lane(&mut self, partition: u32, class: u16) -> u32 {
        let lane = match self.free_lanes.pop() {
            Some(l) => {
                self.queue.reuse_lane(l, partition, class);
                l
            }
            None => self.queue.add_lane(partition, class),
        };
        if let Some(p) = self.partitions[partition as usize].as_mut() {
            p.lanes.push((class, lane));
        }
        self.ensure_class(class);
        lane
    }

    pub(super) fn ensure_class(&mut self, class: u16) {
        if self.classes.len() <= class as usize {
            self.add_classes(class);
        }
    }

    #[cold]
    #[inline(never)]
    fn add_classes(&mut self, class: u16) {
        self.classes
            .resize_with(class as usize + 1, ClassState::default);
    }

    fn check_limit(&self, field: &str, limit: Option<u32>) -> Result<(), ConfigError> {
        match limit {
            Some(l) if l == 0 || l < self.min_limit || l > self.max_limit => Err(ConfigError::new(
                field,
                format!(
                    "must be within [{}, {}] (got {l})",
                    self.min_limit, self.max_limit
                ),
            )),
            _ => Ok(()),
        }
    }

    fn live_partition(&mut self, id: PartitionId) -> Result<&mut Partition, ConfigError> {
        match self.partitions.get_mut(id.index as usize) {
            Some(Some(p)) if p.gen == id.gen => Ok(p),
            _ => Err(ConfigError::new(
                "partition",
                "unknown or evicted partition id",
            )),
        }
    }

    /// Sets (or clears) a partition's concurrency limit. The partition is kept
    /// (never evicted) from now on.
    pub fn set_partition_limit(
        &mut self,
        id: PartitionId,
        limit: Option<u32>,
    ) -> Result<(), ConfigError> {
        self.check_limit("partition.limit", limit)?;
        let p = self.live_partition(id)?;
        p.pinned = true;
        let old = p.limit;
        p.limit = limit;
        if let (Some(c), Some(l)) = (p.controller.as_mut(), limit) {
            c.on_limit_overridden(l);
        }
        if old != limit {
            self.emit(Event::LimitChanged {
                scope: Scope::Partition(id.index),
                old: old.unwrap_or(0),
                new: limit.unwrap_or(0),
            });
        }
        self.recheck = true;
        self.dispatch();
        self.flush_events();
        Ok(())
    }

    /// Sets (or clears) a partition's fixed request-rate limit.
    pub fn set_partition_rate(
        &mut self,
        id: PartitionId,
        rate: Option<RateLimit>,
    ) -> Result<(), ConfigError> {
        if let Some(r) = &rate {
            r.validate("partition.rate")
                .map_err(|m| ConfigError::new("partition.rate", m))?;
        }
        let now = self.now;
        let p = self.live_partition(id)?;
        p.pinned = true;
        p.rate = rate.map(|r| TokenBucket::new(r, now));
        self.recheck = true;
        self.dispatch();
        self.flush_events();
        Ok(())
    }

    /// Sets (or clears) a class's concurrency limit.
    pub fn set_class_limit(
        &mut self,
        class: OpClass,
        limit: Option<u32>,
    ) -> Result<(), ConfigError> {
        self.check_limit("class.limit", limit)?;
        self.ensure_class(class.0);
        let c = &mut self.classes[class.0 as usize];
        let old = c.limit;
        c.limit = limit;
        if let (Some(ctl), Some(l)) = (c.controller.as_mut(), limit) {
            ctl.on_limit_overridden(l);
        }
        if old != limit {
            self.emit(Event::LimitChanged {
                scope: Scope::Class(class),
                old: old.unwrap_or(0),
                new: limit.unwrap_or(0),
            });
        }
        self.recheck = true;
        self.dispatch();
        self.flush_events();
        Ok(())
    }

    /// Sets (or clears) a class's fixed request-rate limit.
    pub fn set_class_rate(
        &mut self,
        class: OpClass,
        rate: Option<RateLimit>,
    ) -> Result<(), ConfigError> {
        if let Some(r) = &rate {
            r.validate("class.rate")
                .map_err(|m| ConfigError::new("class.rate", m))?;
        }
        self.ensure_class(class.0);
        self.classes[class.0 as usize].rate = rate.map(|r| TokenBucket::new(r, self.now));
        self.recheck = true;
        self.dispatch();
        self.flush_events();
        Ok(())
    }

    /// Attaches the global controller (replacing any). Its initial limit, if it
    /// has one, is applied within the bounds.
    pub fn set_controller(&mut self, controller: Box<dyn Controller>) {
        if let Some(l) = controller.initial_limit() {
            self.apply_global_limit(l.clamp(self.min_limit, self.max_limit));
        }
        self.controller = Some(controller);
        self.dispatch();
        self.flush_events();
    }

    /// Attaches a controller to one class; it moves that class's limit.
    pub fn set_class_controller(&mut self, class: OpClass, controller: Box<dyn Controller>) {
        self.ensure_class(class.0);
        let initial = controller
            .initial_limit()
            .map(|l| l.clamp(self.min_limit, self.max_limit));
        let c = &mut self.classes[class.0 as usize];
        let old = c.limit;
        if initial.is_some() {
            c.limit = initial;
        }
        if c.controller.replace(controller).is_none() {
            self.class_controllers += 1;
        }
        if let (Some(new), true) = (initial, initial != old) {
            self.emit(Event::LimitChanged {
                scope: Scope::Class(class),
                old: old.unwrap_or(0),
                new,
            });
        }
        self.recheck = true;
        self.dispatch();
        self.flush_events();
    }

    /// Sets the factory that makes a controller for every partition (existing
    /// partitions get one now, new ones when first seen).
    pub fn set_partition_controller_factory(&mut self, mut factory: ControllerFactory) {
        for p in self.partitions.iter_mut().flatten() {
            let c = factory(&p.key);
            if let Some(l) = c.initial_limit() {
                p.limit = Some(l.clamp(self.min_limit, self.max_limit));
            }
            p.controller = Some(c);
        }
        self.partition_controllers = Some(factory);
        self.recheck = true;
        self.dispatch();
        self.flush_events();
    }

    /// Attaches a global send-rate gate.
    pub fn set_rate_gate(&mut self, gate: Box<dyn RateGate>) {
        self.gate = Some(gate);
        self.recheck = true;
        self.dispatch();
        self.flush_events();
    }

    /// Sets the factory that makes a send-rate gate for every partition.
    pub fn set_partition_rate_gate_factory(&mut self, mut factory: RateGateFactory) {
        for p in self.partitions.iter_mut().flatten() {
            p.gate = Some(factory(&p.key));
        }
        self.partition_gates = Some(factory);
        self.recheck = true;
        self.dispatch();
        self.flush_events();
    }

    pub(super) fn apply_global_limit(&mut self, limit: u32) {
        let limit = limit.clamp(self.min_limit, self.max_limit).max(1);
        if limit != self.limit {
            let old = self.limit;
            self.limit = limit;
            self.emit(Event::LimitChanged {
                scope: Scope::Global,
                old,
                new: limit,
            });
        }
    }

    /// Whether any controller or rate gate listens to samples (if none, the hot
    /// path skips building them).
    pub(super) fn has_listeners(&self) -> bool {
        self.controller.is_some()
            || self.gate.is_some()
            || self.partition_controllers.is_some()
            || self.partition_gates.is_some()
            || self.class_controllers > 0
    }

    /// Reports a finished attempt to every controller and gate in its scopes.
    /// Cold: only pools with a controller or gate get here.
    #[cold]
    #[inline(never)]
    pub(super) fn feed_sample(&mut self, sample: &AttemptSample) {
        if let Some(mut g) = self.gate.take() {
            g.on_sample(self.now, sample);
            self.gate = Some(g);
        }
        let pidx = sample.partition as usize;
        if let Some(p) = self.partitions[pidx].as_mut() {
            if let Some(g) = p.gate.as_mut() {
                g.on_sample(self.now, sample);
            }
        }
        if self.controller.is_some() {
            self.with_controller(ControllerScope::Global, |c, ctx| c.on_sample(ctx, sample));
        }
        let class = sample.class.0 as usize;
        if self.classes[class].controller.is_some() {
            self.with_controller(ControllerScope::Class(sample.class.0), |c, ctx| {
                c.on_sample(ctx, sample)
            });
        }
        if let Some(p) = self.partitions[pidx].as_ref() {
            if p.controller.is_some() {
                let scope = ControllerScope::Partition {
                    index: sample.partition,
                    gen: p.gen,
                };
                self.with_controller(scope, |c, ctx| c.on_sample(ctx, sample));
            }
        }
    }

    /// Reports a resolved op to the controllers of its scopes. Cold: only pools
    /// with a controller get here.
    #[cold]
    #[inline(never)]
    pub(super) fn feed_op_sample(&mut self, sample: &OpSample) {
        if self.controller.is_some() {
            self.with_controller(ControllerScope::Global, |c, ctx| {
                c.on_op_resolved(ctx, sample)
            });
        }
        let class = sample.class.0 as usize;
        if self
            .classes
            .get(class)
            .is_some_and(|c| c.controller.is_some())
        {
            self.with_controller(ControllerScope::Class(sample.class.0), |c, ctx| {
                c.on_op_resolved(ctx, sample)
            });
        }
        if let Some(Some(p)) = self.partitions.get(sample.partition as usize) {
            if p.controller.is_some() {
                let scope = ControllerScope::Partition {
                    index: sample.partition,
                    gen: p.gen,
                };
                self.with_controller(scope, |c, ctx| c.on_op_resolved(ctx, sample));
            }
        }
    }

    pub(super) fn tick_controller(&mut self, scope: ControllerScope) {
        self.with_controller(scope, |c, ctx| c.on_tick(ctx));
    }

    /// After a controller set a class or partition limit: if it changed, blocked
    /// lanes are re-checked and `LimitChanged` is emitted.
    fn note_scope_limit(&mut self, scope: Scope, old: Option<u32>, new: Option<u32>) {
        if let Some(new) = new.filter(|&n| Some(n) != old) {
            self.recheck = true;
            self.emit(Event::LimitChanged {
                scope,
                old: old.unwrap_or(0),
                new,
            });
        }
    }

    /// Calls a controller with a context for its scope, then applies the limit it
    /// set and schedules the wake-up it asked for.
    fn with_controller(
        &mut self,
        scope: ControllerScope,
        f: impl FnOnce(&mut dyn Controller, &mut ControlContext<'_>),
    ) {
        let (taken, limit, in_flight, pub_scope) = match scope {
            ControllerScope::Global => (
                self.controller.take(),
                self.limit,
                self.in_flight,
                Scope::Global,
            ),
            ControllerScope::Class(c) => {
                let cs = &mut self.classes[c as usize];
                let limit = cs.limit.unwrap_or(self.limit);
                (
                    cs.controller.take(),
                    limit,
                    cs.in_flight,
                    Scope::Class(OpClass(c)),
                )
            }
            ControllerScope::Partition { index, gen } => {
                match self.partitions.get_mut(index as usize) {
                    Some(Some(p)) if p.gen == gen => {
                        let limit = p.limit.unwrap_or(self.limit);
                        (
                            p.controller.take(),
                            limit,
                            p.in_flight,
                            Scope::Partition(index),
                        )
                    }
                    _ => (None, 0, 0, Scope::Partition(index)),
                }
            }
        };
        let Some(mut controller) = taken else { return };
        let mut ctx = ControlContext {
            now: self.now,
            scope: pub_scope,
            limit,
            min: self.min_limit,
            max: self.max_limit,
            in_flight,
            queued: self.queue.len,
            external: self.external,
            rng: &mut self.rng,
            new_limit: None,
            wake_at: None,
        };
        f(controller.as_mut(), &mut ctx);
        let (new_limit, wake) = (ctx.new_limit, ctx.wake_at);
        match scope {
            ControllerScope::Global => {
                self.controller = Some(controller);
                if let Some(l) = new_limit {
                    self.apply_global_limit(l);
                }
            }
            ControllerScope::Class(c) => {
                let cs = &mut self.classes[c as usize];
                cs.controller = Some(controller);
                let old = cs.limit;
                if let Some(l) = new_limit {
                    cs.limit = Some(l);
                }
                self.note_scope_limit(pub_scope, old, new_limit);
            }
            ControllerScope::Partition { index, .. } => {
                if let Some(Some(p)) = self.partitions.get_mut(index as usize) {
                    p.controller = Some(controller);
                    let old = p.limit;
                    if let Some(l) = new_limit {
                        p.limit = Some(l);
                    }
                    self.note_scope_limit(pub_scope, old, new_limit);
                }
            }
        }
        if let Some(at) = wake {
            self.timers
                .schedule(at.max(self.now), TimerKind::Controller { scope });
        }
    }
}
