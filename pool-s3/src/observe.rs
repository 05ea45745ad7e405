//! Metrics snapshots on disk: what `pool-sim` replays as an empirical latency
//! profile (`[s3] latency_profile = "snapshot.json"` in a scenario), so an S3
//! store can be simulated as it was measured.

use crate::client::Client;
use pool_core::MetricsSnapshot;
use std::io::Write;
use std::path::Path;

/// Writes `snapshot` to `path` as pretty-printed JSON (the
/// `pool_core::MetricsSnapshot` serde form, which `pool-sim` loads as is).
/// Replaces the file if it exists.
pub fn write_metrics_snapshot(snapshot: &MetricsSnapshot, path: &Path) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(path)?;
    f.write_all(&json)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Reads a snapshot written by [`write_metrics_snapshot`].
pub fn read_metrics_snapshot(path: &Path) -> std::io::Result<MetricsSnapshot> {
    let src = std::fs::read(path)?;
    serde_json::from_slice(&src).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not a metrics snapshot ({e})", path.display()),
        )
    })
}

impl Client {
    /// Writes the pool's current metrics (every client sharing the pool
    /// included) to `path`; see [`write_metrics_snapshot`].
    pub fn write_metrics_snapshot(&self, path: &Path) -> std::io::Result<()> {
        write_metrics_snapshot(&self.pool().metrics(), path)
    }
}
