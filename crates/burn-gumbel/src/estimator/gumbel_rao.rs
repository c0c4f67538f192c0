//! The Gumbel-Rao estimator: the straight-through gradient averaged over noise drawn given the
//! sample.

use burn::tensor::activation::softmax;
use burn::tensor::{IndexingUpdateOp, Tensor};

use crate::key::Key;
use crate::noise::Noise;
use crate::ops::{Tau, finite_or_zero, from_rows, masked_rows, straight_through, to_rows};

/// A one-hot sample of `argmax(logits + noise)` with the Gumbel-Rao gradient of `samples`
/// conditional draws, on checked arguments: under `key`, the fused kernel's draws (the same on
/// every device), else fresh ones from the device's generator.
pub(crate) fn hard_sample<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: &Tau,
    samples: usize,
    key: Option<Key>,
    dim: usize,
) -> Tensor<D> {
    let shape = logits.shape();
    let exponential =
        Noise::<D>::of_key(key).conditional_exponentials(&shape, dim, samples, &logits.device());
    let logits = to_rows(logits, dim);
    let noise = to_rows(noise, dim);
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
}
