//! A `tracing` subscriber for tests: records every span (name, target, parent,
//! fields, and the messages of events emitted inside it) and every event, of
//! every crate and level. Shared by pool-core's `pool_tracing.rs` and pool-s3's
//! `spans.rs` (which includes this file by path).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Debug, Default)]
pub struct SpanRec {
    pub name: String,
    pub target: String,
    pub parent: Option<u64>,
    pub fields: BTreeMap<String, String>,
    /// Messages of events emitted while this span was the current one.
    pub events: Vec<String>,
}

#[derive(Clone, Default)]
pub struct Capture {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<BTreeMap<u64, SpanRec>>>,
    stack: Arc<Mutex<Vec<u64>>>,
    /// Every event: (target, its fields).
    events: Arc<Mutex<Vec<(String, String)>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => self.stack.lock().unwrap().last().copied(),
            None => None,
        };
        let mut rec = SpanRec {
            name: attrs.metadata().name().into(),
            target: attrs.metadata().target().into(),
            parent,
            ..SpanRec::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        self.spans.lock().unwrap().insert(id, rec);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(s) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut s.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = BTreeMap::new();
        event.record(&mut Fields(&mut f));
        let current = self.stack.lock().unwrap().last().copied();
        if let Some(c) = current {
            if let Some(s) = self.spans.lock().unwrap().get_mut(&c) {
                s.events.push(f.get("message").cloned().unwrap_or_default());
            }
        }
        let target = event.metadata().target().to_string();
        self.events.lock().unwrap().push((target, format!("{f:?}")));
    }
    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut s = self.stack.lock().unwrap();
        if let Some(i) = s.iter().rposition(|&x| x == span.into_u64()) {
            s.remove(i);
        }
    }
}

impl Capture {
    /// Every span with this name, by id (creation order).
    pub fn named(&self, name: &str) -> Vec<(u64, SpanRec)> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }
    /// Whether `ancestor` is on the parent chain of `id`.
    pub fn under(&self, id: u64, ancestor: u64) -> bool {
        let spans = self.spans.lock().unwrap();
        let mut cur = spans.get(&id).and_then(|s| s.parent);
        while let Some(p) = cur {
            if p == ancestor {
                return true;
            }
            cur = spans.get(&p).and_then(|s| s.parent);
        }
        false
    }
    /// Every span's and event's text whose target passes `keep`.
    pub fn text(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut out = String::new();
        for s in self.spans.lock().unwrap().values() {
            if keep(&s.target) {
                out += &format!("{} {:?}\n", s.name, s.fields);
            }
        }
        for (target, fields) in self.events.lock().unwrap().iter() {
            if keep(target) {
                out += &format!("{target} {fields}\n");
            }
        }
        out
    }
}
