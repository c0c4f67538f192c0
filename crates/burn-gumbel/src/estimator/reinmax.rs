//! The ReinMax estimator: a second-order correction of straight-through.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use crate::ops::{
    finite_or_zero, from_rows, masked_rows, one_hot_argmax, straight_through, to_rows,
};

/// A one-hot sample of `argmax(logits + noise)` with the ReinMax gradient, on checked arguments.
pub(crate) fn hard_sample<const D: usize>(
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
    use super::hard_sample;
    use crate::estimator::testing::*;
    use burn::tensor::Device;

    #[test]
    fn reinmax_gradient_is_the_second_order_formula() {
        let device = Device::default().autodiff();
        let tau = 1.5;
        let noise = tensor(&NOISE, &device);
        let (z, grad) = grad_of(|l| hard_sample(l, noise.clone(), tau, 1), &THETA, &device);
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
        let (z, grad) = grad_of(|l| hard_sample(l, noise.clone(), 2.0, 1), &THETA, &device);
        let logits = tensor(&THETA, &device).transpose().require_grad();
        let zt = hard_sample(logits.clone(), noise.clone().transpose(), 2.0, 0);
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
}
