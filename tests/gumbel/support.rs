//! Devices and helpers shared by the tests.

use burn::tensor::{Device, Tensor};

pub use burn_gumbel_support::rng_lock;

/// The enabled backends' devices, by name, CPU reference (flex) first.
pub fn devices() -> Vec<(&'static str, Device)> {
    let enabled = burn_gumbel_support::enabled_backends();
    ["flex", "ndarray", "wgpu"]
        .into_iter()
        .filter(|name| enabled.contains(name))
        .map(|name| (name, device(name)))
        .collect()
}

/// The device of the backend called `name`.
pub fn device(name: &str) -> Device {
    burn_gumbel_support::backend_device(name).unwrap_or_else(|error| panic!("{error}"))
}

/// Generates one `#[test]` per enabled backend for each function `fn name(device: &Device)`:
/// `name::flex`, `name::ndarray`, `name::wgpu` (after candle's `test_device!`).
///
/// `device_tests!(unlocked: ...)` generates them without the generator lock, for tests that draw
/// nothing from a device's generator (keyed or host-built inputs only), so that they run beside
/// the locked ones.
macro_rules! device_tests {
    (unlocked: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[cfg(feature = "flex")]
            #[test]
            fn flex() {
                super::$name(&$crate::support::device("flex"));
            }

            #[cfg(feature = "ndarray")]
            #[test]
            fn ndarray() {
                super::$name(&$crate::support::device("ndarray"));
            }

            #[cfg(feature = "wgpu")]
            #[test]
            fn wgpu() {
                super::$name(&$crate::support::device("wgpu"));
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[cfg(feature = "flex")]
            #[test]
            fn flex() {
                let _lock = $crate::support::rng_lock();
                super::$name(&$crate::support::device("flex"));
            }

            #[cfg(feature = "ndarray")]
            #[test]
            fn ndarray() {
                let _lock = $crate::support::rng_lock();
                super::$name(&$crate::support::device("ndarray"));
            }

            #[cfg(feature = "wgpu")]
            #[test]
            fn wgpu() {
                let _lock = $crate::support::rng_lock();
                super::$name(&$crate::support::device("wgpu"));
            }
        }
    )*};
}

/// The values of a float tensor, on the host.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec_as::<f32>().unwrap()
}

/// The values of an int tensor, on the host.
pub fn indices<const D: usize>(tensor: Tensor<D, burn::tensor::Int>) -> Vec<i64> {
    tensor.into_data().try_into_vec_as::<i64>().unwrap()
}

/// `n` numbers uniform in `[low, high)` from a deterministic host generator (a 64-bit LCG): the
/// same numbers on every backend and every run.
pub fn host_uniform(n: usize, seed: u64, low: f32, high: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32; // 24 random bits in [0, 1)
            low + (high - low) * u
        })
        .collect()
}

/// Standard Gumbel noise from the host generator: `-ln(-ln u)`, `u` in the open interval.
pub fn host_gumbel(n: usize, seed: u64) -> Vec<f32> {
    host_uniform(n, seed, 0.0, 1.0)
        .into_iter()
        .map(|u| {
            let u = u.clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0) as f64;
            -(-u.ln()).ln() as f32
        })
        .collect()
}

/// A `[rows, cols]` tensor from host values.
pub fn tensor2(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(burn::tensor::TensorData::new(values, [rows, cols]), device)
}

/// The sample mean, the unbiased sample variance and the standard error of the mean.
#[derive(Clone, Copy, Debug)]
pub struct Moments {
    /// `Σ x / n`.
    pub mean: f64,
    /// `Σ (x − mean)² / (n − 1)`.
    pub variance: f64,
    /// `sqrt(variance / n)`.
    pub se: f64,
}

/// The [`Moments`] of `x`.
pub fn moments(x: &[f64]) -> Moments {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let variance = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Moments {
        mean,
        variance,
        se: (variance / n).sqrt(),
    }
}

/// The [`Moments`] of each column of `[rows, k]` values.
pub fn column_moments(v: &[f32], k: usize) -> Vec<Moments> {
    let rows = v.len() / k;
    (0..k)
        .map(|j| moments(&(0..rows).map(|r| v[k * r + j] as f64).collect::<Vec<_>>()))
        .collect()
}
