//! Argument checks shared by the public functions.
//!
//! As in Burn's own `check.rs`, a bad argument is a programming error: it panics with a message
//! that names the function, the rule that was broken and the value received, instead of returning
//! a `Result` or letting a NaN flow into the model.

use burn::tensor::{AsIndex, DType, Shape, Tensor};

/// Panics unless `tau` is finite and strictly positive ([`tau_rule`]).
#[track_caller]
pub(crate) fn tau(op: &str, tau: f64) {
    if let Err(rule) = tau_rule(tau) {
        panic!("{op}: {rule}");
    }
}

/// The rule of [`tau`], as a message for a `Result`.
pub(crate) fn tau_rule(tau: f64) -> Result<(), String> {
    match tau.is_finite() && tau > 0.0 {
        true => Ok(()),
        false => Err(format!(
            "the temperature tau must be finite and > 0, got tau = {tau}"
        )),
    }
}

/// Panics unless `tau` is finite and `> 0` and stays so, with `1 / tau`, in the dtype a sample
/// of `dtype` logits is computed in: f32 for f32, f16 and bf16 logits (half precision is widened),
/// f64 for f64 ones. That is a normal number of that dtype, from its smallest normal
/// (`f32::MIN_POSITIVE`, 1.2e-38) to its largest (`f32::MAX`, 3.4e38): `tau = 1e-40` passes the
/// check in f64 but is subnormal in f32, where `1 / tau` is infinite and the sample NaN.
#[track_caller]
pub(crate) fn tau_in(op: &str, tau: f64, dtype: DType) {
    self::tau(op, tau);
    let (name, min, max) = match dtype {
        DType::F64 => ("f64", f64::MIN_POSITIVE, f64::MAX),
        _ => ("f32", f32::MIN_POSITIVE as f64, f32::MAX as f64),
    };
    if !(min..=max).contains(&tau) {
        panic!(
            "{op}: the temperature tau must be a normal {name} (the dtype the sample is computed \
             in), from {min:.1e} to {max:.1e}, got tau = {tau:e}"
        );
    }
}

/// Panics unless a learned `ln tau` has the shape `[1]`: one temperature for the whole layer.
#[track_caller]
pub(crate) fn log_tau(op: &str, shape: &Shape) {
    if shape.as_slice() != [1] {
        panic!(
            "{op}: the learned ln tau must have the shape [1], got shape {:?}",
            shape.as_slice()
        );
    }
}

/// Panics unless `tau` is finite and `≥ 1`, the range in which ReinMax is defined
/// ([`reinmax_tau_rule`]).
#[track_caller]
pub(crate) fn reinmax_tau(op: &str, tau: f64) {
    if let Err(rule) = reinmax_tau_rule(tau) {
        panic!("{op}: {rule}");
    }
}

/// The rule of [`reinmax_tau`], as a message for a `Result`.
pub(crate) fn reinmax_tau_rule(tau: f64) -> Result<(), String> {
    match tau.is_finite() && tau >= 1.0 {
        true => Ok(()),
        false => Err(format!(
            "ReinMax needs a temperature tau that is finite and >= 1, got tau = {tau}"
        )),
    }
}

/// Resolves a possibly negative `dim` against `rank`, panicking when it is out of `[-rank, rank)`.
#[track_caller]
pub(crate) fn dim(op: &str, dim: impl AsIndex, rank: usize) -> usize {
    let index = dim.as_index();
    let rank_i = rank as isize;
    if index < -rank_i || index >= rank_i {
        panic!(
            "{op}: dim must be in [-{rank}, {rank}) for a tensor of rank {rank}, got dim = {index}"
        );
    }
    if index < 0 {
        (index + rank_i) as usize
    } else {
        index as usize
    }
}

/// Panics unless `1 ≤ k ≤ n`, the number of categories along `dim`.
#[track_caller]
pub(crate) fn k(op: &str, k: usize, n: usize, dim: usize) {
    if k == 0 || k > n {
        panic!("{op}: k must be in [1, {n}] for {n} categories along dim {dim}, got k = {k}");
    }
}

/// Panics unless the argument called `name` (noise, a sample) has the shape of `logits`.
#[track_caller]
pub(crate) fn same_shape(op: &str, name: &str, logits: &Shape, other: &Shape) {
    if logits != other {
        panic!(
            "{op}: {name} must have the shape of the logits, got {name} {:?} for logits {:?}",
            other.as_slice(),
            logits.as_slice()
        );
    }
}

/// Panics unless Gumbel-Rao has at least one conditional sample ([`samples_rule`]).
#[track_caller]
pub(crate) fn samples(op: &str, samples: usize) {
    if let Err(rule) = samples_rule(samples) {
        panic!("{op}: {rule}");
    }
}

/// The rule of [`samples`], as a message for a `Result`.
pub(crate) fn samples_rule(samples: usize) -> Result<(), String> {
    match samples {
        0 => Err("Gumbel-Rao needs at least one sample, got samples = 0".to_string()),
        _ => Ok(()),
    }
}

/// Panics when `dim` has size 0: there is no category to sample.
#[track_caller]
pub(crate) fn categories(op: &str, shape: &Shape, dim: usize) {
    if shape[dim] == 0 {
        panic!(
            "{op}: the category dimension {dim} must have at least one category, got shape {:?}",
            shape.as_slice()
        );
    }
}

/// The checks every sampler makes, in this order, and the resolved `dim`:
/// - `tau` finite and `> 0`, in the dtype the sample is computed in ([`tau_in`]), when the
///   sampler has a temperature;
/// - `dim` in `[-D, D)`;
/// - with `k`, `1 ≤ k ≤` the number of categories, else at least one category;
/// - in debug builds, no NaN logit and no fully masked row ([`debug_logits`]).
#[track_caller]
pub(crate) fn sampler<const D: usize>(
    op: &str,
    logits: &Tensor<D>,
    tau: Option<f64>,
    k: Option<usize>,
    dim: impl AsIndex,
) -> usize {
    checked(op, logits, tau, k, dim, MaskedRows::Refused)
}

/// [`sampler`]'s checks for the one-hot samplers (Gumbel-Softmax, its estimators and the layer),
/// which take fully masked rows: such a row has no category to draw, and its sample (soft or
/// hard) and gradient are all zeros on every engine. In debug builds NaN logits are still
/// refused.
#[track_caller]
pub(crate) fn one_hot_sampler<const D: usize>(
    op: &str,
    logits: &Tensor<D>,
    tau: Option<f64>,
    dim: impl AsIndex,
) -> usize {
    checked(op, logits, tau, None, dim, MaskedRows::Zeros)
}

/// The checks of [`sampler`], with `masked_rows` for what [`debug_logits`] makes of fully
/// masked rows.
#[track_caller]
fn checked<const D: usize>(
    op: &str,
    logits: &Tensor<D>,
    tau: Option<f64>,
    k: Option<usize>,
    dim: impl AsIndex,
    masked_rows: MaskedRows,
) -> usize {
    if let Some(tau) = tau {
        tau_in(op, tau, logits.dtype());
    }
    let dim = self::dim(op, dim, D);
    match k {
        Some(k) => self::k(op, k, logits.shape()[dim], dim),
        None => categories(op, &logits.shape(), dim),
    }
    debug_logits(op, logits, dim, masked_rows);
    dim
}

/// What a sampler makes of a fully masked row (every logit along its category axis `−∞`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskedRows {
    /// Refused in debug builds: the sampler has no defined result for it (an index, a `k`-hot
    /// or a density needs a category).
    Refused,
    /// A sample of zeros with a zero gradient, on every engine.
    Zeros,
}

/// In debug builds, panics on NaN logits, and with [`MaskedRows::Refused`] on rows where every
/// category is masked (`-inf`).
///
/// Both would make the sample NaN (softmax of a row of `-inf` is `0/0`) where the sampler does not
/// define another result. The check reads booleans back from the device, so it is compiled only
/// with `debug_assertions`; release builds propagate the NaN, as `softmax` does.
#[track_caller]
pub(crate) fn debug_logits<const D: usize>(
    op: &str,
    logits: &Tensor<D>,
    dim: usize,
    masked_rows: MaskedRows,
) {
    if !cfg!(debug_assertions) {
        return;
    }
    let logits = logits.clone().detach();
    if logits.clone().is_nan().any().into_scalar::<bool>() {
        panic!("{op}: logits must not be NaN, got a NaN logit (checked in debug builds only)");
    }
    if masked_rows == MaskedRows::Zeros {
        return;
    }
    let all_masked = logits
        .max_dim(dim)
        .equal_elem(f32::NEG_INFINITY)
        .any()
        .into_scalar::<bool>();
    if all_masked {
        panic!(
            "{op}: every row must have at least one category with a finite logit, got a row \
             whose logits along dim {dim} are all -inf (checked in debug builds only)"
        );
    }
}
