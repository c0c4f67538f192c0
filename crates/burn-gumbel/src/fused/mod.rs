//! A fused Gumbel-Softmax for Burn's flex CPU backend, with its backward pass.
//!
//! The tensor-op version ([`crate::gumbel_softmax_with_noise`] with [`crate::gumbel_noise`]) makes
//! about ten passes over memory, draws its uniforms from a ChaCha generator and takes two scalar
//! logarithms per element. This kernel works on cache-sized chunks of whole rows: a counter-based
//! generator (a 32-bit hash of the element's index under a key, given or drawn from the device's
//! generator, so `Device::seed` still makes results reproducible on flex, and the GPU kernel draws
//! the same noise under the same key), a branch-free logarithm and exponential that the compiler
//! vectorizes, the row maximum and the normalization, then, backward, `y ⊙ (g − yᵀg) / tau` in
//! one pass. Chunks are spread over rayon's threads. On x86-64 the forward and backward kernels
//! are each compiled three times (baseline, AVX2, AVX-512) and the widest variant the processor
//! runs is chosen at run time; all three give the same bits.
//!
//! It is used by [`crate::gumbel_softmax`] and the [`crate::GumbelSoftmax`] layer on flex devices
//! (plain or autodiff) for f32 logits (f16 and bf16 ones widened to f32 in parallel chunks, the
//! result narrowed back) with the categories
//! along any axis, a fixed or learned temperature, and the straight-through or Gumbel-Rao
//! estimator (the latter's `K` conditional draws regenerated from the same counters in the backward
//! pass, none kept from the forward one); everything else takes the tensor-op path, which the
//! tests compare it against.
//!
//! | file | concern |
//! |---|---|
//! | `extension.rs` | the Burn backend extension and its autodiff backward |
//! | `bands.rs` | bands of channels-first maps over rayon's threads, in place or gathered into rows |
//! | `columns.rs` | the forward and backward kernels across the positions of a channels-first band |
//! | `driver.rs` | chunks of whole rows over rayon's threads |
//! | `isa.rs` | the kernels compiled per instruction set, chosen at run time |
//! | `kernels.rs` | the forward and backward row kernels, Gumbel-Rao's backward |
//! | `layout.rs` | the `[outer, n, inner]` view of any category axis, its bands, tiled transposes |
//! | `math.rs` | `ln` and `exp` |
//! | `precision.rs` | f16 and bf16 logits widened to f32 and results narrowed back |

use burn::tensor::{DType, Tensor};

use crate::counter::key;

use crate::ops::Tau;

use extension::FusedGumbelSoftmax;

mod bands;
mod columns;
mod driver;
mod extension;
mod isa;
mod kernels;
mod layout;
mod math;
mod precision;

/// Whether the fused path serves a call: a flex device (plain or autodiff) and f32, f16 or bf16
/// logits (half precision widened to f32 inside the kernel's driver), the categories along any
/// axis.
pub(crate) fn applies<const D: usize>(logits: &Tensor<D>) -> bool {
    let device = logits.device();
    precision::supported(logits.dtype())
        && matches!(
            device.without_autodiff().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

/// The straight-through sample (soft, or one-hot with the soft sample's gradient) by the fused
/// kernel where it serves the call: [`applies`], and a fixed temperature or a learned f32 one.
/// Else `None`, for the tensor-op path.
pub(crate) fn try_straight_through<const D: usize>(
    logits: &Tensor<D>,
    tau: &Tau,
    hard: bool,
    dim: usize,
) -> Option<Tensor<D>> {
    if !applies(logits) {
        return None;
    }
    match tau {
        Tau::Fixed(tau) => Some(gumbel_softmax(logits.clone(), *tau, hard, dim)),
        Tau::Learned(tau) => {
            let tau = learned_f32(tau)?;
            Some(gumbel_softmax_learned(logits.clone(), tau, hard, dim))
        }
    }
}

/// The Gumbel-Rao sample of `samples` conditional draws by the fused kernel where it serves the
/// call, as [`try_straight_through`]; else `None`.
pub(crate) fn try_gumbel_rao<const D: usize>(
    logits: &Tensor<D>,
    tau: &Tau,
    samples: usize,
    dim: usize,
) -> Option<Tensor<D>> {
    if !applies(logits) {
        return None;
    }
    let tau = match tau {
        Tau::Fixed(tau) => Tensor::from_floats([*tau as f32], &logits.device()),
        Tau::Learned(tau) => learned_f32(tau)?,
    };
    Some(gumbel_rao(logits.clone(), tau, samples, dim))
}

/// A learned temperature the kernel takes: an f32 one.
fn learned_f32(tau: &Tensor<1>) -> Option<Tensor<1>> {
    (tau.dtype() == DType::F32).then(|| tau.clone())
}

/// The fused sample: soft, or one-hot with the soft sample's gradient. The key comes from the
/// device's generator, so seeding the device fixes the result.
pub(crate) fn gumbel_softmax<const D: usize>(
    logits: Tensor<D>,
    tau: f64,
    hard: bool,
    dim: usize,
) -> Tensor<D> {
    let key = key(&logits.device());
    gumbel_softmax_with_key(logits, tau, hard, dim, key)
}

/// [`gumbel_softmax`] under a given generator key.
pub(crate) fn gumbel_softmax_with_key<const D: usize>(
    logits: Tensor<D>,
    tau: f64,
    hard: bool,
    dim: usize,
    key: u64,
) -> Tensor<D> {
    let out = <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax(
        logits.into_dispatch(),
        tau as f32,
        hard,
        key,
        dim,
    );
    Tensor::from_dispatch(out)
}

/// [`gumbel_softmax`] at a learned temperature: `tau` is a positive `[1]` f32 tensor on the
/// logits' device, and the backward pass reaches it.
pub(crate) fn gumbel_softmax_learned<const D: usize>(
    logits: Tensor<D>,
    tau: Tensor<1>,
    hard: bool,
    dim: usize,
) -> Tensor<D> {
    let key = key(&logits.device());
    let out = <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax_learned(
        logits.into_dispatch(),
        tau.into_dispatch(),
        hard,
        key,
        dim,
    );
    Tensor::from_dispatch(out)
}

/// The fused Gumbel-Rao sample: the hard sample, with the gradient of `samples` draws of the noise
/// conditioned on it; `tau` a positive `[1]` f32 tensor on the logits' device, differentiated when
/// tracked.
pub(crate) fn gumbel_rao<const D: usize>(
    logits: Tensor<D>,
    tau: Tensor<1>,
    samples: usize,
    dim: usize,
) -> Tensor<D> {
    let key = key(&logits.device());
    let out = <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_rao(
        logits.into_dispatch(),
        tau.into_dispatch(),
        samples,
        key,
        dim,
    );
    Tensor::from_dispatch(out)
}
