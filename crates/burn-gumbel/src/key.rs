//! [`Key`]: a name for one draw of randomness, from which independent keys are derived.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A generator key: names one draw of noise, so that a keyed sampler's result is a pure function
/// of (key, logits, arguments) — the same on flex, ndarray and wgpu, whatever the thread count
/// and whatever ran before on the device.
///
/// A key is 64 bits. Build one from a seed with [`Key::new`], and derive the keys of a run from
/// it rather than reusing it: [`fold_in`](Key::fold_in) mixes in a number (a step, an epoch, a
/// layer's index) and [`split`](Key::split) makes `n` keys at once. As in JAX (`jax.random`),
/// one key drawn twice gives the same noise twice: a training loop derives each step's key,
/// e.g. `seed.fold_in(step)`, so that a resumed run, or the run on another backend, draws what the
/// uninterrupted one drew.
///
/// The derivation is a 64-bit integer hash (`mix64`, the finalizer of Steele, Lea and Flood's
/// SplitMix64):
///
/// `fold_in(k, d) = mix64(mix64(k) ⊕ (d · φ + 1))`,
/// `split(k, n)[i] = mix64(mix64(mix64(k) ⊕ σ) ⊕ (i · φ + 1))`,
///
/// with `φ = 0x9E37_79B9_7F4A_7C15` and `σ` a constant that separates the two derivations (as
/// JAX's `split` and `fold_in` are two derivations). For one key, distinct `d` give distinct keys
/// (each step is a bijection of 64 bits), and neighbouring `d` give unrelated ones; likewise
/// distinct `i`. A program that folds in its steps and splits for its layers does not draw the
/// same noise twice: `split(k, n)[i]` equals `fold_in(k, d)` for exactly one `d`, a pseudo-random
/// 64-bit value, so `m` steps meet it with probability `m / 2^64`.
///
/// # Example
/// ```
/// use burn_gumbel::Key;
///
/// let seed = Key::new(42);
/// // One key per training step: step 7's key is the same in every run of seed 42.
/// let step = seed.fold_in(7);
/// assert_eq!(step, Key::new(42).fold_in(7));
/// assert_ne!(step, seed.fold_in(8));
/// // Two keys for two layers of the same step.
/// let [encoder, decoder] = step.split();
/// assert_ne!(encoder, decoder);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key(u64);

/// The odd multiplier of [`Key::fold_in`]: `2^64 / φ`, φ the golden ratio.
const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

/// The constant that makes [`Key::split`] a derivation of its own: the first 64 bits of the
/// fractional part of `√2` (any constant would do; this one hides nothing).
const SPLIT: u64 = 0x6A09_E667_F3BC_C908;

impl Key {
    /// The key of `seed`.
    pub const fn new(seed: u64) -> Self {
        Key(seed)
    }

    /// The key's 64 bits: what the kernels hash with each element's index (`Key::new(k.bits())
    /// == k`).
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The key derived from this one and `data`: `mix64(mix64(self) ⊕ (data · φ + 1))`.
    ///
    /// Distinct `data` give distinct keys, and so do distinct `self` for one `data`.
    pub const fn fold_in(self, data: u64) -> Key {
        Key(mix64(
            mix64(self.0) ^ data.wrapping_mul(PHI).wrapping_add(1),
        ))
    }

    /// `N` keys derived from this one: key `i` is `mix64(mix64(mix64(self) ⊕ σ) ⊕ (i · φ + 1))`,
    /// a derivation separate from [`fold_in`](Key::fold_in) (see the type's docs), so that
    /// `k.split::<N>()[i]` and `k.fold_in(i)` are unrelated keys.
    pub fn split<const N: usize>(self) -> [Key; N] {
        let base = Key(mix64(self.0) ^ SPLIT);
        core::array::from_fn(|i| base.fold_in(i as u64))
    }
}

impl From<u64> for Key {
    fn from(seed: u64) -> Self {
        Key::new(seed)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// SplitMix64's finalizer: a bijection of `u64` whose every output bit depends on every input
/// bit.
const fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn derived_keys_are_distinct() {
        // 100,000 steps of one seed, and the same steps of its neighbour: no key twice.
        let mut seen = HashSet::new();
        for seed in [Key::new(0), Key::new(1)] {
            for step in 0..100_000 {
                assert!(seen.insert(seed.fold_in(step)), "{seed}, step {step}");
            }
        }
        assert!(!seen.contains(&Key::new(0)));
    }

    #[test]
    fn derived_keys_look_independent() {
        // Each of the 64 bits of fold_in(k, step) over 100,000 steps is set half the time within
        // 5 standard errors (0.5 / sqrt(n) = 1.6e-3), and so is each bit of the xor of the keys
        // of neighbouring steps (a derivation that only offset its input would fail that).
        let n = 100_000u64;
        let key = Key::new(7);
        let bound = 5.0 * 0.5 / (n as f64).sqrt();
        let mut ones = [[0u64; 64]; 2];
        for step in 0..n {
            let (a, b) = (key.fold_in(step).bits(), key.fold_in(step + 1).bits());
            let [alone, xor] = &mut ones;
            for (bit, (alone, xor)) in alone.iter_mut().zip(xor.iter_mut()).enumerate() {
                *alone += (a >> bit) & 1;
                *xor += ((a ^ b) >> bit) & 1;
            }
        }
        for (which, ones) in ones.iter().enumerate() {
            for (bit, &count) in ones.iter().enumerate() {
                let p = count as f64 / n as f64;
                assert!((p - 0.5).abs() < bound, "series {which}, bit {bit}: {p}");
            }
        }
    }

    #[test]
    fn split_keys_are_not_folded_keys() {
        // A loop that folds in 100,000 steps and splits each key and the seed into 16: every key
        // is distinct, so no two draws share noise (`split` was once `fold_in` of the index).
        let seed = Key::new(3);
        let mut seen: HashSet<Key> = seed.split::<16>().into_iter().collect();
        assert_eq!(seen.len(), 16);
        for step in 0..100_000 {
            let folded = seed.fold_in(step);
            assert!(seen.insert(folded), "fold_in({step}) is a split key");
            for (i, layer) in folded.split::<16>().into_iter().enumerate() {
                assert!(seen.insert(layer), "step {step}, layer {i}");
            }
        }
        // The formula of the docs.
        let expected = mix64(mix64(mix64(seed.0) ^ SPLIT) ^ 2u64.wrapping_mul(PHI).wrapping_add(1));
        assert_eq!(seed.split::<3>()[2].bits(), expected);
        assert_eq!(Key::from(5).bits(), 5);
        assert_eq!(Key::new(255).to_string(), "0x00000000000000ff");
    }
}
