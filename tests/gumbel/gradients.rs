//! Gradients of the soft sample against finite differences; the straight-through gradient.

use burn::tensor::Device;
use burn_gumbel::gumbel_softmax_with_noise;

use crate::support::{host_gumbel, host_uniform, tensor2, values};

device_tests!(
    soft_gradient_matches_central_differences,
    hard_gradient_equals_soft_gradient,
);

const ROWS: usize = 4;
const K: usize = 5;

/// `L(logits) = Σ y(logits) · w` and its gradient in the logits, for fixed noise and weights.
fn loss_and_grad(device: &Device, logits: &[f32], tau: f64, hard: bool) -> (f32, Vec<f32>) {
    let device = device.clone().autodiff();
    let x = tensor2(logits.to_vec(), ROWS, K, &device).require_grad();
    let noise = tensor2(host_gumbel(ROWS * K, 52), ROWS, K, &device);
    let w = tensor2(host_uniform(ROWS * K, 53, -1.0, 1.0), ROWS, K, &device);
    let y = gumbel_softmax_with_noise(x.clone(), noise, tau, hard, 1);
    let loss = (y * w).sum();
    let grads = loss.backward();
    let grad = x.grad(&grads).expect("the logits get a gradient");
    (loss.into_scalar::<f32>(), values(grad))
}

fn soft_gradient_matches_central_differences(device: &Device) {
    let logits = host_uniform(ROWS * K, 51, -2.0, 2.0);
    for tau in [0.5, 1.0, 2.0] {
        let (_, grad) = loss_and_grad(device, &logits, tau, false);
        // Central differences: truncation error h²/6 · |L'''| ≲ 1e-4 · 6/tau³ and rounding error
        // ≈ 2 · 6e-8 · |L| / (2h) ≲ 1e-4 (|L| ≤ 20) for h = 1e-2 and tau ≥ 0.5. The gradients are
        // of order 0.1 to 1; a tolerance of 2e-3 stays 4 times above the error budget while
        // catching a gradient off by 1%.
        let h = 1e-2f32;
        for i in 0..ROWS * K {
            let mut plus = logits.clone();
            plus[i] += h;
            let mut minus = logits.clone();
            minus[i] -= h;
            let fd = (loss_and_grad(device, &plus, tau, false).0
                - loss_and_grad(device, &minus, tau, false).0)
                / (2.0 * h);
            assert!(
                (grad[i] - fd).abs() < 2e-3,
                "tau {tau}, logit {i}: autodiff {} vs central difference {fd}",
                grad[i]
            );
        }
    }
}

fn hard_gradient_equals_soft_gradient(device: &Device) {
    let logits = host_uniform(ROWS * K, 54, -2.0, 2.0);
    for tau in [0.1, 1.0, 5.0] {
        let (_, soft) = loss_and_grad(device, &logits, tau, false);
        let (hard_loss, hard) = loss_and_grad(device, &logits, tau, true);
        if format!("{device:?}").contains("Wgpu") {
            // On wgpu the two graphs run different kernels, whose sums the driver may order
            // differently from one run to the next (Mesa's lavapipe gave differences of 1–2 ulp
            // in one CI run of three): equal within 8 ulp of the larger value.
            for (i, (h, s)) in hard.iter().zip(&soft).enumerate() {
                let ulps = 8.0 * f32::EPSILON * h.abs().max(s.abs());
                assert!(
                    (h - s).abs() <= ulps,
                    "tau {tau}, logit {i}: straight-through gradient {h} differs from the soft \
                     one {s} by more than 8 ulp"
                );
            }
        } else {
            assert_eq!(
                hard, soft,
                "tau {tau}: straight-through gradient differs from the soft one"
            );
        }
        // The forward value is the hard one: L = Σ over rows of w at argmax(logits + noise).
        let noise = host_gumbel(ROWS * K, 52);
        let w = host_uniform(ROWS * K, 53, -1.0, 1.0);
        let expected: f32 = (0..ROWS)
            .map(|r| {
                let z = |k: usize| logits[r * K + k] + noise[r * K + k];
                let best = (0..K).fold(0, |b, k| if z(k) > z(b) { k } else { b });
                w[r * K + best]
            })
            .sum();
        // A sum of 4 weights in [-1, 1]: f32 rounding is below 1e-6.
        assert!(
            (hard_loss - expected).abs() < 1e-5,
            "hard loss {hard_loss} vs {expected}"
        );
    }
}
