//! The Gumbel-max trick draws categories with the frequencies of `softmax(logits)`.

use burn::tensor::{Device, Tensor};
use burn_gumbel::gumbel_max;

use crate::support::indices;

device_tests!(gumbel_max_frequencies_match_softmax);

fn gumbel_max_frequencies_match_softmax(device: &Device) {
    // Probabilities 0.15, 0.4, 0.45, and a fourth category masked with -inf.
    let probs = [0.15f64, 0.4, 0.45, 0.0];
    let n = 200_000;
    device.seed(21);
    let row = probs.map(|p| (p as f32).ln()); // ln 0 = -inf
    let logits = Tensor::<2>::from_floats([row], device).expand([n, 4]);
    let drawn = indices(gumbel_max(logits, -1));
    assert_eq!(drawn.len(), n);

    let mut counts = [0usize; 4];
    for i in drawn {
        counts[i as usize] += 1;
    }
    assert_eq!(counts[3], 0, "a masked category was drawn");
    let mut chi2 = 0.0;
    for (k, &p) in probs[..3].iter().enumerate() {
        let freq = counts[k] as f64 / n as f64;
        // Binomial standard error sqrt(p(1-p)/N) ≤ 0.0011 for N = 200,000; five standard errors
        // per class (a chance of 6e-7 each under the true law) still catch a bias of 0.006.
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (freq - p).abs() < 5.0 * se,
            "class {k}: frequency {freq} vs {p} (5 SE = {})",
            5.0 * se
        );
        chi2 += (counts[k] as f64 - n as f64 * p).powi(2) / (n as f64 * p);
    }
    // Chi-square with 2 degrees of freedom: P(χ² > 20) = e^-10 = 4.5e-5.
    assert!(chi2 < 20.0, "chi-square {chi2} over 2 degrees of freedom");
}

device_tests!(gumbel_top_k_pairs_match_sampling_without_replacement);

fn gumbel_top_k_pairs_match_sampling_without_replacement(device: &Device) {
    // Ordered pairs (i, j) drawn without replacement from p = (0.1, 0.2, 0.3, 0.4):
    // P(i, j) = p_i · p_j / (1 − p_i), 12 pairs.
    let probs = [0.1f64, 0.2, 0.3, 0.4];
    let n = 120_000;
    device.seed(23);
    let row = probs.map(|p| (p as f32).ln());
    let logits = Tensor::<2>::from_floats([row], device).expand([n, 4]);
    let drawn = indices(burn_gumbel::gumbel_top_k(logits, 2, -1));
    let mut counts = [[0usize; 4]; 4];
    for pair in drawn.chunks(2) {
        counts[pair[0] as usize][pair[1] as usize] += 1;
    }
    for i in 0..4 {
        assert_eq!(counts[i][i], 0, "category {i} drawn twice");
        for j in (0..4).filter(|&j| j != i) {
            let p = probs[i] * probs[j] / (1.0 - probs[i]);
            let freq = counts[i][j] as f64 / n as f64;
            // Binomial standard error sqrt(p(1 − p)/N) ≤ 0.0012 for N = 120,000; five standard
            // errors per pair (a chance of 6e-7 each under the true law, 12 pairs).
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (freq - p).abs() < 5.0 * se,
                "pair ({i}, {j}): {freq} vs {p}"
            );
        }
    }
}

device_tests!(gumbel_top_k_past_the_unmasked_categories_gives_masked_ones);

fn gumbel_top_k_past_the_unmasked_categories_gives_masked_ones(device: &Device) {
    // Rows of 6 categories, 3 of them masked: k = 6 draws the 3 unmasked ones first, then the 3
    // masked ones, every index a category of the row (on wgpu, Burn's `topk` gave -1 for -inf).
    device.seed(24);
    let inf = f32::NEG_INFINITY;
    let row = [0.5, inf, -1.0, inf, 2.0, inf];
    let logits = Tensor::<2>::from_floats([row], device).expand([1000, 6]);
    let drawn = indices(burn_gumbel::gumbel_top_k(logits, 6, -1));
    for order in drawn.chunks(6) {
        let mut sorted = order.to_vec();
        sorted.sort();
        assert_eq!(
            sorted,
            [0, 1, 2, 3, 4, 5],
            "a permutation of the row: {order:?}"
        );
        let mut first: Vec<i64> = order[..3].to_vec();
        first.sort();
        assert_eq!(first, [0, 2, 4], "the unmasked categories first: {order:?}");
    }
}
