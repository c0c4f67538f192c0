//! Scalar arithmetic of the fused kernel: the counter-based uniforms (SplitMix64) and branch-free
//! `ln` and `exp` that the compiler vectorizes. Every function is `#[inline(always)]`, so that it is
//! compiled inside each instruction-set variant of the kernels.

/// SplitMix64's increment: the state of element `index` under `key` is `key + (index + 1) γ`.
pub(super) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The uniform in the open interval `(0, 1)` of element `index` under `key`, from its state
/// `key + (index + 1) γ`: SplitMix64's output, top 24 bits, centred in its cell, so
/// `u ∈ [2^-25, 1 − 2^-25]`. The kernel steps the state by `γ` per element instead of
/// multiplying (the same value modulo 2^64).
#[inline(always)]
pub(super) fn uniform_of_state(mut z: u64) -> f32 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // Through i32 (exact below 2^24): vector u64 → f32 conversions need AVX-512.
    ((z >> 40) as i32 as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// `ln x` for normal `x > 0`, branch-free (Cephes' `logf` polynomial, within 2 ulp).
#[inline(always)]
pub(super) fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
    let big = mantissa > core::f32::consts::SQRT_2;
    let m = if big { mantissa * 0.5 } else { mantissa };
    let e = (exponent + big as i32) as f32;
    let f = m - 1.0;
    let z = f * f;
    let mut p = 7.037_683_6e-2f32;
    p = p * f - 1.151_461_1e-1;
    p = p * f + 1.167_699_9e-1;
    p = p * f - 1.242_014_1e-1;
    p = p * f + 1.424_932_3e-1;
    p = p * f - 1.666_805_8e-1;
    p = p * f + 2.000_071_5e-1;
    p = p * f - 2.499_999_4e-1;
    p = p * f + 3.333_333e-1;
    let y = p * f * z - 2.121_944_4e-4 * e - 0.5 * z;
    f + y + 0.693_359_4 * e
}

/// `exp x` for `x ≤ 0`, branch-free (Cephes' `expf` polynomial, within 2 ulp); exactly 0 below
/// −87 (and for −∞), where `exp` is under 2^-125.
#[inline(always)]
pub(super) fn fast_exp(x: f32) -> f32 {
    let xc = if x > -87.0 { x } else { -87.0 };
    let t = xc * core::f32::consts::LOG2_E;
    let n = (t - 0.5) as i32; // round to nearest for t ≤ 0
    let nf = n as f32;
    let r = xc - nf * 0.693_359_4 + nf * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    if x > -87.0 { y * scale } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    /// The uniform of element `index` under `key`, from the state's definition.
    fn uniform(key: u64, index: u64) -> f32 {
        uniform_of_state(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)))
    }

    #[test]
    fn fast_ln_is_within_two_ulp_of_the_correctly_rounded_log() {
        // Every 997th positive normal f32, across the whole range.
        let mut worst = 0;
        let mut bits = f32::MIN_POSITIVE.to_bits();
        while bits < f32::MAX.to_bits() {
            let x = f32::from_bits(bits);
            let exact = (x as f64).ln() as f32;
            let error = if exact.abs() < 1e-6 {
                ((fast_ln(x) - exact).abs() / f32::EPSILON * 1e6) as i64 // near 1: absolute
            } else {
                ulps(fast_ln(x), exact)
            };
            worst = worst.max(error);
            bits += 997;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
    }

    #[test]
    fn fast_exp_is_within_two_ulp_on_its_domain() {
        let mut worst = 0;
        for i in 0..2_000_000 {
            let x = -87.0 * i as f32 / 2_000_000.0;
            worst = worst.max(ulps(fast_exp(x), (x as f64).exp() as f32));
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(fast_exp(0.0), 1.0);
        assert_eq!(fast_exp(-88.0), 0.0);
        assert_eq!(fast_exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn stepping_the_state_gives_the_uniform_of_each_index() {
        let key: u64 = 0x0123_4567_89AB_CDEF;
        let first = u64::MAX - 5; // the counter wraps around
        let mut state = key.wrapping_add(first.wrapping_add(1).wrapping_mul(GAMMA));
        for j in 0..12 {
            let u = uniform_of_state(state);
            assert_eq!(
                u.to_bits(),
                uniform(key, first.wrapping_add(j)).to_bits(),
                "j = {j}"
            );
            state = state.wrapping_add(GAMMA);
        }
    }

    #[test]
    fn uniforms_are_in_the_open_interval_and_uniform() {
        // 1M draws: mean 1/2 and variance 1/12 within 5 standard errors; no 0, no 1.
        let n = 1_000_000u64;
        let (mut sum, mut sum2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let u = uniform(0xDEAD_BEEF, i) as f64;
            assert!(u > 0.0 && u < 1.0);
            sum += u;
            sum2 += u * u;
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        // SE of the mean: sqrt(1/12 / n) ≈ 2.9e-4; of the variance: sqrt(1/180 / n) ≈ 7.5e-5.
        assert!((mean - 0.5).abs() < 5.0 * 2.9e-4, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 5.0 * 7.5e-5, "variance {var}");
        // Neighbouring counters are not correlated: lag-1 correlation within 5 SE (1e-3).
        let mut cov = 0.0f64;
        for i in 0..n {
            cov += (uniform(7, i) as f64 - 0.5) * (uniform(7, i + 1) as f64 - 0.5);
        }
        let corr = cov / n as f64 * 12.0;
        assert!(corr.abs() < 5.0e-3, "lag-1 correlation {corr}");
    }
}
