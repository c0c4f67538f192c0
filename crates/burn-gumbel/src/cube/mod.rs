//! A fused Gumbel-Softmax for Burn's CubeCL backend (wgpu here), with its backward pass: the GPU
//! twin of `fused/`.
//!
//! The tensor-op version makes about ten passes over memory (uniforms, two logarithms, row max,
//! exponential, row sum, division) and launches a kernel for each. This one reads the logits once
//! and writes the sample once per row (`kernels.rs`): each unit draws `z = (θ + g) / tau` for its
//! share of the row from the counter-based generator of [`crate::counter`] (the CPU kernel's
//! hash of the element's index, so one key gives the same noise, hence the same hard samples, on
//! flex and on wgpu; a `Device::seed` fixes the key drawn on this device only), keeps it in the
//! output buffer, and the units reduce the row's
//! maximum, sum and argmax in shared memory; a second sweep normalizes in place (reading back what
//! the unit wrote itself, from cache). Long rows are read as vectors of up to 4 categories, each
//! plane (SIMD group) of units sweeping its own contiguous segment of the row. The backward pass
//! `y ⊙ (g − yᵀg) / tau` is one kernel too.
//!
//! It serves [`crate::gumbel_softmax`] and the [`crate::GumbelSoftmax`] layer on cube devices
//! (plain or autodiff, with Burn's fusion on) for f32, f16 and bf16 logits (computed in f32) with
//! the categories along any axis, a fixed temperature and the straight-through estimator, for
//! tensors under 2^32 elements. The tensor-op paths take the rest (a learned temperature, the
//! Gumbel-Rao and ReinMax estimators, as the layer's or as the functions [`crate::gumbel_rao`]
//! and [`crate::reinmax`]) on the same generator's noise (a one-pass noise kernel, chosen by
//! `noise::sampler_gumbel_noise`), so that on one device one seed gives the same draws
//! whichever path serves a call; the tests compare the two.
//!
//! | file | concern |
//! |---|---|
//! | `extension.rs` | the Burn backend extension (cube, fusion, autodiff) and its backward pass |
//! | `kernels.rs` | the forward and noise kernels: a cube per row, or a unit per row (lane) |
//! | `backward.rs` | the backward kernels, in the same two layouts |
//! | `math.rs` | the generator's hash and key words, `ln` and `exp` in CubeCL |
//! | `launch.rs` | the `[outer, n, inner]` view of the category axis, and the launches |

use burn::tensor::{DType, Device, Distribution, Int, IntDType, Tensor, TensorData};

use crate::key::Key;
use crate::ops::Tau;

use extension::CubeGumbelSoftmax;

mod backward;
mod extension;
mod kernels;
mod launch;
mod math;

/// Whether the kernel serves a call: a cube device (plain or autodiff), f32, f16 or bf16 logits,
/// and fewer than 2^32 elements (the kernel's counters and indices are 32-bit).
pub(crate) fn applies<const D: usize>(logits: &Tensor<D>) -> bool {
    let device = logits.device();
    matches!(logits.dtype(), DType::F32 | DType::F16 | DType::BF16)
        && logits.shape().num_elements() < 1 << 32
        && matches!(
            device.without_autodiff().as_dispatch(),
            burn::backend::DispatchDevice::Cube(_)
        )
}

/// Whether the kernel can take logits and a temperature (`sampling::engine`, the one
/// place that decides, asks): [`applies`] and a fixed temperature. It computes soft samples and
/// hard ones with the straight-through gradient.
pub(crate) fn serves<const D: usize>(logits: &Tensor<D>, tau: &Tau) -> bool {
    matches!(tau, Tau::Fixed(_)) && applies(logits)
}

/// The kernel's sample, on logits and a temperature it [`serves`]: soft, or with `hard` one-hot
/// with the soft sample's gradient, under `key` (without one, a key from the device's generator,
/// kept on the device).
pub(crate) fn sample<const D: usize>(
    logits: Tensor<D>,
    tau: &Tau,
    hard: bool,
    key: Option<Key>,
    dim: usize,
) -> Tensor<D> {
    let Tau::Fixed(tau) = tau else {
        unreachable!("the kernel serves a fixed temperature only")
    };
    let key = device_key(key, &logits.device());
    let out = <burn::backend::Dispatch as CubeGumbelSoftmax>::cube_gumbel_softmax(
        logits.into_dispatch(),
        *tau as f32,
        hard,
        key.into_dispatch(),
        dim,
    );
    Tensor::from_dispatch(out)
}

/// `key` on `device` as the kernels read it ([`given_key`]), or without one a key from the
/// device's generator ([`random_key`]).
fn device_key(key: Option<Key>, device: &Device) -> Tensor<1, Int> {
    match key {
        Some(key) => given_key(key.bits(), device),
        None => random_key(device),
    }
}

/// A generator key drawn by the device's generator and kept there, as the kernels read it: four
/// 16-bit pieces (i32), low first. Seeding the device fixes it; no read back to the host.
fn random_key(device: &Device) -> Tensor<1, Int> {
    Tensor::<1, Int>::random([4], Distribution::Uniform(0.0, 65_536.0), device).cast(IntDType::I32)
}

/// The generator key `key` on `device`, as [`random_key`] lays it out.
fn given_key(key: u64, device: &Device) -> Tensor<1, Int> {
    let pieces: Vec<i32> = (0..4).map(|k| (key >> (16 * k)) as i32 & 0xFFFF).collect();
    Tensor::<1, Int>::from_data(TensorData::new(pieces, [4]), device).cast(IntDType::I32)
}

/// The Gumbel noise the kernel draws for `logits` (categories along `dim`) under `key` (without
/// one, a key from the device's generator), in f32: the noise of the tensor-op paths on cube
/// devices, so that one seed gives them the kernel's noise (a learned temperature and a fixed
/// one, for instance), and one key the noise of every device.
pub(crate) fn gumbel_noise<const D: usize>(
    logits: &Tensor<D>,
    dim: usize,
    key: Option<Key>,
) -> Tensor<D> {
    let key = device_key(key, &logits.device()).into_dispatch();
    let logits = logits.clone().into_dispatch();
    let noise =
        <burn::backend::Dispatch as CubeGumbelSoftmax>::cube_gumbel_noise(&logits, key, dim);
    Tensor::from_dispatch(noise)
}
