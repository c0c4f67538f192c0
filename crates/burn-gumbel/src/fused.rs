//! A fused Gumbel-Softmax for Burn's flex CPU backend, with its backward pass.
//!
//! The tensor-op version ([`crate::gumbel_softmax_with_noise`] with [`crate::gumbel_noise`]) makes
//! about ten passes over memory, draws its uniforms from a ChaCha generator and takes two scalar
//! logarithms per element. This kernel works on cache-sized chunks of whole rows: a counter-based
//! generator (SplitMix64 of the element's index under a key drawn from the device's generator, so
//! `Device::seed` still makes results reproducible), branch-free logarithm and exponential that the
//! compiler vectorizes, the row maximum and the normalization, then, backward, `y ⊙ (g − yᵀg) / tau`
//! in one pass. Chunks are spread over rayon's threads. On x86-64 the forward and backward kernels
//! are each compiled three times (baseline, AVX2, AVX-512) and the widest variant the processor
//! runs is chosen at run time; all three give the same bits.
//!
//! It is used by [`crate::gumbel_softmax`] and the [`crate::GumbelSoftmax`] layer on flex devices
//! (plain or autodiff) for f32 logits with the categories last, a fixed temperature and the
//! straight-through estimator; everything else takes the tensor-op path, which the tests compare
//! it against.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{DType, Distribution, Tensor, TensorData};
use rayon::prelude::*;

/// The fused sampler as a Burn backend extension: implemented for flex and for autodiff over flex.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGumbelSoftmax: Backend {
    /// `softmax((logits + g) / tau)` over the last dimension (or its one-hot with `hard`), `g`
    /// Gumbel noise from the counter-based generator under `key`.
    fn fused_gumbel_softmax(
        logits: FloatTensor<Self>,
        tau: f32,
        hard: bool,
        key: u64,
    ) -> FloatTensor<Self>;
}

impl FusedGumbelSoftmax for Flex {
    fn fused_gumbel_softmax(logits: FlexTensor, tau: f32, hard: bool, key: u64) -> FlexTensor {
        forward(&logits, tau, key, Output::untracked(hard)).0
    }
}

/// The backward pass of the fused sampler: `∂L/∂logits = y ⊙ (g − yᵀg) / tau` per row, `y` the
/// soft sample (also for hard samples: straight-through).
#[derive(Debug)]
struct FusedBackward;

impl Backward<Flex, 1> for FusedBackward {
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (soft, tau) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            backward(&soft, &grad, tau)
        });
    }
}

impl<C: CheckpointStrategy> FusedGumbelSoftmax for Autodiff<Flex, C> {
    fn fused_gumbel_softmax(
        logits: FloatTensor<Self>,
        tau: f32,
        hard: bool,
        key: u64,
    ) -> FloatTensor<Self> {
        let (primitive, node) = logits.into_parts();
        match FusedBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = if hard {
                    Output::HardWithSoft
                } else {
                    Output::Soft
                };
                let (out, soft) = forward(&primitive, tau, key, output);
                let soft = soft.unwrap_or_else(|| out.clone());
                prep.finish((soft, tau), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(&primitive, tau, key, Output::untracked(hard)).0)
            }
        }
    }
}

/// Whether the fused path serves a call: a flex device (plain or autodiff), f32 logits, the
/// categories on the last dimension.
pub(crate) fn applies<const D: usize>(logits: &Tensor<D>, dim: usize) -> bool {
    let device = logits.device();
    dim == D - 1
        && logits.dtype() == DType::F32
        && matches!(
            device.without_autodiff().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

/// The fused sample: soft, or one-hot with the soft sample's gradient. The key comes from the
/// device's generator, so seeding the device fixes the result.
pub(crate) fn gumbel_softmax<const D: usize>(logits: Tensor<D>, tau: f64, hard: bool) -> Tensor<D> {
    let device = logits.device();
    let bits = Tensor::<1>::random([2], Distribution::Default, &device)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 uniforms");
    // 24 random bits from each uniform.
    let key = ((bits[0] * 16_777_216.0) as u64) << 24 | (bits[1] * 16_777_216.0) as u64;
    let out = <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax(
        logits.into_dispatch(),
        tau as f32,
        hard,
        key,
    );
    Tensor::from_dispatch(out)
}

/// What [`forward`] produces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The soft sample.
    Soft,
    /// The one-hot sample only.
    Hard,
    /// The one-hot sample, and the soft sample for the backward pass.
    HardWithSoft,
}

impl Output {
    /// The output of a call whose gradient nobody tracks: the sample alone.
    fn untracked(hard: bool) -> Self {
        if hard { Output::Hard } else { Output::Soft }
    }
}

/// Elements per rayon task: small rows are grouped so that each task has work enough.
const TASK_ELEMENTS: usize = 16_384;

/// The forward kernel on a flex tensor: `(output, soft sample if asked for)`.
fn forward(
    logits: &FlexTensor,
    tau: f32,
    key: u64,
    output: Output,
) -> (FlexTensor, Option<FlexTensor>) {
    let shape = logits.layout().shape().clone();
    let n = shape[shape.num_dims() - 1];
    let contiguous = contiguous_f32(logits);
    let theta = contiguous.as_slice::<f32>().expect("contiguous f32");
    let total = theta.len();
    let mut soft = vec![0.0f32; total];
    let mut hard = match output {
        Output::Soft => Vec::new(),
        Output::Hard | Output::HardWithSoft => vec![0.0f32; total],
    };
    if n > 0 && total > 0 {
        let rows_per_task = (TASK_ELEMENTS / n).max(1);
        let chunk = rows_per_task * n;
        let normalize = output != Output::Hard;
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        let tasks = soft
            .par_chunks_mut(chunk)
            .zip(theta.par_chunks(chunk))
            .enumerate();
        let argmaxes: Vec<Vec<usize>> = tasks
            .map(|(task, (out, theta))| {
                let first = (task * chunk) as u64;
                chunk_forward(isa, (theta, out, n, inv_tau, key, first, normalize))
            })
            .collect();
        if output != Output::Soft {
            for (row, j) in argmaxes.into_iter().flatten().enumerate() {
                hard[row * n + j] = 1.0;
            }
        }
    }
    let tensor = |values: Vec<f32>| FlexTensor::from_data(TensorData::new(values, shape.clone()));
    match output {
        Output::Soft => (tensor(soft), None),
        Output::Hard => (tensor(hard), None),
        Output::HardWithSoft => (tensor(hard), Some(tensor(soft))),
    }
}

/// The instruction sets [`chunk_forward`] and [`chunk_backward`] are compiled for, the best one
/// chosen at run time.
///
/// The code is the same for each (IEEE arithmetic without contraction into fused multiply-adds),
/// so every variant gives the same bits; wider vectors only make it faster. Builds for the
/// x86-64 baseline have SSE2 alone: 4 lanes and no vector 64-bit multiply for the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// What the build targets.
    Baseline,
    /// AVX2 and FMA: 8 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 F, DQ, VL and BW: 16 lanes and a vector 64-bit multiply.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest variant this processor runs.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx512bw") {
                return Isa::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

/// Defines `$name(isa, args)`, which runs `$generic(args)` compiled for the instruction set `isa`
/// names. `isa` must be one [`Isa::detect`] returned.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident => $generic:ident($args:ty) -> $ret:ty) => {
        $(#[$doc])*
        fn $name(isa: Isa, args: $args) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2(args: $args) -> $ret {
                $generic(args)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
            fn avx512(args: $args) -> $ret {
                $generic(args)
            }
            match isa {
                Isa::Baseline => $generic(args),
                // SAFETY: `Isa::detect` chose these only where the processor has their features.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2(args) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { avx512(args) },
            }
        }
    };
}

/// The arguments of [`chunk_forward`]: `(θ, out, n, 1 / tau, key, first, normalize)`.
type ChunkArgs<'a> = (&'a [f32], &'a mut [f32], usize, f32, u64, u64, bool);

multiversion! {
    /// Whole rows of `n` categories, contiguous, whose first element has counter `first`: writes
    /// `(θ + g) / tau` into `out`, and with `normalize` its softmax per row; returns each row's
    /// argmax (the lowest index on ties).
    fn chunk_forward => chunk_forward_generic(ChunkArgs<'_>) -> Vec<usize>
}

/// The arguments of [`chunk_backward`]: `(y, g, out, n, 1 / tau)`.
type BackwardArgs<'a> = (&'a [f32], &'a [f32], &'a mut [f32], usize, f32);

multiversion! {
    /// Whole rows of `n` categories: `out = y ⊙ (g − yᵀg) / tau` row by row.
    fn chunk_backward => chunk_backward_generic(BackwardArgs<'_>) -> ()
}

/// The backward kernel's loops, inlined into each [`Isa`] variant.
#[inline(always)]
fn chunk_backward_generic((y, g, out, n, inv_tau): BackwardArgs<'_>) {
    for ((out, y), g) in out.chunks_mut(n).zip(y.chunks(n)).zip(g.chunks(n)) {
        let dot = lane_dot(y, g);
        for ((o, &yj), &gj) in out.iter_mut().zip(y).zip(g) {
            *o = yj * (gj - dot) * inv_tau;
        }
    }
}

/// `Σ a_i b_i` in LANES independent accumulators, so that it vectorizes.
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    tail + lanes.iter().sum::<f32>()
}

/// The kernel, written so that the compiler vectorizes every loop; inlined into each [`Isa`]
/// variant. The noise is one loop over the whole chunk, so that short rows vectorize too.
#[inline(always)]
fn chunk_forward_generic(
    (theta, out, n, inv_tau, key, first, normalize): ChunkArgs<'_>,
) -> Vec<usize> {
    // g = −ln(−ln u); branch-free, so that the compiler vectorizes the loop.
    let mut state = key.wrapping_add(first.wrapping_add(1).wrapping_mul(GAMMA));
    for (x, &t) in out.iter_mut().zip(theta) {
        let u = uniform_of_state(state);
        state = state.wrapping_add(GAMMA);
        *x = (t - fast_ln(-fast_ln(u))) * inv_tau;
    }
    // Plain loops from here on: a closure handed to an iterator adapter (`map`, `for_each`) can
    // end up compiled outside this function, without the target features of its variant.
    let mut argmaxes = Vec::with_capacity(out.len() / n);
    if !normalize || n >= SHORT_ROW {
        for row in out.chunks_mut(n) {
            argmaxes.push(row_softmax(row, normalize));
        }
        return argmaxes;
    }
    // Short rows: the exponential too as one loop over the chunk, which vectorizes where a
    // loop over one row of ten would not.
    for row in out.chunks_mut(n) {
        let max = lane_max(row);
        argmaxes.push(first_index_of(row, max));
        for x in row.iter_mut() {
            *x -= max;
        }
    }
    for x in out.iter_mut() {
        *x = fast_exp(*x);
    }
    for row in out.chunks_mut(n) {
        let mut sum = 0.0f32;
        for &x in row.iter() {
            sum += x;
        }
        let inv = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
    argmaxes
}

/// Rows shorter than this take the exponential over the whole chunk.
const SHORT_ROW: usize = 4 * LANES;

/// One row of `(θ + g) / tau`: its argmax, and with `normalize` its softmax in place.
#[inline(always)]
fn row_softmax(out: &mut [f32], normalize: bool) -> usize {
    let max = lane_max(out);
    let argmax = first_index_of(out, max);
    if normalize {
        // exp and its sum in one pass, the sum in LANES independent accumulators (a single
        // running sum is one dependent add per element).
        let mut lanes = [0.0f32; LANES];
        let mut chunks = out.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (x, lane) in chunk.iter_mut().zip(lanes.iter_mut()) {
                *x = fast_exp(*x - max);
                *lane += *x;
            }
        }
        let mut sum = 0.0f32;
        for x in chunks.into_remainder() {
            *x = fast_exp(*x - max);
            sum += *x;
        }
        sum += lanes.iter().sum::<f32>();
        let inv = 1.0 / sum;
        for x in out.iter_mut() {
            *x *= inv;
        }
    }
    argmax
}

/// Independent lanes of the row reductions: one AVX-512 register of f32.
const LANES: usize = 16;

/// The index of the first element equal to `value` (0 if none), LANES at a time.
#[inline(always)]
fn first_index_of(x: &[f32], value: f32) -> usize {
    let mut chunks = x.chunks_exact(LANES);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut hit = false;
        for &v in chunk {
            hit |= v == value;
        }
        if hit {
            return base + chunk.iter().position(|&v| v == value).unwrap_or(0);
        }
        base += LANES;
    }
    chunks
        .remainder()
        .iter()
        .position(|&v| v == value)
        .map_or(0, |i| base + i)
}

/// The backward kernel: `y ⊙ (g − yᵀg) / tau` row by row.
fn backward(soft: &FlexTensor, grad: &FlexTensor, tau: f32) -> FlexTensor {
    let shape = soft.layout().shape().clone();
    let n = shape[shape.num_dims() - 1];
    let y = soft
        .as_slice::<f32>()
        .expect("the saved soft sample is contiguous");
    let grad = contiguous_f32(grad);
    let g = grad.as_slice::<f32>().expect("contiguous f32");
    let mut out = vec![0.0f32; y.len()];
    if n > 0 && !y.is_empty() {
        let chunk = (TASK_ELEMENTS / n).max(1) * n;
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        out.par_chunks_mut(chunk)
            .zip(y.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .for_each(|(out, (y, g))| chunk_backward(isa, (y, g, out, n, inv_tau)));
    }
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// `tensor` itself (a cheap reference-counted clone) when its f32 storage is one contiguous run,
/// else a contiguous copy.
fn contiguous_f32(tensor: &FlexTensor) -> FlexTensor {
    match tensor.as_slice::<f32>() {
        Some(_) => tensor.clone(),
        None => tensor.to_contiguous(),
    }
}

/// The maximum of a slice, in LANES independent lanes so that it vectorizes.
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    let mut max = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for l in lanes {
        max = if l > max { l } else { max };
    }
    max
}

/// SplitMix64's increment: the state of element `index` under `key` is `key + (index + 1) γ`.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The uniform in the open interval `(0, 1)` of element `index` under `key`, from its state
/// `key + (index + 1) γ`: SplitMix64's output, top 24 bits, centred in its cell, so
/// `u ∈ [2^-25, 1 − 2^-25]`. The kernel steps the state by `γ` per element instead of
/// multiplying (the same value modulo 2^64).
#[inline(always)]
fn uniform_of_state(mut z: u64) -> f32 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // Through i32 (exact below 2^24): vector u64 → f32 conversions need AVX-512.
    ((z >> 40) as i32 as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// `ln x` for normal `x > 0`, branch-free (Cephes' `logf` polynomial, within 2 ulp).
#[inline(always)]
fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
    let big = mantissa > core::f32::consts::SQRT_2;
    let m = if big { mantissa * 0.5 } else { mantissa };
    let e = (exponent + big as i32) as f32;
    let f = m - 1.0;
    let z = f * f;
    let mut p = 7.037_683_6e-2f32;
    p = p * f - 1.151_461_1e-1;
    p = p * f + 1.167_699_9e-1;
    p = p * f - 1.242_014_1e-1;
    p = p * f + 1.424_932_3e-1;
    p = p * f - 1.666_805_8e-1;
    p = p * f + 2.000_071_5e-1;
    p = p * f - 2.499_999_4e-1;
    p = p * f + 3.333_333e-1;
    let y = p * f * z - 2.121_944_4e-4 * e - 0.5 * z;
    f + y + 0.693_359_4 * e
}

/// `exp x` for `x ≤ 0`, branch-free (Cephes' `expf` polynomial, within 2 ulp); exactly 0 below
/// −87 (and for −∞), where `exp` is under 2^-125.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    let xc = if x > -87.0 { x } else { -87.0 };
    let t = xc * core::f32::consts::LOG2_E;
    let n = (t - 0.5) as i32; // round to nearest for t ≤ 0
    let nf = n as f32;
    let r = xc - nf * 0.693_359_4 + nf * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    if x > -87.0 { y * scale } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    #[test]
    fn fast_ln_is_within_two_ulp_of_the_correctly_rounded_log() {
        // Every 997th positive normal f32, across the whole range.
        let mut worst = 0;
        let mut bits = f32::MIN_POSITIVE.to_bits();
        while bits < f32::MAX.to_bits() {
            let x = f32::from_bits(bits);
            let exact = (x as f64).ln() as f32;
            let error = if exact.abs() < 1e-6 {
                ((fast_ln(x) - exact).abs() / f32::EPSILON * 1e6) as i64 // near 1: absolute
            } else {
                ulps(fast_ln(x), exact)
            };
            worst = worst.max(error);
            bits += 997;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
    }

    #[test]
    fn fast_exp_is_within_two_ulp_on_its_domain() {
        let mut worst = 0;
        for i in 0..2_000_000 {
            let x = -87.0 * i as f32 / 2_000_000.0;
            worst = worst.max(ulps(fast_exp(x), (x as f64).exp() as f32));
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(fast_exp(0.0), 1.0);
        assert_eq!(fast_exp(-88.0), 0.0);
        assert_eq!(fast_exp(f32::NEG_INFINITY), 0.0);
    }

    /// The uniform of element `index` under `key`, from the state's definition.
    fn uniform(key: u64, index: u64) -> f32 {
        uniform_of_state(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)))
    }

    #[test]
    fn stepping_the_state_gives_the_uniform_of_each_index() {
        let key: u64 = 0x0123_4567_89AB_CDEF;
        let first = u64::MAX - 5; // the counter wraps around
        let mut state = key.wrapping_add(first.wrapping_add(1).wrapping_mul(GAMMA));
        for j in 0..12 {
            let u = uniform_of_state(state);
            assert_eq!(
                u.to_bits(),
                uniform(key, first.wrapping_add(j)).to_bits(),
                "j = {j}"
            );
            state = state.wrapping_add(GAMMA);
        }
    }

    #[test]
    fn uniforms_are_in_the_open_interval_and_uniform() {
        // 1M draws: mean 1/2 and variance 1/12 within 5 standard errors; no 0, no 1.
        let n = 1_000_000u64;
        let (mut sum, mut sum2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let u = uniform(0xDEAD_BEEF, i) as f64;
            assert!(u > 0.0 && u < 1.0);
            sum += u;
            sum2 += u * u;
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        // SE of the mean: sqrt(1/12 / n) ≈ 2.9e-4; of the variance: sqrt(1/180 / n) ≈ 7.5e-5.
        assert!((mean - 0.5).abs() < 5.0 * 2.9e-4, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 5.0 * 7.5e-5, "variance {var}");
        // Neighbouring counters are not correlated: lag-1 correlation within 5 SE (1e-3).
        let mut cov = 0.0f64;
        for i in 0..n {
            cov += (uniform(7, i) as f64 - 0.5) * (uniform(7, i + 1) as f64 - 0.5);
        }
        let corr = cov / n as f64 * 12.0;
        assert!(corr.abs() < 5.0e-3, "lag-1 correlation {corr}");
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // Rows of several lengths (vector remainders), soft, hard and backward, against the
        // generic code.
        let isa = Isa::detect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (rows, n) in [(3, 1), (5, 7), (100, 10), (2, 33), (3, 64), (1, 1000)] {
            let theta: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 37) % 11) as f32 * 0.7 - 3.0)
                .collect();
            for normalize in [false, true] {
                let (mut a, mut b) = (vec![0.0; rows * n], vec![0.0; rows * n]);
                let args = (&theta[..], &mut a[..], n, 1.7, 99, 5 * n as u64, normalize);
                let ja = chunk_forward_generic(args);
                let args = (&theta[..], &mut b[..], n, 1.7, 99, 5 * n as u64, normalize);
                let jb = chunk_forward(isa, args);
                assert_eq!(ja, jb, "{isa:?}, n = {n}");
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "{isa:?}, n = {n}, normalize = {normalize}"
                );
            }
        }
    }

    #[test]
    fn first_index_of_finds_the_first_match() {
        let mut x = vec![0.0f32; 100];
        x[70] = 2.0;
        x[90] = 2.0;
        assert_eq!(first_index_of(&x, 2.0), 70);
        x[3] = 2.0;
        assert_eq!(first_index_of(&x, 2.0), 3);
        assert_eq!(first_index_of(&x[..20], 5.0), 0);
        let tail: Vec<f32> = (0..37).map(|i| i as f32).collect(); // the match in the remainder
        assert_eq!(first_index_of(&tail, 35.0), 35);
    }

    #[test]
    fn lane_max_is_the_maximum() {
        let x: Vec<f32> = (0..37).map(|i| ((i * 17) % 37) as f32 - 3.0).collect();
        assert_eq!(lane_max(&x), 33.0);
        assert_eq!(lane_max(&[f32::NEG_INFINITY, -1.0]), -1.0);
    }
}
