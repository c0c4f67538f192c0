//! The relaxed Bernoulli: logistic noise against its law, hard samples against Bernoulli
//! frequencies, the straight-through gradient.

use burn::tensor::{Device, Tensor};
use burn_gumbel::{logistic_noise, relaxed_bernoulli, relaxed_bernoulli_with_noise};

use crate::support::{Moments, host_uniform, moments, tensor2, values};

device_tests!(
    logistic_noise_moments,
    hard_bits_have_bernoulli_frequencies,
    relaxed_bernoulli_hard_gradient_equals_soft_gradient,
);

fn logistic_noise_moments(device: &Device) {
    device.seed(91);
    let n = 200_000;
    let l: Vec<f64> = values(logistic_noise::<1>([n], device))
        .into_iter()
        .map(f64::from)
        .collect();
    assert!(l.iter().all(|x| x.is_finite()));
    let Moments {
        mean,
        variance: var,
        ..
    } = moments(&l);
    let sigma2 = std::f64::consts::PI.powi(2) / 3.0;
    // Mean: standard error sqrt(π²/3 / N) = 0.0041; five of them, 0.020. Variance: the logistic
    // law's excess kurtosis is 6/5, so Var(s²) ≈ (4.2 − 1) σ⁴ / N and the standard error of s² is
    // 0.013; five of them, 0.066 around π²/3 = 3.29.
    assert!(mean.abs() < 5.0 * (sigma2 / n as f64).sqrt(), "mean {mean}");
    assert!(
        (var - sigma2).abs() < 5.0 * (3.2 * sigma2 * sigma2 / n as f64).sqrt(),
        "var {var}"
    );
}

fn hard_bits_have_bernoulli_frequencies(device: &Device) {
    device.seed(92);
    let n = 100_000;
    let logits = [-2.0f32, 0.0, 1.5];
    let x = Tensor::<2>::from_floats([logits], device).expand([n, 3]);
    let bits = values(relaxed_bernoulli(x, 0.5, true));
    for (k, &logit) in logits.iter().enumerate() {
        let p = 1.0 / (1.0 + (-f64::from(logit)).exp());
        let freq = bits
            .iter()
            .skip(k)
            .step_by(3)
            .map(|&b| f64::from(b))
            .sum::<f64>()
            / n as f64;
        // Binomial standard error sqrt(p(1 − p)/N) ≤ 0.0016; five standard errors.
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((freq - p).abs() < 5.0 * se, "logit {logit}: {freq} vs {p}");
    }
}

fn relaxed_bernoulli_hard_gradient_equals_soft_gradient(device: &Device) {
    let device = device.clone().autodiff();
    let (rows, cols) = (8, 5);
    let grad = |hard: bool| {
        let x = tensor2(
            host_uniform(rows * cols, 93, -3.0, 3.0),
            rows,
            cols,
            &device,
        )
        .require_grad();
        let noise = tensor2(
            host_uniform(rows * cols, 94, -4.0, 4.0),
            rows,
            cols,
            &device,
        );
        let w = tensor2(
            host_uniform(rows * cols, 95, -1.0, 1.0),
            rows,
            cols,
            &device,
        );
        let y = relaxed_bernoulli_with_noise(x.clone(), noise, 0.7, hard);
        let grads = (y * w).sum().backward();
        values(x.grad(&grads).expect("the logits get a gradient"))
    };
    let soft = grad(false);
    assert_eq!(grad(true), soft);
    assert!(soft.iter().all(|g| g.is_finite()) && soft.iter().any(|&g| g != 0.0));
}
