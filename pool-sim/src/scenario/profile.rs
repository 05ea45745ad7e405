//! Empirical latency profiles: the time to first byte of some classes drawn from
//! a measured distribution — the attempt-latency histograms of a
//! `pool_core::MetricsSnapshot` (e.g. exported by a real `pool-s3` run) — instead
//! of the lognormal model.
//!
//! ```toml
//! [s3]
//! latency_profile = "profiles/my-bucket.json"       # every class the snapshot has
//! # or, per class (names as in a mix, or class numbers):
//! latency_profile = { get = "get.json", put = "put.json" }
//! ```
//!
//! Relative paths resolve against the scenario file's directory (built-in
//! scenarios use profiles embedded next to them). A draw is an inverse-CDF
//! lookup over the histogram's buckets with the client's seeded stream, spread
//! uniformly inside the chosen bucket's value range: deterministic, and as fine
//! as the histogram (≤ 0.1% at 3 significant figures).

use super::{field_err, FieldError};
use crate::rng::unit;
use hdrhistogram::Histogram;
use pool_core::metrics::HistogramSnapshot;
use pool_core::OpClass;
use rand_chacha::ChaCha8Rng;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which snapshot file(s) give which classes their time to first byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LatencyProfile {
    /// One snapshot for every class it has samples for; other classes keep the
    /// lognormal model.
    All(String),
    /// Class name (or number) → snapshot file; that class's histogram is used.
    PerClass(BTreeMap<String, String>),
}

impl Serialize for LatencyProfile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LatencyProfile::All(p) => s.serialize_str(p),
            LatencyProfile::PerClass(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LatencyProfile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LatencyProfile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snapshot file path, or a table of class = snapshot file path")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LatencyProfile, E> {
                Ok(LatencyProfile::All(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LatencyProfile, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    out.insert(k, v);
                }
                Ok(LatencyProfile::PerClass(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl LatencyProfile {
    /// `(TOML key, class or None for "every class", file)` of each entry.
    fn entries(&self) -> Vec<(String, Option<OpClass>, &str)> {
        match self {
            LatencyProfile::All(p) => vec![("s3.latency_profile".into(), None, p.as_str())],
            LatencyProfile::PerClass(m) => m
                .iter()
                .map(|(k, p)| {
                    (
                        format!("s3.latency_profile.{k}"),
                        OpClass::parse(k),
                        p.as_str(),
                    )
                })
                .collect(),
        }
    }

    /// Checks what can be checked without reading the files.
    pub(crate) fn validate(&self) -> Result<(), FieldError> {
        if let LatencyProfile::PerClass(m) = self {
            if m.is_empty() {
                return Err(field_err(
                    "s3.latency_profile",
                    "the table names no class (omit it to use the lognormal model)",
                ));
            }
        }
        for (field, class, path) in self.entries() {
            if path.trim().is_empty() {
                return Err(field_err(field, "empty snapshot file path"));
            }
            if let (LatencyProfile::PerClass(_), None) = (self, class) {
                let key = field.rsplit('.').next().unwrap_or_default().to_string();
                return Err(field_err(
                    field,
                    format!(
                        "unknown class {key:?} (head, get, put, list, delete, copy, multipart_part, or a number)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Where relative snapshot paths are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileBase {
    /// A directory (the scenario file's).
    Dir(PathBuf),
    /// The profiles embedded with the built-in scenarios.
    Builtin,
}

/// A measured distribution, ready to draw from (values in ns).
#[derive(Clone, Debug, PartialEq)]
pub struct Empirical {
    /// Cumulative sample counts, one per non-empty bucket.
    cum: Vec<u64>,
    /// Lowest value of each bucket (ns).
    lo: Vec<f64>,
    /// Width of each bucket's value range (ns).
    width: Vec<f64>,
}

impl Empirical {
    /// From a histogram snapshot (values in µs). Fails on an empty histogram, a
    /// unit other than µs, or buckets that are not ascending.
    pub fn from_snapshot(h: &HistogramSnapshot) -> Result<Empirical, String> {
        if h.unit != "us" {
            return Err(format!(
                "histogram unit is {:?}; only \"us\" (microseconds) is understood",
                h.unit
            ));
        }
        if let Some(&(v, _)) = h.buckets.iter().find(|b| b.0 > MAX_US) {
            return Err(format!(
                "bucket value {v} µs is beyond {MAX_US} µs (11 days)"
            ));
        }
        let grid = precision(h)?;
        let (mut cum, mut lo, mut width) = (Vec::new(), Vec::new(), Vec::new());
        let (mut total, mut prev): (u64, Option<u64>) = (0, None);
        for &(value, count) in &h.buckets {
            if prev.is_some_and(|p| value <= p) {
                return Err(format!(
                    "histogram buckets are not in ascending order ({value} after {})",
                    prev.unwrap_or_default()
                ));
            }
            if count > 0 {
                // The bucket's values: [lowest equivalent, value], inclusive.
                let low = grid
                    .lowest_equivalent(value)
                    .max(prev.map_or(0, |p| p + 1))
                    .min(value);
                total = total
                    .checked_add(count)
                    .ok_or("histogram counts overflow")?;
                cum.push(total);
                lo.push(low as f64 * 1e3);
                width.push((value + 1 - low) as f64 * 1e3);
            }
            prev = Some(value);
        }
        if total == 0 {
            return Err("no samples (the histogram is empty)".into());
        }
        Ok(Empirical { cum, lo, width })
    }

    /// Samples the distribution holds.
    pub fn count(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// The value below which a share `q` of the samples lie (ns), interpolated
    /// inside the bucket like [`Empirical::sample`] does.
    pub fn quantile(&self, q: f64) -> f64 {
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        self.at_rank(q * self.count() as f64)
    }

    /// One draw (ns): inverse CDF at a uniform rank.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        self.at_rank(unit(rng) * self.count() as f64)
    }

    fn at_rank(&self, r: f64) -> f64 {
        // The first bucket whose cumulative count exceeds the rank.
        let k = self
            .cum
            .partition_point(|&c| c as f64 <= r)
            .min(self.cum.len() - 1);
        let before = if k == 0 { 0 } else { self.cum[k - 1] };
        let n = (self.cum[k] - before) as f64;
        let frac = ((r - before as f64) / n).clamp(0.0, 1.0);
        self.lo[k] + frac * self.width[k]
    }
}

/// Largest bucket value accepted (µs): keeps the arithmetic far from overflow.
const MAX_US: u64 = 1_000_000_000_000;

/// A histogram with the bucket grid of the snapshot's source. A snapshot does
/// not say its precision, but each bucket value is the highest value of its
/// bucket, so the coarsest precision under which every value is such an edge is
/// the source's (grids at more significant figures subdivide coarser ones, and a
/// finer source has values that are no edge of a coarser grid).
fn precision(h: &HistogramSnapshot) -> Result<Histogram<u64>, String> {
    for sf in 1..=5u8 {
        let grid = Histogram::<u64>::new(sf).map_err(|e| format!("histogram: {e:?}"))?;
        if h.buckets
            .iter()
            .all(|&(v, _)| grid.highest_equivalent(v) == v)
        {
            return Ok(grid);
        }
    }
    // Not from an HdrHistogram: the finest grid (each value's range is then a
    // sliver just below it).
    Histogram::<u64>::new(5).map_err(|e| format!("histogram: {e:?}"))
}

/// The distributions a scenario's `latency_profile` names, read from disk.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedProfiles {
    /// What they were read for, and from where (to notice a changed scenario).
    pub spec: LatencyProfile,
    /// Where relative paths were looked up.
    pub base: ProfileBase,
    /// By class, ascending.
    pub classes: Vec<(OpClass, Arc<Empirical>)>,
}

/// The profiles embedded for the built-in scenarios, by path relative to them.
const BUILTIN_PROFILES: &[(&str, &str)] = &[(
    "profiles/example-get-put.json",
    include_str!("../../scenarios/profiles/example-get-put.json"),
)];

/// The part of a `pool_core::MetricsSnapshot` that is used (other fields are
/// ignored, so a whole exported snapshot reads as is).
#[derive(Deserialize)]
struct SnapshotClasses {
    classes: Vec<SnapshotClass>,
}

#[derive(Deserialize)]
struct SnapshotClass {
    class: OpClass,
    attempt_latency: HistogramSnapshot,
}

fn read(base: &ProfileBase, path: &str) -> Result<(String, String), String> {
    match base {
        ProfileBase::Builtin => {
            let rel = path.trim_start_matches("./");
            BUILTIN_PROFILES
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(p, src)| (format!("builtin:{p}"), (*src).to_string()))
                .ok_or_else(|| {
                    format!("snapshot {path:?}: built-in scenarios can only use embedded profiles")
                })
        }
        ProfileBase::Dir(dir) => {
            let full = dir.join(path);
            let shown = full.display().to_string();
            std::fs::read_to_string(&full)
                .map(|src| (shown.clone(), src))
                .map_err(|e| format!("snapshot {shown}: cannot read it ({e})"))
        }
    }
}

/// Reads every file `spec` names. Errors name the field, the file and the class.
pub(crate) fn load(
    spec: &LatencyProfile,
    base: &ProfileBase,
) -> Result<LoadedProfiles, FieldError> {
    let mut classes: BTreeMap<OpClass, Arc<Empirical>> = BTreeMap::new();
    for (field, class, path) in spec.entries() {
        let fail = |m: String| field_err(field.clone(), m);
        let (shown, src) = read(base, path).map_err(fail)?;
        let snap: SnapshotClasses = serde_json::from_str(&src).map_err(|e| {
            fail(format!(
                "snapshot {shown}:{}:{}: not a pool_core::MetricsSnapshot ({e})",
                e.line(),
                e.column()
            ))
        })?;
        let wanted: Vec<&SnapshotClass> = match class {
            Some(c) => match snap.classes.iter().find(|s| s.class == c) {
                Some(s) => vec![s],
                None => {
                    return Err(fail(format!(
                        "snapshot {shown} has no class `{c}` (it has: {})",
                        names(&snap)
                    )))
                }
            },
            None => snap
                .classes
                .iter()
                .filter(|s| s.attempt_latency.count > 0)
                .collect(),
        };
        if wanted.is_empty() {
            return Err(fail(format!(
                "snapshot {shown} has no class with attempt-latency samples (classes: {})",
                names(&snap)
            )));
        }
        for s in wanted {
            let e = Empirical::from_snapshot(&s.attempt_latency).map_err(|m| {
                fail(format!(
                    "snapshot {shown}, class `{}`, attempt_latency: {m}",
                    s.class
                ))
            })?;
            // A per-class entry overrides the same class from an "all" file;
            // BTreeMap order keeps the result independent of the file order.
            classes.insert(s.class, Arc::new(e));
        }
    }
    Ok(LoadedProfiles {
        spec: spec.clone(),
        base: base.clone(),
        classes: classes.into_iter().collect(),
    })
}

fn names(snap: &SnapshotClasses) -> String {
    if snap.classes.is_empty() {
        return "none".into();
    }
    snap.classes
        .iter()
        .map(|s| format!("{} ({} samples)", s.class, s.attempt_latency.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Relative paths of a scenario read from `path` resolve against its directory.
pub(crate) fn base_of_file(path: &Path) -> ProfileBase {
    let dir = path.parent().unwrap_or(Path::new(""));
    ProfileBase::Dir(if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.to_path_buf()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    fn snapshot(buckets: Vec<(u64, u64)>) -> HistogramSnapshot {
        HistogramSnapshot {
            unit: "us".into(),
            count: buckets.iter().map(|b| b.1).sum(),
            buckets,
            ..HistogramSnapshot::default()
        }
    }

    #[test]
    fn inverse_cdf_follows_the_buckets() {
        // 90% at ~10 ms, 10% at ~100 ms (3 significant figures).
        let e = Empirical::from_snapshot(&snapshot(vec![(10_007, 90), (100_095, 10)])).unwrap();
        assert_eq!(e.count(), 100);
        let mut r = stream(5, Purpose::S3, 0, 0);
        let draws: Vec<f64> = (0..20_000).map(|_| e.sample(&mut r)).collect();
        let low = draws.iter().filter(|&&v| v < 20e6).count() as f64 / 20_000.0;
        assert!((low - 0.9).abs() < 0.01, "{low}");
        // Draws stay inside the bucket ranges: [10.0, 10.008) and [100.0, 100.096) ms.
        assert!(draws
            .iter()
            .all(|&v| (10.0e6..10.008e6).contains(&v) || (100.0e6..100.096e6).contains(&v)));
        assert!((e.quantile(0.5) - 10.0e6).abs() < 0.01e6);
        assert!(e.quantile(0.95) > 100.0e6);
    }

    #[test]
    fn bad_histograms_are_refused() {
        let mut h = snapshot(vec![(5, 0)]);
        assert!(Empirical::from_snapshot(&h)
            .unwrap_err()
            .contains("no samples"));
        h = snapshot(vec![(9, 1), (5, 1)]);
        assert!(Empirical::from_snapshot(&h)
            .unwrap_err()
            .contains("ascending"));
        h = snapshot(vec![(5, 1)]);
        h.unit = "ms".into();
        assert!(Empirical::from_snapshot(&h).unwrap_err().contains("unit"));
    }

    #[test]
    fn spec_reads_a_string_or_a_class_table() {
        #[derive(Deserialize)]
        struct T {
            latency_profile: LatencyProfile,
        }
        let t: T = toml::from_str("latency_profile = \"a.json\"").unwrap();
        assert_eq!(t.latency_profile, LatencyProfile::All("a.json".into()));
        let t: T = toml::from_str("latency_profile = { get = \"g.json\" }").unwrap();
        let LatencyProfile::PerClass(m) = &t.latency_profile else {
            panic!("not per class")
        };
        assert_eq!(m["get"], "g.json");
        assert!(toml::from_str::<T>("latency_profile = 3").is_err());
        let bad = LatencyProfile::PerClass([("gett".to_string(), "x".to_string())].into());
        assert!(bad
            .validate()
            .unwrap_err()
            .message
            .contains("unknown class"));
    }

    #[test]
    fn builtin_example_loads() {
        let spec = LatencyProfile::All("profiles/example-get-put.json".into());
        let l = load(&spec, &ProfileBase::Builtin).unwrap();
        let classes: Vec<OpClass> = l.classes.iter().map(|c| c.0).collect();
        assert_eq!(classes, [OpClass::GET, OpClass::PUT]);
        let e = load(
            &LatencyProfile::All("elsewhere.json".into()),
            &ProfileBase::Builtin,
        )
        .unwrap_err();
        assert!(e.message.contains("elsewhere.json"), "{}", e.message);
    }
}
