//! The relaxed k-hot: sums, the hard subset, the temperature limit, straight-through gradients and
//! the law of the subset.

use burn::tensor::{Device, Tensor};
use burn_gumbel::{
    Key, gumbel_noise_with_key, relaxed_k_hot, relaxed_k_hot_with_key, relaxed_k_hot_with_noise,
};

use crate::support::{devices, host_gumbel, host_uniform, rng_lock, tensor2, values};

device_tests!(
    keyed_soft_sample_is_the_formula_in_f64,
    soft_sums_to_k_and_hard_is_the_top_k,
    low_temperature_approaches_the_hard_sample,
    straight_through_gradient_is_the_soft_gradient,
    inclusion_frequencies_are_those_of_sampling_without_replacement,
    masked_categories_are_never_chosen,
    past_the_unmasked_categories_the_hard_sample_takes_masked_ones,
);

const ROWS: usize = 64;
const N: usize = 6;
const K: usize = 3;

fn logits_and_noise(device: &Device) -> (Tensor<2>, Tensor<2>, Vec<f32>) {
    let logits = host_uniform(ROWS * N, 701, -2.0, 2.0);
    let noise = host_gumbel(ROWS * N, 702);
    let perturbed: Vec<f32> = logits.iter().zip(&noise).map(|(l, g)| l + g).collect();
    (
        tensor2(logits, ROWS, N, device),
        tensor2(noise, ROWS, N, device),
        perturbed,
    )
}

/// The k-hot of the `k` largest values of each row, on the host.
fn host_k_hot(perturbed: &[f32], k: usize) -> Vec<f32> {
    let mut out = vec![0.0; perturbed.len()];
    for (row, chunk) in perturbed.chunks(N).enumerate() {
        let mut order: Vec<usize> = (0..N).collect();
        order.sort_by(|&a, &b| chunk[b].total_cmp(&chunk[a]));
        for &j in &order[..k] {
            out[row * N + j] = 1.0;
        }
    }
    out
}

fn soft_sums_to_k_and_hard_is_the_top_k(device: &Device) {
    let (logits, noise, perturbed) = logits_and_noise(device);
    let soft = values(relaxed_k_hot_with_noise(
        logits.clone(),
        noise.clone(),
        K,
        0.5,
        false,
        -1,
    ));
    for row in soft.chunks(N) {
        let sum: f32 = row.iter().sum();
        // K softmaxes, each summing to 1 within a few f32 ulps.
        assert!((sum - K as f32).abs() < 1e-4, "row sums to {sum}");
        // Nonnegative; an entry may exceed 1 at this temperature (see the function's docs).
        assert!(row.iter().all(|&v| v >= 0.0), "{row:?}");
    }
    let hard = values(relaxed_k_hot_with_noise(logits, noise, K, 0.5, true, -1));
    assert_eq!(hard, host_k_hot(&perturbed, K));
}

fn low_temperature_approaches_the_hard_sample(device: &Device) {
    let (logits, noise, perturbed) = logits_and_noise(device);
    let hard = host_k_hot(&perturbed, K);
    let mut previous = f32::INFINITY;
    for tau in [1.0, 0.1, 0.01] {
        let soft = values(relaxed_k_hot_with_noise(
            logits.clone(),
            noise.clone(),
            K,
            tau,
            false,
            -1,
        ));
        let distance = soft
            .iter()
            .zip(&hard)
            .map(|(s, h)| (s - h).abs())
            .sum::<f32>()
            / soft.len() as f32;
        assert!(
            distance < previous,
            "tau {tau}: {distance} not below {previous}"
        );
        previous = distance;
    }
    // At tau = 0.01 only rows with a gap below ~0.05 between the k-th and (k+1)-th perturbed
    // logits are still visibly soft: the mean distance is small.
    assert!(previous < 0.01, "mean distance at tau = 0.01: {previous}");
}

fn straight_through_gradient_is_the_soft_gradient(device: &Device) {
    let device = device.clone().autodiff();
    let (logits, noise, _) = logits_and_noise(&device);
    let weights = tensor2(host_uniform(ROWS * N, 703, -1.0, 1.0), ROWS, N, &device);
    let grad = |hard: bool| {
        let logits = logits.clone().require_grad();
        let y = relaxed_k_hot_with_noise(logits.clone(), noise.clone(), K, 0.5, hard, -1);
        let grads = (y * weights.clone()).sum().backward();
        values(logits.grad(&grads).unwrap())
    };
    let (soft, hard) = (grad(false), grad(true));
    assert!(soft.iter().all(|v| v.is_finite()) && soft.iter().any(|&v| v != 0.0));
    assert_eq!(hard, soft);
}

fn inclusion_frequencies_are_those_of_sampling_without_replacement(device: &Device) {
    let n = 100_000;
    let logits = [0.5f32, -0.5, 1.0, 0.0];
    let e: Vec<f64> = logits.iter().map(|&l| (l as f64).exp()).collect();
    let total: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|v| v / total).collect();
    // P(i in a 2-subset drawn without replacement) = p_i + Σ_{j≠i} p_j·p_i / (1 − p_j).
    let exact: Vec<f64> = (0..4)
        .map(|i| {
            p[i] + (0..4)
                .filter(|&j| j != i)
                .map(|j| p[j] * p[i] / (1.0 - p[j]))
                .sum::<f64>()
        })
        .collect();
    device.seed(704);
    let rows = tensor2(logits.to_vec(), 1, 4, device).repeat_dim(0, n);
    let hard = values(relaxed_k_hot(rows, 2, 1.0, true, -1));
    for (i, &q) in exact.iter().enumerate() {
        let freq = (0..n).filter(|&r| hard[4 * r + i] == 1.0).count() as f64 / n as f64;
        let se = (q * (1.0 - q) / n as f64).sqrt();
        // Binomial frequency within 5 standard errors (two-sided p ≈ 6e-7 per category).
        assert!((freq - q).abs() < 5.0 * se, "category {i}: {freq} vs {q}");
    }
}

fn masked_categories_are_never_chosen(device: &Device) {
    let device = device.clone().autodiff();
    let inf = f32::NEG_INFINITY;
    let row = vec![0.0, inf, 1.0, -0.5, inf, 0.3];
    device.seed(705);
    for hard in [false, true] {
        let logits = tensor2(row.clone(), 1, N, &device)
            .repeat_dim(0, 200)
            .require_grad();
        let y = relaxed_k_hot(logits.clone(), K, 0.3, hard, -1);
        let weights = tensor2(host_uniform(200 * N, 706, -1.0, 1.0), 200, N, &device);
        let grads = (y.clone() * weights).sum().backward();
        let (y, grad) = (values(y), values(logits.grad(&grads).unwrap()));
        for (j, (&v, &g)) in y.iter().zip(&grad).enumerate() {
            assert!(g.is_finite(), "gradient {j} is {g}");
            if row[j % N] == inf {
                assert_eq!(v, 0.0, "masked category {} chosen (hard = {hard})", j % N);
                assert_eq!(g, 0.0, "masked category {} has gradient {g}", j % N);
            }
        }
    }
}

fn past_the_unmasked_categories_the_hard_sample_takes_masked_ones(device: &Device) {
    // Rows of 6 with 2 unmasked categories and k = 3: the k-hot holds both of them and one
    // masked category, exactly 3 ones (on wgpu, Burn's `topk` gave index -1 for the masked one,
    // whose 1 was then lost).
    device.seed(74);
    let inf = f32::NEG_INFINITY;
    let row = [0.5, inf, inf, -1.0, inf, inf];
    let logits = Tensor::<2>::from_floats([row], device).expand([500, 6]);
    let k_hot = values(relaxed_k_hot(logits, 3, 0.5, true, -1));
    for (r, row) in k_hot.chunks(6).enumerate() {
        assert_eq!(
            row.iter().filter(|&&v| v == 1.0).count(),
            3,
            "row {r}: {row:?}"
        );
        assert_eq!(
            (row[0], row[3]),
            (1.0, 1.0),
            "row {r}: the unmasked categories"
        );
    }
}

/// Rows whose perturbed logits spread over ±12 at `tau = 0.5`: a round's largest probability is
/// often within 1e-6 of 1, where `ln(1 − a)` computed as `log1p(−a)` loses most of its digits.
const SPREAD_ROWS: usize = 256;
const SPREAD_N: usize = 16;
const SPREAD_K: usize = 4;
const SPREAD_TAU: f64 = 0.5;

fn spread_logits(device: &Device) -> (Vec<f32>, Tensor<2>) {
    let logits = host_uniform(SPREAD_ROWS * SPREAD_N, 707, -12.0, 12.0);
    let tensor = tensor2(logits.clone(), SPREAD_ROWS, SPREAD_N, device);
    (logits, tensor)
}

/// The soft relaxed k-hot of one row of perturbed logits `s`, in f64, with `ln(1 − a)` at the
/// round's largest `a` taken as the log of the other categories' mass.
fn host_relaxed_k_hot(s: &[f64], k: usize, tau: f64) -> Vec<f64> {
    let mut scores = s.to_vec();
    let mut soft = vec![0.0; s.len()];
    for _ in 0..k {
        let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|v| ((v - m) / tau).exp()).collect();
        let total: f64 = e.iter().sum();
        let a: Vec<f64> = e.iter().map(|v| v / total).collect();
        let top = (0..a.len()).fold(0, |best, j| if a[j] > a[best] { j } else { best });
        for j in 0..a.len() {
            soft[j] += a[j];
            let complement = if j == top {
                (0..a.len())
                    .filter(|&l| l != top)
                    .map(|l| a[l])
                    .sum::<f64>()
            } else {
                1.0 - a[j]
            };
            scores[j] += complement.max(f32::MIN_POSITIVE as f64).ln();
        }
    }
    soft
}

/// The largest relative difference of `got` from `reference` over entries above `1e-6` (the
/// smaller ones carry the absolute error of the sum they were divided by, at most `1e-11` here).
fn worst_relative(got: &[f32], reference: &[f64]) -> f64 {
    got.iter()
        .zip(reference)
        .map(|(&g, &r)| {
            let error = (g as f64 - r).abs();
            if r.abs() > 1e-6 {
                error / r.abs()
            } else {
                assert!(error < 1e-11, "{g} vs {r}");
                0.0
            }
        })
        .fold(0.0, f64::max)
}

fn keyed_soft_sample_is_the_formula_in_f64(device: &Device) {
    // Within 1e-5 relative of the formula evaluated in f64 on the same noise (`ln(1 − a)` as
    // `log1p(−a)` in f32 was up to 6.1e-4 away).
    let (logits, tensor) = spread_logits(device);
    let key = Key::new(708);
    let shape = [SPREAD_ROWS, SPREAD_N];
    let noise = values(gumbel_noise_with_key::<2>(shape, key, device));
    let soft = values(relaxed_k_hot_with_key(
        tensor, key, SPREAD_K, SPREAD_TAU, false, -1,
    ));
    let reference: Vec<f64> = logits
        .chunks(SPREAD_N)
        .zip(noise.chunks(SPREAD_N))
        .flat_map(|(l, g)| {
            let s: Vec<f64> = l.iter().zip(g).map(|(&l, &g)| (l + g) as f64).collect();
            host_relaxed_k_hot(&s, SPREAD_K, SPREAD_TAU)
        })
        .collect();
    let worst = worst_relative(&soft, &reference);
    assert!(
        worst <= 1e-5,
        "largest relative difference from f64: {worst:e}"
    );
}

#[test]
fn keyed_soft_sample_agrees_across_backends() {
    // The same key on every enabled backend: within 1e-5 relative of the first (flex was 2.8e-4
    // from ndarray before the stable `ln(1 − a)`).
    let _lock = rng_lock();
    let all = devices();
    let run = |device: &Device| {
        let (_, tensor) = spread_logits(device);
        values(relaxed_k_hot_with_key(
            tensor,
            Key::new(709),
            SPREAD_K,
            SPREAD_TAU,
            false,
            -1,
        ))
    };
    let (reference_name, reference) = &all[0];
    let expected: Vec<f64> = run(reference).into_iter().map(f64::from).collect();
    for (name, device) in &all[1..] {
        let worst = worst_relative(&run(device), &expected);
        assert!(worst <= 1e-5, "{name} vs {reference_name}: {worst:e}");
    }
}
