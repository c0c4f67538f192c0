//! The noise room: the public noise functions (standard Gumbel and logistic, fresh or keyed), and
//! the one place that decides the noise of every sampler — [`Noise`] says where a call's noise
//! comes from (fresh from the device, under a key, or given), and its methods draw it for the
//! tensor-op paths ([`Noise::gumbel`]), for Gumbel-Rao's conditional draws
//! ([`Noise::conditional_exponentials`]), as the key of a kernel ([`kernel_key`] on flex,
//! [`device_key_words`] on wgpu), and for the token sampler, per row key and token id
//! ([`token_gumbel`], [`token_block_gumbel`]).
//!
//! What one [`Device::seed`] gives, per backend: every sampler's fresh noise comes from the
//! device's one generator, Burn's. On flex the fused kernel draws a key from it (three uniforms)
//! and hashes each element's index under that key; the tensor-op paths there (gumbel-max,
//! top-k, relaxed k-hot, `rsample_log` and a tensor temperature's `rsample`, ReinMax, the
//! relaxed Bernoulli) draw Burn's uniforms. On wgpu every Gumbel sampler, kernel or tensor ops,
//! draws the GPU kernel's counter-based noise under a key drawn from the device's generator and
//! kept on the device; the relaxed Bernoulli's logistic noise and Gumbel-Rao's conditional draws
//! on the tensor-op path are Burn's uniforms. On ndarray every sampler draws Burn's uniforms.
//! A key gives the same noise on every backend, whatever the path.

use burn::tensor::{Device, Distribution, Shape, Tensor};

use crate::key::Key;
use crate::ops::{to_f32, to_rows};

/// Where the Gumbel noise of a call comes from.
pub(crate) enum Noise<const D: usize> {
    /// Drawn from the device's generator (`Device::seed` fixes it, on that backend).
    Fresh,
    /// The counter-based generator under a key: the same noise on every device.
    Keyed(Key),
    /// Given by the caller, the shape of the logits (any dtype; computed in f32 with them).
    Given(Box<Tensor<D>>),
}

impl<const D: usize> Noise<D> {
    /// Noise under `key`, or fresh without one.
    pub(crate) fn of_key(key: Option<Key>) -> Self {
        match key {
            Some(key) => Noise::Keyed(key),
            None => Noise::Fresh,
        }
    }

    /// The key of keyed noise.
    pub(crate) fn key(&self) -> Option<Key> {
        match self {
            Noise::Keyed(key) => Some(*key),
            _ => None,
        }
    }

    /// The Gumbel noise of `logits` (categories along `dim`) for a tensor-op path, in f32:
    /// - given, as given (widened to f32);
    /// - under a key, the counter-based noise of the fused kernels (on wgpu computed by the GPU
    ///   kernel, elsewhere on the host), the same on every device;
    /// - fresh, on wgpu (cube) devices the GPU kernel's noise under a key from the device's
    ///   generator, so that every path on such a device, kernel or tensor ops, draws from the one
    ///   generator; on every other device [`gumbel_noise`].
    pub(crate) fn gumbel(self, logits: &Tensor<D>, dim: usize) -> Tensor<D> {
        if let Noise::Given(noise) = self {
            return to_f32(*noise);
        }
        let key = self.key();
        #[cfg(feature = "wgpu")]
        if crate::cube::applies(logits) {
            let key = device_key_words(key, &logits.device());
            return crate::cube::gumbel_noise(logits, key, dim);
        }
        match key {
            Some(key) => crate::counter::gumbel_noise_with_key(
                &logits.shape(),
                dim,
                key.bits(),
                &logits.device(),
            ),
            None => gumbel_noise::<D>(logits.shape(), &logits.device()),
        }
    }

    /// The exponential noise of Gumbel-Rao's `samples` conditional draws for logits of `shape`
    /// (categories along `dim`), as `[samples, rows, n]` rows of categories: under a key, the
    /// fused kernel's draws (the same on every device); fresh, Burn's uniforms of the device's
    /// generator. Given noise names the sample's noise only: its conditional draws are fresh.
    pub(crate) fn conditional_exponentials(
        &self,
        shape: &Shape,
        dim: usize,
        samples: usize,
        device: &Device,
    ) -> Tensor<3> {
        match self.key() {
            Some(key) => {
                let draws = crate::counter::exponential_noise_with_key::<D>(
                    shape,
                    dim,
                    key.bits(),
                    samples,
                    device,
                );
                let rows: Vec<Tensor<2>> = draws.into_iter().map(|e| to_rows(e, dim)).collect();
                Tensor::stack(rows, 0)
            }
            None => {
                let [rows, n] = [shape.num_elements() / shape[dim], shape[dim]];
                exponential_noise::<3>([samples, rows, n], device)
            }
        }
    }
}

/// The key the flex kernel hashes the elements' indices under: the caller's, or without one a
/// key drawn from the device's generator (so that seeding the device fixes it), read back to the
/// host: 24 random bits from each of two uniforms and 16 from a third.
#[cfg(feature = "flex")]
pub(crate) fn kernel_key(key: Option<Key>, device: &Device) -> u64 {
    if let Some(key) = key {
        return key.bits();
    }
    let bits = Tensor::<1>::random([3], Distribution::Default, device)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 uniforms");
    ((bits[0] * 16_777_216.0) as u64) << 40
        | ((bits[1] * 16_777_216.0) as u64) << 16
        | (bits[2] * 65_536.0) as u64
}

/// The key the wgpu kernel hashes the elements' indices under, on `device` as the kernel reads it:
/// four 16-bit pieces (i32), low first. The caller's key, or without one a key drawn by the
/// device's generator and kept there (seeding the device fixes it; no read back to the host).
#[cfg(feature = "wgpu")]
pub(crate) fn device_key_words(key: Option<Key>, device: &Device) -> Tensor<1, burn::tensor::Int> {
    use burn::tensor::{Int, IntDType, TensorData};
    match key {
        Some(key) => {
            let key = key.bits();
            let pieces: Vec<i32> = (0..4).map(|k| (key >> (16 * k)) as i32 & 0xFFFF).collect();
            Tensor::<1, Int>::from_data(TensorData::new(pieces, [4]), device).cast(IntDType::I32)
        }
        None => Tensor::<1, Int>::random([4], Distribution::Uniform(0.0, 65_536.0), device)
            .cast(IntDType::I32),
    }
}

/// The Gumbel noise of token `token` in a row that the token sampler draws under `key`:
/// `g = −ln(−ln u)` with `u` the counter-based uniform of counter `token` under `key`
/// ([`crate::counter::uniform`]), both logarithms the host kernels' f32 `ln`
/// ([`crate::math::fast_ln`]).
///
/// A function of (row key, token id) alone, computed with correctly rounded f32 operations only:
/// the same bits on every processor, whatever the row's place in its batch, the batch size or
/// the thread count. `u ∈ [2^-24, 1 − 2^-24]`, so `g ∈ [−2.81, 16.64]`.
#[inline(always)]
pub(crate) fn token_gumbel(key: Key, token: u32) -> f32 {
    host_gumbel(key, token as u64)
}

/// The Gumbel noise of block `block` (tokens `[256·block, 256·(block + 1))`) in the token
/// sampler's two-level draw under `key`: [`token_gumbel`]'s formula at counter `2^32 + block`,
/// which no token id reaches, so that a block's noise and its tokens' are independent.
#[inline(always)]
pub(crate) fn token_block_gumbel(key: Key, block: u32) -> f32 {
    host_gumbel(key, (1u64 << 32) | block as u64)
}

/// `−ln(−ln u)` of the counter-based uniform of `counter` under `key`, with the host kernels'
/// f32 `ln`: the token sampler's noise formula, shared by its tokens and its blocks.
#[inline(always)]
fn host_gumbel(key: Key, counter: u64) -> f32 {
    let u = crate::counter::uniform(key.bits(), counter);
    -crate::math::fast_ln(-crate::math::fast_ln(u))
}

/// Smallest value of `-ln u` for `u` in `[0, 1)` below 1 at f32 precision: `-ln(1 - 2^-24) ≈ 2^-24`.
///
/// Clamping `e = -ln u` from below to this value is the same as drawing `u ≤ 1 - 2^-24`, and it
/// also protects against GPU `ln` approximations that round `ln(1 - 2^-24)` to 0.
const EXP_MIN: f32 = 5.960_464_5e-8;

/// Largest value of `-ln u` for a normal f32 `u > 0`: `-ln(2^-126) ≈ 87.34`.
const EXP_MAX: f32 = 87.336_55;

/// Draws i.i.d. standard Gumbel noise, Gumbel(0, 1).
///
/// `g = -ln(-ln u)` with `u ~ Uniform(0, 1)` drawn from the **open** interval: `u` is kept in
/// `[2^-126, 1 - 2^-24]`, the smallest normal and the largest f32 below 1. The noise is therefore
/// always finite, in `[-ln(87.34), -ln(2^-24)] ≈ [-4.47, 16.64]`; the truncated tails hold a
/// probability below `1e-7` in all.
///
/// Its law has the CDF `F(x) = exp(-exp(-x))`, mean `γ ≈ 0.5772` (Euler–Mascheroni) and variance
/// `π²/6`. The device's random generator is used, so [`Device::seed`] makes draws reproducible.
///
/// # Shapes
/// - output: `shape`
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// device.seed(0);
/// let g: Tensor<2> = gumbel_noise([4, 3], &device);
/// assert_eq!(g.dims(), [4, 3]);
/// assert!(!g.is_nan().any().into_scalar::<bool>());
/// ```
pub fn gumbel_noise<const D: usize>(shape: impl Into<Shape>, device: &Device) -> Tensor<D> {
    from_uniform(Tensor::<D>::random(shape, Distribution::Default, device))
}

/// [`gumbel_noise`] under a [`Key`]: `g_i = −ln(−ln u_i)` with `u_i` the counter-based uniform of
/// element `i` (in row-major order) under `key`, the generator of the fused kernels and of
/// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key) (whose noise this is for logits
/// of `shape` sampled along their last axis). Computed on the host in f64 and rounded to f32:
/// the same values on every device. Its uniforms lie in `[2^-24, 1 − 2^-24]`, so
/// `g ∈ [−2.81, 16.64]`.
///
/// # Shapes
/// - output: `shape`
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, gumbel_noise_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let a: Tensor<2> = gumbel_noise_with_key([4, 3], Key::new(1), &device);
/// let b: Tensor<2> = gumbel_noise_with_key([4, 3], Key::new(1), &device);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn gumbel_noise_with_key<const D: usize>(
    shape: impl Into<Shape>,
    key: Key,
    device: &Device,
) -> Tensor<D> {
    crate::counter::gumbel_noise_with_key(&shape.into(), D - 1, key.bits(), device)
}

/// [`logistic_noise`] under a [`Key`]: `L_i = ln u_i − ln(1 − u_i)` with `u_i` the counter-based
/// uniform of element `i` (in row-major order) under `key`, computed on the host in f64 and
/// rounded to f32: the same values on every device, in `[−16.64, 16.64]`.
///
/// # Shapes
/// - output: `shape`
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, logistic_noise_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let l: Tensor<1> = logistic_noise_with_key([1000], Key::new(2), &device);
/// assert!(l.abs().max().into_scalar::<f32>() < 16.7);
/// ```
pub fn logistic_noise_with_key<const D: usize>(
    shape: impl Into<Shape>,
    key: Key,
    device: &Device,
) -> Tensor<D> {
    crate::counter::logistic_noise_with_key(&shape.into(), key.bits(), device)
}

/// Largest f32 below 1: `1 - 2^-24`.
const U_MAX: f32 = 1.0 - f32::EPSILON / 2.0;

/// Draws i.i.d. standard logistic noise, Logistic(0, 1).
///
/// `L = ln u − ln(1 − u)` with `u ~ Uniform(0, 1)` kept in the open interval
/// `[2^-126, 1 - 2^-24]`, so `L` is finite, in `[-87.34, 16.64]`. `L` is the difference of two
/// independent Gumbel(0, 1) variables; its CDF is `sigmoid(x)`, its mean 0 and its variance `π²/3`.
///
/// # Shapes
/// - output: `shape`
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::logistic_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let l: Tensor<1> = logistic_noise([1000], &device);
/// assert!(!l.is_nan().any().into_scalar::<bool>());
/// ```
pub fn logistic_noise<const D: usize>(shape: impl Into<Shape>, device: &Device) -> Tensor<D> {
    let u =
        Tensor::<D>::random(shape, Distribution::Default, device).clamp(f32::MIN_POSITIVE, U_MAX);
    u.clone().log() - u.neg().log1p()
}

/// Draws i.i.d. standard exponential noise, Exp(1): `e = -ln u`, clamped to `[2^-24, 87.34]` as
/// [`gumbel_noise`] does (the law of `u` kept in `[2^-126, 1 - 2^-24]`), so `e > 0` and `ln e` is
/// finite.
fn exponential_noise<const D: usize>(shape: impl Into<Shape>, device: &Device) -> Tensor<D> {
    exponential_from_uniform(Tensor::<D>::random(shape, Distribution::Default, device))
}

/// `-ln u` for `u` in `[0, 1]`, as if `u` were clamped to `[2^-126, 1 - 2^-24]`.
fn exponential_from_uniform<const D: usize>(u: Tensor<D>) -> Tensor<D> {
    u.log().neg().clamp(EXP_MIN, EXP_MAX)
}

/// `-ln(-ln u)` for `u` in `[0, 1]`, as if `u` were clamped to `[2^-126, 1 - 2^-24]`.
fn from_uniform<const D: usize>(u: Tensor<D>) -> Tensor<D> {
    // e = -ln u ~ Exp(1), clamped so that u stays in the open interval (see EXP_MIN, EXP_MAX).
    exponential_from_uniform(u).log().neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_those_of_the_open_interval() {
        // -ln(1 - 2^-24) and -ln(2^-126), computed in f64.
        let e_min = -(1.0f64 - 2f64.powi(-24)).ln();
        let e_max = -(2f64.powi(-126)).ln();
        assert!(((EXP_MIN as f64) - e_min).abs() / e_min < 1e-6);
        assert!(((EXP_MAX as f64) - e_max).abs() / e_max < 1e-6);
    }

    #[test]
    fn endpoints_of_the_closed_interval_give_finite_noise() {
        let device = Device::default();
        let u = Tensor::<1>::from_floats(
            [0.0, f32::MIN_POSITIVE, 0.5, 1.0 - f32::EPSILON / 2.0, 1.0],
            &device,
        );
        let g = from_uniform(u)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        // -ln(-ln u) at 2^-126 (and 0, clamped to it) and at 0.5, computed in f64.
        for (g, e) in g[..3].iter().zip([-4.469_769, -4.469_769, 0.366_513]) {
            assert!((g - e).abs() < 1e-3, "{g} vs {e}");
        }
        // At 1 - 2^-24 (and 1, clamped to it) the exact value is 16.6355. A GPU `ln` may be off by
        // 2^-21 in absolute terms near 1 (Vulkan's precision rule), which moves -ln u within
        // [2^-24, 5.4e-7] after the clamp: g must be finite and in [14.4, 16.64].
        for g in &g[3..] {
            assert!((14.4..=16.64).contains(g), "{g}");
        }
    }

    #[test]
    fn noise_has_the_requested_shape_and_is_finite() {
        let device = Device::default();
        device.seed(1);
        let g: Tensor<3> = gumbel_noise([2, 5, 7], &device);
        assert_eq!(g.dims(), [2, 5, 7]);
        let values = g.into_data().try_into_vec_as::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn token_noise_is_bounded_by_its_maximum() {
        // The extreme uniforms, 2^-24 and 1 − 2^-24, through the token noise's formula, and 1M
        // draws: every value finite, in [−2.82, 16.64], and the block noise too.
        for u in [2f32.powi(-24), 1.0 - 2f32.powi(-24)] {
            let g = -crate::math::fast_ln(-crate::math::fast_ln(u));
            assert!((-2.82..=16.64).contains(&g), "u = {u}: g = {g}");
        }
        // Its law: mean γ (Euler–Mascheroni) and variance π²/6 within 5 standard errors
        // (sqrt(π²/6 / n) = 1.28e-3 for the mean; sqrt((μ₄ − σ⁴) / n) ≈ 3.5e-3 for the variance,
        // μ₄ = 5.4·σ⁴ for Gumbel's excess kurtosis 2.4).
        let (key, n) = (Key::new(3), 1_000_000u32);
        let variance = core::f64::consts::PI.powi(2) / 6.0;
        let se_var = ((5.4 - 1.0) * variance * variance / n as f64).sqrt();
        for (name, noise) in [
            ("token", token_gumbel as fn(Key, u32) -> f32),
            ("block", token_block_gumbel),
        ] {
            let (mut sum, mut sum2) = (0.0f64, 0.0f64);
            for i in 0..n {
                let g = noise(key, i);
                assert!((-2.82..=16.64).contains(&g), "{name} {i}: g = {g}");
                sum += g as f64;
                sum2 += (g as f64) * (g as f64);
            }
            let mean = sum / n as f64;
            let var = sum2 / n as f64 - mean * mean;
            assert!(
                (mean - 0.577_215_66).abs() < 5.0 * 1.28e-3,
                "{name}: mean {mean}"
            );
            assert!(
                (var - variance).abs() < 5.0 * se_var,
                "{name}: variance {var}"
            );
        }
        // Block b's noise is not token b's: their correlation over 1M pairs within 5 SE (5e-3).
        let covariance = (0..n)
            .map(|i| {
                (token_gumbel(key, i) as f64 - 0.5772)
                    * (token_block_gumbel(key, i) as f64 - 0.5772)
            })
            .sum::<f64>()
            / n as f64;
        assert!(
            (covariance / variance).abs() < 5e-3,
            "correlation {}",
            covariance / variance
        );
    }
}
