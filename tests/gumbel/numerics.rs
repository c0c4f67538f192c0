//! Masked categories and extreme temperatures and logits: no NaN, no inf, ever.

use burn::tensor::{Device, Tensor, TensorData};
use burn_gumbel::{
    Estimator, GumbelSoftmaxConfig, Key, gumbel_rao, gumbel_softmax, gumbel_softmax_with_key,
    gumbel_softmax_with_noise, reinmax,
};

use crate::support::{host_uniform, tensor2, values};

device_tests!(
    masked_categories_get_zero_and_finite_gradients,
    fully_masked_rows_are_zeros_on_every_path,
    extremes_stay_finite,
    many_categories_on_the_last_axis,
    many_categories_on_a_strided_axis,
);

const ROWS: usize = 64;
const K: usize = 6;

/// Outputs and logit gradients of `Σ y · w`, with `y = gumbel_softmax(logits, tau, hard)`.
fn forward_backward(device: &Device, logits: &[f32], tau: f64, hard: bool) -> (Vec<f32>, Vec<f32>) {
    let device = device.clone().autodiff();
    let x = tensor2(logits.to_vec(), ROWS, K, &device).require_grad();
    let w = tensor2(host_uniform(ROWS * K, 61, -1.0, 1.0), ROWS, K, &device);
    let y = gumbel_softmax(x.clone(), tau, hard, -1);
    let grads = (y.clone() * w).sum().backward();
    (
        values(y),
        values(x.grad(&grads).expect("the logits get a gradient")),
    )
}

/// Panics unless every output and every gradient is finite.
fn assert_finite(y: &[f32], grad: &[f32], tau: f64, hard: bool) {
    assert!(
        y.iter().all(|v| v.is_finite()),
        "tau {tau}, hard {hard}: output"
    );
    assert!(
        grad.iter().all(|v| v.is_finite()),
        "tau {tau}, hard {hard}: gradient"
    );
}

fn masked_categories_get_zero_and_finite_gradients(device: &Device) {
    device.seed(62);
    // Categories 1 and 4 are masked in every row; the others are spread over [-5, 5].
    let mut logits = host_uniform(ROWS * K, 63, -5.0, 5.0);
    for r in 0..ROWS {
        logits[r * K + 1] = f32::NEG_INFINITY;
        logits[r * K + 4] = f32::NEG_INFINITY;
    }
    for tau in [1e-3, 1.0, 1e3] {
        for hard in [false, true] {
            let (y, grad) = forward_backward(device, &logits, tau, hard);
            for r in 0..ROWS {
                for k in [1, 4] {
                    assert_eq!(y[r * K + k], 0.0, "tau {tau}, hard {hard}: masked output");
                    assert_eq!(
                        grad[r * K + k],
                        0.0,
                        "tau {tau}, hard {hard}: masked gradient"
                    );
                }
            }
            assert_finite(&y, &grad, tau, hard);
            // The unmasked categories do get gradient: not everything is silently zero. (At
            // tau = 1e-3 the soft sample saturates to an exact one-hot in f32, whose Jacobian
            // y(1 - y) is exactly 0: no gradient is then the right answer.)
            if tau >= 1.0 {
                assert!(
                    grad.iter().any(|&g| g != 0.0),
                    "tau {tau}, hard {hard}: no gradient"
                );
            }
        }
    }
}

/// A one-hot sampler under test: its name and the sample of `[b, k, inner]` logits along `dim`.
type Sampler = (&'static str, fn(Tensor<3>, usize) -> Tensor<3>);

fn fully_masked_rows_are_zeros_on_every_path(device: &Device) {
    // Every one-hot sampler, soft and hard, on the layouts that pick each engine: categories
    // last (short rows: the chunk-wide loops; long rows: row by row), and strided with many
    // positions (the column kernel) or few (gathered into rows). Rows 2, 7, 12, … are masked
    // entirely: their sample and gradient must be zeros, every other row a sample as usual.
    let samplers: [Sampler; 9] = [
        ("soft", |x, dim| gumbel_softmax(x, 0.7, false, dim)),
        ("hard", |x, dim| gumbel_softmax(x, 0.7, true, dim)),
        ("keyed soft", |x, dim| {
            gumbel_softmax_with_key(x, Key::new(11), 0.7, false, dim)
        }),
        ("keyed hard", |x, dim| {
            gumbel_softmax_with_key(x, Key::new(11), 0.7, true, dim)
        }),
        ("given noise", |x, dim| {
            let noise = x.zeros_like();
            gumbel_softmax_with_noise(x, noise, 0.7, false, dim)
        }),
        ("gumbel-rao", |x, dim| gumbel_rao(x, 3, 0.7, dim)),
        ("reinmax", |x, dim| reinmax(x, 1.5, dim)),
        ("layer, learned tau", |x, dim| {
            GumbelSoftmaxConfig::new()
                .with_tau(0.7)
                .with_learnable_tau(true)
                .with_dim(dim as isize)
                .init(&x.device())
                .forward(x)
        }),
        ("layer, gumbel-rao", |x, dim| {
            GumbelSoftmaxConfig::new()
                .with_hard(true)
                .with_estimator(Estimator::GumbelRao { samples: 2 })
                .with_dim(dim as isize)
                .init(&x.device())
                .forward(x)
        }),
    ];
    // [b, k, inner] and the category dim: (2, 6, 1) and (2, 100, 1) along the last axis as
    // [b * inner, k]; (2, 6, 20) and (2, 100, 3) strided along dim 1.
    let layouts = [(8, 6, 1), (8, 100, 1), (2, 6, 20), (2, 100, 3)];
    let device = device.clone().autodiff();
    device.seed(68);
    for (b, k, inner) in layouts {
        let rows = b * inner;
        let masked = |row: usize| row % 5 == 2;
        // Element (i, j, p) of row i · inner + p, category j.
        let index = |row: usize, j: usize| (row / inner) * k * inner + j * inner + row % inner;
        let mut logits = host_uniform(b * k * inner, 69, -3.0, 3.0);
        for row in (0..rows).filter(|&row| masked(row)) {
            for j in 0..k {
                logits[index(row, j)] = f32::NEG_INFINITY;
            }
        }
        let weights = host_uniform(b * k * inner, 70, -1.0, 1.0);
        let (shape, dim) = match inner {
            1 => ([1, b, k], 2),
            _ => ([b, k, inner], 1),
        };
        for (name, sampler) in samplers {
            let hard =
                !name.contains("soft") && name != "given noise" && name != "layer, learned tau";
            let x = Tensor::<3>::from_data(TensorData::new(logits.clone(), shape), &device)
                .require_grad();
            let w = Tensor::<3>::from_data(TensorData::new(weights.clone(), shape), &device);
            let y = sampler(x.clone(), dim);
            let grads = (y.clone() * w).sum().backward();
            let (y, grad) = (values(y), values(x.grad(&grads).unwrap()));
            let at = format!("{name}, [{b}, {k}, {inner}]");
            for row in 0..rows {
                let ys: Vec<f32> = (0..k).map(|j| y[index(row, j)]).collect();
                let gs: Vec<f32> = (0..k).map(|j| grad[index(row, j)]).collect();
                if masked(row) {
                    assert!(ys.iter().all(|&v| v == 0.0), "{at}: row {row}: {ys:?}");
                    assert!(
                        gs.iter().all(|&g| g == 0.0),
                        "{at}: row {row}'s gradient: {gs:?}"
                    );
                    continue;
                }
                assert!(
                    gs.iter().all(|g| g.is_finite()),
                    "{at}: row {row}'s gradient"
                );
                let sum: f32 = ys.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{at}: row {row} sums to {sum}");
                if hard {
                    assert_eq!(
                        ys.iter().filter(|&&v| v == 1.0).count(),
                        1,
                        "{at}: row {row}"
                    );
                }
            }
        }
    }
}

fn extremes_stay_finite(device: &Device) {
    device.seed(64);
    // Logits at ±80 (and spread in between), temperatures from 1e-3 to 1e3.
    let mut logits = host_uniform(ROWS * K, 65, -80.0, 80.0);
    for r in 0..ROWS {
        logits[r * K] = 80.0;
        logits[r * K + 1] = -80.0;
    }
    for tau in [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3] {
        for hard in [false, true] {
            let (y, grad) = forward_backward(device, &logits, tau, hard);
            assert_finite(&y, &grad, tau, hard);
            for row in y.chunks(K) {
                let sum: f32 = row.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5,
                    "tau {tau}, hard {hard}: row sums to {sum}"
                );
            }
        }
    }
}

fn many_categories_on_the_last_axis(device: &Device) {
    // 100,000 categories along the last axis: past the 65,532 elements beyond which strided
    // reductions go wrong on Mesa's software Vulkan driver (docs/known-issues.md). The default
    // layout must not be affected: each row sums to 1 and the hard sample is one-hot.
    let k = 100_000;
    device.seed(66);
    let logits = tensor2(host_uniform(2 * k, 67, -1.0, 1.0), 2, k, device);
    let soft = values(gumbel_softmax(logits.clone(), 1.0, false, -1));
    for row in soft.chunks(k) {
        // 100,000 terms summed in f64 on the host: the error is the device's alone, a few ulp of
        // f32 per term relative to a total of 1, far below 1e-4.
        let sum: f64 = row.iter().map(|&p| f64::from(p)).sum();
        assert!((sum - 1.0).abs() < 1e-4, "row sums to {sum}");
    }
    let hard = values(gumbel_softmax(logits, 1.0, true, -1));
    for row in hard.chunks(k) {
        assert_eq!(row.iter().filter(|&&v| v == 1.0).count(), 1);
        assert_eq!(row.iter().filter(|&&v| v == 0.0).count(), k - 1);
    }
}

fn many_categories_on_a_strided_axis(device: &Device) {
    // Long rows of categories along dim 1 of [1, k, 2], through the fused kernels' strided
    // paths (flex's column kernels, wgpu's lane kernel) and ndarray's tensor ops: one category far
    // above the others is the hard sample of both positions, and each position's soft sample sums
    // to 1. k = 70,000 is past the 65,532 elements where Burn's reductions go wrong on Mesa's
    // software Vulkan driver; on wgpu, k = 32,767, the longest strided row the lane kernel gets
    // right on that driver, whose shader loops stop after about 65,535 iterations in all
    // (docs/known-issues.md; 32,769 fails there).
    let (k, inner) = match device.clone().as_dispatch() {
        #[cfg(feature = "wgpu")]
        burn::backend::DispatchDevice::Cube(_) => (32_767, 2),
        _ => (70_000, 2),
    };
    let top = k - 999;
    device.seed(68);
    let mut theta = host_uniform(k * inner, 69, -1.0, 1.0);
    for p in 0..inner {
        theta[top * inner + p] = 60.0; // e^60 times any other category: drawn every time
    }
    let logits = Tensor::<3>::from_data(TensorData::new(theta, [1, k, inner]), device);
    let hard = values(gumbel_softmax(logits.clone(), 1.0, true, 1));
    for p in 0..inner {
        let ones: Vec<usize> = (0..k).filter(|&j| hard[j * inner + p] == 1.0).collect();
        assert_eq!(ones, [top], "position {p}: the one-hot of category {top}");
    }
    let soft = values(gumbel_softmax(logits, 1.0, false, 1));
    for p in 0..inner {
        // Summed in f64 on the host; the device's values are within a few f32 ulps of theirs.
        let sum: f64 = (0..k).map(|j| f64::from(soft[j * inner + p])).sum();
        assert!((sum - 1.0).abs() < 1e-4, "position {p} sums to {sum}");
    }
}
