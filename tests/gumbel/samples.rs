//! Soft and hard samples: the simplex, the limits in tau, exact one-hots, reproducibility.

use burn::tensor::{Device, Tensor};
use burn_gumbel::{gumbel_noise, gumbel_softmax, gumbel_softmax_with_noise};

use crate::support::{host_gumbel, host_uniform, tensor2, values};

device_tests!(
    soft_rows_sum_to_one,
    small_tau_approaches_the_one_hot,
    large_tau_approaches_uniform,
    hard_rows_are_exact_one_hots_of_the_perturbed_argmax,
    same_seed_gives_same_samples,
);

const ROWS: usize = 1000;
const K: usize = 10;

fn logits(device: &Device) -> Tensor<2> {
    tensor2(host_uniform(ROWS * K, 1, -3.0, 3.0), ROWS, K, device)
}

fn noise(device: &Device) -> Tensor<2> {
    tensor2(host_gumbel(ROWS * K, 2), ROWS, K, device)
}

fn soft_rows_sum_to_one(device: &Device) {
    device.seed(31);
    for tau in [1e-3, 0.1, 1.0, 10.0, 1e3] {
        let y = values(gumbel_softmax(logits(device), tau, false, -1));
        for row in y.chunks(K) {
            assert!(
                row.iter().all(|&p| (0.0..=1.0).contains(&p)),
                "tau {tau}: {row:?}"
            );
            // Ten f32 terms each within 2^-24 relative of the exact probabilities: the sum is
            // within 10 · 6e-8 + the division's rounding of 1; 1e-5 leaves a margin of 10.
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "tau {tau}: row sums to {sum}");
        }
    }
}

/// Mean over rows of the L1 distance between the soft sample and the hard one (same noise).
fn distance_to_one_hot(device: &Device, tau: f64) -> f32 {
    let soft = values(gumbel_softmax_with_noise(
        logits(device),
        noise(device),
        tau,
        false,
        -1,
    ));
    let hard = values(gumbel_softmax_with_noise(
        logits(device),
        noise(device),
        tau,
        true,
        -1,
    ));
    soft.iter()
        .zip(&hard)
        .map(|(s, h)| (s - h).abs())
        .sum::<f32>()
        / ROWS as f32
}

fn small_tau_approaches_the_one_hot(device: &Device) {
    let distances: Vec<f32> = [1.0, 0.1, 0.01, 1e-3]
        .into_iter()
        .map(|tau| distance_to_one_hot(device, tau))
        .collect();
    for pair in distances.windows(2) {
        assert!(
            pair[1] < pair[0],
            "distance to the one-hot grows as tau falls: {distances:?}"
        );
    }
    // With tau = 1e-3, a row is off its one-hot only if its two largest perturbed logits are
    // within ~0.02 of each other, which the gaps of 1000 rows of spread-out logits make rare:
    // the mean L1 distance is far below the 1.6 or so at tau = 1.
    assert!(
        distances[3] < 1e-2,
        "tau = 1e-3: mean L1 distance {}",
        distances[3]
    );
}

fn large_tau_approaches_uniform(device: &Device) {
    // logits in [-3, 3] and noise in [-4.5, 16.7]: the perturbed logits span at most R = 26.2, so
    // every K·y lies within exp(±R / tau) of 1: within 0.027 for tau = 1000.
    let tau = 1e3;
    let y = values(gumbel_softmax_with_noise(
        logits(device),
        noise(device),
        tau,
        false,
        -1,
    ));
    let worst = y
        .iter()
        .map(|p| (p * K as f32 - 1.0).abs())
        .fold(0.0, f32::max);
    assert!(
        worst < (26.2f32 / tau as f32).exp() - 1.0 + 1e-5,
        "max |K·y - 1| = {worst}"
    );
}

fn hard_rows_are_exact_one_hots_of_the_perturbed_argmax(device: &Device) {
    let y = values(gumbel_softmax_with_noise(
        logits(device),
        noise(device),
        0.5,
        true,
        -1,
    ));
    let l = host_uniform(ROWS * K, 1, -3.0, 3.0);
    let g = host_gumbel(ROWS * K, 2);
    for (r, row) in y.chunks(K).enumerate() {
        assert!(
            row.iter().all(|&v| v == 0.0 || v == 1.0),
            "row {r} is not 0/1: {row:?}"
        );
        assert_eq!(
            row.iter().filter(|&&v| v == 1.0).count(),
            1,
            "row {r}: {row:?}"
        );
        let z: Vec<f32> = (0..K).map(|k| l[r * K + k] + g[r * K + k]).collect();
        let best = (0..K).fold(0, |b, k| if z[k] > z[b] { k } else { b });
        assert_eq!(row[best], 1.0, "row {r}: one-hot at the wrong category");
    }
}

fn same_seed_gives_same_samples(device: &Device) {
    let draw = |seed: u64| {
        device.seed(seed);
        let soft = values(gumbel_softmax(logits(device), 0.7, false, -1));
        let hard = values(gumbel_softmax(logits(device), 0.7, true, -1));
        let noise = values(gumbel_noise::<2>([ROWS, K], device));
        (soft, hard, noise)
    };
    let first = draw(41);
    assert_eq!(first, draw(41), "same seed, different samples");
    assert_ne!(first.0, draw(42).0, "different seeds, same samples");
}
