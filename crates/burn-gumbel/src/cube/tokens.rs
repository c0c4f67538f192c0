//! The token sampler's row kernel on the GPU: a cube of [`UNITS`] units per row of logits draws
//! the row's token and its log-probability with the arithmetic of the host's row kernel
//! (`tokens/row.rs`), in its order, so that a row gives the host's bits (on a device that does not
//! contract a multiply and an add into one rounding, as with the Gumbel-Softmax kernel).
//!
//! It serves the rows whose kept set is a threshold known before the row is read: greedy rows,
//! temperature alone and min-p. Rows with top-k or top-p, and rows the kernel flags (a NaN or an
//! infinite logit, a row masked entirely, a maximum below [`LOWEST`], a race closer than
//! [`MARGIN`]) are left to the host, which computes them, or names their error, as on any
//! backend. So the token is the host's on every row; the log-probability of a row the kernel
//! drew is the host's where the GPU rounds as the host does, else within a few ulps of it.
//!
//! Per row, with `z = x · (1/T)`, `m = max z`, `d = z − m` and `t` the row's threshold:
//! 1. the maximum `m` and its first index, reduced across the cube (exact in any order);
//! 2. the mass `M_b` of each block of 256 tokens, one unit per block: eight lanes `v mod 8` summed
//!    in order, then the lanes in order, as the host sums them; `fast_ln(M_b) + G_b` per block;
//! 3. one unit adds the masses in block order (the row's mass) and takes the first block of the
//!    largest perturbed mass; the cube's units then draw the token of that block, the first of
//!    the largest `d_v + g_v`.

use burn::tensor::{DType, Shape, Tensor as BurnTensor, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;

use super::kernels::cube_index;
use super::math::{fast_exp, fast_ln, gumbel};

/// Units per cube: one row each.
const UNITS: u32 = 256;

/// Tokens per block of the two-level draw (the host's `BLOCK`).
const BLOCK: u32 = 256;

/// The most blocks of a row the kernel takes (their masses wait in shared memory): rows of up to
/// 262,144 tokens.
const MAX_BLOCKS: usize = 1024;

/// The fewest tokens of a row the kernel takes: shorter rows leave most of a cube's units idle
/// (and a software driver runs each cube's barriers one by one), and their read back is cheap.
const KERNEL_FROM: usize = 1024;

/// The smallest gap between the largest and the second largest perturbed value, of the blocks
/// and of the tokens, at which the kernel keeps its draw; a closer race goes to the host. A GPU
/// may contract a multiply and an add into one rounding, which moves a perturbed value (at most
/// about 20) by a few ulps, below 1e-5: a gap of 1e-3 decides the same way as the host's bits,
/// and about one row in a thousand is drawn again on the host.
const MARGIN: f32 = 1e-3;

/// A very negative finite f32 (WGSL has no infinite literal): the running maximum before any
/// token. A row whose maximum stays at or below it (masked, or scaled below it) goes to the host.
const LOWEST: f32 = -3.0e38;

/// `φ · 1`, the high word of a block's counter `2^32 + b` entering the hash's second round (the
/// host's `counter::uniform`).
const PHI: u32 = 0x9E37_79B9;

/// Values per row of the kernel's parameters: `1/T`, the threshold `t`, the mode, and the row
/// key's two words as four 16-bit pieces (exact in f32), low first.
const PARAMS: usize = 7;

/// What the kernel writes per row: the token, its log-probability and the status.
const RESULTS: usize = 3;

/// How the kernel treats a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The first index of the largest logit.
    Greedy,
    /// A draw with the row's `1/T` and threshold `t` on `d`.
    Sample,
    /// Left to the host (the kernel writes nothing but the status).
    Host,
}

/// One row's settings for the kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowParams {
    /// How the kernel treats it.
    pub mode: Mode,
    /// `1/T` (1 for greedy rows).
    pub inv_t: f32,
    /// The threshold on `d` of the kept tokens (`-inf`: all).
    pub threshold: f32,
    /// The row key's two words, `counter::key_words`.
    pub key_words: (u32, u32),
}

/// One row's result: the token and its log-probability, or `None` where the host must compute it.
pub(crate) type RowResult = Option<(u32, f32)>;

/// The kernel's draw of every row of `logits` (`[batch, vocab]` on a plain cube device, f32, f16 or
/// bf16), one [`RowParams`] per row; `None` when the tensor is not one the kernel takes (another
/// backend, autodiff, more than [`MAX_BLOCKS`] blocks), and per row `None` where the host must
/// compute it. One read back of `3 · batch` values. Rows of [`KERNEL_FROM`] to 262,144 tokens.
pub(crate) fn sample_rows(logits: &BurnTensor<2>, rows: &[RowParams]) -> Option<Vec<RowResult>> {
    let [batch, vocab] = logits.dims();
    if batch == 0
        || vocab < KERNEL_FROM
        || vocab.div_ceil(BLOCK as usize) > MAX_BLOCKS
        || !matches!(logits.dtype(), DType::F32 | DType::F16 | DType::BF16)
    {
        return None;
    }
    let device = logits.device();
    let x = into_contiguous(cube_float(logits.clone())?);
    let mut params = Vec::with_capacity(batch * PARAMS);
    for row in rows {
        let (k1, k2) = row.key_words;
        let mode = match row.mode {
            Mode::Greedy => 0.0,
            Mode::Sample => 1.0,
            Mode::Host => 2.0,
        };
        params.extend([row.inv_t, row.threshold, mode]);
        params.extend(
            [k1, k2]
                .iter()
                .flat_map(|k| [k & 0xFFFF, k >> 16])
                .map(|p| p as f32),
        );
    }
    let params = BurnTensor::<2>::from_data(TensorData::new(params, [batch, PARAMS]), &device);
    let params = into_contiguous(cube_float(params)?);
    if params.dtype != DType::F32 {
        return None;
    }
    let out = empty_device_contiguous_dtype(
        x.client.clone(),
        x.device.clone(),
        Shape::new([batch, RESULTS]),
        DType::F32,
    );
    let storage = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
    let client = x.client.clone();
    let cubes = batch as u32;
    let grid_x = cubes.min(65_535);
    // SAFETY: `x` is contiguous with `batch · vocab` elements, `params` with `batch · PARAMS`,
    // `out` with `batch · RESULTS`; the kernel reads row `r < batch` only, token indices below
    // `vocab`, and block indices below `MAX_BLOCKS` (checked above).
    unsafe {
        token_kernel::launch_unchecked(
            &client,
            CubeCount::Static(grid_x, cubes.div_ceil(grid_x), 1),
            CubeDim::new_1d(UNITS),
            x.into_tensor_arg(),
            params.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            batch as u32,
            vocab as u32,
            MARGIN,
            storage,
        );
    }
    let results = burn_cubecl::ops::into_data_sync(out)
        .convert::<f32>()
        .try_into_vec::<f32>()
        .ok()?;
    Some(
        results
            .chunks_exact(RESULTS)
            .map(|r| (r[2] == 0.0).then_some((r[0] as u32, r[1])))
            .collect(),
    )
}

/// The `CubeBackend` tensor under a float tensor on a plain cube device (fused or not), with the
/// operations queued before it run; `None` for any other tensor.
fn cube_float(tensor: BurnTensor<2>) -> Option<CubeTensor> {
    use burn::backend::{BackendTensor, DispatchTensorKind};
    match tensor.into_dispatch().kind {
        DispatchTensorKind::Cube(BackendTensor::Float(t)) => {
            Some(t.client.clone().resolve_tensor_float::<CubeBackend>(t))
        }
        _ => None,
    }
}

/// The token kernel (see the module's documentation): a cube per row of `vocab` logits; `params`
/// `[rows, 7]` as [`sample_rows`] writes them; `out` `[rows, 3]`: the token, its log-probability
/// and the status (0: drawn; 1: left to the host).
#[cube(launch_unchecked)]
pub(super) fn token_kernel<F: Float>(
    logits: &Tensor<F>,
    params: &Tensor<f32>,
    out: &mut Tensor<f32>,
    rows: u32,
    vocab: u32,
    margin: f32,
    #[define(F)] _dtype: ElemType,
) {
    let row = cube_index();
    if row >= rows {
        terminate!();
    }
    let unit = UNIT_POS_X;
    let p = (row * 7u32) as usize;
    let inv_t = params[p];
    let threshold = params[p + 1];
    let mode = params[p + 2];
    let k1 = u32::cast_from(params[p + 3]) | (u32::cast_from(params[p + 4]) << 16u32);
    let k2 = u32::cast_from(params[p + 5]) | (u32::cast_from(params[p + 6]) << 16u32);
    let o = (row * 3u32) as usize;
    if mode == 2.0f32 {
        if unit == 0u32 {
            write(out, o, 0u32, 0.0f32, 1.0f32);
        }
        terminate!();
    }
    let base = (row * vocab) as usize;

    // 1. The maximum of z = x · (1/T) and its first index, in one read of the row (each unit's
    //    indices ascend, so the strict comparison keeps its first); NaN and +inf noted (any
    //    value above f32::MAX). The cube's reduction takes the larger value, of equal values the
    //    lower index, which is exact in any order.
    let mut local = LOWEST.runtime();
    let mut first = vocab;
    let mut bad = 0u32;
    let mut v = unit;
    while v < vocab {
        let x = f32::cast_from(logits[base + v as usize]);
        let z = x * inv_t;
        bad = select(x.is_nan() || z > 3.402_823_5e38f32, 1u32, bad);
        let bigger = z > local;
        first = select(bigger, v, first);
        local = select(bigger, z, local);
        v += UNITS;
    }
    let mut shared_max = Shared::<[f32]>::new_slice(256usize);
    let mut shared_arg = Shared::<[u32]>::new_slice(256usize);
    let mut shared_bad = Shared::<[u32]>::new_slice(256usize);
    shared_max[unit as usize] = local;
    shared_arg[unit as usize] = first;
    shared_bad[unit as usize] = bad;
    sync_cube();
    let mut span = 128u32;
    while span > 0u32 {
        if unit < span {
            shared_bad[unit as usize] |= shared_bad[(unit + span) as usize];
        }
        sync_cube();
        span /= 2u32;
    }
    reduce_first_max(&mut shared_max, &mut shared_arg, unit);
    let m = shared_max[0];
    let first = shared_arg[0];
    let flagged = shared_bad[0] != 0u32 || m <= LOWEST;
    sync_cube();
    if flagged {
        if unit == 0u32 {
            write(out, o, 0u32, 0.0f32, 1.0f32);
        }
        terminate!();
    }
    if mode == 0.0f32 {
        if unit == 0u32 {
            write(out, o, first, 0.0f32, 0.0f32);
        }
        terminate!();
    }

    // 2. Each unit's blocks: their masses, and their perturbed log-masses.
    let blocks = vocab.div_ceil(BLOCK);
    let mut masses = Shared::<[f32]>::new_slice(1024usize);
    let mut perturbed = Shared::<[f32]>::new_slice(1024usize);
    let mut b = unit;
    while b < blocks {
        let mut mass = 0.0f32;
        for l in 0..8u32 {
            let mut lane = 0.0f32;
            for j in 0..32u32 {
                let v = b * BLOCK + j * 8u32 + l;
                let inside = v < vocab;
                let i = select(inside, v, 0u32);
                let d = f32::cast_from(logits[base + i as usize]) * inv_t - m;
                let w = fast_exp(d);
                lane += select(inside && d >= threshold, w, 0.0f32);
            }
            mass += lane;
        }
        masses[b as usize] = mass;
        let noise = gumbel(k1, k2 ^ PHI, b);
        perturbed[b as usize] = select(mass > 0.0f32, fast_ln(mass) + noise, LOWEST);
        b += UNITS;
    }
    sync_cube();

    // 3. The row's mass and the block drawn, by one unit in block order.
    // The gap to the second largest is kept: a close race goes to the host.
    if unit == 0u32 {
        let mut total = 0.0f32;
        let mut best = LOWEST.runtime();
        let mut second = LOWEST.runtime();
        let mut chosen = 0u32;
        for b in 0..blocks {
            total += masses[b as usize];
            let value = perturbed[b as usize];
            let bigger = value > best;
            second = select(bigger, best, select(value > second, value, second));
            chosen = select(bigger, b, chosen);
            best = select(bigger, value, best);
        }
        masses[0] = total;
        masses[1] = best - second;
        shared_arg[0] = chosen;
    }
    sync_cube();
    let total = masses[0];
    let block_gap = masses[1];
    let chosen = shared_arg[0];
    sync_cube();
    // The token inside it: the first of the largest d + g among its kept tokens.
    let v = chosen * BLOCK + unit;
    let inside = v < vocab;
    let i = select(inside, v, 0u32);
    let d = f32::cast_from(logits[base + i as usize]) * inv_t - m;
    let kept = inside && d >= threshold && d > -87.0f32;
    let noise = gumbel(k1, k2, i);
    shared_max[unit as usize] = select(kept, d + noise, LOWEST);
    shared_arg[unit as usize] = v;
    sync_cube();
    reduce_first_max(&mut shared_max, &mut shared_arg, unit);
    let best = shared_max[0];
    let winner = shared_arg[0];
    sync_cube();
    // The second largest: the largest of the others.
    shared_max[unit as usize] = select(kept && v != winner, d + noise, LOWEST);
    shared_arg[unit as usize] = v;
    sync_cube();
    reduce_first_max(&mut shared_max, &mut shared_arg, unit);
    if unit == 0u32 {
        let close = block_gap < margin || best - shared_max[0] < margin;
        let token = select(best > LOWEST, winner, first);
        let d = f32::cast_from(logits[base + token as usize]) * inv_t - m;
        let status = select(close, 1.0f32, 0.0f32);
        write(out, o, token, d - fast_ln(total), status);
    }
}

/// Reduces the cube's `(value, index)` pairs, one per unit in `values` and `indices` (written and
/// synchronized before the call), into entry 0: the largest value, of equal values the lowest
/// index (the host's first maximum), exact in any order. A tree of 8 levels, a barrier each.
#[cube]
fn reduce_first_max(values: &mut Shared<[f32]>, indices: &mut Shared<[u32]>, unit: u32) {
    let mut span = 128u32;
    while span > 0u32 {
        if unit < span {
            let (mine, other) = (unit as usize, (unit + span) as usize);
            let wins = values[other] > values[mine]
                || (values[other] == values[mine] && indices[other] < indices[mine]);
            values[mine] = select(wins, values[other], values[mine]);
            indices[mine] = select(wins, indices[other], indices[mine]);
        }
        sync_cube();
        span /= 2u32;
    }
}

/// Row `o / 3`'s result: the token, its log-probability and the status (0: drawn; 1: left to
/// the host).
#[cube]
fn write(out: &mut Tensor<f32>, o: usize, token: u32, logprob: f32, status: f32) {
    out[o] = f32::cast_from(token);
    out[o + 1] = logprob;
    out[o + 2] = status;
}
