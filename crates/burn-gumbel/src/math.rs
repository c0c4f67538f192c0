//! Scalar arithmetic of the host kernels (the fused flex kernel and the token sampler):
//! branch-free `ln` and `exp` that the compiler vectorizes (the uniforms are
//! [`crate::counter`]'s). Only `+ − × ÷` and bit operations, each correctly rounded, so every
//! processor computes the same bits. Every function is `#[inline(always)]`, so that it is compiled
//! inside each instruction-set variant of the kernels.

/// `ln x` for normal `x > 0`, branch-free, within 1 ulp: FreeBSD's and musl's `logf`.
///
/// With `x = 2^k · m`, `m ∈ [√½, √2)` and `f = m − 1`, `ln m = 2 atanh s` for `s = f / (2 + f)`,
/// a degree-4 minimax polynomial in `s²` (|s| < 0.172); `ln 2` in two parts.
#[inline(always)]
pub(crate) fn fast_ln(x: f32) -> f32 {
    // The exponent of `x / √½` and the mantissa rescaled into [√½, √2).
    let bits = x.to_bits() + (0x3f80_0000 - 0x3f35_04f3);
    let k = (bits >> 23) as i32 - 0x7f;
    let f = f32::from_bits((bits & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let r = z * (0.666_666_6 + w * 0.284_987_87) + w * (0.400_009_72 + w * 0.242_790_79);
    let half_f2 = 0.5 * f * f;
    let k = k as f32;
    s * (half_f2 + r) + k * 9.058_001e-6 - half_f2 + f + k * 0.693_138_1
}

/// `exp x` for `x ≤ 0`, branch-free (Cephes' `expf` polynomial, within 2 ulp); exactly 0 below
/// −87 (and for −∞), where `exp` is under 2^-125.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    // Clamped to [−87, 0] (NaN to −87: comparisons with NaN are false), so that the conversion
    // below is a plain one the compiler vectorizes, not a saturating one per lane.
    let xc = if x > -87.0 { x } else { -87.0 };
    let xc = if xc < 0.0 { xc } else { 0.0 };
    let t = xc * core::f32::consts::LOG2_E;
    // SAFETY: `t − 0.5` is finite and in [−126.1, −0.5] (xc is in [−87, 0]), inside i32's range.
    // Round to nearest for t ≤ 0.
    let n: i32 = unsafe { (t - 0.5).to_int_unchecked() };
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

    #[test]
    fn fast_ln_is_within_one_ulp_of_the_correctly_rounded_log() {
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
        assert!(worst <= 1, "worst error {worst} ulp");
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
}
