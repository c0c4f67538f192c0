//! On flex, `gumbel_softmax` with fresh noise runs the fused kernel; the tensor-op path
//! (`gumbel_softmax_with_noise` with `gumbel_noise`) is the reference it must agree with in law,
//! forward and backward. On the other backends both calls take the tensor-op path.

use burn::tensor::{Device, Tensor};
use burn_gumbel::{gumbel_noise, gumbel_softmax, gumbel_softmax_with_noise};

use crate::support::{column_moments, tensor2, values};

device_tests!(
    fresh_noise_path_agrees_with_the_reference_in_law,
    channels_first_agrees_with_the_reference_in_law,
);

const LOGITS: [f32; 5] = [0.5, -1.0, 1.5, 0.0, -0.3];

/// Asserts that two runs' samples and gradients (`[rows, 5]` values each) have the same mean per
/// category: two independent means of 100,000 draws or more, within 5 combined standard errors.
fn assert_same_law(a: (Vec<f32>, Vec<f32>), b: (Vec<f32>, Vec<f32>), context: &str) {
    for (name, a, b) in [("sample", &a.0, &b.0), ("gradient", &a.1, &b.1)] {
        for (k, ((ma, sa), (mb, sb))) in mean_se(a).into_iter().zip(mean_se(b)).enumerate() {
            let tolerance = 5.0 * (sa * sa + sb * sb).sqrt();
            assert!(
                (ma - mb).abs() < tolerance,
                "{context}, {name} {k}: {ma} vs {mb} (tolerance {tolerance})"
            );
        }
    }
}

/// Per-category mean and standard error of `[rows, 5]` values.
fn mean_se(v: &[f32]) -> Vec<(f64, f64)> {
    column_moments(v, 5)
        .into_iter()
        .map(|m| (m.mean, m.se))
        .collect()
}

fn fresh_noise_path_agrees_with_the_reference_in_law(device: &Device) {
    let device = device.clone().autodiff();
    let n = 100_000;
    device.seed(801);
    let weights = tensor2(vec![1.0, -2.0, 0.5, 3.0, 0.0], 1, 5, &device);
    // Soft and hard samples and the gradients of Σ w·y, by both paths.
    for (tau, hard) in [(0.5, false), (1.0, true)] {
        let run = |fresh: bool| {
            let logits = tensor2(LOGITS.to_vec(), 1, 5, &device)
                .repeat_dim(0, n)
                .detach()
                .require_grad();
            let y: Tensor<2> = match fresh {
                true => gumbel_softmax(logits.clone(), tau, hard, -1),
                false => {
                    let noise = gumbel_noise(logits.shape(), &device);
                    gumbel_softmax_with_noise(logits.clone(), noise, tau, hard, -1)
                }
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            (values(y), values(logits.grad(&grads).unwrap()))
        };
        let context = format!("tau {tau}, hard {hard}");
        assert_same_law(run(true), run(false), &context);
    }
}

fn channels_first_agrees_with_the_reference_in_law(device: &Device) {
    // The categories on axis 1 of [batch, 5, 16, 16] (a convolutional feature map, as in a
    // discrete VAE's codes): the fused path transposes them into rows, the reference works on
    // the strided axis. 400 maps of 256 positions: 102,400 draws per category.
    let device = device.clone().autodiff();
    device.seed(802);
    let (batch, side) = (400, 16);
    let weights = tensor2(vec![1.0, -2.0, 0.5, 3.0, 0.0], 1, 5, &device)
        .reshape([1, 5, 1, 1])
        .expand([batch, 5, side, side]);
    // [batch · side², 5] rows of values back from [batch, 5, side, side].
    let rows = |y: Tensor<4>| y.permute([0, 2, 3, 1]).reshape([batch * side * side, 5]);
    for (tau, hard) in [(0.5, false), (1.0, true)] {
        let run = |fresh: bool| {
            let logits = tensor2(LOGITS.to_vec(), 1, 5, &device)
                .reshape([1, 5, 1, 1])
                .expand([batch, 5, side, side])
                .detach()
                .require_grad();
            let y: Tensor<4> = match fresh {
                true => gumbel_softmax(logits.clone(), tau, hard, 1),
                false => {
                    let noise = gumbel_noise(logits.shape(), &device);
                    gumbel_softmax_with_noise(logits.clone(), noise, tau, hard, 1)
                }
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let grad = logits.grad(&grads).unwrap();
            (values(rows(y)), values(rows(grad)))
        };
        let (y_fresh, g_fresh) = run(true);
        let context = format!("channels first, tau {tau}, hard {hard}");
        assert_same_law((y_fresh.clone(), g_fresh), run(false), &context);
        if hard {
            for row in y_fresh.chunks(5) {
                assert_eq!(row.iter().sum::<f32>(), 1.0);
            }
        }
    }
}
