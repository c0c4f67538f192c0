//! `gumbel_softmax_with_key`: one key gives the same noise on every backend. On flex and wgpu
//! the fused kernels draw it (the CPU kernel and the CubeCL one), elsewhere the host does; the
//! samples of every enabled backend are compared with the first one's (flex when enabled).

use burn::tensor::{Device, FloatDType, Tensor};
use burn_gumbel::{
    Estimator, GumbelSoftmaxConfig, Key, RelaxedOneHotCategorical, gumbel_max_with_key,
    gumbel_noise_with_key, gumbel_softmax_with_key, gumbel_softmax_with_noise,
    gumbel_top_k_with_key, logistic_noise_with_key, relaxed_bernoulli_with_key,
    relaxed_k_hot_with_key,
};

use crate::support::{devices, indices, values};

/// `len` logits with values in [−4, 4] and, with `masked`, every 7th element −∞ (a masked
/// category, which rows of more than 2 categories always outnumber).
fn logits(len: usize, masked: bool) -> Vec<f32> {
    (0..len)
        .map(|i| match masked && i % 7 == 3 {
            true => f32::NEG_INFINITY,
            false => ((i * 7919) % 1601) as f32 / 200.0 - 4.0,
        })
        .collect()
}

/// The hard and soft samples, and the gradient of `Σ w·y` through the soft one, of `logits`
/// reshaped to `shape`, under `key` on `device`, in `dtype`.
fn run<const D: usize>(
    device: &Device,
    shape: [usize; D],
    dim: usize,
    dtype: FloatDType,
    key: u64,
    masked: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let device = device.clone().autodiff();
    let len = shape.iter().product();
    let x = Tensor::<1>::from_floats(logits(len, masked).as_slice(), &device)
        .reshape(shape)
        .cast(dtype);
    let hard = gumbel_softmax_with_key(x.clone(), Key::new(key), 0.7, true, dim);
    let x = x.require_grad();
    let soft = gumbel_softmax_with_key(x.clone(), Key::new(key), 0.7, false, dim);
    let w: Vec<f32> = (0..len).map(|i| ((i * 5) % 7) as f32 - 3.0).collect();
    let w = Tensor::<1>::from_floats(w.as_slice(), &device)
        .reshape(shape)
        .cast(dtype);
    let grads = (soft.clone() * w).sum().backward();
    let grad = x.grad(&grads).unwrap();
    let f32s = |t: Tensor<D>| values(t.cast(FloatDType::F32));
    (f32s(hard), f32s(soft), f32s(grad))
}

/// Asserts `a` and `b` equal within `rel` of the larger magnitude plus `abs`.
fn assert_close(a: &[f32], b: &[f32], rel: f32, abs: f32, context: &str) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0.0f32, 0);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let excess = (x - y).abs() - (rel * x.abs().max(y.abs()) + abs);
        if excess > worst.0 || x.is_nan() != y.is_nan() {
            worst = (excess.max(f32::MIN_POSITIVE), i);
        }
    }
    let (excess, i) = worst;
    assert!(
        excess == 0.0,
        "{context}: element {i}: {} vs {}",
        a[i],
        b[i]
    );
}

#[test]
fn one_key_gives_the_same_samples_on_every_backend() {
    // 10⁵ rows of 10 categories and 3000 of 7 (one unit per row on the GPU, reading vectors of
    // 2 and 1 categories); 400 rows of 1000, 300 of 1002, 20 of 6000 and 50 of 4999 (a cube of
    // 64 or 256 units per row, reading vectors of 4, 2, 4 and 1 categories); channels-first maps
    // [60, 8, 12, 12] and [4, 300, 6, 6] along axis 1 (categories strided by 144 and 36); some
    // categories masked. The noise is the same to the bit where both sides round
    // alike; the GPU may contract a multiply and an add into one rounding, which moves
    // z = (θ + g)/tau by an ulp of z (|z| ≤ 30 here, so 4e-6) and the soft sample by that
    // relative amount: 2e-5 relative, 5 times it, plus 1e-7 absolute for sums of small values.
    // Hard samples are identical: a flip needs two of a row's z within an ulp, which none of
    // these 1.1·10⁵ rows has (the test would say which).
    let _lock = crate::support::rng_lock();
    let backends = devices();
    let (first, reference) = &backends[0];
    let cases: [(&str, Vec<usize>, usize); 8] = [
        ("[100000, 10] along 1", vec![100_000, 10], 1),
        ("[3000, 7] along 1", vec![3000, 7], 1),
        ("[400, 1000] along 1", vec![400, 1000], 1),
        ("[300, 1002] along 1", vec![300, 1002], 1),
        ("[20, 6000] along 1", vec![20, 6000], 1),
        ("[50, 4999] along 1", vec![50, 4999], 1),
        ("[60, 8, 12, 12] along 1", vec![60, 8, 12, 12], 1),
        ("[4, 300, 6, 6] along 1", vec![4, 300, 6, 6], 1),
    ];
    for (name, shape, dim) in cases {
        let go = |device: &Device| match shape.len() {
            2 => run(device, [shape[0], shape[1]], dim, FloatDType::F32, 42, true),
            _ => run(
                device,
                [shape[0], shape[1], shape[2], shape[3]],
                dim,
                FloatDType::F32,
                42,
                true,
            ),
        };
        let (hard, soft, grad) = go(reference);
        assert!(
            hard.iter().all(|&v| v == 0.0 || v == 1.0),
            "{name}: one-hot"
        );
        for (backend, device) in &backends[1..] {
            let context = format!("{name}, {backend} vs {first}");
            let (h, s, g) = go(device);
            let flips = hard.iter().zip(&h).filter(|(a, b)| a != b).count() / 2;
            assert_eq!(flips, 0, "{context}: rows whose hard sample differs");
            assert_close(&s, &soft, 2e-5, 1e-7, &format!("{context}: soft sample"));
            // ∂/∂θ = y ⊙ (w − yᵀw)/tau: the soft sample's relative error, plus y/tau times the
            // dot product's error, at most 3 Σ|Δy| (|w| ≤ 3) ≤ 6e-5 and in practice some 1e-6:
            // 1e-5 absolute.
            assert_close(&g, &grad, 2e-5, 1e-5, &format!("{context}: gradient"));
        }
    }
}

#[test]
fn half_precision_keyed_samples_agree_across_backends() {
    // f16 logits: the same f32 computation, rounded to f16 (an ulp of it, 2^-11 relative, covers
    // the f32 differences above being rounded the other way). Row lengths on both GPU kernels.
    let _lock = crate::support::rng_lock();
    let backends = devices();
    let (first, reference) = &backends[0];
    for (shape, dim) in [([2000, 300], 1), ([4000, 12], 1), ([12, 4000], 0)] {
        let go = |device: &Device| {
            if !device.supports_dtype(FloatDType::F16) {
                return None;
            }
            Some(run(device, shape, dim, FloatDType::F16, 7, false))
        };
        let Some((hard, soft, grad)) = go(reference) else {
            continue;
        };
        for (backend, device) in &backends[1..] {
            let Some((h, s, g)) = go(device) else {
                continue;
            };
            let context = format!("f16 {shape:?} along {dim}, {backend} vs {first}");
            let flips = hard.iter().zip(&h).filter(|(a, b)| a != b).count() / 2;
            assert_eq!(flips, 0, "{context}: rows whose hard sample differs");
            assert_close(&s, &soft, 1e-3, 1e-7, &format!("{context}: soft sample"));
            assert_close(&g, &grad, 2e-3, 1e-5, &format!("{context}: gradient"));
        }
    }
}

#[test]
fn the_kernels_compute_the_tensor_op_sample_of_their_noise() {
    // On each backend: the keyed sample against the tensor-op path given the same noise, rebuilt
    // on the host from the generator's definition (`(θ + g)/tau` then softmax, in f32): equal
    // within the rounding of two logarithms of 1 ulp each (1e-5 relative of the soft sample).
    // Ties in the hard sample are as unlikely as above.
    let _lock = crate::support::rng_lock();
    for (backend, device) in devices() {
        let (rows, n) = (3000, 37);
        let theta = logits(rows * n, true);
        let x = Tensor::<1>::from_floats(theta.as_slice(), &device).reshape([rows, n]);
        let noise: Vec<f32> = (0..rows * n)
            .map(|i| -(-(host_uniform(99, i as u64) as f64).ln()).ln() as f32)
            .collect();
        let noise = Tensor::<1>::from_floats(noise.as_slice(), &device).reshape([rows, n]);
        for hard in [false, true] {
            let keyed = values(gumbel_softmax_with_key(
                x.clone(),
                Key::new(99),
                0.5,
                hard,
                1,
            ));
            let reference = values(gumbel_softmax_with_noise(
                x.clone(),
                noise.clone(),
                0.5,
                hard,
                1,
            ));
            let context = format!("{backend}, hard {hard}");
            assert_close(&keyed, &reference, 1e-5, 1e-7, &context);
        }
    }
}

/// The generator's definition, written out from its documentation: the uniform of element
/// `counter` under `key`.
fn host_uniform(key: u64, counter: u64) -> f32 {
    fn mix32(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7FEB_352D);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846C_A68B);
        x ^ (x >> 16)
    }
    let (lo, hi) = (key as u32, (key >> 32) as u32);
    let (k1, k2) = (lo, mix32(hi ^ mix32(lo ^ 0x9E37_79B9)));
    let hi = k2 ^ ((counter >> 32) as u32).wrapping_mul(0x9E37_79B9);
    let h = mix32(mix32(counter as u32 ^ k1) ^ hi);
    ((h >> 9) as f32 + 0.5) / 8_388_608.0
}

/// A keyed one-hot sampler: its name and its sample of `[b, n, inner]` logits along `dim`.
type KeyedSampler = (&'static str, fn(Tensor<3>, usize, Key) -> Tensor<3>);

#[test]
fn every_keyed_sampler_gives_the_same_samples_on_every_backend() {
    // Each estimator through `Estimator::sample_with_key` and the layer's keyed forwards, on
    // 10⁵ rows of 10 categories laid out last ([1, 100000, 10]) and strided ([1000, 10, 100]
    // along 1: the column kernel on flex, the lane kernel on wgpu). Hard samples identical; the
    // gradients of Σ w·y within 1e-4 relative plus 2e-5 absolute: Gumbel-Rao's conditional draws
    // are the fused kernel's f32 logarithms on flex and the host's f64 ones elsewhere (an ulp
    // apart), averaged over 4 soft samples of z up to 30 in magnitude (ulp 2e-6), and ReinMax's
    // and straight-through's gradients are softmaxes of the same values summed in another order.
    let _lock = crate::support::rng_lock();
    let samplers: [KeyedSampler; 5] = [
        ("straight-through", |x, dim, key| {
            Estimator::StraightThrough.sample_with_key(x, key, 0.7, dim)
        }),
        ("gumbel-rao:4", |x, dim, key| {
            Estimator::GumbelRao { samples: 4 }.sample_with_key(x, key, 0.7, dim)
        }),
        ("reinmax", |x, dim, key| {
            Estimator::ReinMax.sample_with_key(x, key, 1.5, dim)
        }),
        ("layer, learned tau", |x, dim, key| {
            GumbelSoftmaxConfig::new()
                .with_tau(0.7)
                .with_learnable_tau(true)
                .with_dim(dim as isize)
                .init(&x.device())
                .forward_with_key(x, key)
        }),
        ("layer, gumbel-rao, per-call tau", |x, dim, key| {
            GumbelSoftmaxConfig::new()
                .with_hard(true)
                .with_estimator(Estimator::GumbelRao { samples: 2 })
                .with_dim(dim as isize)
                .init(&x.device())
                .forward_with_key_and_tau(x, key, 0.6)
        }),
    ];
    let backends = devices();
    let (first, reference) = &backends[0];
    for (shape, dim) in [([1, 100_000, 10], 2), ([1000, 10, 100], 1)] {
        let len: usize = shape.iter().product();
        let theta = logits(len, true);
        let w: Vec<f32> = (0..len).map(|i| ((i * 5) % 7) as f32 - 3.0).collect();
        for (name, sampler) in samplers {
            let go = |device: &Device| {
                let device = device.clone().autodiff();
                let x = Tensor::<1>::from_floats(theta.as_slice(), &device)
                    .reshape(shape)
                    .require_grad();
                let w = Tensor::<1>::from_floats(w.as_slice(), &device).reshape(shape);
                let y = sampler(x.clone(), dim, Key::new(5).fold_in(17));
                let grads = (y.clone() * w).sum().backward();
                (values(y), values(x.grad(&grads).unwrap()))
            };
            let (y, grad) = go(reference);
            for (backend, device) in &backends[1..] {
                let context = format!("{name}, {shape:?} along {dim}, {backend} vs {first}");
                let (y2, grad2) = go(device);
                if name.contains("learned") {
                    assert_close(&y2, &y, 2e-5, 1e-7, &format!("{context}: soft sample"));
                } else {
                    let flips = y.iter().zip(&y2).filter(|(a, b)| a != b).count() / 2;
                    assert_eq!(flips, 0, "{context}: rows whose hard sample differs");
                }
                assert_close(&grad2, &grad, 1e-4, 2e-5, &format!("{context}: gradient"));
            }
        }
    }
}

#[test]
fn every_keyed_draw_of_the_other_samplers_is_the_same_on_every_backend() {
    // gumbel_max, gumbel_top_k, relaxed_k_hot, relaxed_bernoulli, RelaxedOneHotCategorical and
    // the noise functions under one key, on 10⁵ rows of 10 (last axis and strided): indices and
    // hard samples identical, soft samples within 2e-5 relative plus 1e-7 (as above), the host's
    // noise equal to the bit. And gumbel_max_with_key draws the category of
    // gumbel_softmax_with_key's hard sample under the same key, on every backend.
    let _lock = crate::support::rng_lock();
    let backends = devices();
    let key = Key::new(11).fold_in(3);
    for (shape, dim) in [([1, 100_000, 10], 2), ([1000, 10, 100], 1)] {
        let len: usize = shape.iter().product();
        let theta = logits(len, true);
        let go = |device: &Device| {
            let x = Tensor::<1>::from_floats(theta.as_slice(), device).reshape(shape);
            let index = indices(gumbel_max_with_key(x.clone(), key, dim));
            let one_hot = gumbel_softmax_with_key(x.clone(), key, 0.5, true, dim);
            let one_hot_index = indices(one_hot.argmax(dim));
            assert_eq!(index, one_hot_index, "gumbel_max vs the hard sample");
            let top = indices(gumbel_top_k_with_key(x.clone(), key, 3, dim));
            let k_hot = values(relaxed_k_hot_with_key(x.clone(), key, 3, 0.5, true, dim));
            let bernoulli = values(relaxed_bernoulli_with_key(x.clone(), key, 0.5, true));
            let concrete = RelaxedOneHotCategorical::from_logits(x, 0.5, dim).rsample_with_key(key);
            let noise = values(gumbel_noise_with_key::<3>(shape, key, device));
            let logistic = values(logistic_noise_with_key::<3>(shape, key, device));
            (
                index,
                top,
                k_hot,
                bernoulli,
                values(concrete),
                noise,
                logistic,
            )
        };
        let (first, reference) = &backends[0];
        let expected = go(reference);
        for (backend, device) in &backends[1..] {
            let context = format!("{shape:?} along {dim}, {backend} vs {first}");
            let got = go(device);
            assert_eq!(got.0, expected.0, "{context}: gumbel_max_with_key");
            assert_eq!(got.1, expected.1, "{context}: gumbel_top_k_with_key");
            assert_eq!(got.2, expected.2, "{context}: relaxed_k_hot_with_key");
            assert_eq!(got.3, expected.3, "{context}: relaxed_bernoulli_with_key");
            assert_close(
                &got.4,
                &expected.4,
                2e-5,
                1e-7,
                &format!("{context}: rsample"),
            );
            assert_eq!(got.5, expected.5, "{context}: gumbel_noise_with_key");
            assert_eq!(got.6, expected.6, "{context}: logistic_noise_with_key");
        }
    }
}

#[test]
#[cfg(feature = "flex")]
fn keyed_samples_do_not_depend_on_the_thread_count() {
    // The flex kernel spreads rows (and bands of channels-first maps) over rayon's threads; an
    // element's noise is a hash of its index under the key and each row is reduced by one task,
    // so one thread, three and the default pool give the same bits: samples, and the gradients
    // of Σ w·y through straight-through and Gumbel-Rao.
    let _lock = crate::support::rng_lock();
    let device = crate::support::device("flex").autodiff();
    let key = Key::new(21);
    let run = || {
        let mut out = Vec::new();
        for (shape, dim) in [([1, 20_000, 37], 2), ([40, 37, 300], 1)] {
            let len: usize = shape.iter().product();
            let x = Tensor::<1>::from_floats(logits(len, true).as_slice(), &device)
                .reshape(shape)
                .require_grad();
            let w: Vec<f32> = (0..len).map(|i| ((i * 5) % 7) as f32 - 3.0).collect();
            let w = Tensor::<1>::from_floats(w.as_slice(), &device).reshape(shape);
            for estimator in [
                Estimator::StraightThrough,
                Estimator::GumbelRao { samples: 3 },
            ] {
                let y = estimator.sample_with_key(x.clone(), key, 0.7, dim);
                let grads = (y.clone() * w.clone()).sum().backward();
                out.push((values(y), values(x.grad(&grads).unwrap())));
            }
            let soft = gumbel_softmax_with_key(x.clone(), key, 0.7, false, dim);
            out.push((values(soft), Vec::new()));
        }
        out
    };
    let default = run();
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        assert!(pool.install(run) == default, "{threads} threads");
    }
}
