//! # burn-gumbel
//!
//! Gumbel-Softmax (Concrete) sampling for the [Burn](https://burn.dev) deep-learning framework:
//! differentiable samples from categorical distributions, written as Burn tensor ops so that one
//! source runs on every backend (`flex`, `ndarray`, `wgpu`, …).
//!
//! | item | formula |
//! |---|---|
//! | [`gumbel_noise`] | `g = -ln(-ln u)`, `u ~ Uniform(0, 1)` (open interval): Gumbel(0, 1) |
//! | [`gumbel_max`] | `argmax(logits + g)`: an exact sample of `softmax(logits)` |
//! | [`gumbel_top_k`] | the `k` largest `logits + g`, in order: sampling without replacement |
//! | [`relaxed_k_hot`] | `k` rounds of masked softmax: a differentiable subset of size `k`; or its exact k-hot, straight-through |
//! | [`gumbel_softmax`] | `softmax((logits + g) / tau)`, or with `hard` its one-hot, straight-through |
//! | [`gumbel_softmax_with_noise`] | the same with caller-given `g` |
//! | [`gumbel_softmax_with_key`] | the same with the noise of a [`Key`]: the same sample on every backend |
//! | [`Key`] | names a draw of noise; `fold_in(step)` and `split` derive independent keys; every sampler has a `_with_key` form |
//! | [`GumbelSoftmax`] | the layer, built by [`GumbelSoftmaxConfig`] |
//! | [`gumbel_rao`] | one-hot sample; gradient: straight-through averaged over `K` noise draws given the sample |
//! | [`reinmax`] | one-hot sample of `softmax(logits)`; gradient `2·J(π₁)g − ½·J(p)g` (second order) |
//! | [`Estimator`] | the choice of gradient for hard samples: straight-through, Gumbel-Rao, ReinMax; [`Estimator::sample`] draws with one |
//! | [`RelaxedOneHotCategorical`] | the Concrete distribution: `rsample`, `log_prob` on the simplex and in log space |
//! | [`relaxed_bernoulli`] | `sigmoid((logits + L) / tau)`, `L` logistic; or with `hard` its 0/1, straight-through |
//! | [`TemperatureSchedule`] | `tau = max(tau_min, tau0 · exp(-rate · t))` |
//! | [`sample_tokens`] | the next token of each row, `argmax_{v ∈ S}(logits_v / T + g_v)` under one [`Key`] per row, `S` kept by top-k, top-p and min-p ([`TokenSamplerConfig`]): batch-invariant; [`token_logprobs`] its distribution |
//!
//! References: Jang, Gu, Poole, *Categorical Reparameterization with Gumbel-Softmax*, ICLR 2017,
//! [arXiv:1611.01144](https://arxiv.org/abs/1611.01144); Maddison, Mnih, Teh, *The Concrete
//! Distribution*, ICLR 2017, [arXiv:1611.00712](https://arxiv.org/abs/1611.00712).
//!
//! ## Backends
//! Every sampler is written as Burn tensor ops and takes tensors on any
//! [`burn::tensor::Device`]; the cargo feature `ndarray` only forwards to Burn's. Two features
//! add a fused kernel (a Burn backend extension with a hand-written backward pass) that
//! [`gumbel_softmax`] and [`GumbelSoftmax`] use where it applies:
//! - `flex` (the default), on flex devices: the rows spread over rayon's threads, for f32 logits
//!   (or half precision, widened), the categories along any axis, the temperature fixed or
//!   learned (its gradient computed in the same backward pass), the straight-through or
//!   Gumbel-Rao estimator.
//! - `wgpu`, on wgpu devices (with Burn's fusion): a CubeCL kernel reading the logits and writing
//!   the sample once per row, for f32, f16 and bf16 logits, the categories along any axis, a fixed
//!   temperature, the straight-through estimator; the other calls take the tensor-op path on the
//!   kernel's noise. A second kernel draws [`sample_tokens`]'s greedy, temperature and min-p rows
//!   (`docs/tokens.md`).
//!
//! Both draw the same counter-based noise: [`gumbel_softmax_with_key`] gives identical hard
//! samples on flex and on wgpu. Other calls, and every call on another backend, take the
//! tensor-op path. One function (`sampling::engine`) decides which engine serves each call.
//!
//! ## Arguments
//! The public functions take their arguments in one order:
//! `(logits, [noise | key], [k | samples], tau, [hard], dim)`: e.g.
//! [`gumbel_softmax_with_key`]`(logits, key, tau, hard, dim)`,
//! [`gumbel_rao`]`(logits, samples, tau, dim)`, [`relaxed_k_hot`]`(logits, k, tau, hard, dim)`.
//! [`Estimator`]'s `sample` forms take the estimator as their receiver.
//!
//! ## Precision
//! Logits in f16 or bf16 are sampled in f32 (noise, softmax, gradient) and the sample comes back
//! in the logits' dtype; hard samples are exactly 0 and 1 in every dtype.
//!
//! ## Layout
//! Modules import only the ones of their own layer and below, top first
//! (`scripts/check-layers.py` keeps this table and the imports in step):
//!
//! | layer | modules |
//! |---|---|
//! | the layer | `layer` ([`GumbelSoftmaxConfig`], [`GumbelSoftmax`], [`EvalMode`]) |
//! | samplers | `gumbel_softmax`, `gumbel_max` (and top-k), `tokens` ([`sample_tokens`]), `relaxed_bernoulli`, `relaxed_k_hot`, `relaxed_one_hot`, and the estimators' entries `hard_samples` ([`Estimator::sample`], [`gumbel_rao`], [`reinmax`]) |
//! | the sampling core | `sampling` (the one entry of every Gumbel-Softmax sample, and the choice of engine) |
//! | gradient estimators | `estimator` ([`Estimator`] and the tensor-op path of each; Gumbel-Rao's and ReinMax's maths in its files) |
//! | noise | `noise` (the one place that decides the noise of every call: fresh, keyed or given; for the tensor ops, Gumbel-Rao's conditional draws and the kernels' keys) |
//! | kernels | `counter` (the kernels' generator), `math` (the host kernels' `ln` and `exp`), `isa` (the host kernels per instruction set), `fused` (flex), `cube` (wgpu) |
//! | foundations | `check` (argument checks), `setting` ([`InvalidSetting`]), `key` ([`Key`]), `ops` (one-hot of argmax, straight-through, row reshapes, temperature, masked rows), `schedule` |
//!
//! ## Example
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_gumbel::{GumbelSoftmaxConfig, TemperatureSchedule};
//!
//! let device = Device::default().autodiff();
//! # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
//! let layer = GumbelSoftmaxConfig::new().with_hard(true).init(&device);
//! let schedule = TemperatureSchedule::paper();
//!
//! let logits = Tensor::<3>::zeros([2, 20, 10], &device).require_grad(); // [batch, latent, class]
//! let z = layer.forward_with_tau(logits.clone(), schedule.tau(5000)); // one-hot per latent
//! assert_eq!(z.clone().sum().into_scalar::<f32>(), 40.0);
//! let grads = (z * Tensor::<3>::ones([2, 20, 10], &device)).sum().backward();
//! assert!(logits.grad(&grads).is_some());
//! ```
#![warn(missing_docs)]
// Every `unsafe` operation in an `unsafe` block of its own, and every such block saying why its
// contract holds.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod check;
mod counter;
#[cfg(feature = "wgpu")]
mod cube;
mod estimator;
#[cfg(feature = "flex")]
mod fused;
mod gumbel_max;
mod gumbel_softmax;
mod hard_samples;
mod isa;
mod key;
mod layer;
mod math;
mod noise;
mod ops;
mod relaxed_bernoulli;
mod relaxed_k_hot;
mod relaxed_one_hot;
mod sampling;
mod schedule;
mod setting;
mod tokens;

pub use estimator::Estimator;
pub use gumbel_max::{
    gumbel_max, gumbel_max_with_key, gumbel_max_with_noise, gumbel_top_k, gumbel_top_k_with_key,
    gumbel_top_k_with_noise,
};
pub use gumbel_softmax::{gumbel_softmax, gumbel_softmax_with_key, gumbel_softmax_with_noise};
pub use hard_samples::{
    gumbel_rao, gumbel_rao_with_key, gumbel_rao_with_noise, reinmax, reinmax_with_key,
    reinmax_with_noise,
};
pub use key::Key;
pub use layer::{EvalMode, GumbelSoftmax, GumbelSoftmaxConfig};
pub use noise::{gumbel_noise, gumbel_noise_with_key, logistic_noise, logistic_noise_with_key};
pub use relaxed_bernoulli::{
    relaxed_bernoulli, relaxed_bernoulli_with_key, relaxed_bernoulli_with_noise,
};
pub use relaxed_k_hot::{relaxed_k_hot, relaxed_k_hot_with_key, relaxed_k_hot_with_noise};
pub use relaxed_one_hot::RelaxedOneHotCategorical;
pub use schedule::TemperatureSchedule;
pub use setting::{InvalidSetting, Setting};
pub use tokens::{TokenSamplerConfig, Tokens, sample_tokens, token_logprobs};

/// The README's Rust snippets, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
