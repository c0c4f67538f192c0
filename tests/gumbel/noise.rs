//! Gumbel(0, 1) noise against its exact law.

use burn::tensor::Device;
use burn_gumbel::gumbel_noise;

use crate::support::{Moments, moments, values};

/// Euler–Mascheroni constant: the mean of Gumbel(0, 1).
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
/// Variance of Gumbel(0, 1): π²/6.
const VARIANCE: f64 = std::f64::consts::PI * std::f64::consts::PI / 6.0;
/// Draws per test.
const N: usize = 200_000;

device_tests!(
    noise_moments_match_gumbel,
    noise_passes_kolmogorov_smirnov,
    noise_is_finite
);

fn draw(device: &Device, seed: u64) -> Vec<f64> {
    device.seed(seed);
    // [400, 500]: two dimensions, so that the noise is exercised as the layers use it.
    let g = gumbel_noise::<2>([400, N / 400], device);
    values(g).into_iter().map(f64::from).collect()
}

fn noise_moments_match_gumbel(device: &Device) {
    let g = draw(device, 11);
    let n = g.len() as f64;
    let Moments {
        mean,
        variance: var,
        ..
    } = moments(&g);

    // Standard error of the mean: sqrt(π²/6 / N) = 0.00287 for N = 200,000. Five standard errors
    // (a two-sided chance of 6e-7 under the true law) give 0.0143, while a noise off by 2.5% of
    // a standard deviation would already fail.
    let se_mean = (VARIANCE / n).sqrt();
    assert!(
        (mean - EULER_GAMMA).abs() < 5.0 * se_mean,
        "mean {mean} vs γ = {EULER_GAMMA} (5 SE = {})",
        5.0 * se_mean
    );

    // Var(s²) ≈ (μ4 − σ⁴)/N with Gumbel's excess kurtosis 12/5, so μ4 = 5.4 σ⁴ and the standard
    // error of s² is sqrt(4.4 σ⁴ / N) = 0.0077. Five standard errors: 0.039 around π²/6 = 1.645.
    let se_var = (4.4 * VARIANCE * VARIANCE / n).sqrt();
    assert!(
        (var - VARIANCE).abs() < 5.0 * se_var,
        "variance {var} vs π²/6 = {VARIANCE} (5 SE = {})",
        5.0 * se_var
    );
}

fn noise_passes_kolmogorov_smirnov(device: &Device) {
    let mut g = draw(device, 12);
    g.sort_by(f64::total_cmp);
    let n = g.len() as f64;
    let cdf = |x: f64| (-(-x).exp()).exp();
    let d = g
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max);
    // Kolmogorov's limiting law: P(sqrt(N)·D > 1.95) = 0.001. The critical value for N = 200,000
    // is 0.00436; a location error of 0.01 (under 1% of a standard deviation) gives D ≈ 0.0037
    // and one of 0.02 fails.
    let critical = 1.95 / n.sqrt();
    assert!(d < critical, "KS statistic {d} >= {critical}");
}

fn noise_is_finite(device: &Device) {
    // 2 million draws: with a uniform of 24 random bits the closed-interval endpoint u = 0 comes
    // up with chance 1 - (1 - 2^-24)^(2e6) ≈ 11%; every value must stay inside the bounds the
    // open interval gives, [-ln(-ln 2^-126), -ln(-ln(1 - 2^-24))] = [-4.47, 16.64].
    device.seed(13);
    let g = values(gumbel_noise::<1>([2_000_000], device));
    let (lo, hi) = g
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    assert!(g.iter().all(|x| x.is_finite()), "non-finite noise");
    assert!(
        lo >= -4.48 && hi <= 16.65,
        "noise outside [-4.47, 16.64]: [{lo}, {hi}]"
    );
}
