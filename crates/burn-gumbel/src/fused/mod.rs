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
//! | `lanes.rs` | the row kernels' vectorized reductions (sum, dot, maximum, first index) and masked-row guards |
//! | `layout.rs` | the `[outer, n, inner]` view of any category axis, its bands, tiled transposes |
//! | `precision.rs` | f16 and bf16 logits widened to f32 and results narrowed back |

use burn::backend::Dispatch;
use burn::tensor::{DType, Tensor};

use crate::ops::Tau;

use extension::FusedGumbelSoftmax;

mod bands;
mod columns;
mod driver;
mod extension;
mod isa;
mod kernels;
mod lanes;
mod layout;
mod precision;

/// Whether the fused path serves a call: a flex device (plain or autodiff) and f32, f16 or bf16
/// logits (half precision widened to f32 inside the kernel's driver), the categories along any
/// axis.
fn applies<const D: usize>(logits: &Tensor<D>) -> bool {
    let device = logits.device();
    precision::supported(logits.dtype())
        && matches!(
            device.without_autodiff().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

/// Whether the fused kernel can take logits and a temperature (`sampling::engine`, the
/// one place that decides, asks): [`applies`], and a fixed temperature or a learned f32 one. It
/// computes soft samples and hard ones with the straight-through or Gumbel-Rao gradient.
pub(crate) fn serves<const D: usize>(logits: &Tensor<D>, tau: &Tau) -> bool {
    let tau_served = match tau {
        Tau::Fixed(_) => true,
        Tau::Learned(tau) => tau.dtype() == DType::F32,
    };
    tau_served && applies(logits)
}

/// What the fused kernel draws: the kinds of sample it computes, and no combination it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// `softmax((logits + g) / tau)`.
    Soft,
    /// Its one-hot, with the straight-through gradient.
    StraightThrough,
    /// Its one-hot, with the Gumbel-Rao gradient of `samples` conditional draws.
    GumbelRao {
        /// The conditional draws, `≥ 1`.
        samples: usize,
    },
}

/// The fused sample of `output`, on logits and a temperature it [`serves`], under `key` (the
/// noise room, `noise.rs`, decides it: the caller's, or one drawn from the device's generator).
/// The arguments in the crate's order: `(logits, key, tau, output, dim)`.
pub(crate) fn fused_sample<const D: usize>(
    logits: Tensor<D>,
    key: u64,
    tau: &Tau,
    output: Output,
    dim: usize,
) -> Tensor<D> {
    let device = logits.device();
    let logits = logits.into_dispatch();
    let hard = output != Output::Soft;
    let out = match (output, tau) {
        (Output::GumbelRao { samples }, tau) => {
            let tau = match tau {
                Tau::Fixed(tau) => Tensor::<1>::from_floats([*tau as f32], &device),
                Tau::Learned(tau) => tau.as_ref().clone(),
            };
            <Dispatch as FusedGumbelSoftmax>::fused_gumbel_rao(
                logits,
                key,
                tau.into_dispatch(),
                samples,
                dim,
            )
        }
        (_, Tau::Fixed(tau)) => <Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax(
            logits,
            key,
            *tau as f32,
            hard,
            dim,
        ),
        (_, Tau::Learned(tau)) => <Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax_learned(
            logits,
            key,
            tau.as_ref().clone().into_dispatch(),
            hard,
            dim,
        ),
    };
    Tensor::from_dispatch(out)
}

/// The flex tensor under `logits`, contiguous, when `logits` lives on a plain flex device: its
/// memory is read in place (the token sampler's rows; the clone shares the buffer), with no copy
/// unless it was strided. `None` for any other tensor (another backend, or autodiff's).
pub(crate) fn flex_contiguous<const D: usize>(
    logits: &Tensor<D>,
) -> Option<burn::backend::flex::FlexTensor> {
    use burn::backend::{BackendTensor, DispatchDevice, DispatchTensorKind};
    if !matches!(logits.device().as_dispatch(), DispatchDevice::Flex(_)) {
        return None;
    }
    match logits.clone().into_dispatch().kind {
        DispatchTensorKind::Flex(BackendTensor::Float(tensor)) => Some(tensor.to_contiguous()),
        _ => None,
    }
}
