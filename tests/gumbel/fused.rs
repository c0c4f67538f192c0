//! On flex, `gumbel_softmax` with fresh noise runs the fused kernel; the tensor-op path
//! (`gumbel_softmax_with_noise` with `gumbel_noise`) is the reference it must agree with in law,
//! forward and backward. On the other backends both calls take the tensor-op path.

use burn::tensor::{Device, FloatDType, Tensor};
use burn_gumbel::{
    gumbel_noise, gumbel_rao, gumbel_rao_with_noise, gumbel_softmax, gumbel_softmax_with_noise,
};

use crate::support::{column_moments, tensor2, values};

device_tests!(
    fresh_noise_path_agrees_with_the_reference_in_law,
    channels_first_agrees_with_the_reference_in_law,
    half_logits_give_the_f32_sample_rounded,
    gumbel_rao_agrees_with_the_reference_in_law,
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

/// `v` rounded to the half dtype `dtype` (to nearest, ties to even) and back to f32.
fn round_to(dtype: FloatDType, v: f32) -> f32 {
    match dtype {
        FloatDType::F16 => burn::tensor::f16::from_f32(v).to_f32(),
        _ => burn::tensor::bf16::from_f32(v).to_f32(),
    }
}

fn half_logits_give_the_f32_sample_rounded(device: &Device) {
    // Half-precision logits are computed in f32 (widened inside the fused kernel's driver on
    // flex, cast around the tensor ops elsewhere): with the same seed, the sample and the gradient
    // are the f32 ones rounded to the half dtype, bit for bit. Categories last and channels first;
    // logits and loss weights exact in both half dtypes. The dtypes the device does not hold are
    // skipped.
    let device = device.clone().autodiff();
    let logits: Vec<f32> = (0..4 * 7 * 15)
        .map(|i| ((i * 13) % 11) as f32 * 0.5 - 2.5)
        .collect();
    let weights: Vec<f32> = (0..4 * 7 * 15)
        .map(|i| ((i * 5) % 7) as f32 - 3.0)
        .collect();
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        if !device.supports_dtype(dtype) {
            continue;
        }
        for (shape, dim) in [([60, 7, 1, 1], 1), ([4, 7, 5, 3], 1), ([4, 3, 5, 7], 3)] {
            for hard in [false, true] {
                // The sample and gradient of logits in `precision`, rounded to `dtype`.
                let run = |precision: FloatDType| {
                    device.seed(803);
                    let x = Tensor::<1>::from_floats(logits.as_slice(), &device)
                        .reshape(shape)
                        .cast(precision)
                        .detach()
                        .require_grad();
                    let w = Tensor::<1>::from_floats(weights.as_slice(), &device)
                        .reshape(shape)
                        .cast(precision);
                    let y = gumbel_softmax(x.clone(), 0.7, hard, dim);
                    assert_eq!(
                        y.dtype(),
                        precision.into(),
                        "the sample keeps the logits' dtype"
                    );
                    let grads = (y.clone() * w).sum().backward();
                    let grad = x.grad(&grads).unwrap();
                    // Rounded on the host: on a GPU that holds f16, Burn's fusion computed a
                    // cast to f16 and back in f32, dropping the rounding (an H200, 2026-12-04).
                    let rounded = |t: Tensor<4>| {
                        let v = values(t.cast(FloatDType::F32));
                        v.into_iter()
                            .map(|v| round_to(dtype, v))
                            .collect::<Vec<f32>>()
                    };
                    (rounded(y), rounded(grad))
                };
                let (y_half, g_half) = run(dtype);
                let (y_f32, g_f32) = run(FloatDType::F32);
                let context = format!("{dtype:?}, {shape:?} along {dim}, hard {hard}");
                assert_eq!(y_half, y_f32, "{context}: sample");
                assert_eq!(g_half, g_f32, "{context}: gradient");
                assert!(
                    g_half.iter().any(|&g| g != 0.0),
                    "{context}: a gradient to compare"
                );
            }
        }
    }
}

fn gumbel_rao_agrees_with_the_reference_in_law(device: &Device) {
    // On flex `gumbel_rao` runs the fused kernel (the conditional draws recomputed in the backward
    // pass from counters); `gumbel_rao_with_noise` is the tensor-op reference. Same law of the
    // one-hot sample and of the gradient of Σ w·z, categories last ([100,000, 5]) and on axis 1
    // of [400, 5, 16, 16] (102,400 rows).
    let device = device.clone().autodiff();
    device.seed(803);
    let (tau, samples) = (0.5, 4);
    let weights = tensor2(vec![1.0, -2.0, 0.5, 3.0, 0.0], 1, 5, &device);
    let run = |fresh: bool, channels_first: bool| {
        let (batch, side) = (400, 16);
        let rows = match channels_first {
            true => batch * side * side,
            false => 100_000,
        };
        let logits = tensor2(LOGITS.to_vec(), 1, 5, &device).repeat_dim(0, rows); // [rows, 5]
        let sample = |logits: Tensor<2>, dim: usize| -> (Vec<f32>, Vec<f32>) {
            let logits = logits.detach().require_grad();
            let z: Tensor<2> = match fresh {
                true => gumbel_rao(logits.clone(), samples, tau, dim),
                false => {
                    let noise = gumbel_noise(logits.shape(), &device);
                    gumbel_rao_with_noise(logits.clone(), noise, samples, tau, dim)
                }
            };
            let grads = (z.clone() * weights.clone()).sum().backward();
            (values(z), values(logits.grad(&grads).unwrap()))
        };
        if !channels_first {
            return sample(logits, 1);
        }
        // The same rows as a [batch, 5, side, side] map, sampled along axis 1, back as rows.
        let map = logits
            .reshape([batch, side, side, 5])
            .permute([0, 3, 1, 2])
            .detach()
            .require_grad();
        let z = match fresh {
            true => gumbel_rao(map.clone(), samples, tau, 1),
            false => {
                let noise = gumbel_noise(map.shape(), &device);
                gumbel_rao_with_noise(map.clone(), noise, samples, tau, 1)
            }
        };
        let w = weights
            .clone()
            .reshape([1, 5, 1, 1])
            .expand([batch, 5, side, side]);
        let grads = (z.clone() * w).sum().backward();
        let rows = |y: Tensor<4>| y.permute([0, 2, 3, 1]).reshape([batch * side * side, 5]);
        (values(rows(z)), values(rows(map.grad(&grads).unwrap())))
    };
    for channels_first in [false, true] {
        let (z, g) = run(true, channels_first);
        for row in z.chunks(5) {
            assert_eq!(row.iter().sum::<f32>(), 1.0, "one-hot rows");
        }
        let context = format!("gumbel-rao, channels first {channels_first}");
        assert_same_law((z, g), run(false, channels_first), &context);
    }
}
