//! The relaxed one-hot categorical (Concrete) distribution: densities against closed forms,
//! normalization by quadrature, Monte Carlo KL, sample law, tensor temperatures.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, s};
use burn_gumbel::{Key, RelaxedOneHotCategorical, gumbel_softmax_with_key};

use crate::support::{host_uniform, moments, tensor2, values};

device_tests!(
    a_keyed_sample_is_the_sampling_core_s,
    two_categories_give_the_binary_concrete_density,
    densities_integrate_to_one,
    monte_carlo_kl_is_positive_and_weights_average_to_one,
    argmax_of_a_sample_follows_the_probabilities,
    tensor_temperature_is_per_row_and_differentiable,
);

/// `rows` copies of one row of logits, `[rows, K]`.
fn repeat_row(row: &[f32], rows: usize, device: &Device) -> Tensor<2> {
    tensor2(row.to_vec(), 1, row.len(), device).repeat_dim(0, rows)
}

/// The binary Concrete log-density of `y ∈ (0, 1)` with `α = e^{a − b}` (Maddison et al. 2016,
/// section 3.3), in f64.
fn binary_concrete_log_density(a: f64, b: f64, tau: f64, y: f64) -> f64 {
    let alpha = (a - b).exp();
    let num = tau.ln() + alpha.ln() - (tau + 1.0) * (y.ln() + (1.0 - y).ln());
    let den = 2.0 * (alpha * y.powf(-tau) + (1.0 - y).powf(-tau)).ln();
    num - den
}

fn two_categories_give_the_binary_concrete_density(device: &Device) {
    // (a, b, tau, y1): logits, temperature and the point, one row each.
    let cases = [
        (0.0, 0.0, 1.0, 0.5),
        (1.5, -0.5, 0.5, 0.9),
        (-2.0, 1.0, 0.3, 0.2),
        (0.7, 0.2, 2.0, 0.01),
        (3.0, 0.0, 1.3, 0.999),
    ];
    let n = cases.len();
    let logits: Vec<f32> = cases
        .iter()
        .flat_map(|c| [c.0 as f32, c.1 as f32])
        .collect();
    let taus: Vec<f32> = cases.iter().map(|c| c.2 as f32).collect();
    let ys: Vec<f32> = cases
        .iter()
        .flat_map(|c| [c.3 as f32, (1.0 - c.3) as f32])
        .collect();
    let dist = RelaxedOneHotCategorical::from_logits(tensor2(logits, n, 2, device), 1.0, 1)
        .with_tau_tensor(tensor2(taus, n, 1, device));
    let y = tensor2(ys, n, 2, device);
    let on_simplex = values(dist.log_prob(y.clone()));
    let in_log_space = values(dist.log_prob_of_log(y.log()));
    for (i, &(a, b, tau, y1)) in cases.iter().enumerate() {
        let expected = binary_concrete_log_density(a, b, tau, y1);
        // f32 logs and log-sum-exps of terms up to ~20 in size: 2e-4 absolute is ~100 ulps.
        let got = on_simplex[i] as f64;
        assert!(
            (got - expected).abs() < 2e-4,
            "case {i}: {got} vs {expected}"
        );
        // The log-space density is that of l = x1 − x2, logistic with location (a − b)/tau and
        // scale 1/tau: ln tau + z − 2 ln(1 + e^z), z = (a − b) − tau·l.
        let l = y1.ln() - (1.0 - y1).ln();
        let z = (a - b) - tau * l;
        let logistic = tau.ln() + z - 2.0 * z.exp().ln_1p();
        let got = in_log_space[i] as f64;
        assert!(
            (got - logistic).abs() < 2e-4,
            "case {i} (log space): {got} vs {logistic}"
        );
    }
}

/// `Σ exp(log_density) · cell`, summed on the host in f64.
fn integral(log_density: Tensor<2>, cell: f64) -> f64 {
    values(log_density)
        .iter()
        .map(|&v| (v as f64).exp() * cell)
        .sum()
}

fn densities_integrate_to_one(device: &Device) {
    let logits2 = [0.7, -0.4];
    let logits3 = [0.5, -1.0, 0.2];

    // On the simplex, K = 2: midpoint rule in y1 over (0, 1), 20,000 cells. For tau ≥ 1 the
    // density is bounded with bounded derivatives, so the rule's error is O(h²) ≈ 1e-8; f32
    // evaluation adds ~1e-6 relative per point.
    for tau in [1.0, 2.0] {
        let n = 20_000;
        let h = 1.0 / n as f64;
        let y: Vec<f32> = (0..n)
            .flat_map(|i| {
                let y1 = (i as f64 + 0.5) * h;
                [y1 as f32, (1.0 - y1) as f32]
            })
            .collect();
        let dist = RelaxedOneHotCategorical::from_logits(repeat_row(&logits2, n, device), tau, 1);
        let total = integral(dist.log_prob(tensor2(y, n, 2, device)), h);
        assert!((total - 1.0).abs() < 1e-4, "K = 2, tau = {tau}: {total}");
    }

    // On the simplex, K = 3, tau = 2: y1 = u, y2 = (1 − u)·v with Jacobian (1 − u), midpoint rule
    // on a 600 × 600 grid of the unit square. The density is bounded at tau = 2 (at a corner it
    // tends to a constant), so the rule's error is O(h²) ≈ 1e-5.
    {
        let (n, tau) = (600, 2.0);
        let h = 1.0 / n as f64;
        let mut y = Vec::with_capacity(n * n * 3);
        let mut jacobian = Vec::with_capacity(n * n);
        for i in 0..n {
            for j in 0..n {
                let u = (i as f64 + 0.5) * h;
                let v = (j as f64 + 0.5) * h;
                let (y1, y2) = (u, (1.0 - u) * v);
                y.extend([y1 as f32, y2 as f32, ((1.0 - u) * (1.0 - v)) as f32]);
                jacobian.push(1.0 - u);
            }
        }
        let dist =
            RelaxedOneHotCategorical::from_logits(repeat_row(&logits3, n * n, device), tau, 1);
        let density = values(dist.log_prob(tensor2(y, n * n, 3, device)));
        let total: f64 = density
            .iter()
            .zip(&jacobian)
            .map(|(&v, w)| (v as f64).exp() * w * h * h)
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "K = 3, tau = 2: {total}");
    }

    // In log space the density is one in the differences l = x_k − x_K: a grid over l, where it
    // decays like e^{-tau·|l|}. K = 2 at tau = 0.5 and 1 (l in [−60, 60], step 0.01, tails
    // < e^{-30}); K = 3 at tau = 1 (l in [−30, 30]², step 0.1, tails < e^{-30}). The integrands
    // are smooth and decay exponentially: the rule's error is far below the tolerance.
    for tau in [0.5, 1.0] {
        let (half, h) = (6_000, 0.01);
        let x: Vec<f32> = (-half..half)
            .flat_map(|i| [((i as f64 + 0.5) * h) as f32, 0.0])
            .collect();
        let n = x.len() / 2;
        let dist = RelaxedOneHotCategorical::from_logits(repeat_row(&logits2, n, device), tau, 1);
        let total = integral(dist.log_prob_of_log(tensor2(x, n, 2, device)), h);
        assert!(
            (total - 1.0).abs() < 1e-4,
            "log space, K = 2, tau = {tau}: {total}"
        );
    }
    {
        let (half, h, tau) = (300, 0.1, 1.0);
        let mut x = Vec::new();
        for i in -half..half {
            for j in -half..half {
                let l1 = ((i as f64 + 0.5) * h) as f32;
                let l2 = ((j as f64 + 0.5) * h) as f32;
                x.extend([l1, l2, 0.0]);
            }
        }
        let n = x.len() / 3;
        let dist = RelaxedOneHotCategorical::from_logits(repeat_row(&logits3, n, device), tau, 1);
        let total = integral(dist.log_prob_of_log(tensor2(x, n, 3, device)), h * h);
        assert!(
            (total - 1.0).abs() < 1e-4,
            "log space, K = 3, tau = 1: {total}"
        );
    }
}

/// Mean and standard error of the mean.
fn mean_and_se(v: &[f64]) -> (f64, f64) {
    let m = moments(v);
    (m.mean, m.se)
}

fn monte_carlo_kl_is_positive_and_weights_average_to_one(device: &Device) {
    let n = 100_000;
    device.seed(501);
    let q_logits = [1.0, 0.0, -1.0, 0.5];
    let q = RelaxedOneHotCategorical::from_logits(repeat_row(&q_logits, n, device), 0.6, 1);

    // KL(q ‖ p) by Monte Carlo in log space, against p uniform at another temperature. Its mean
    // must be more than 5 standard errors above 0: nonnegative, and not by a hair.
    let p = RelaxedOneHotCategorical::from_logits(Tensor::<2>::zeros([n, 4], device), 1.0, 1);
    let x = q.rsample_log();
    let log_ratio = q.log_prob_of_log(x.clone()) - p.log_prob_of_log(x.clone());
    let d: Vec<f64> = values(log_ratio).iter().map(|&v| v as f64).collect();
    let (kl, se) = mean_and_se(&d);
    assert!(kl > 5.0 * se, "KL estimate {kl} with standard error {se}");

    // The same KL from the densities on the simplex: per draw the Jacobians cancel, so the two
    // estimates agree to f32 rounding (terms of size ≤ 50: 1e-3 is ~100 ulps).
    let y = x.exp();
    let on_simplex = values(q.log_prob(y.clone()) - p.log_prob(y));
    let (kl_simplex, _) = mean_and_se(&on_simplex.iter().map(|&v| v as f64).collect::<Vec<_>>());
    assert!((kl - kl_simplex).abs() < 1e-3, "{kl} vs {kl_simplex}");

    // Importance weights w = p'(x) / q(x) for a nearby p' average to ∫ p' = 1: a check of the
    // normalizing constant. w has a finite variance here (p' close to q); 5 standard errors.
    let p_near = RelaxedOneHotCategorical::from_logits(
        repeat_row(&[0.8, 0.1, -0.8, 0.4], n, device),
        0.7,
        1,
    );
    let x = q.rsample_log();
    let w = (p_near.log_prob_of_log(x.clone()) - q.log_prob_of_log(x)).exp();
    let w: Vec<f64> = values(w).iter().map(|&v| v as f64).collect();
    let (mean_w, se_w) = mean_and_se(&w);
    assert!(
        (mean_w - 1.0).abs() < 5.0 * se_w,
        "mean weight {mean_w} ± {se_w}"
    );
}

fn argmax_of_a_sample_follows_the_probabilities(device: &Device) {
    let n = 100_000;
    device.seed(502);
    let logits = [0.3, -1.2, 1.1, 0.0];
    let dist = RelaxedOneHotCategorical::from_logits(repeat_row(&logits, n, device), 0.8, 1);
    let probs = values(dist.probs().slice(s![0..1, ..]));
    let drawn = crate::support::indices(dist.rsample().argmax(1));
    for (k, &p) in probs.iter().enumerate() {
        let count = drawn.iter().filter(|&&i| i == k as i64).count() as f64;
        let p = p as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        // Binomial frequency within 5 standard errors (two-sided p ≈ 6e-7 per category).
        assert!(
            (count / n as f64 - p).abs() < 5.0 * se,
            "category {k}: {} vs {p}",
            count / n as f64
        );
    }
}

fn tensor_temperature_is_per_row_and_differentiable(device: &Device) {
    let logits = tensor2(vec![0.5, -0.5, 1.0, 2.0, 0.0, -1.0], 2, 3, device);
    let y = tensor2(vec![0.2, 0.3, 0.5, 0.6, 0.3, 0.1], 2, 3, device);
    let taus = tensor2(vec![0.5, 2.0], 2, 1, device);
    let both = RelaxedOneHotCategorical::from_logits(logits.clone(), 1.0, 1).with_tau_tensor(taus);
    let both = values(both.log_prob(y.clone()));
    for (row, tau) in [(0, 0.5), (1, 2.0)] {
        let single = RelaxedOneHotCategorical::from_logits(logits.clone(), tau, 1);
        let single = values(single.log_prob(y.clone()));
        assert!((both[row] - single[row]).abs() < 1e-5, "row {row}");
    }

    // rsample is differentiable in a (learned) temperature.
    let device = device.clone().autodiff();
    let tau = Tensor::<2>::from_floats([[0.7]], &device).require_grad();
    let logits = tensor2(vec![0.5, -0.5, 1.0], 1, 3, &device).repeat_dim(0, 64);
    let dist = RelaxedOneHotCategorical::from_logits(logits, 1.0, 1).with_tau_tensor(tau.clone());
    let weights = tensor2(vec![1.0, 0.0, -1.0], 1, 3, &device);
    let grads = (dist.rsample() * weights).sum().backward();
    let grad = values(tau.grad(&grads).expect("no gradient for tau"));
    assert!(grad[0].is_finite() && grad[0] != 0.0, "gradient {grad:?}");
}

fn a_keyed_sample_is_the_sampling_core_s(device: &Device) {
    // With a temperature given as a number, `rsample_with_key` draws through the sampling core:
    // the soft sample of `gumbel_softmax_with_key` on the distribution's normalized logits, to the
    // bit (the fused kernel's on flex), along the last axis and along a middle one.
    let theta = host_uniform(6 * 7 * 5, 731, -3.0, 3.0);
    let x = Tensor::<1>::from_floats(theta.as_slice(), device).reshape([6, 7, 5]);
    for dim in [2, 1] {
        let key = Key::new(732).fold_in(dim as u64);
        let dist = RelaxedOneHotCategorical::from_logits(x.clone(), 0.7, dim as isize);
        let core =
            gumbel_softmax_with_key(log_softmax(x.clone(), dim), key, 0.7, false, dim as isize);
        assert_eq!(
            values(dist.rsample_with_key(key)),
            values(core),
            "dim {dim}"
        );
    }
}
