//! Seeded randomness. Every stream is a `ChaCha8Rng` seeded from the scenario seed
//! and a purpose tag (plus a client and an index), so adding a draw in one place
//! never shifts the draws of another, and the same seed replays bit for bit.
//!
//! Continuous draws are done here rather than through `rand_distr`'s
//! floating-point paths: `rand_distr` reaches `exp`/`ln` through `num-traits`,
//! which uses the platform's maths library as soon as any crate in the build
//! enables `num-traits/std` (hdrhistogram does). Here every transcendental value
//! comes from `libm` (a pure-Rust port of musl's) or from tables built with it,
//! so results are the same on every platform. The per-request draws (normal,
//! exponential, e^x) use a ziggurat and a table-driven e^x: they run a few times
//! per simulated op, and their `libm` versions were a fifth of a fleet run.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::LazyLock;

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

/// A standard normal draw (ziggurat; see [`Ziggurat`]).
#[inline]
pub(crate) fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    NORMAL.sample(rng)
}

/// A lognormal draw with this median and shape σ (of the underlying normal).
#[inline]
pub(crate) fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * exp(sigma * std_normal(rng))
}

/// 2^(j/64), j = 0..64, from `libm`.
static EXP2_64THS: LazyLock<[f64; 64]> =
    LazyLock::new(|| core::array::from_fn(|j| libm::exp2(j as f64 / 64.0)));

/// e^x for the per-request draws (two per simulated op).
///
/// x = (64·m + j)·ln2/64 + r with |r| ≤ ln2/128, so e^x = 2^m · 2^(j/64) · e^r:
/// the middle factor from a table built with `libm`, e^r from its degree-5
/// Taylor polynomial (truncation error < 4e-17), ln2/64 split in two (Cody–Waite)
/// so r is exact. Within a few ulps of `libm::exp`, and like it made only of
/// IEEE-754 additions and multiplications in a fixed order (Rust never fuses
/// them), so the same on every platform — at a fraction of `libm::exp`'s cost,
/// which was 5% of a fleet run. Outside ±700 (never on the hot path) it defers
/// to `libm`.
#[inline]
pub(crate) fn exp(x: f64) -> f64 {
    // ln2/64 = HI + LO (fdlibm's split of ln2, divided exactly by 64); HI has 21
    // trailing zero bits, so k·HI is exact for |k| < 2^20.
    const HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000) / 64.0;
    const LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76) / 64.0;
    const INV: f64 = 64.0 / core::f64::consts::LN_2;
    if x.is_nan() || x.abs() > 700.0 {
        return libm::exp(x);
    }
    // Round to nearest (even) without a branch: adding 1.5·2^52 leaves no bits
    // below the unit in the sum (|t| < 2^17 here). IEEE default rounding.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let kf = (x * INV + ROUND) - ROUND;
    let k = kf as i64;
    let r = (x - kf * HI) - kf * LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0)))));
    let m = k >> 6; // floor(k / 64): |m| ≤ 1011 keeps 2^m a normal number
    let scale = f64::from_bits(((m + 1023) as u64) << 52);
    EXP2_64THS[(k & 63) as usize] * p * scale
}

/// An exponential draw with this mean (ziggurat; see [`Ziggurat`]).
#[inline]
pub(crate) fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    mean * EXPONENTIAL.sample(rng)
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

/// Marsaglia and Tsang's ziggurat ("The Ziggurat Method for Generating Random
/// Variables", J. Stat. Software 5(8), 2000) for a decreasing density `f` on
/// [0, ∞): `N` layers of equal area `v` — a base strip holding the tail beyond `r`
/// and N − 1 rectangles stacked on it. A draw picks a layer and a point in it
/// from one 64-bit word; ~98% (normal) or ~99% (exponential) of draws are
/// accepted by one comparison, and only the rest evaluate `f` (or the tail).
///
/// Why not Box–Muller and `-ln(u)`: they cost two or three transcendental calls
/// per draw. The tables are computed once with `libm`, so draws stay identical
/// on every platform.
pub(crate) struct Ziggurat {
    /// Right edges: `x[0]` the base strip's virtual width (`v / f(r)`), `x[1] = r`,
    /// `x[N] = 0`.
    x: Vec<f64>,
    /// `f(x[i])`; `fx[0]` is unused.
    fx: Vec<f64>,
    /// `x[i + 1] / x[i]`: a point with `u` below it is under the curve for sure.
    ratio: Vec<f64>,
    /// `N - 1` (N a power of two): the layer comes from the word's low bits.
    mask: u64,
    /// log2(N): the position of the sign bit in the word.
    layer_bits: u32,
    symmetric: bool,
    r: f64,
    f: fn(f64) -> f64,
}

fn normal_density(x: f64) -> f64 {
    libm::exp(-0.5 * x * x)
}

fn exponential_density(x: f64) -> f64 {
    libm::exp(-x)
}

/// Standard normal: 128 layers (the paper's constants).
static NORMAL: LazyLock<Ziggurat> = LazyLock::new(|| {
    Ziggurat::new(
        128,
        3.442_619_855_899,
        9.912_563_035_262_17e-3,
        normal_density,
        |y| libm::sqrt(-2.0 * libm::log(y)),
        true,
    )
});

/// Exponential of mean 1: 256 layers (the paper's constants).
static EXPONENTIAL: LazyLock<Ziggurat> = LazyLock::new(|| {
    Ziggurat::new(
        256,
        7.697_117_470_131_05,
        3.949_659_822_581_557e-3,
        exponential_density,
        |y| -libm::log(y),
        false,
    )
});

/// 2^-53: a 53-bit integer times this is a uniform in [0, 1).
const UNIT_53: f64 = 1.0 / (1u64 << 53) as f64;

impl Ziggurat {
    fn new(
        n: usize,
        r: f64,
        v: f64,
        f: fn(f64) -> f64,
        f_inv: fn(f64) -> f64,
        symmetric: bool,
    ) -> Ziggurat {
        let mut x = vec![0.0; n + 1];
        x[0] = v / f(r);
        x[1] = r;
        for i in 1..n - 1 {
            x[i + 1] = f_inv(v / x[i] + f(x[i]));
        }
        x[n] = 0.0;
        let fx = x.iter().map(|&xi| f(xi)).collect();
        let ratio = (0..n).map(|i| x[i + 1] / x[i]).collect();
        Ziggurat {
            x,
            fx,
            ratio,
            mask: n as u64 - 1,
            layer_bits: n.trailing_zeros(),
            symmetric,
            r,
            f,
        }
    }

    /// One draw. The word's low bits pick the layer, the next bit the sign
    /// (symmetric densities), the top 53 bits the position in the layer.
    #[inline]
    fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        let mut offset = 0.0;
        loop {
            let bits = rng.next_u64();
            let i = (bits & self.mask) as usize;
            let u = (bits >> 11) as f64 * UNIT_53;
            // The sign as an IEEE sign bit, applied by XOR: a random sign would
            // be a mispredicted branch half the time.
            let sign_bit = if self.symmetric {
                ((bits >> self.layer_bits) & 1) << 63
            } else {
                0
            };
            let signed = |v: f64| f64::from_bits(v.to_bits() ^ sign_bit);
            if u < self.ratio[i] {
                return signed(offset + u * self.x[i]);
            }
            if i == 0 {
                if self.symmetric {
                    return signed(self.normal_tail(rng));
                }
                // The exponential is memoryless: past r it starts over, shifted.
                offset += self.r;
                continue;
            }
            let x = u * self.x[i];
            let y = self.fx[i] + unit(rng) * (self.fx[i + 1] - self.fx[i]);
            if y < (self.f)(x) {
                return signed(offset + x);
            }
        }
    }

    /// A draw from the normal tail beyond `r` (Marsaglia 1964).
    #[cold]
    fn normal_tail(&self, rng: &mut ChaCha8Rng) -> f64 {
        loop {
            let a = -libm::log(unit_open0(rng)) / self.r;
            let b = -libm::log(unit_open0(rng));
            if b + b > a * a {
                return self.r + a;
            }
        }
    }
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

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0.0f64;
        for i in -400_000..=400_000 {
            let x = i as f64 * 1.75e-3; // ±700, off the table's grid
            let (a, b) = (exp(x), libm::exp(x));
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-15, "max relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(800.0), f64::INFINITY);
        assert_eq!(exp(-800.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn ziggurat_layers_close() {
        // The recursion must end at the top with the last layer's area ≈ v.
        for (z, v) in [
            (&*NORMAL, 9.912_563_035_262_17e-3),
            (&*EXPONENTIAL, 3.949_659_822_581_557e-3),
        ] {
            let n = z.x.len() - 1;
            let top = z.x[n - 1] * (1.0 - z.fx[n - 1]);
            assert!(
                (top - v).abs() < 1e-9 * v.max(1.0),
                "top layer area {top} vs {v}"
            );
            assert!(
                z.x.windows(2).skip(1).all(|w| w[0] > w[1]),
                "edges decrease"
            );
        }
    }

    /// Empirical CDF against the exact one at a few points, plus moments.
    #[test]
    fn ziggurat_draws_have_the_right_distribution() {
        const N: usize = 400_000;
        let mut r = stream(11, Purpose::S3, 0, 0);
        let z: Vec<f64> = (0..N).map(|_| std_normal(&mut r)).collect();
        let mean = z.iter().sum::<f64>() / N as f64;
        let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / N as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
        // Φ at -3, -2, -1, 0, 1, 2.5, 3.5 (tables).
        for (x, p) in [
            (-3.0, 0.001_349_898),
            (-2.0, 0.022_750_132),
            (-1.0, 0.158_655_254),
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (2.5, 0.993_790_335),
            (3.5, 0.999_767_371),
        ] {
            let got = z.iter().filter(|&&v| v < x).count() as f64 / N as f64;
            let sd = (p * (1.0 - p) / N as f64).sqrt();
            assert!((got - p).abs() < 5.0 * sd + 1e-6, "Φ({x}): {got} vs {p}");
        }
        // The tail beyond r = 3.44 is reached (both signs).
        assert!(z.iter().any(|&v| v > 3.6) && z.iter().any(|&v| v < -3.6));

        let e: Vec<f64> = (0..N).map(|_| exponential(&mut r, 2.0)).collect();
        let mean = e.iter().sum::<f64>() / N as f64;
        assert!((mean - 2.0).abs() < 0.02, "{mean}");
        for x in [0.1, 1.0, 2.0, 6.0, 16.0] {
            let p = 1.0 - libm::exp(-x / 2.0);
            let got = e.iter().filter(|&&v| v < x).count() as f64 / N as f64;
            let sd = (p * (1.0 - p) / N as f64).sqrt();
            assert!((got - p).abs() < 5.0 * sd + 1e-6, "F({x}): {got} vs {p}");
        }
        // Past the base strip (r = 7.7 for mean 1, i.e. 15.4 here).
        assert!(e.iter().any(|&v| v > 16.0));
        assert!(e.iter().all(|&v| v >= 0.0));
    }
}
