//! The S3 part of a scenario. Defaults and their sources: `docs/sim-model.md`.

use super::profile::{LatencyProfile, LoadedProfiles};
use super::{check_range, field_err, FieldError, MAX_SECONDS};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Per-request transfer-rate profile; the sources disagree, so both are kept.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateProfile {
    /// AnyBlob-measured (Durner et al., VLDB 2023): each request draws a rate
    /// ~ LogNormal(median 55 MiB/s, σ 0.3) truncated to [25, 95] MiB/s.
    #[default]
    Anyblob,
    /// AWS's guidance: one request per 85–90 MB/s, fixed (87.5 MB/s).
    Aws,
}

/// Median time to first byte per class (ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtfbMedians {
    /// HEAD. Default 25 (assumption: a 304 GET is ~30 ms).
    pub head: f64,
    /// GET (first byte). Default 27 (Bodner et al. 2025, p50 27 ms).
    pub get: f64,
    /// PUT. Default 40 (Bodner et al. 2025, write p50 40 ms).
    pub put: f64,
    /// LIST. Default 100 (napkin-math rule of thumb).
    pub list: f64,
    /// DELETE. Default 30 (assumption: AWS "tens of ms").
    pub delete: f64,
    /// COPY (before the server-side copy time). Default 40 (assumption: like PUT).
    pub copy: f64,
    /// Multipart part. Default 40 (like PUT: parts are independent PUTs).
    pub multipart_part: f64,
}

impl Default for TtfbMedians {
    fn default() -> Self {
        TtfbMedians {
            head: 25.0,
            get: 27.0,
            put: 40.0,
            list: 100.0,
            delete: 30.0,
            copy: 40.0,
            multipart_part: 40.0,
        }
    }
}

/// Time to first byte: lognormal body, Pareto tail, rare no-answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtfbConfig {
    /// Medians per class.
    pub median_ms: TtfbMedians,
    /// σ of the lognormal body. Default 0.5 (model §4; sources fit 0.25–0.62).
    pub sigma: f64,
    /// Probability of a tail draw. Default 0.002 (model §4).
    pub tail_prob: f64,
    /// Pareto scale x_m of the tail (ms). Default 200 (model §4).
    pub tail_scale_ms: f64,
    /// Pareto shape α of the tail. Default 1.5 (model §4).
    pub tail_alpha: f64,
    /// Cap of the tail (ms). Default 10 000 (Bodner: max just over 10 s).
    pub tail_cap_ms: f64,
}

impl Default for TtfbConfig {
    fn default() -> Self {
        TtfbConfig {
            median_ms: TtfbMedians::default(),
            sigma: 0.5,
            tail_prob: 0.002,
            tail_scale_ms: 200.0,
            tail_alpha: 1.5,
            tail_cap_ms: 10_000.0,
        }
    }
}

/// Random failures, per request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// The request never answers (the pool's timeout must catch it). Default 1e-5
    /// (model §4, p_lost; AnyBlob: "some requests are silently lost").
    pub stall_prob: f64,
    /// The server answers 500 InternalError. Default 0 (no published rate).
    pub server_error_prob: f64,
    /// The connection resets before the answer. Default 0 (no published rate).
    pub reset_prob: f64,
    /// Share of resets that happen before the request was sent (so it provably
    /// never reached the server). Default 0.5 (assumption).
    pub reset_unsent_share: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            stall_prob: 1e-5,
            server_error_prob: 0.0,
            reset_prob: 0.0,
            reset_unsent_share: 0.5,
        }
    }
}

/// Latency × `factor` for requests arriving in `[start_s, end_s)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brownout {
    /// Start (virtual s).
    pub start_s: f64,
    /// End (virtual s); none: until the end of the run.
    #[serde(default)]
    pub end_s: Option<f64>,
    /// Multiplier of the time to first byte (> 0).
    pub factor: f64,
}

/// At `at_s`, the request-rate capacity of prefixes is multiplied by `factor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityStep {
    /// When (virtual s).
    pub at_s: f64,
    /// Multiplier of the rate (and burst) of the affected buckets (> 0).
    pub factor: f64,
    /// Only prefixes starting with this; none: every prefix.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// S3 raising a prefix's request rate after sustained load (a partition split).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleUp {
    /// Sustained load needed before a split (s). Default 1800 (unofficial
    /// "30–60 min"; AWS documents no figure).
    pub after_s: f64,
    /// A second counts as loaded when demand reaches this share of the rate.
    /// Default 1.0 (assumption).
    pub threshold: f64,
    /// Rate multiplier per split. Default 2 (model §4: "doubles the prefix's rate").
    pub factor: f64,
    /// Largest total multiplier. Default 16 (assumption).
    pub max_factor: f64,
}

impl Default for ScaleUp {
    fn default() -> Self {
        ScaleUp {
            after_s: 1800.0,
            threshold: 1.0,
            factor: 2.0,
            max_factor: 16.0,
        }
    }
}

/// The modeled S3 and the clients' network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Per-request rate profile. Default AnyBlob.
    pub profile: RateProfile,
    /// AnyBlob profile: median per-request rate (MiB/s). Default 55.
    pub anyblob_median_mib_s: f64,
    /// AnyBlob profile: σ of the rate. Default 0.3.
    pub anyblob_sigma: f64,
    /// AnyBlob profile: truncation (MiB/s). Default [25, 95].
    pub anyblob_min_mib_s: f64,
    /// See `anyblob_min_mib_s`.
    pub anyblob_max_mib_s: f64,
    /// AWS profile: per-request rate (MB/s). Default 87.5 (AWS: 85–90 MB/s).
    pub aws_mb_s: f64,
    /// Each client's NIC, per direction (Gbit/s). Default 10 (AWS guidance's
    /// reference NIC).
    pub nic_gbps: f64,
    /// Usable share of the NIC. Default 0.92 (napkin-math: ~92% at 18.75 Gbit/s;
    /// AnyBlob reaches 0.75–0.8 at 100 Gbit/s).
    pub nic_efficiency: f64,
    /// HTTP connections per client; requests beyond wait in the client.
    /// Default none (unlimited).
    pub max_connections: Option<u32>,
    /// Read requests (GET/HEAD/LIST) per second per prefix. Default 5 500 (AWS).
    pub read_rate: f64,
    /// Write requests (PUT/COPY/POST/DELETE) per second per prefix. Default 3 500 (AWS).
    pub write_rate: f64,
    /// Bucket depth in seconds of rate. Default 1 (model §4, T_burst).
    pub burst_s: f64,
    /// Optional partition splits under sustained load. Default off.
    pub scale_up: Option<ScaleUp>,
    /// Server-side copy rate for COPY (MiB/s). Default 100 (assumption).
    pub copy_mib_s: f64,
    /// Time to first byte.
    pub ttfb: TtfbConfig,
    /// Measured time-to-first-byte distributions replacing the `ttfb` model for
    /// some classes: a `pool_core::MetricsSnapshot` JSON file (its classes'
    /// attempt-latency histograms), or a table `class = file`. Relative paths
    /// resolve against the scenario file's directory. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_profile: Option<LatencyProfile>,
    /// The distributions `latency_profile` names, once read: `Scenario::load`
    /// reads them; `run` reads them itself (from the working directory) if the
    /// scenario was built otherwise.
    #[serde(skip)]
    pub loaded_profiles: Option<Arc<LoadedProfiles>>,
    /// Random failures.
    pub faults: FaultConfig,
    /// Periods of slower answers.
    #[serde(rename = "brownout")]
    pub brownouts: Vec<Brownout>,
    /// Changes of the request-rate capacity.
    #[serde(rename = "capacity_step")]
    pub capacity_steps: Vec<CapacityStep>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            profile: RateProfile::Anyblob,
            anyblob_median_mib_s: 55.0,
            anyblob_sigma: 0.3,
            anyblob_min_mib_s: 25.0,
            anyblob_max_mib_s: 95.0,
            aws_mb_s: 87.5,
            nic_gbps: 10.0,
            nic_efficiency: 0.92,
            max_connections: None,
            read_rate: 5_500.0,
            write_rate: 3_500.0,
            burst_s: 1.0,
            scale_up: None,
            copy_mib_s: 100.0,
            ttfb: TtfbConfig::default(),
            latency_profile: None,
            loaded_profiles: None,
            faults: FaultConfig::default(),
            brownouts: Vec::new(),
            capacity_steps: Vec::new(),
        }
    }
}

const BIG: f64 = 1e12;

impl S3Config {
    pub(crate) fn validate(&self) -> Result<(), FieldError> {
        let pos = |f: &str, v: f64| check_range(f, v, 1e-9, BIG);
        pos("s3.anyblob_median_mib_s", self.anyblob_median_mib_s)?;
        check_range("s3.anyblob_sigma", self.anyblob_sigma, 0.0, 5.0)?;
        pos("s3.anyblob_min_mib_s", self.anyblob_min_mib_s)?;
        pos("s3.anyblob_max_mib_s", self.anyblob_max_mib_s)?;
        if self.anyblob_min_mib_s > self.anyblob_max_mib_s {
            return Err(field_err(
                "s3.anyblob_min_mib_s",
                "must be <= s3.anyblob_max_mib_s",
            ));
        }
        pos("s3.aws_mb_s", self.aws_mb_s)?;
        pos("s3.nic_gbps", self.nic_gbps)?;
        check_range("s3.nic_efficiency", self.nic_efficiency, 0.01, 1.0)?;
        if self.max_connections == Some(0) {
            return Err(field_err(
                "s3.max_connections",
                "must be >= 1 (omit it for no limit)",
            ));
        }
        pos("s3.read_rate", self.read_rate)?;
        pos("s3.write_rate", self.write_rate)?;
        check_range("s3.burst_s", self.burst_s, 0.001, 3600.0)?;
        if let Some(s) = &self.scale_up {
            check_range("s3.scale_up.after_s", s.after_s, 1.0, MAX_SECONDS)?;
            check_range("s3.scale_up.threshold", s.threshold, 0.01, 100.0)?;
            check_range("s3.scale_up.factor", s.factor, 1.0, 1000.0)?;
            check_range("s3.scale_up.max_factor", s.max_factor, 1.0, 1e6)?;
        }
        pos("s3.copy_mib_s", self.copy_mib_s)?;
        let t = &self.ttfb;
        let m = &t.median_ms;
        for (f, v) in [
            ("head", m.head),
            ("get", m.get),
            ("put", m.put),
            ("list", m.list),
            ("delete", m.delete),
            ("copy", m.copy),
            ("multipart_part", m.multipart_part),
        ] {
            check_range(&format!("s3.ttfb.median_ms.{f}"), v, 0.001, 3_600_000.0)?;
        }
        check_range("s3.ttfb.sigma", t.sigma, 0.0, 5.0)?;
        check_range("s3.ttfb.tail_prob", t.tail_prob, 0.0, 1.0)?;
        check_range("s3.ttfb.tail_scale_ms", t.tail_scale_ms, 0.001, 3_600_000.0)?;
        check_range("s3.ttfb.tail_alpha", t.tail_alpha, 0.1, 100.0)?;
        check_range("s3.ttfb.tail_cap_ms", t.tail_cap_ms, 0.001, 3_600_000.0)?;
        if let Some(p) = &self.latency_profile {
            p.validate()?;
        }
        let f = &self.faults;
        check_range("s3.faults.stall_prob", f.stall_prob, 0.0, 1.0)?;
        check_range("s3.faults.server_error_prob", f.server_error_prob, 0.0, 1.0)?;
        check_range("s3.faults.reset_prob", f.reset_prob, 0.0, 1.0)?;
        check_range(
            "s3.faults.reset_unsent_share",
            f.reset_unsent_share,
            0.0,
            1.0,
        )?;
        if t.tail_prob + f.stall_prob + f.server_error_prob + f.reset_prob > 1.0 {
            return Err(field_err(
                "s3.faults",
                "ttfb.tail_prob + stall_prob + server_error_prob + reset_prob must be <= 1",
            ));
        }
        for (i, b) in self.brownouts.iter().enumerate() {
            let p = format!("s3.brownout[{i}]");
            check_range(&format!("{p}.start_s"), b.start_s, 0.0, MAX_SECONDS)?;
            if let Some(e) = b.end_s {
                check_range(&format!("{p}.end_s"), e, b.start_s, MAX_SECONDS)?;
            }
            check_range(&format!("{p}.factor"), b.factor, 1e-3, 1e6)?;
        }
        for (i, c) in self.capacity_steps.iter().enumerate() {
            let p = format!("s3.capacity_step[{i}]");
            check_range(&format!("{p}.at_s"), c.at_s, 0.0, MAX_SECONDS)?;
            check_range(&format!("{p}.factor"), c.factor, 1e-6, 1e6)?;
        }
        Ok(())
    }
}
