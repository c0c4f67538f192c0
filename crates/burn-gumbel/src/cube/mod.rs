//! A fused Gumbel-Softmax for Burn's CubeCL backend (wgpu here), with its backward pass: the GPU
//! twin of `fused/`.
//!
//! The tensor-op version makes about ten passes over memory (uniforms, two logarithms, row max,
//! exponential, row sum, division) and launches a kernel for each. This one reads the logits once
//! and writes the sample once per row (`kernels.rs`): each unit draws `z = (θ + g) / tau` for its
//! share of the row from the counter-based generator of [`crate::counter`] (the CPU kernel's
//! hash of the element's index, so one key gives the same noise, hence the same hard samples, on
//! flex and on wgpu; a `Device::seed` fixes the key drawn on this device only; the noise room,
//! `noise.rs`, decides the key and hands it over), keeps it in the
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
//! `noise::Noise::gumbel`), so that on one device one seed gives the same draws
//! whichever path serves a call; the tests compare the two.
//!
//! | file | concern |
//! |---|---|
//! | `extension.rs` | the Burn backend extension (cube, fusion, autodiff) and its backward pass |
//! | `kernels.rs` | the forward and noise kernels: a cube per row, or a unit per row (lane) |
//! | `backward.rs` | the backward kernels, in the same two layouts |
//! | `math.rs` | the generator's hash and key words, `ln` and `exp` in CubeCL |
//! | `launch.rs` | the `[outer, n, inner]` view of the category axis, and the launches |
//! | `tokens.rs` | the token sampler's row kernel: a cube per row of logits, the host's arithmetic |

use burn::tensor::{DType, Int, Tensor};

use crate::ops::Tau;

use extension::CubeGumbelSoftmax;

mod backward;
mod extension;
mod kernels;
mod launch;
mod math;
pub(crate) mod tokens;

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
/// with the soft sample's gradient, under `key`, the key's four 16-bit words on the device (the
/// noise room's `device_key_words` decides it). The arguments in the crate's order:
/// `(logits, key, tau, hard, dim)`.
pub(crate) fn cube_sample<const D: usize>(
    logits: Tensor<D>,
    key: Tensor<1, Int>,
    tau: &Tau,
    hard: bool,
    dim: usize,
) -> Tensor<D> {
    let Tau::Fixed(tau) = tau else {
        unreachable!("the kernel serves a fixed temperature only")
    };
    let out = <burn::backend::Dispatch as CubeGumbelSoftmax>::cube_gumbel_softmax(
        logits.into_dispatch(),
        key.into_dispatch(),
        *tau as f32,
        hard,
        dim,
    );
    Tensor::from_dispatch(out)
}

/// The Gumbel noise the kernel draws for `logits` (categories along `dim`) under `key` (the key's
/// words on the device, as [`sample`] takes them), in f32: the noise of the tensor-op paths on
/// cube devices, so that one seed gives them the kernel's noise (a learned temperature and a
/// fixed one, for instance), and one key the noise of every device.
pub(crate) fn gumbel_noise<const D: usize>(
    logits: &Tensor<D>,
    key: Tensor<1, Int>,
    dim: usize,
) -> Tensor<D> {
    let key = key.into_dispatch();
    let logits = logits.clone().into_dispatch();
    let noise =
        <burn::backend::Dispatch as CubeGumbelSoftmax>::cube_gumbel_noise(&logits, key, dim);
    Tensor::from_dispatch(noise)
}
