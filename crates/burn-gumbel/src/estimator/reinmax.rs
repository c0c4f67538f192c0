//! The ReinMax estimator: a second-order correction of straight-through.

use burn::tensor::activation::softmax;
use burn::tensor::{AsIndex, Tensor};

use crate::check;
use crate::noise::sampler_gumbel_noise;
use crate::ops::{
    finite_or_zero, from_rows, in_f32, masked_rows, one_hot_argmax, straight_through, to_f32,
    to_rows,
};

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
/// empty; in debug builds, on NaN logits. A fully masked row gives zeros and a zero gradient, as
/// in [`gumbel_softmax`](crate::gumbel_softmax).
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
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    let noise = sampler_gumbel_noise(&logits, dim);
    in_f32(logits, |logits| sample(logits, to_f32(noise), tau, dim))
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
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    in_f32(logits, |logits| sample(logits, to_f32(noise), tau, dim))
}

/// A one-hot sample of `argmax(logits + noise)` with the ReinMax gradient, on checked arguments.
pub(crate) fn sample<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    dim: usize,
) -> Tensor<D> {
    let shape = logits.shape();
    let rows = reinmax_rows(to_rows(logits, dim), to_rows(noise, dim), tau);
    from_rows(rows, &shape, dim)
}

/// ReinMax on `[rows, n]` logits with the Gumbel noise `g` of the sample.
pub(crate) fn reinmax_rows(logits: Tensor<2>, g: Tensor<2>, tau: f64) -> Tensor<2> {
    // A fully masked row computes on zeros (finite throughout; its gradient is zeroed by
    // `finite_or_zero` below) and has no sample.
    let masked = masked_rows(logits.clone(), 1);
    let theta = logits.clone().detach().mask_fill(masked.clone(), 0.0);
    let hard = one_hot_argmax(theta.clone() + g.detach(), 1).mask_fill(masked, 0.0); // a sample of softmax(θ)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::testing::*;
    use burn::tensor::Device;

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
    #[should_panic = "reinmax: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"]
    fn reinmax_below_one_panics() {
        let _ = reinmax(tensor(&THETA, &Device::default()), 0.5, -1);
    }
}
