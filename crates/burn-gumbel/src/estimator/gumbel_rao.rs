//! The Gumbel-Rao estimator: the straight-through gradient averaged over noise drawn given the
//! sample.

use burn::tensor::activation::softmax;
use burn::tensor::{AsIndex, IndexingUpdateOp, Tensor};

use crate::check;
use crate::noise::{exponential_noise, sampler_gumbel_noise};
use crate::ops::{
    Tau, finite_or_zero, from_rows, in_f32, masked_rows, straight_through, to_f32, to_rows,
};

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
/// On flex the whole estimator is one fused kernel: the forward pass is the hard sample's, and the
/// backward pass regenerates the `K` conditional draws from the forward pass's counters, row by
/// row in cache, rather than keeping a `[K, ..]` tensor of them. [`gumbel_rao_with_noise`] is the
/// tensor-op path.
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
/// If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
/// half-precision logits), `samples` is 0, `dim` is outside `[-D, D)`, or the category dimension is
/// empty; in debug builds, on NaN logits. A fully masked row gives zeros and a zero gradient, as
/// in [`gumbel_softmax`](crate::gumbel_softmax).
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
    check::samples(OP, samples);
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    #[cfg(feature = "flex")]
    if let Some(sample) = crate::fused::try_gumbel_rao(&logits, &Tau::Fixed(tau), samples, dim) {
        return sample;
    }
    let noise = sampler_gumbel_noise(&logits, dim);
    in_f32(logits, |logits| {
        sample(logits, to_f32(noise), &Tau::Fixed(tau), samples, dim)
    })
}

/// [`gumbel_rao`] with caller-given Gumbel noise for the sample: the one-hot of
/// `argmax(logits + noise)` (the noise is not differentiated); the conditional draws of the
/// gradient are fresh. Always the tensor-op path (the fused kernel on flex draws its own noise),
/// so also a reference for it.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// As [`gumbel_rao`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_rao_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.0], &device);
/// let z = gumbel_rao_with_noise(logits, noise, 0.5, 4, 0);
/// assert_eq!(z.into_data().try_into_vec_as::<f32>().unwrap(), [1.0, 0.0, 0.0]);
/// ```
pub fn gumbel_rao_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    samples: usize,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "gumbel_rao_with_noise";
    check::samples(OP, samples);
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    in_f32(logits, |logits| {
        sample(logits, to_f32(noise), &Tau::Fixed(tau), samples, dim)
    })
}

/// A one-hot sample of `argmax(logits + noise)` with the Gumbel-Rao gradient of `samples`
/// conditional draws, on checked arguments.
pub(crate) fn sample<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: &Tau,
    samples: usize,
    dim: usize,
) -> Tensor<D> {
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
    // A fully masked row computes on zeros (finite throughout; its gradient is zeroed by
    // `finite_or_zero` below) and has no sample.
    let masked = masked_rows(logits.clone(), 1);
    let theta = logits.clone().detach().mask_fill(masked.clone(), 0.0);
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
    straight_through(hard.mask_fill(masked, 0.0), surrogate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::testing::*;
    use burn::tensor::Device;

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
    #[should_panic = "gumbel_rao: Gumbel-Rao needs at least one sample, got samples = 0"]
    fn gumbel_rao_without_samples_panics() {
        let _ = gumbel_rao(tensor(&THETA, &Device::default()), 0.5, 0, -1);
    }
}
