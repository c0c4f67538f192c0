//! Half-precision logits (f16, bf16): every sampler computes in f32 and returns the logits'
//! dtype; hard samples are exactly 0 and 1; nothing overflows to infinity, in the sample or in
//! the gradient, from a temperature of 1e-3 to 10 and logits up to the dtype's range.

use burn::tensor::{DType, Device, FloatDType, Tensor};
use burn_gumbel::{
    GumbelSoftmaxConfig, RelaxedOneHotCategorical, gumbel_max, gumbel_rao, gumbel_softmax,
    gumbel_softmax_with_noise, gumbel_top_k, reinmax, relaxed_bernoulli, relaxed_k_hot,
};

use crate::support::{host_uniform, tensor2, values};

device_tests!(
    half_precision_samples_are_finite_and_exact,
    every_sampler_accepts_half_precision,
);

/// The half dtypes and the largest logit magnitude tested in each: f16 ends at 65504; bf16 has
/// f32's range, of which 1e30 keeps `logits / tau` finite in f32 down to tau = 1e-3.
const HALVES: [(FloatDType, f32); 2] = [(FloatDType::F16, 6.0e4), (FloatDType::BF16, 1.0e30)];

/// The half dtypes `device` can hold: both on flex; none on ndarray (it has no f16 or bf16
/// tensors); on wgpu, f16 where the adapter has shader f16 (WGSL has no bf16).
fn halves(device: &Device) -> Vec<(FloatDType, f32)> {
    let supported: Vec<_> = HALVES
        .into_iter()
        .filter(|(dtype, _)| device.supports_dtype(*dtype))
        .collect();
    if supported.len() < HALVES.len() {
        println!("{device:?} holds only {supported:?} of f16 and bf16: the others are not tested");
    }
    supported
}

/// 25,000 rows of 100 categories: 2.5 M draws a temperature, 10 M a dtype.
const ROWS: usize = 25_000;
const K: usize = 100;

fn half_precision_samples_are_finite_and_exact(device: &Device) {
    let device = device.clone().autodiff();
    device.seed(1101);
    for (dtype, bound) in halves(&device) {
        for (t, tau) in [1e-3, 0.1, 1.0, 10.0].into_iter().enumerate() {
            // Half the rows span the dtype's range, half are of order 1 (a soft sample that is
            // not one-hot).
            let mut logits = host_uniform(ROWS * K / 2, 1102 + t as u64, -bound, bound);
            logits.extend(host_uniform(ROWS * K / 2, 1103 + t as u64, -3.0, 3.0));
            let x = tensor2(logits, ROWS, K, &device).cast(dtype).require_grad();
            let w = tensor2(host_uniform(K, 1104, -1.0, 1.0), 1, K, &device).cast(dtype);
            let hard = t % 2 == 0; // hard at 1e-3 and 1, soft at 0.1 and 10
            let y = gumbel_softmax(x.clone(), tau, hard, -1);
            assert_eq!(y.dtype(), DType::from(dtype), "{dtype:?}");
            let grads = (y.clone() * w).sum().backward();
            let grad = values(x.grad(&grads).expect("a gradient"));
            let y = values(y);
            let name = format!("{dtype:?}, tau {tau}, hard {hard}");
            assert!(
                y.iter().all(|v| v.is_finite()),
                "{name}: a sample is not finite"
            );
            assert!(
                grad.iter().all(|v| v.is_finite()),
                "{name}: a gradient is not finite"
            );
            for row in y.chunks(K) {
                let sum: f32 = row.iter().sum();
                if hard {
                    assert!(row.iter().all(|&v| v == 0.0 || v == 1.0), "{name}: {row:?}");
                    assert_eq!(sum, 1.0, "{name}");
                } else {
                    // Each value rounds to bf16 with a relative error of at most 2^-9 (f16:
                    // 2^-12), so values summing to 1 in f32 sum to within 2^-9 ≈ 0.002 of 1,
                    // plus f32's summation error (< 1e-5); 0.01 leaves a factor of 5.
                    assert!((sum - 1.0).abs() < 0.01, "{name}: a row sums to {sum}");
                }
            }
        }
    }
}

fn every_sampler_accepts_half_precision(device: &Device) {
    let device = device.clone().autodiff();
    device.seed(1105);
    for (dtype, _) in halves(&device) {
        let logits = || {
            tensor2(host_uniform(8 * 5, 1106, -2.0, 2.0), 8, 5, &device)
                .cast(dtype)
                .require_grad()
        };
        let half = DType::from(dtype);
        let check = |name: &str, y: Tensor<2>| {
            assert_eq!(y.dtype(), half, "{name}, {dtype:?}");
            assert!(values(y).iter().all(|v| v.is_finite()), "{name}, {dtype:?}");
        };
        check("gumbel_softmax", gumbel_softmax(logits(), 0.5, false, -1));
        let noise = logits().zeros_like();
        check(
            "gumbel_softmax_with_noise",
            gumbel_softmax_with_noise(logits(), noise, 0.5, true, -1),
        );
        check("gumbel_rao", gumbel_rao(logits(), 3, 0.5, -1));
        check("reinmax", reinmax(logits(), 1.0, -1));
        check("relaxed_k_hot", relaxed_k_hot(logits(), 2, 0.5, true, -1));
        check("relaxed_bernoulli", relaxed_bernoulli(logits(), 0.5, false));
        let layer = GumbelSoftmaxConfig::new()
            .with_learnable_tau(true)
            .init(&device);
        check("GumbelSoftmax", layer.forward(logits()));
        let dist = RelaxedOneHotCategorical::from_logits(logits(), 0.5, -1);
        let y = dist.rsample();
        check("RelaxedOneHotCategorical::rsample", y);
        // The density at a point strictly inside the simplex: a sample at tau = 0.5 may hold a
        // coordinate below f16's smallest subnormal, which rounds to 0, where `log_prob` is NaN
        // by its definition (`log_prob_of_log` is the form for such points).
        check(
            "RelaxedOneHotCategorical::log_prob",
            dist.log_prob(dist.probs()),
        );
        let index = gumbel_max(logits(), -1);
        assert_eq!(index.dims(), [8, 1]);
        assert_eq!(gumbel_top_k(logits(), 3, -1).dims(), [8, 3]);
    }
}
