//! Gradient estimators of hard samples: the law of the one-hot sample, and the mean and variance
//! of the gradients against straight-through and the exact gradient.

use burn::tensor::{Device, Tensor};
use burn_gumbel::{Estimator, GumbelSoftmaxConfig, gumbel_rao, gumbel_softmax, reinmax};

use crate::support::{column_moments, tensor2, values};

device_tests!(
    one_hot_samples_follow_the_probabilities,
    gumbel_rao_keeps_the_straight_through_mean_with_less_variance,
    reinmax_is_unbiased_for_linear_losses_at_tau_one,
    the_functions_and_the_layer_draw_the_same_noise,
);

const LOGITS: [f32; 4] = [0.4, -0.8, 1.2, 0.0];
const WEIGHTS: [f32; 4] = [1.0, -2.0, 0.5, 3.0];

fn probs() -> Vec<f64> {
    let e: Vec<f64> = LOGITS.iter().map(|&l| (l as f64).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// `rows` copies of [`LOGITS`] as a leaf to differentiate, and the per-row gradients of
/// `Σ WEIGHTS · sample(logits)` with the samples, `[rows, 4]` each, on the host.
fn per_row_gradients(
    sample: impl Fn(Tensor<2>) -> Tensor<2>,
    rows: usize,
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let device = device.clone().autodiff();
    let logits = tensor2(LOGITS.to_vec(), 1, 4, &device)
        .repeat_dim(0, rows)
        .detach()
        .require_grad();
    let z = sample(logits.clone());
    let weights = tensor2(WEIGHTS.to_vec(), 1, 4, &device);
    let grads = (z.clone() * weights).sum().backward();
    (values(z), values(logits.grad(&grads).unwrap()))
}

/// Per-category mean and standard error of the mean of `[rows, 4]` values, and the total
/// variance (the trace of the covariance).
fn stats(v: &[f32]) -> ([f64; 4], [f64; 4], f64) {
    let columns = column_moments(v, 4);
    let mean = std::array::from_fn(|k| columns[k].mean);
    let se = std::array::from_fn(|k| columns[k].se);
    (mean, se, columns.iter().map(|c| c.variance).sum())
}

fn one_hot_samples_follow_the_probabilities(device: &Device) {
    let n = 100_000;
    device.seed(601);
    let p = probs();
    type Sampler = Box<dyn Fn(Tensor<2>) -> Tensor<2>>;
    let samplers: [(&str, Sampler); 2] = [
        ("gumbel-rao:4", Box::new(|l| gumbel_rao(l, 4, 0.5, -1))),
        ("reinmax", Box::new(|l| reinmax(l, 1.5, -1))),
    ];
    for (name, sample) in samplers {
        let (z, _) = per_row_gradients(sample, n, device);
        assert!(z.iter().all(|&v| v == 0.0 || v == 1.0), "{name}: not 0/1");
        for (k, &pk) in p.iter().enumerate() {
            let count = (0..n).filter(|&r| z[4 * r + k] == 1.0).count() as f64;
            let se = (pk * (1.0 - pk) / n as f64).sqrt();
            // Binomial frequency within 5 standard errors (two-sided p ≈ 6e-7 per category).
            let freq = count / n as f64;
            assert!(
                (freq - pk).abs() < 5.0 * se,
                "{name} category {k}: {freq} vs {pk}"
            );
        }
        let ones = z.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(ones, n, "{name}: one 1 per row");
    }
}

fn gumbel_rao_keeps_the_straight_through_mean_with_less_variance(device: &Device) {
    // Gumbel-Rao is the straight-through gradient averaged over the noise given the sample: the
    // same expectation; with 1 sample the same law, with K samples a lower variance.
    let (n, tau) = (40_000, 0.5);
    device.seed(602);
    let (_, st) = per_row_gradients(|l| gumbel_softmax(l, tau, true, -1), n, device);
    let (_, gr1) = per_row_gradients(|l| gumbel_rao(l, 1, tau, -1), n, device);
    let (_, gr10) = per_row_gradients(|l| gumbel_rao(l, 10, tau, -1), n, device);
    let (m_st, se_st, var_st) = stats(&st);
    for (name, g) in [("gumbel-rao:1", &gr1), ("gumbel-rao:10", &gr10)] {
        let (m, se, _) = stats(g);
        for k in 0..4 {
            // Two independent means: their difference within 5 standard errors.
            let tolerance = 5.0 * (se[k].powi(2) + se_st[k].powi(2)).sqrt();
            assert!(
                (m[k] - m_st[k]).abs() < tolerance,
                "{name} category {k}: mean {} vs straight-through {}",
                m[k],
                m_st[k]
            );
        }
    }
    let (_, _, var1) = stats(&gr1);
    let (_, _, var10) = stats(&gr10);
    // With one sample the law is that of straight-through: the variances agree to sampling error
    // (a relative standard error of ~1% for 40,000 draws of these bounded gradients; 10% is
    // > 5 of them).
    assert!((var1 / var_st - 1.0).abs() < 0.1, "{var1} vs {var_st}");
    // Ten conditional samples remove most of the noise that does not decide the category.
    assert!(
        var10 < 0.5 * var_st,
        "gumbel-rao:10 variance {var10} vs straight-through {var_st}"
    );
}

fn reinmax_is_unbiased_for_linear_losses_at_tau_one(device: &Device) {
    // For f(D) = wᵀD the exact gradient of E[f] is J(p)·w. At tau = 1, E[π₁] = p and
    // E[π₁π₁ᵀ] = (3ppᵀ + diag p)/4, so E[2·J(π₁)w − ½·J(p)w] = J(p)·w: ReinMax is unbiased there
    // (straight-through Gumbel-Softmax is not).
    let n = 50_000;
    device.seed(603);
    let p = probs();
    let pw: f64 = p.iter().zip(WEIGHTS).map(|(a, b)| a * b as f64).sum();
    let exact: Vec<f64> = (0..4)
        .map(|k| p[k] * WEIGHTS[k] as f64 - p[k] * pw)
        .collect();
    let (_, g) = per_row_gradients(|l| reinmax(l, 1.0, -1), n, device);
    let (mean, se, _) = stats(&g);
    for k in 0..4 {
        // Within 5 standard errors of the mean of 50,000 draws.
        assert!(
            (mean[k] - exact[k]).abs() < 5.0 * se[k],
            "category {k}: {} ± {} vs exact {}",
            mean[k],
            se[k],
            exact[k]
        );
    }
    // Straight-through Gumbel-Softmax at tau = 1 misses the exact gradient by many standard
    // errors on this problem: the test above can tell a biased estimator apart.
    let (_, st) = per_row_gradients(|l| gumbel_softmax(l, 1.0, true, -1), n, device);
    let (m_st, se_st, _) = stats(&st);
    let worst = (0..4)
        .map(|k| (m_st[k] - exact[k]).abs() / se_st[k])
        .fold(0.0, f64::max);
    assert!(
        worst > 10.0,
        "straight-through within {worst} standard errors of exact"
    );
}

fn the_functions_and_the_layer_draw_the_same_noise(device: &Device) {
    // One seed, one device: `gumbel_rao` and `reinmax` draw the samples the layer with the same
    // estimator draws (on wgpu both take the kernel's counter-based noise, elsewhere the fused
    // kernel's or Burn's generator alike). 2000 rows of 10 categories: two generators would agree
    // on a row with probability about 1/10 at most.
    let ad = device.clone().autodiff();
    let logits = tensor2(
        crate::support::host_uniform(2000 * 10, 71, -1.0, 1.0),
        2000,
        10,
        &ad,
    );
    for (estimator, tau) in [
        (Estimator::GumbelRao { samples: 3 }, 0.5),
        (Estimator::ReinMax, 1.0),
    ] {
        ad.seed(72);
        let function = match estimator {
            Estimator::ReinMax => reinmax(logits.clone(), tau, 1),
            _ => gumbel_rao(logits.clone(), 3, tau, 1),
        };
        let layer = GumbelSoftmaxConfig::new()
            .with_tau(tau)
            .with_hard(true)
            .with_estimator(estimator)
            .init(&ad);
        ad.seed(72);
        let from_layer = layer.forward(logits.clone());
        assert_eq!(
            values(function),
            values(from_layer),
            "{estimator}: the function and the layer under one seed"
        );
    }
}
