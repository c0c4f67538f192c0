//! Scalar arithmetic of the CubeCL kernels: the counter-based generator of
//! [`crate::counter`] (the hash, the key words) and the CPU kernel's `ln` and `exp` polynomials
//! (`math.rs`), so that one key gives the CPU's noise. All in f32 and u32.

use burn_cubecl::cubecl;
use cubecl::prelude::*;

/// One round of the 32-bit hash, [`crate::counter::mix32`].
#[cube]
fn mix32(x: u32) -> u32 {
    let mut x = x;
    x ^= x >> 16u32;
    x *= 0x7FEB_352Du32;
    x ^= x >> 15u32;
    x *= 0x846C_A68Bu32;
    x ^ (x >> 16u32)
}

/// The uniform of element `counter` under the key words `k1`, `k2` ([`key_words`]):
/// [`crate::counter::uniform`] for counters below 2^32.
#[cube]
fn uniform(k1: u32, k2: u32, counter: u32) -> f32 {
    let h = mix32(mix32(counter ^ k1) ^ k2);
    (f32::cast_from(h >> 9u32) + 0.5f32) * (1.0f32 / 8_388_608.0f32)
}

/// The two words of a generator key as the hash takes them ([`crate::counter::key_words`]).
#[derive(CubeType, Clone, Copy)]
pub(super) struct KeyWords {
    pub(super) k1: u32,
    pub(super) k2: u32,
}

/// The key words of a key held on the device as four 16-bit pieces, low first (so that drawing
/// it, or uploading a given one, needs no read back to the host).
#[cube]
pub(super) fn key_words(key: &Tensor<i32>) -> KeyWords {
    let lo = u32::cast_from(key[0]) | (u32::cast_from(key[1]) << 16u32);
    let hi = u32::cast_from(key[2]) | (u32::cast_from(key[3]) << 16u32);
    KeyWords {
        k1: lo,
        k2: mix32(hi ^ mix32(lo ^ 0x9E37_79B9u32)),
    }
}

/// `ln x` for normal `x > 0`: the CPU kernel's `fast_ln` (FreeBSD's `logf`), in its order.
#[cube]
pub(super) fn fast_ln(x: f32) -> f32 {
    // The exponent of `x / √½` and the mantissa rescaled into [√½, √2).
    let bits = u32::reinterpret(x) + (0x3F80_0000u32 - 0x3F35_04F3u32);
    let k = f32::cast_from(i32::cast_from(bits >> 23u32) - 0x7Fi32);
    let f = f32::reinterpret((bits & 0x007F_FFFFu32) + 0x3F35_04F3u32) - 1.0f32;
    let s = f / (2.0f32 + f);
    let z = s * s;
    let w = z * z;
    let r =
        z * (0.666_666_6f32 + w * 0.284_987_87f32) + w * (0.400_009_72f32 + w * 0.242_790_79f32);
    let half_f2 = 0.5f32 * f * f;
    s * (half_f2 + r) + k * 9.058_001e-6f32 - half_f2 + f + k * 0.693_138_1f32
}

/// `exp x` for `x ≤ 0`, exactly 0 below −87: the CPU kernel's `fast_exp`.
#[cube]
pub(super) fn fast_exp(x: f32) -> f32 {
    let inside = x > -87.0f32;
    let xc = select(inside, x, -87.0f32);
    let t = xc * core::f32::consts::LOG2_E;
    let n = i32::cast_from(t - 0.5f32);
    let nf = f32::cast_from(n);
    let r = xc - nf * 0.693_359_4f32 + nf * 2.121_944_4e-4f32;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3f32;
    p = p * r + 8.333_452e-3f32;
    p = p * r + 4.166_579_6e-2f32;
    p = p * r + 1.666_666_5e-1f32;
    p = p * r + 5e-1f32;
    let y = p * r * r + r + 1.0f32;
    let scale = f32::reinterpret(u32::cast_from(n + 127i32) << 23u32);
    select(inside, y * scale, 0.0f32)
}

/// The Gumbel noise `−ln(−ln u)` of element `counter` under the key words `k1`, `k2`.
#[cube]
pub(super) fn gumbel(k1: u32, k2: u32, counter: u32) -> f32 {
    -fast_ln(-fast_ln(uniform(k1, k2, counter)))
}

/// The perturbed, scaled logit `(θ + g) / tau` of element `counter`.
#[cube]
fn perturbed(theta: f32, k1: u32, k2: u32, counter: u32, inv_tau: f32) -> f32 {
    (theta + gumbel(k1, k2, counter)) * inv_tau
}

/// The perturbed, scaled logits `(θ + g) / tau` of a vector `theta` of logits whose first
/// element has counter `first`, in f32.
#[cube]
pub(super) fn perturbed_vector<F: Float, W: Size>(
    theta: Vector<F, W>,
    first: usize,
    k1: u32,
    k2: u32,
    inv_tau: f32,
) -> Vector<f32, W> {
    let mut z = Vector::<f32, W>::empty();
    #[unroll]
    for c in 0..W::value() {
        let counter = (first + c) as u32;
        z.insert(
            c,
            perturbed(f32::cast_from(theta.extract(c)), k1, k2, counter, inv_tau),
        );
    }
    z
}
