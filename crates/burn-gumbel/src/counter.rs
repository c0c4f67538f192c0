//! The counter-based generator of the fused kernels: the uniform of a tensor's element is a hash
//! of its index under a key. The key is given ([`crate::gumbel_softmax_with_key`]) or drawn from
//! the device's generator (so `Device::seed` fixes it on that device).
//!
//! It uses 32-bit integer arithmetic only, so that the CPU kernel (`fused/`) and the GPU kernel
//! (`cube/`, where WGSL has no 64-bit integers) compute the same bits: one *key* gives the same
//! noise, hence the same hard samples, on flex and on wgpu. One *seed* does not: each backend's
//! generator draws the key its own way, so a seeded device gives a reproducible key on that
//! backend only; only an explicit key is portable.

use burn::tensor::{Device, Shape, Tensor, TensorData};

/// The golden ratio's 32-bit multiplier, which spreads the high word of a counter over the key.
const PHI: u32 = 0x9E37_79B9;

/// One round of a 32-bit integer hash: xor-shift, multiply, xor-shift, multiply, xor-shift
/// (constants from C. Wellons' hash-prospector, "lowbias32"). A bijection of `u32` that maps 0 to
/// 0; one flipped input bit flips each output bit about half the time (tested below).
#[inline(always)]
pub(crate) fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// The two 32-bit words a key enters the hash as: `k₁` its low half, and
/// `k₂ = mix32(hi ⊕ mix32(lo ⊕ φ))`, so that keys that differ anywhere differ in the second round.
///
/// `k₂` is hashed, not `hi ⊕ mix32(lo)`: with that, the first round's `mix32(0 ⊕ k₁)` cancelled
/// it at counter 0, whose uniform was then the same for every key of one high half (`2^-24`,
/// the smallest, for every key below 2^32). Now the counter where the rounds cancel is a
/// pseudo-random function of the whole key.
#[inline(always)]
pub(crate) fn key_words(key: u64) -> (u32, u32) {
    let (lo, hi) = (key as u32, (key >> 32) as u32);
    (lo, mix32(hi ^ mix32(lo ^ PHI)))
}

/// The uniform in the open interval `(0, 1)` of element `counter` under `key`, with
/// `(k₁, k₂) =` [`key_words`]`(key)`:
///
/// `h = mix32(mix32(c_lo ⊕ k₁) ⊕ k₂ ⊕ φ·c_hi)`, then the top 23 bits of `h`, centred in their
/// cell, so `u ∈ [2^-24, 1 − 2^-24]` exactly in f32.
///
/// Two rounds of the hash with the key between them: under one key, counters below 2^32 map one
/// to one onto hash values, and another key gives an unrelated sequence, not a shifted or
/// permuted one. The high word of the counter (0 for every tensor under 2^32 elements, the only
/// ones the GPU kernel takes) enters through the second round's key.
#[inline(always)]
pub(crate) fn uniform(key: u64, counter: u64) -> f32 {
    let (k1, k2) = key_words(key);
    let hi = k2 ^ ((counter >> 32) as u32).wrapping_mul(PHI);
    let h = mix32(mix32(counter as u32 ^ k1) ^ hi);
    // Through i32 (exact below 2^24): vector u32 → f32 conversions need AVX-512.
    ((h >> 9) as i32 as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// The Gumbel noise `−ln(−ln u)` of every element of a tensor of `shape` under `key`, with the
/// categories along `dim`, computed on the host in f64 and rounded to f32: the noise of the fused
/// kernels, for backends without one.
pub(crate) fn gumbel_noise_with_key<const D: usize>(
    shape: &Shape,
    dim: usize,
    key: u64,
    device: &Device,
) -> Tensor<D> {
    let noise = on_host(shape, dim, key, 0, |u| -(-u.ln()).ln());
    Tensor::from_data(TensorData::new(noise, shape.clone()), device)
}

/// The logistic noise `ln u − ln(1 − u)` of every element of a tensor of `shape` under `key`
/// (element `i` in row-major order has the counter `i`), computed on the host in f64 and rounded
/// to f32.
pub(crate) fn logistic_noise_with_key<const D: usize>(
    shape: &Shape,
    key: u64,
    device: &Device,
) -> Tensor<D> {
    let noise = on_host(shape, D - 1, key, 0, |u| u.ln() - (1.0 - u).ln());
    Tensor::from_data(TensorData::new(noise, shape.clone()), device)
}

/// The exponential noise `−ln u` of the `samples` conditional draws of Gumbel-Rao's backward
/// pass for logits of `shape` (categories along `dim`) under `key`, as the fused kernel draws it
/// (draw `s` of element `e` has the counter `(s + 1) · total + e`), computed on the host in f64
/// and rounded to f32: one tensor of `shape` per draw.
pub(crate) fn exponential_noise_with_key<const D: usize>(
    shape: &Shape,
    dim: usize,
    key: u64,
    samples: usize,
    device: &Device,
) -> Vec<Tensor<D>> {
    let total = shape.num_elements() as u64;
    (1..=samples as u64)
        .map(|s| {
            let noise = on_host(shape, dim, key, s.wrapping_mul(total), |u| -u.ln());
            Tensor::from_data(TensorData::new(noise, shape.clone()), device)
        })
        .collect()
}

/// `f(u)` of the counter-based uniform of every element of a tensor of `shape` under `key`, with
/// the categories along `dim` (element `(o, j, i)` of the `[outer, n, inner]` view is row
/// `o·inner + i`'s category `j`, counter `offset + (o·inner + i)·n + j`), in f64 rounded to f32.
fn on_host(shape: &Shape, dim: usize, key: u64, offset: u64, f: impl Fn(f64) -> f64) -> Vec<f32> {
    let n = shape[dim];
    let inner: usize = shape.iter().skip(dim + 1).product();
    let total = shape.num_elements();
    let mut noise = vec![0.0f32; total];
    for (e, g) in noise.iter_mut().enumerate() {
        let (o, j, i) = (e / (n * inner), e / inner % n, e % inner);
        let counter = offset.wrapping_add(((o * inner + i) * n + j) as u64);
        *g = f(uniform(key, counter) as f64) as f32;
    }
    noise
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The Pearson correlation of `a(i)` and `b(i)` over `n` counters, for uniforms.
    fn correlation(n: u64, a: impl Fn(u64) -> f32, b: impl Fn(u64) -> f32) -> f64 {
        let mut cov = 0.0f64;
        for i in 0..n {
            cov += (a(i) as f64 - 0.5) * (b(i) as f64 - 0.5);
        }
        cov / n as f64 * 12.0
    }

    #[test]
    fn different_keys_and_high_counter_words_give_unrelated_sequences() {
        // Correlations over 200k counters, each within 5 standard errors (1/sqrt(n) = 2.2e-3):
        // keys one bit apart (every bit of both halves), consecutive keys with shifted counters
        // (a key that only offset the counter would give correlation 1), and counters 2^32 apart.
        let n = 200_000u64;
        let bound = 5.0 / (n as f64).sqrt();
        let key = 0x0123_4567_89AB_CDEFu64;
        for bit in 0..64 {
            let c = correlation(n, |i| uniform(key, i), |i| uniform(key ^ (1 << bit), i));
            assert!(c.abs() < bound, "key bit {bit}: correlation {c}");
        }
        for shift in [1u64, 2, 1000] {
            let c = correlation(n, |i| uniform(key, i + shift), |i| uniform(key + shift, i));
            assert!(c.abs() < bound, "key + {shift}: correlation {c}");
        }
        let c = correlation(n, |i| uniform(key, i), |i| uniform(key, i + (1 << 32)));
        assert!(c.abs() < bound, "high counter word: correlation {c}");
    }

    #[test]
    fn pairs_of_consecutive_uniforms_fill_the_square_evenly() {
        // 1M pairs (u_2i, u_2i+1) in a 32 × 32 grid: Pearson's chi-square with 1023 degrees of
        // freedom has mean 1023 and standard deviation sqrt(2046) ≈ 45; the bound is 5 of them.
        let (pairs, cells) = (1_000_000u64, 32usize);
        let mut counts = vec![0u64; cells * cells];
        for i in 0..pairs {
            let a = (uniform(99, 2 * i) * cells as f32) as usize;
            let b = (uniform(99, 2 * i + 1) * cells as f32) as usize;
            counts[a * cells + b] += 1;
        }
        let expected = pairs as f64 / (cells * cells) as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 1023.0 + 5.0 * 45.2, "chi-square {chi2}");
        // And each of the 23 bits a uniform keeps is set half the time, within 5 SE (5e-4).
        let n = 1_000_000u64;
        let mut ones = [0u64; 23];
        for i in 0..n {
            let bits = (uniform(5, i) * 8_388_608.0) as u32;
            for (b, ones) in ones.iter_mut().enumerate() {
                *ones += ((bits >> b) & 1) as u64;
            }
        }
        for (b, &ones) in ones.iter().enumerate() {
            let p = ones as f64 / n as f64;
            assert!(
                (p - 0.5).abs() < 5.0 * 0.5 / (n as f64).sqrt(),
                "bit {b}: {p}"
            );
        }
    }

    #[test]
    fn one_flipped_input_bit_flips_each_output_bit_about_half_the_time() {
        // The hash's avalanche: over 20k inputs, flipping input bit i flips output bit j with
        // probability 1/2 within 0.03 (8.5 standard errors of 0.0035: lowbias32's worst pair is
        // biased by about 0.01, which 5 SE would not cover) for all 32 × 32 pairs.
        let inputs = 20_000u32;
        let mut flips = [[0u32; 32]; 32];
        for k in 0..inputs {
            let x = mix32(k.wrapping_mul(0x2545_F491) ^ 0x5bd1_e995);
            let hx = mix32(x);
            for (i, row) in flips.iter_mut().enumerate() {
                let d = hx ^ mix32(x ^ (1 << i));
                for (j, f) in row.iter_mut().enumerate() {
                    *f += (d >> j) & 1;
                }
            }
        }
        for (i, row) in flips.iter().enumerate() {
            for (j, &f) in row.iter().enumerate() {
                let p = f as f64 / inputs as f64;
                assert!((p - 0.5).abs() < 0.03, "input bit {i}, output bit {j}: {p}");
            }
        }
        assert_eq!(mix32(0), 0);
    }

    #[test]
    fn one_counter_under_many_keys_is_uniform() {
        // Counters 0, 1 and 1000 under the keys 0..200k (small seeds: their high half is 0) and
        // under 200k keys of one high half: mean 1/2 within 5 standard errors (sqrt(1/12 / n) =
        // 6.5e-4), and no value repeated more than chance allows. A key schedule that cancelled
        // in the first round gave counter 0 the same uniform under every such key.
        let n = 200_000u64;
        for counter in [0u64, 1, 1000] {
            for high in [0u64, 0xABCD_0123 << 32] {
                let draws: Vec<f32> = (0..n).map(|k| uniform(high | k, counter)).collect();
                let mean = draws.iter().map(|&u| u as f64).sum::<f64>() / n as f64;
                assert!(
                    (mean - 0.5).abs() < 5.0 * 6.5e-4,
                    "counter {counter}, high {high:x}: mean {mean}"
                );
                let mut sorted = draws.clone();
                sorted.sort_by(f32::total_cmp);
                let longest = sorted
                    .chunk_by(|a, b| a == b)
                    .map(<[f32]>::len)
                    .max()
                    .unwrap();
                // 200k draws on 2^23 values: a value drawn 6 times has probability ~1e-9.
                assert!(longest < 6, "counter {counter}: one value {longest} times");
            }
        }
    }
}
