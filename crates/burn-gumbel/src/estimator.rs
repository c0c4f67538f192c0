//! Gradient estimators for hard (one-hot) samples: straight-through, Gumbel-Rao and ReinMax.
//!
//! Every estimator returns an exact one-hot sample forward; they differ in the gradient they give
//! the logits backward. Each backward pass is written as a *surrogate*: a tensor `s` whose
//! derivative is the estimator's, added as `one_hot + (s - s.detach())`, which is the one-hot to
//! the bit while its derivative is that of `s`. No custom autodiff operation is needed, so the
//! estimators run on every backend.

use core::fmt;
use core::str::FromStr;

use burn::tensor::activation::softmax;
use burn::tensor::{AsIndex, IndexingUpdateOp, Shape, Tensor};
use serde::{Deserialize, Serialize};

use crate::check;
use crate::gumbel_noise;
use crate::gumbel_softmax::{check_args, one_hot_argmax, straight_through};
use crate::noise::exponential_noise;
use crate::temperature::Tau;

/// How a hard (one-hot) Gumbel-Softmax sample passes gradients to its logits.
///
/// The forward value is always an exact one-hot sample of the categorical law; the estimators
/// differ in bias, variance and cost of the backward pass (`docs/estimators.md` measures them).
///
/// Parses from and prints as `st`, `gumbel-rao:K` and `reinmax`.
///
/// # Example
/// ```
/// use burn_gumbel::Estimator;
///
/// let estimator: Estimator = "gumbel-rao:10".parse().unwrap();
/// assert_eq!(estimator, Estimator::GumbelRao { samples: 10 });
/// assert_eq!(estimator.to_string(), "gumbel-rao:10");
/// assert!("gumbel-rao:0".parse::<Estimator>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Estimator {
    /// Straight-through Gumbel-Softmax (Jang, Gu, Poole 2016): the gradient of the soft sample
    /// `softmax((logits + g) / tau)` drawn with the same noise `g` as the one-hot.
    #[default]
    StraightThrough,
    /// Gumbel-Rao (Paulus, Maddison, Krause 2021, [arXiv:2010.04838](https://arxiv.org/abs/2010.04838)):
    /// the straight-through gradient averaged over `samples` noise draws conditioned on the
    /// sampled category, a Rao-Blackwellization with the same mean and a lower variance. See
    /// [`gumbel_rao`].
    GumbelRao {
        /// Number of conditional noise draws averaged in the backward pass, `≥ 1`.
        samples: usize,
    },
    /// ReinMax (Liu, Dong, Liu, Yu, Gao, NeurIPS 2023,
    /// [arXiv:2304.08612](https://arxiv.org/abs/2304.08612)): a second-order (Heun) correction of
    /// straight-through; samples from `softmax(logits)` and needs `tau ≥ 1`. See [`reinmax`].
    ReinMax,
}

impl Estimator {
    /// Panics unless the estimator's parameters are valid (`samples ≥ 1` for Gumbel-Rao).
    #[track_caller]
    pub(crate) fn check(&self, op: &str) {
        if let Estimator::GumbelRao { samples: 0 } = self {
            panic!("{op}: Gumbel-Rao needs at least one sample, got samples = 0");
        }
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Estimator::StraightThrough => f.write_str("st"),
            Estimator::GumbelRao { samples } => write!(f, "gumbel-rao:{samples}"),
            Estimator::ReinMax => f.write_str("reinmax"),
        }
    }
}

impl FromStr for Estimator {
    type Err = String;

    /// Parses `st` (or `straight-through`), `gumbel-rao:K` with `K ≥ 1`, or `reinmax`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected st, gumbel-rao:K (K >= 1) or reinmax";
        match s {
            "st" | "straight-through" => Ok(Estimator::StraightThrough),
            "reinmax" => Ok(Estimator::ReinMax),
            _ => {
                let samples = s
                    .strip_prefix("gumbel-rao:")
                    .ok_or_else(|| format!("unknown estimator {s:?}: {expected}"))?;
                match samples.parse::<usize>() {
                    Ok(samples) if samples >= 1 => Ok(Estimator::GumbelRao { samples }),
                    _ => Err(format!("bad sample count {samples:?} in {s:?}: {expected}")),
                }
            }
        }
    }
}

/// Draws a one-hot categorical sample whose gradient is the Gumbel-Rao estimator.
///
/// Paulus, Maddison, Krause, *Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient
/// Estimator*, ICLR 2021, [arXiv:2010.04838](https://arxiv.org/abs/2010.04838).
///
/// Forward: `D`, the one-hot of `i = argmax(logits + g)`, an exact sample of `softmax(logits)`.
///
/// Backward: the gradient of `(1/K) Σ_s softmax((θ + G_s) / tau)`, where the `K` perturbations
/// `G_s` are drawn from the Gumbel law *conditioned on* `argmax(θ + G_s) = i` and are not
/// differentiated. With `E ~ Exp(1)` i.i.d. and `Z = Σ_j e^{θ_j}`:
///
/// - `θ_i + G_i = log Z − log E_i` (the maximum, Gumbel with location `log Z`);
/// - `θ_j + G_j = −log(E_j·e^{−θ_j} + E_i / Z) = θ_j − log(E_j + E_i·p_j)` for `j ≠ i`, with
///   `p = softmax(θ)` (the right-hand form is the one computed: it cannot overflow).
///
/// This is the straight-through Gumbel-Softmax gradient averaged over the noise given the sample:
/// the same expectation, and a variance that falls with `K` (`K = 1` is as noisy as
/// straight-through). The cost is `K` softmaxes in the forward pass of the surrogate.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities `θ`; `-inf` masks a category.
/// - `tau`: the temperature of the soft samples, finite and `> 0`.
/// - `samples`: `K`, the number of conditional draws, `≥ 1`.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// If `tau` is not finite and `> 0`, `samples` is 0, `dim` is outside `[-D, D)`, or the category
/// dimension is empty; in debug builds, on NaN logits or a fully masked row.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_rao;
///
/// let device = Device::default().autodiff();
/// # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device).require_grad();
/// let z = gumbel_rao(logits.clone(), 0.5, 10, -1);
/// assert_eq!(z.clone().sum().into_scalar::<f32>(), 1.0); // one-hot
/// let weights = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let grads = (z * weights).sum().backward();
/// let grad = logits.grad(&grads).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
/// assert!(grad.iter().sum::<f32>().abs() < 1e-5); // softmax gradients sum to 0
/// ```
pub fn gumbel_rao<const D: usize>(
    logits: Tensor<D>,
    tau: f64,
    samples: usize,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "gumbel_rao";
    Estimator::GumbelRao { samples }.check(OP);
    let dim = check_args(OP, &logits, tau, dim);
    let noise = gumbel_noise::<D>(logits.shape(), &logits.device());
    hard_sample(
        logits,
        noise,
        &Tau::Fixed(tau),
        Estimator::GumbelRao { samples },
        dim,
    )
}

/// Draws a one-hot categorical sample whose gradient is the ReinMax estimator.
///
/// Liu, Dong, Liu, Yu, Gao, *Bridging Discrete and Backpropagation: Straight-Through and
/// Beyond*, NeurIPS 2023, [arXiv:2304.08612](https://arxiv.org/abs/2304.08612).
///
/// Forward: `D`, a one-hot sample of `softmax(θ)` (by Gumbel-max: `tau` does not change the law).
///
/// Backward: with `p = softmax(θ)`, `π₁ = (softmax(θ / tau) + D) / 2` and
/// `J(q)·g = q ⊙ g − q·(qᵀg)` (the softmax Jacobian at `q`), the gradient in `θ` of a loss whose
/// gradient in `D` is `g` is
///
/// `2·J(π₁)·g − ½·J(p)·g`, centred (its mean over the categories subtracted).
///
/// The first-order straight-through estimator is `J(p)·g`; ReinMax adds a second-order term
/// (Heun's method) and removes the first-order bias on quadratic losses. Its authors use it with
/// `tau ≥ 1`; smaller temperatures are rejected.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities `θ`; `-inf` masks a category.
/// - `tau`: the temperature of `π₁`, finite and `≥ 1`.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// If `tau` is not finite and `≥ 1`, `dim` is outside `[-D, D)`, or the category dimension is
/// empty; in debug builds, on NaN logits or a fully masked row.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::reinmax;
///
/// let device = Device::default().autodiff();
/// # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
/// let logits = Tensor::<2>::from_floats([[0.5, -1.0, 2.0]], &device).require_grad();
/// let z = reinmax(logits.clone(), 1.0, -1);
/// assert_eq!(z.clone().sum().into_scalar::<f32>(), 1.0);
/// let grads = (z * Tensor::<2>::from_floats([[1.0, 0.0, -1.0]], &device)).sum().backward();
/// assert!(logits.grad(&grads).is_some());
/// ```
pub fn reinmax<const D: usize>(logits: Tensor<D>, tau: f64, dim: impl AsIndex) -> Tensor<D> {
    const OP: &str = "reinmax";
    check::reinmax_tau(OP, tau);
    let dim = check_args(OP, &logits, tau, dim);
    let noise = gumbel_noise::<D>(logits.shape(), &logits.device());
    hard_sample(logits, noise, &Tau::Fixed(tau), Estimator::ReinMax, dim)
}

/// [`reinmax`] with caller-given Gumbel noise: the sample is the one-hot of
/// `argmax(logits + noise)` (the noise is not differentiated).
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// As [`reinmax`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::reinmax_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.0], &device);
/// let z = reinmax_with_noise(logits, noise, 1.0, 0);
/// assert_eq!(z.into_data().try_into_vec_as::<f32>().unwrap(), [1.0, 0.0, 0.0]);
/// ```
pub fn reinmax_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "reinmax_with_noise";
    check::reinmax_tau(OP, tau);
    let dim = check_args(OP, &logits, tau, dim);
    check::same_shape(OP, &logits.shape(), &noise.shape());
    hard_sample(logits, noise, &Tau::Fixed(tau), Estimator::ReinMax, dim)
}

/// A hard sample, `one_hot(argmax(logits + noise))`, with the gradient of `estimator`, on checked
/// arguments.
pub(crate) fn hard_sample<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: &Tau,
    estimator: Estimator,
    dim: usize,
) -> Tensor<D> {
    match estimator {
        Estimator::StraightThrough => {
            let perturbed = logits + noise.detach();
            let soft = softmax(tau.divide(perturbed.clone()), dim);
            straight_through(one_hot_argmax(perturbed.detach(), dim), soft)
        }
        Estimator::GumbelRao { samples } => {
            let shape = logits.shape();
            let logits = to_rows(logits, dim);
            let noise = to_rows(noise, dim);
            let [rows, n] = logits.dims();
            let exponential = exponential_noise::<3>([samples, rows, n], &logits.device());
            from_rows(
                gumbel_rao_rows(logits, noise, exponential, tau),
                &shape,
                dim,
            )
        }
        Estimator::ReinMax => {
            let Tau::Fixed(tau) = tau else {
                unreachable!("ReinMax with a learned temperature is rejected by the layer's init");
            };
            let shape = logits.shape();
            let rows = reinmax_rows(to_rows(logits, dim), to_rows(noise, dim), *tau);
            from_rows(rows, &shape, dim)
        }
    }
}

/// Gumbel-Rao on `[rows, n]` logits, with the Gumbel noise `g` of the sample (`[rows, n]`) and the
/// exponential noise of the conditional draws (`[samples, rows, n]`).
pub(crate) fn gumbel_rao_rows(
    logits: Tensor<2>,
    g: Tensor<2>,
    exponential: Tensor<3>,
    tau: &Tau,
) -> Tensor<2> {
    let [rows, n] = logits.dims();
    let [samples, _, _] = exponential.dims();
    let theta = logits.clone().detach();
    let index = (theta.clone() + g.detach()).argmax(1); // [rows, 1]
    let ones = Tensor::<2>::ones([rows, 1], &theta.device());
    let hard = theta
        .zeros_like()
        .scatter(1, index.clone(), ones, IndexingUpdateOp::Assign); // [rows, n]

    // The conditional perturbed logits θ + G, [samples, rows, n], never differentiated.
    let e = exponential;
    let e_top = e
        .clone()
        .gather(2, index.unsqueeze_dim::<3>(0).repeat_dim(0, samples)); // [samples, rows, 1]
    let p = softmax(theta.clone(), 1).unsqueeze_dim::<3>(0); // [1, rows, n]
    let max = theta.clone().max_dim(1); // [rows, 1]
    let log_z = (theta.clone() - max.clone()).exp().sum_dim(1).log() + max; // [rows, 1]
    let top = log_z.unsqueeze_dim::<3>(0) - e_top.clone().log(); // [samples, rows, 1]
    let others = theta.unsqueeze_dim::<3>(0) - (e + e_top * p).log(); // [samples, rows, n]
    let is_top = hard
        .clone()
        .equal_elem(1.0)
        .unsqueeze_dim::<3>(0)
        .expand([samples, rows, n]);
    let perturbed = others.mask_where(is_top, top.expand([samples, rows, n]));

    // θ + G with the value of `perturbed` and the derivative of θ (masked logits stay -inf and
    // get no gradient).
    let live = finite_or_zero(logits).unsqueeze_dim::<3>(0); // [1, rows, n]
    let z = perturbed + (live.clone() - live.detach());
    let surrogate = softmax(tau.divide(z), 2).mean_dim(0).reshape([rows, n]); // [rows, n]
    straight_through(hard, surrogate)
}

/// ReinMax on `[rows, n]` logits with the Gumbel noise `g` of the sample.
pub(crate) fn reinmax_rows(logits: Tensor<2>, g: Tensor<2>, tau: f64) -> Tensor<2> {
    let theta = logits.clone().detach();
    let hard = one_hot_argmax(theta.clone() + g.detach(), 1); // a sample of softmax(θ)
    let p = softmax(theta.clone(), 1);
    let pi1 = (softmax(theta.div_scalar(tau), 1) + hard.clone()).div_scalar(2.0);
    // Centring the input centres the gradient: the derivative of x ↦ x − mean(x) is the
    // (symmetric) centring matrix.
    let live = finite_or_zero(logits);
    let centred = live.clone() - live.mean_dim(1);
    let surrogate = jacobian_surrogate(pi1, centred.clone()).mul_scalar(2.0)
        - jacobian_surrogate(p, centred).mul_scalar(0.5);
    straight_through(hard, surrogate)
}

/// `q ⊙ x − q·(qᵀx)` with `q` constant: its derivative in `x` is the softmax Jacobian at `q`,
/// `diag(q) − q·qᵀ`, so it passes `J(q)·g` back.
fn jacobian_surrogate(q: Tensor<2>, x: Tensor<2>) -> Tensor<2> {
    let q = q.detach();
    let qx = q.clone() * x;
    qx.clone() - q * qx.sum_dim(1)
}

/// The logits with `±inf` replaced by 0 (a masked category has no gradient, and `-inf − -inf`
/// would be NaN).
fn finite_or_zero<const D: usize>(logits: Tensor<D>) -> Tensor<D> {
    let infinite = logits.clone().is_inf();
    logits.mask_fill(infinite, 0.0)
}

/// `x` as `[rows, n]` with the categories (`dim`) last.
fn to_rows<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<2> {
    let x = if dim == D - 1 {
        x
    } else {
        x.swap_dims(dim, D - 1)
    };
    let n = x.dims()[D - 1];
    let rows = x.shape().num_elements() / n;
    x.reshape([rows, n]) // [rows, n_categories]
}

/// The inverse of [`to_rows`] for a tensor of the original `shape`.
fn from_rows<const D: usize>(x: Tensor<2>, shape: &Shape, dim: usize) -> Tensor<D> {
    let mut dims: [usize; D] = shape.dims();
    dims.swap(dim, D - 1);
    let x = x.reshape(dims); // the original shape with `dim` and the last swapped
    if dim == D - 1 {
        x
    } else {
        x.swap_dims(dim, D - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GumbelSoftmaxConfig;
    use burn::tensor::Device;

    fn softmax_host(x: &[f64]) -> Vec<f64> {
        let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }

    /// `J(q)·g = q ⊙ g − q·(qᵀg)`.
    fn jvp_host(q: &[f64], g: &[f64]) -> Vec<f64> {
        let qg: f64 = q.iter().zip(g).map(|(a, b)| a * b).sum();
        q.iter().zip(g).map(|(a, b)| a * b - a * qg).collect()
    }

    fn argmax(x: &[f64]) -> usize {
        (0..x.len()).fold(0, |best, j| if x[j] > x[best] { j } else { best })
    }

    fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f64> {
        let v = x.into_data().try_into_vec_as::<f32>().unwrap();
        v.into_iter().map(f64::from).collect()
    }

    const THETA: [[f64; 4]; 2] = [[0.5, -1.0, 2.0, 0.0], [1.5, 1.0, -0.5, 3.0]];
    const NOISE: [[f64; 4]; 2] = [[0.1, 0.2, -0.3, 2.9], [0.0, 2.5, 0.0, -0.4]];
    const WEIGHTS: [[f64; 4]; 2] = [[1.0, -2.0, 0.5, 3.0], [0.3, 0.0, -1.0, 2.0]];

    fn tensor(rows: &[[f64; 4]], device: &Device) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        Tensor::<1>::from_floats(flat.as_slice(), device).reshape([rows.len(), 4])
    }

    /// The gradient in the logits of `Σ weights · sample` and the sample.
    fn grad_of(
        sample: impl Fn(Tensor<2>) -> Tensor<2>,
        theta: &[[f64; 4]],
        device: &Device,
    ) -> (Vec<f64>, Vec<f64>) {
        let logits = tensor(theta, device).require_grad();
        let z = sample(logits.clone());
        let grads = (z.clone() * tensor(&WEIGHTS, device)).sum().backward();
        (to_vec(z), to_vec(logits.grad(&grads).unwrap()))
    }

    #[test]
    fn reinmax_gradient_is_the_second_order_formula() {
        let device = Device::default().autodiff();
        let tau = 1.5;
        let noise = tensor(&NOISE, &device);
        let (z, grad) = grad_of(
            |l| reinmax_with_noise(l, noise.clone(), tau, -1),
            &THETA,
            &device,
        );
        for r in 0..2 {
            let perturbed: Vec<f64> = (0..4).map(|k| THETA[r][k] + NOISE[r][k]).collect();
            let i = argmax(&perturbed);
            let d: Vec<f64> = (0..4).map(|k| f64::from(k == i)).collect();
            assert_eq!(&z[4 * r..4 * r + 4], d.as_slice());
            let p = softmax_host(&THETA[r]);
            let scaled: Vec<f64> = THETA[r].iter().map(|t| t / tau).collect();
            let pi1: Vec<f64> = softmax_host(&scaled)
                .iter()
                .zip(&d)
                .map(|(a, b)| (a + b) / 2.0)
                .collect();
            let a = jvp_host(&pi1, &WEIGHTS[r]);
            let b = jvp_host(&p, &WEIGHTS[r]);
            let raw: Vec<f64> = (0..4).map(|k| 2.0 * a[k] - 0.5 * b[k]).collect();
            let mean = raw.iter().sum::<f64>() / 4.0;
            for k in 0..4 {
                let expected = raw[k] - mean;
                // f32 arithmetic on values of order 1: 1e-5 is ~100 ulps.
                assert!(
                    (grad[4 * r + k] - expected).abs() < 1e-5,
                    "row {r} category {k}: {} vs {expected}",
                    grad[4 * r + k]
                );
            }
        }
    }

    #[test]
    fn gumbel_rao_gradient_averages_the_conditional_soft_samples() {
        let device = Device::default().autodiff();
        let tau = 0.7;
        let samples = 3;
        // Exponential draws E[s][r][k], fixed.
        let e: Vec<f64> = (0..samples * 2 * 4)
            .map(|j| 0.05 + (j as f64 * 0.37).fract() * 2.5)
            .collect();
        let e_tensor = Tensor::<1>::from_floats(
            e.iter().map(|&v| v as f32).collect::<Vec<_>>().as_slice(),
            &device,
        )
        .reshape([samples, 2, 4]);
        let noise = tensor(&NOISE, &device);
        let (z, grad) = grad_of(
            |l| gumbel_rao_rows(l, noise.clone(), e_tensor.clone(), &Tau::Fixed(tau)),
            &THETA,
            &device,
        );
        for r in 0..2 {
            let perturbed: Vec<f64> = (0..4).map(|k| THETA[r][k] + NOISE[r][k]).collect();
            let i = argmax(&perturbed);
            for k in 0..4 {
                assert_eq!(z[4 * r + k], f64::from(k == i));
            }
            let p = softmax_host(&THETA[r]);
            let log_z = THETA[r].iter().map(|t| t.exp()).sum::<f64>().ln();
            let mut expected = [0.0; 4];
            for s in 0..samples {
                let e = &e[(s * 2 + r) * 4..(s * 2 + r) * 4 + 4];
                let conditional: Vec<f64> = (0..4)
                    .map(|j| match j == i {
                        true => log_z - e[i].ln(),
                        false => -(e[j] * (-THETA[r][j]).exp() + e[i] / log_z.exp()).ln(),
                    })
                    .collect();
                // The conditional draw keeps the sampled category on top.
                assert_eq!(argmax(&conditional), i);
                assert!(
                    (conditional[0] - (THETA[r][0] - (e[0] + e[i] * p[0]).ln())).abs() < 1e-9
                        || i == 0
                );
                let scaled: Vec<f64> = conditional.iter().map(|c| c / tau).collect();
                let soft = softmax_host(&scaled);
                let g = jvp_host(&soft, &WEIGHTS[r]);
                for k in 0..4 {
                    expected[k] += g[k] / tau / samples as f64;
                }
            }
            for k in 0..4 {
                // f32 logs and softmaxes of values of order 1: 1e-5 absolute.
                assert!(
                    (grad[4 * r + k] - expected[k]).abs() < 1e-5,
                    "row {r} category {k}: {} vs {}",
                    grad[4 * r + k],
                    expected[k]
                );
            }
        }
    }

    #[test]
    fn masked_categories_get_no_gradient_and_are_never_drawn() {
        let device = Device::default().autodiff();
        let inf = f64::NEG_INFINITY;
        let theta = [[0.5, inf, 2.0, 0.0], [inf, 1.0, inf, 3.0]];
        device.seed(7);
        for (name, sample) in [
            (
                "gumbel-rao",
                Box::new(|l| gumbel_rao(l, 0.5, 4, -1)) as Box<dyn Fn(Tensor<2>) -> Tensor<2>>,
            ),
            ("reinmax", Box::new(|l| reinmax(l, 1.0, 1))),
        ] {
            for _ in 0..20 {
                let (z, grad) = grad_of(&sample, &theta, &device);
                for (j, (&zj, &gj)) in z.iter().zip(&grad).enumerate() {
                    assert!(gj.is_finite(), "{name}: gradient {j} is {gj}");
                    if theta[j / 4][j % 4] == inf {
                        assert_eq!(zj, 0.0, "{name}: masked category {j} drawn");
                        assert_eq!(gj, 0.0, "{name}: masked category {j} has gradient {gj}");
                    }
                }
            }
        }
    }

    #[test]
    fn estimators_on_another_dim_match_the_last_dim() {
        // The same rows laid out along dim 0: the samples and gradients are the transposes.
        let device = Device::default().autodiff();
        let noise = tensor(&NOISE, &device);
        let (z, grad) = grad_of(
            |l| reinmax_with_noise(l, noise.clone(), 2.0, 1),
            &THETA,
            &device,
        );
        let logits = tensor(&THETA, &device).transpose().require_grad();
        let zt = reinmax_with_noise(logits.clone(), noise.clone().transpose(), 2.0, 0);
        let grads = (zt.clone() * tensor(&WEIGHTS, &device).transpose())
            .sum()
            .backward();
        let zt = to_vec(zt.transpose());
        let gt = to_vec(logits.grad(&grads).unwrap().transpose());
        assert_eq!(z, zt);
        // The same arithmetic on the same values, only laid out differently: equal up to the
        // order of the row sums (a few ulps of gradients of order 1).
        for (a, b) in grad.iter().zip(&gt) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn parses_and_prints() {
        for (text, estimator) in [
            ("st", Estimator::StraightThrough),
            ("gumbel-rao:1", Estimator::GumbelRao { samples: 1 }),
            ("gumbel-rao:100", Estimator::GumbelRao { samples: 100 }),
            ("reinmax", Estimator::ReinMax),
        ] {
            assert_eq!(text.parse::<Estimator>().unwrap(), estimator);
            assert_eq!(estimator.to_string(), text);
        }
        assert_eq!(
            "straight-through".parse::<Estimator>().unwrap(),
            Estimator::StraightThrough
        );
        assert_eq!(
            "rao".parse::<Estimator>().unwrap_err(),
            "unknown estimator \"rao\": expected st, gumbel-rao:K (K >= 1) or reinmax"
        );
        assert_eq!(
            "gumbel-rao:x".parse::<Estimator>().unwrap_err(),
            "bad sample count \"x\" in \"gumbel-rao:x\": expected st, gumbel-rao:K (K >= 1) or reinmax"
        );
        assert!("gumbel-rao:0".parse::<Estimator>().is_err());
    }

    #[test]
    #[should_panic = "reinmax: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"]
    fn reinmax_below_one_panics() {
        let _ = reinmax(tensor(&THETA, &Device::default()), 0.5, -1);
    }

    #[test]
    #[should_panic = "gumbel_rao: Gumbel-Rao needs at least one sample, got samples = 0"]
    fn gumbel_rao_without_samples_panics() {
        let _ = gumbel_rao(tensor(&THETA, &Device::default()), 0.5, 0, -1);
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: the estimator reinmax is for hard (one-hot) samples: set hard = true, got hard = false"]
    fn soft_layer_with_an_estimator_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_estimator(Estimator::ReinMax)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"]
    fn reinmax_layer_below_one_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_tau(0.5)
            .with_estimator(Estimator::ReinMax)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.9"]
    fn reinmax_layer_annealed_below_one_panics() {
        let device = Device::default();
        let layer = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_estimator(Estimator::ReinMax)
            .init(&device);
        let _ = layer.forward_with_tau(tensor(&THETA, &device), 0.9);
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: ReinMax's gradient does not reach the temperature"]
    fn reinmax_with_learnable_tau_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_learnable_tau(true)
            .with_estimator(Estimator::ReinMax)
            .init(&Device::default());
    }
}
