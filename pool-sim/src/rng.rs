//! Seeded randomness. Every stream is a `ChaCha8Rng` seeded from the scenario seed
//! and a purpose tag (plus a client and an index), so adding a draw in one place
//! never shifts the draws of another, and the same seed replays bit for bit.
//!
//! Continuous draws that need transcendental functions are done here with `libm`
//! rather than through `rand_distr`'s floating-point paths: `rand_distr` reaches
//! `exp`/`ln` through `num-traits`, which uses the platform's maths library as soon
//! as any crate in the build enables `num-traits/std` (hdrhistogram does). `libm`
//! is a pure-Rust port of musl's, so these results are the same on every platform.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; part of its seed.
#[derive(Copy, Clone, Debug)]
#[repr(u64)]
pub(crate) enum Purpose {
    /// The engine's own RNG (retry jitter, strategy probing).
    Engine = 1,
    /// Arrivals and op choices of one workload of one client.
    Workload = 2,
    /// The S3 model's draws for requests of one client.
    S3 = 3,
}

/// SplitMix64's finaliser: a bijective mix with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of the stream `(purpose, client, index)` of a run seeded `seed`.
pub(crate) fn sub_seed(seed: u64, purpose: Purpose, client: u32, index: u32) -> u64 {
    let h = mix(seed ^ mix(purpose as u64));
    let h = mix(h ^ u64::from(client));
    mix(h ^ (u64::from(index) << 32))
}

/// A fresh stream for `(purpose, client, index)`.
pub(crate) fn stream(seed: u64, purpose: Purpose, client: u32, index: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(sub_seed(seed, purpose, client, index))
}

/// A uniform draw in `[0, 1)`.
#[inline]
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

/// A uniform draw in `(0, 1]` (safe to take the log of).
#[inline]
pub(crate) fn unit_open0(rng: &mut ChaCha8Rng) -> f64 {
    1.0 - unit(rng)
}

/// A standard normal draw (Box–Muller, one value per call: simple and stateless).
#[inline]
pub(crate) fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = unit_open0(rng);
    let u2 = unit(rng);
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
}

/// A lognormal draw with this median and shape σ (of the underlying normal).
#[inline]
pub(crate) fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * libm::exp(sigma * std_normal(rng))
}

/// An exponential draw with this mean.
#[inline]
pub(crate) fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * libm::log(unit_open0(rng))
}

/// A Pareto draw (scale `x_m`, shape `alpha`), by inverse transform.
#[inline]
pub(crate) fn pareto(rng: &mut ChaCha8Rng, x_m: f64, alpha: f64) -> f64 {
    x_m * libm::pow(unit_open0(rng), -1.0 / alpha)
}

/// A log-uniform draw in `[lo, hi]` (sizes spread over orders of magnitude).
#[inline]
pub(crate) fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    let (a, b) = (libm::log(lo.max(1.0)), libm::log(hi.max(1.0)));
    libm::exp(a + (b - a) * unit(rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_distinct_and_stable() {
        let a = sub_seed(1, Purpose::S3, 0, 0);
        assert_ne!(a, sub_seed(1, Purpose::S3, 1, 0));
        assert_ne!(a, sub_seed(1, Purpose::Workload, 0, 0));
        assert_ne!(a, sub_seed(2, Purpose::S3, 0, 0));
        assert_eq!(a, sub_seed(1, Purpose::S3, 0, 0));
    }

    #[test]
    fn lognormal_median_is_right() {
        let mut r = stream(7, Purpose::S3, 0, 0);
        let mut v: Vec<f64> = (0..20_001).map(|_| lognormal(&mut r, 27.0, 0.5)).collect();
        v.sort_by(f64::total_cmp);
        let med = v[10_000];
        assert!((med - 27.0).abs() < 1.0, "median {med}");
    }
}
