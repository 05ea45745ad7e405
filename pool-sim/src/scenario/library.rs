//! The built-in scenario library, embedded so names work from any directory.

/// `(name, TOML source)` of every built-in scenario, study scenarios first.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "small-get-burst",
        include_str!("../../scenarios/small-get-burst.toml"),
    ),
    (
        "bulk-download-16mib",
        include_str!("../../scenarios/bulk-download-16mib.toml"),
    ),
    (
        "bulk-upload-multipart",
        include_str!("../../scenarios/bulk-upload-multipart.toml"),
    ),
    (
        "hot-prefix-throttled",
        include_str!("../../scenarios/hot-prefix-throttled.toml"),
    ),
    ("brownout", include_str!("../../scenarios/brownout.toml")),
    (
        "mixed-priorities",
        include_str!("../../scenarios/mixed-priorities.toml"),
    ),
    (
        "fleet-50-one-prefix",
        include_str!("../../scenarios/fleet-50-one-prefix.toml"),
    ),
    (
        "latency-shift",
        include_str!("../../scenarios/latency-shift.toml"),
    ),
    (
        "flaky-server",
        include_str!("../../scenarios/flaky-server.toml"),
    ),
    (
        "ramp-past-limit",
        include_str!("../../scenarios/ramp-past-limit.toml"),
    ),
    (
        "measured-latency",
        include_str!("../../scenarios/measured-latency.toml"),
    ),
    (
        "e1-nic-plateau",
        include_str!("../../scenarios/e1-nic-plateau.toml"),
    ),
    (
        "e2-single-stream",
        include_str!("../../scenarios/e2-single-stream.toml"),
    ),
    (
        "e3-mid-nic",
        include_str!("../../scenarios/e3-mid-nic.toml"),
    ),
    (
        "e4-small-latency",
        include_str!("../../scenarios/e4-small-latency.toml"),
    ),
    (
        "e5-prefix-knee",
        include_str!("../../scenarios/e5-prefix-knee.toml"),
    ),
];

/// The TOML source of a built-in scenario.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Every built-in name, in library order.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}
