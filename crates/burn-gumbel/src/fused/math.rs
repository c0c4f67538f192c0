//! Scalar arithmetic of the fused kernel: branch-free `ln` and `exp` that the compiler
//! vectorizes (the uniforms are [`crate::counter`]'s). Every function is `#[inline(always)]`, so
//! that it is compiled inside each instruction-set variant of the kernels.

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
}
