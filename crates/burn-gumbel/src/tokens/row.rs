//! The row kernel of the token sampler: one row of logits, its filters and its key → one token
//! and its log-probability, on the host, in a fixed order of operations.
//!
//! With `z_v = x_v · (1/T)`, `m = max z` and `d_v = z_v − m` (each an f32 operation, correctly
//! rounded), the filters become one threshold `t` on `d` (every filter keeps a set of largest
//! values): the kept set is `S = {v : d_v ≥ t, d_v > −87}` (below `e^-87` of the most probable
//! token, where f32's `exp` underflows, a token counts as probability 0). The token is drawn
//! exactly from `p_v = exp d_v / Σ_S exp d` by a two-level Gumbel-max: the tokens are cut into
//! blocks of [`BLOCK`] consecutive ids, block `b` has the mass `M_b = Σ_{v ∈ S ∩ b} exp d_v`,
//! the block `B = argmax_b (ln M_b + G_b)` is drawn with `G_b` the block noise of (row key, `b`),
//! then the token `argmax_{v ∈ S ∩ B} (d_v + g_v)` with `g_v` the token noise of (row key, `v`),
//! ties to the lowest index. `P(B = b) = M_b / Σ M` and `P(v | b) = exp d_v / M_b`, so the token
//! has probability `p_v`; and the noise is computed for one block and the block sums only, not
//! for every token. Its log-probability is `d_token − ln Σ_b M_b`. Passes over the row:
//! 1. the maximum `m` and its first index (and the check for NaN and fully masked rows);
//! 2. for top-k, the `k`-th largest `d` by a streaming selection (linear on average); for
//!    top-p, the top-k mass `W`, then only the candidates with `exp d_v ≥ (1 − q) · W / |top-k|`
//!    (no other token can be in the nucleus) sorted;
//! 3. the block masses (an `exp` per token, branch-free so that the compiler vectorizes it, then
//!    added in eight lanes `v mod 8`, the lanes in order) and the block draw, then the token draw
//!    inside the block drawn (or, for [`logprobs_row`], the log-probability of every token).
//!
//! Everything from the block masses on is in f32 with the host's `fast_exp` and `fast_ln`
//! (`crate::math`), the masses summed in block order, so that the GPU's twin of this kernel
//! (`cube/tokens.rs`) computes the same bits for the rows it serves.
//!
//! Nothing depends on the row's batchmates, the batch size or the thread count: each row is one
//! task, its sums taken in a fixed order. The kernel is compiled for each instruction set
//! (`crate::isa`: vectors of 4, 8 or 16 lanes for the passes above) and runs the widest this
//! processor has; every variant computes the same bits.

use crate::isa::{Isa, multiversion};
use crate::key::Key;
use crate::math::{fast_exp, fast_ln};
use crate::noise::{token_block_gumbel, token_gumbel};

use super::config::Filters;

/// One row's draw: the token id and its log-probability under the distribution it was drawn from
/// (0 for greedy decoding, a point mass).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Draw {
    /// The token id.
    pub token: u32,
    /// Its log-probability.
    pub logprob: f32,
}

/// Why a row has no draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum RowError {
    /// A NaN logit, at this token.
    NaN(u32),
    /// Every logit is `-inf`.
    Masked,
    /// `logits / T` overflows f32 (or a logit is `+inf`): the largest logit.
    Overflow(f32),
}

/// The row kernel's scratch space, reused across the rows of one thread.
#[derive(Default)]
pub(super) struct Scratch {
    /// A copy of the row's `d` (top-k's selection).
    values: Vec<f32>,
    /// Top-p's candidates: `(d, token)`.
    candidates: Vec<(f32, u32)>,
}

/// A row ready to draw from: `1/T`, the maximum `m` of `x · (1/T)` and its first index, and the
/// threshold `t` on `d = x · (1/T) − m` of the kept tokens (`None` for greedy rows).
struct Prepared {
    inv_t: f32,
    m: f32,
    first: usize,
    threshold: f32,
}

impl Prepared {
    /// `d_v`, when token `v` is kept (`d_v ≥ t` and `d_v > −87`).
    #[inline(always)]
    fn kept(&self, xv: f32) -> Option<f32> {
        let dv = xv * self.inv_t - self.m;
        (dv >= self.threshold && dv > EXP_FLOOR).then_some(dv)
    }

    /// `Σ exp d_v` over the kept tokens of `block`, in [`LANES`] lanes of f32 (lane `i` takes
    /// the tokens `i mod 8` of the block), then the lanes in order, all in f32. The weights are computed into a
    /// buffer first, branch-free (`fast_exp` is 0 at and below −87, as [`Self::kept`] says), so
    /// that the compiler vectorizes that loop at the full width of the instruction set; the
    /// lanes then add the buffer (its tail past a short block holds zeros, which add nothing).
    #[inline(always)]
    fn block_mass(&self, block: &[f32]) -> f32 {
        let mut weights = [0.0f32; BLOCK];
        for (w, &xv) in weights.iter_mut().zip(block) {
            let dv = xv * self.inv_t - self.m;
            let e = fast_exp(dv);
            *w = if dv >= self.threshold { e } else { 0.0 };
        }
        let mut lanes = [0.0f32; LANES];
        for chunk in weights.chunks_exact(LANES) {
            for (lane, &w) in lanes.iter_mut().zip(chunk) {
                *lane += w;
            }
        }
        lanes.iter().fold(0.0, |mass, &lane| mass + lane)
    }
}

/// The maximum and the threshold of row `x` under `filters` (passes 1 and 2), or `None` for a
/// greedy row, with the first index of its largest logit.
#[inline(always)]
fn prepare(
    x: &[f32],
    filters: Filters,
    scratch: &mut Scratch,
) -> Result<Result<Prepared, usize>, RowError> {
    let (inv_t, top_k, top_p, ln_min_p) = match filters {
        Filters::Greedy => return maximum(x, 1.0).map(|(_, first)| Err(first)),
        Filters::Sample {
            inv_temperature,
            top_k,
            top_p,
            ln_min_p,
        } => (inv_temperature, top_k, top_p, ln_min_p),
    };
    let (m, first) = maximum(x, inv_t)?;
    let d = |v: usize| x[v] * inv_t - m;
    // The threshold: the largest of the filters' (each keeps the largest values).
    let mut threshold = ln_min_p;
    let top_k_threshold = top_k.map(|k| kth_largest(x, &d, k, &mut scratch.values));
    if let Some(t) = top_k_threshold {
        threshold = threshold.max(t);
    }
    if let Some(q) = top_p {
        let t = top_k_threshold.unwrap_or(f32::NEG_INFINITY);
        threshold = threshold.max(nucleus(x, &d, t, q, scratch));
    }
    Ok(Ok(Prepared {
        inv_t,
        m,
        first,
        threshold,
    }))
}

/// Draws the token of row `x` under `key` with `filters`, with the kernel variant of this
/// processor.
pub(super) fn sample_row(
    x: &[f32],
    key: Key,
    filters: Filters,
    scratch: &mut Scratch,
) -> Result<Draw, RowError> {
    sample_isa(
        Isa::detect(),
        Sample {
            x,
            key,
            filters,
            scratch,
        },
    )
}

/// The arguments of [`sample_row`]'s kernel.
struct Sample<'a> {
    x: &'a [f32],
    key: Key,
    filters: Filters,
    scratch: &'a mut Scratch,
}

multiversion! {
    /// [`sample_generic`] compiled for `isa`.
    fn sample_isa => sample_generic(Sample<'_>) -> Result<Draw, RowError>
}

/// [`sample_row`]'s kernel (pass 3: the keyed draw and the kept mass).
#[inline(always)]
fn sample_generic(args: Sample<'_>) -> Result<Draw, RowError> {
    let Sample {
        x,
        key,
        filters,
        scratch,
    } = args;
    let row = match prepare(x, filters, scratch)? {
        Ok(row) => row,
        Err(first) => {
            return Ok(Draw {
                token: first as u32,
                logprob: 0.0,
            });
        }
    };
    // The block draw: the block of the largest ln M_b + G_b (ties to the lowest index); the
    // most probable token's block has M_b ≥ 1.
    let (mut total, mut best, mut chosen) = (0.0f32, f32::NEG_INFINITY, 0usize);
    for (b, block) in x.chunks(BLOCK).enumerate() {
        let mass = row.block_mass(block);
        total += mass;
        if mass > 0.0 {
            let perturbed = fast_ln(mass) + token_block_gumbel(key, b as u32);
            if perturbed > best {
                (best, chosen) = (perturbed, b);
            }
        }
    }
    // The token draw inside it.
    let start = chosen * BLOCK;
    let (mut best, mut token) = (f32::NEG_INFINITY, row.first);
    for (i, &xv) in x[start..(start + BLOCK).min(x.len())].iter().enumerate() {
        let Some(dv) = row.kept(xv) else { continue };
        let perturbed = dv + token_gumbel(key, (start + i) as u32);
        if perturbed > best {
            (best, token) = (perturbed, start + i);
        }
    }
    Ok(Draw {
        token: token as u32,
        logprob: (x[token] * row.inv_t - row.m) - fast_ln(total),
    })
}

/// Writes into `out` the log-probabilities of every token of row `x` under `filters`: `d_v − ln
/// Σ_S exp d` on the kept set `S`, `-inf` elsewhere (greedy: 0 at the first largest logit), with
/// the kernel variant of this processor.
pub(super) fn logprobs_row(
    x: &[f32],
    filters: Filters,
    scratch: &mut Scratch,
    out: &mut [f32],
) -> Result<(), RowError> {
    logprobs_isa(
        Isa::detect(),
        Logprobs {
            x,
            filters,
            scratch,
            out,
        },
    )
}

/// The arguments of [`logprobs_row`]'s kernel.
struct Logprobs<'a> {
    x: &'a [f32],
    filters: Filters,
    scratch: &'a mut Scratch,
    out: &'a mut [f32],
}

multiversion! {
    /// [`logprobs_generic`] compiled for `isa`.
    fn logprobs_isa => logprobs_generic(Logprobs<'_>) -> Result<(), RowError>
}

/// [`logprobs_row`]'s kernel.
#[inline(always)]
fn logprobs_generic(args: Logprobs<'_>) -> Result<(), RowError> {
    let Logprobs {
        x,
        filters,
        scratch,
        out,
    } = args;
    let row = match prepare(x, filters, scratch)? {
        Ok(row) => row,
        Err(first) => {
            out.fill(f32::NEG_INFINITY);
            out[first] = 0.0;
            return Ok(());
        }
    };
    let mass = x
        .chunks(BLOCK)
        .map(|block| row.block_mass(block))
        .fold(0.0f32, |total, mass| total + mass);
    let ln_mass = fast_ln(mass);
    for (o, &xv) in out.iter_mut().zip(x) {
        *o = match row.kept(xv) {
            Some(dv) => dv - ln_mass,
            None => f32::NEG_INFINITY,
        };
    }
    Ok(())
}

/// The number of partial sums a block's mass is summed in (a fixed order: lane `v mod 8`).
const LANES: usize = 8;

/// Tokens per block of the two-level draw: block `b` holds the ids `[256·b, 256·(b + 1))`.
pub(super) const BLOCK: usize = 256;

/// The `d` at and below which a token counts as probability 0: `fast_exp` is 0 there.
const EXP_FLOOR: f32 = -87.0;

/// The largest `x_v · inv_t` and its first index: a maximum in [`LANES`] lanes (branch-free, so
/// that the compiler vectorizes it; a maximum is the same in any order), NaN noted on the way,
/// then the first index that reaches it.
#[inline(always)]
fn maximum(x: &[f32], inv_t: f32) -> Result<(f32, usize), RowError> {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut nan = false;
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &xv) in lanes.iter_mut().zip(chunk) {
            nan |= xv.is_nan();
            let z = xv * inv_t;
            *lane = if z > *lane { z } else { *lane };
        }
    }
    for &xv in rest {
        nan |= xv.is_nan();
        lanes[0] = lanes[0].max(xv * inv_t);
    }
    if nan {
        let v = x.iter().position(|xv| xv.is_nan()).unwrap_or(0);
        return Err(RowError::NaN(v as u32));
    }
    let m = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    // The first chunk of 64 that holds `m` (a branch-free test per chunk), then the index in it.
    let reaches = |xv: f32| xv * inv_t == m;
    let first = x
        .chunks(64)
        .enumerate()
        .find(|(_, chunk)| chunk.iter().fold(false, |any, &xv| any | reaches(xv)))
        .and_then(|(c, chunk)| chunk.iter().position(|&xv| reaches(xv)).map(|i| 64 * c + i))
        .unwrap_or(0);
    match m {
        f32::NEG_INFINITY => Err(RowError::Masked),
        f32::INFINITY => Err(RowError::Overflow(x[first])),
        _ => Ok((m, first)),
    }
}

/// The `k`-th largest `d` of the row, counted with multiplicity: the tokens at or above a floor
/// go into `buffer`, which is cut back to its `k` largest (a selection, linear on average) when
/// it holds `4k`, raising the floor to the `k`-th largest so far (a token below it cannot be among
/// the `k` largest). A chunk of 64 tokens wholly below the floor costs one comparison per token.
#[inline(always)]
fn kth_largest(x: &[f32], d: &impl Fn(usize) -> f32, k: usize, buffer: &mut Vec<f32>) -> f32 {
    const CHUNK: usize = 64;
    let descending = |a: &f32, b: &f32| b.total_cmp(a);
    buffer.clear();
    let mut floor = f32::NEG_INFINITY;
    for start in (0..x.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(x.len());
        if !(start..end).fold(false, |any, v| any | (d(v) >= floor)) {
            continue;
        }
        buffer.extend((start..end).map(d).filter(|&dv| dv >= floor));
        if buffer.len() >= 4 * k {
            buffer.select_nth_unstable_by(k - 1, descending);
            buffer.truncate(k);
            floor = buffer[k - 1];
        }
    }
    *buffer.select_nth_unstable_by(k - 1, descending).1
}

/// Top-p's threshold on `d` among the tokens with `d ≥ t` (the top-k set; all tokens when `t` is
/// `-inf`): the `d` of the last token of the shortest prefix, largest first, whose mass reaches
/// `q` times the set's mass.
#[inline(always)]
fn nucleus(x: &[f32], d: &impl Fn(usize) -> f32, t: f32, q: f32, scratch: &mut Scratch) -> f32 {
    let mut lanes = [0.0f64; LANES];
    let mut count = 0usize;
    for v in 0..x.len() {
        let dv = d(v);
        if dv >= t && dv != f32::NEG_INFINITY {
            lanes[v % LANES] += fast_exp(dv) as f64;
            count += 1;
        }
    }
    let mass = lanes.iter().sum::<f64>();
    // A token of weight w < (1 − q)·W/N is outside the nucleus: the tokens of weight ≤ w weigh
    // less than (1 − q)·W together, so the heavier ones already reach q·W. The bound is lowered
    // by 1e-3 nats so that rounding never drops a member; extra candidates change nothing.
    let bound = ((1.0 - q as f64) * mass / count as f64).ln() - 1e-3;
    let bound = (bound as f32).max(t);
    scratch.candidates.clear();
    for v in 0..x.len() {
        let dv = d(v);
        if dv >= bound && dv != f32::NEG_INFINITY {
            scratch.candidates.push((dv, v as u32));
        }
    }
    scratch
        .candidates
        .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let target = q as f64 * mass;
    let mut prefix = 0.0f64;
    for &(dv, _) in &scratch.candidates {
        prefix += fast_exp(dv) as f64;
        if prefix >= target {
            return dv;
        }
    }
    // Rounding kept the candidates' sum below q·W: all of them.
    scratch.candidates.last().map_or(t, |c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(x: &[f32], key: u64, filters: Filters) -> Result<Draw, RowError> {
        sample_row(x, Key::new(key), filters, &mut Scratch::default())
    }

    fn filters(t: f32, k: Option<usize>, p: Option<f32>, min_p: f32) -> Filters {
        Filters::Sample {
            inv_temperature: 1.0 / t,
            top_k: k,
            top_p: p,
            ln_min_p: if min_p > 0.0 {
                min_p.ln()
            } else {
                f32::NEG_INFINITY
            },
        }
    }

    #[test]
    fn in_one_block_the_token_is_the_argmax_of_the_perturbed_logits() {
        // A row of 50 tokens is one block, whose draw is certain: the token is then the plain
        // Gumbel-max of `d + g`, on 2000 keys. (Rows of several blocks: the exactness tests of
        // tests/gumbel/tokens.rs.)
        let x: Vec<f32> = (0..50)
            .map(|v| ((v * 37 % 23) as f32 * 0.3).sin() * 4.0)
            .collect();
        for key in 0..2000u64 {
            let draw = sample(&x, key, filters(0.8, None, None, 0.0)).unwrap();
            let inv_t = 1.0 / 0.8f32;
            let m = x
                .iter()
                .map(|&v| v * inv_t)
                .fold(f32::NEG_INFINITY, f32::max);
            let mut best = (f32::NEG_INFINITY, 0usize);
            for (v, &xv) in x.iter().enumerate() {
                let p = (xv * inv_t - m) + token_gumbel(Key::new(key), v as u32);
                if p > best.0 {
                    best = (p, v);
                }
            }
            assert_eq!(draw.token as usize, best.1, "key {key}");
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // The generic kernel against the variant of this processor, on rows with a vector
        // remainder and several blocks, with each filter: the same ids and bits.
        let isa = Isa::detect();
        for n in [7usize, 300, 1000, 5003] {
            let x: Vec<f32> = (0..n)
                .map(|v| ((v * 7919 % 1009) as f32 * 0.013).sin() * 6.0)
                .collect();
            let settings = [
                filters(0.8, None, None, 0.0),
                filters(1.3, Some(20.min(n)), None, 0.0),
                filters(0.7, None, Some(0.9), 0.0),
                filters(1.0, Some(100.min(n)), Some(0.8), 0.02),
                Filters::Greedy,
            ];
            for f in settings {
                for key in 0..20 {
                    let args = |scratch| Sample {
                        x: &x,
                        key: Key::new(key),
                        filters: f,
                        scratch,
                    };
                    let (mut sa, mut sb) = (Scratch::default(), Scratch::default());
                    let a = sample_generic(args(&mut sa)).unwrap();
                    let b = sample_isa(isa, args(&mut sb)).unwrap();
                    assert_eq!(a.token, b.token, "{isa:?}, n = {n}, key {key}");
                    assert_eq!(a.logprob.to_bits(), b.logprob.to_bits(), "{isa:?}, n = {n}");
                }
                let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
                let args = |scratch, out| Logprobs {
                    x: &x,
                    filters: f,
                    scratch,
                    out,
                };
                let (mut sa, mut sb) = (Scratch::default(), Scratch::default());
                logprobs_generic(args(&mut sa, &mut a)).unwrap();
                logprobs_isa(isa, args(&mut sb, &mut b)).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{isa:?}, n = {n}: log-probabilities");
            }
        }
    }

    #[test]
    fn greedy_takes_the_first_largest_logit() {
        let x = [1.0, 3.0, f32::NEG_INFINITY, 3.0];
        let draw = sample(&x, 0, Filters::Greedy).unwrap();
        assert_eq!(
            draw,
            Draw {
                token: 1,
                logprob: 0.0
            }
        );
    }

    #[test]
    fn bad_rows_are_named() {
        let f = filters(1.0, None, None, 0.0);
        assert_eq!(sample(&[0.0, f32::NAN], 0, f), Err(RowError::NaN(1)));
        assert_eq!(sample(&[f32::NEG_INFINITY; 3], 0, f), Err(RowError::Masked));
        assert_eq!(
            sample(&[1e30, 0.0], 0, filters(1e-10, None, None, 0.0)),
            Err(RowError::Overflow(1e30))
        );
        assert_eq!(
            sample(&[f32::NAN], 0, Filters::Greedy),
            Err(RowError::NaN(0))
        );
    }

    #[test]
    fn thresholds_keep_ties_and_the_shortest_nucleus() {
        // Probabilities ∝ 4, 2, 2, 1, 1 (mass 10), as logits ln w.
        let x: Vec<f32> = [4.0f32, 2.0, 2.0, 1.0, 1.0]
            .iter()
            .map(|w| w.ln())
            .collect();
        let kept = |f: Filters| -> Vec<u32> {
            let mut seen: Vec<u32> = (0..400).map(|k| sample(&x, k, f).unwrap().token).collect();
            seen.sort();
            seen.dedup();
            seen
        };
        // top-k 2: the 2nd largest is tied with the 3rd: both kept.
        assert_eq!(kept(filters(1.0, Some(2), None, 0.0)), [0, 1, 2]);
        // top-p 0.39: token 0 alone reaches it (0.4); 0.41 needs the next (and its tie).
        assert_eq!(kept(filters(1.0, None, Some(0.39), 0.0)), [0]);
        assert_eq!(kept(filters(1.0, None, Some(0.41), 0.0)), [0, 1, 2]);
        // top-p after top-k: of the top-1 set (weight 4), any q keeps token 0 alone.
        assert_eq!(kept(filters(1.0, Some(1), Some(0.99), 0.0)), [0]);
        // min-p 0.45: p ≥ 0.45 · 0.4 keeps the weights 4, 2, 2.
        assert_eq!(kept(filters(1.0, None, None, 0.45)), [0, 1, 2]);
        assert_eq!(kept(filters(1.0, None, None, 0.26)), [0, 1, 2]);
        assert_eq!(kept(filters(1.0, None, None, 0.24)), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_logprob_is_that_of_the_renormalized_kept_distribution() {
        let x: Vec<f32> = [4.0f32, 2.0, 2.0, 1.0, 1.0]
            .iter()
            .map(|w| w.ln())
            .collect();
        for key in 0..50 {
            let all = sample(&x, key, filters(1.0, None, None, 0.0)).unwrap();
            let w = [4.0f64, 2.0, 2.0, 1.0, 1.0][all.token as usize];
            assert!((all.logprob as f64 - (w / 10.0).ln()).abs() < 1e-6);
            let top = sample(&x, key, filters(1.0, Some(2), None, 0.0)).unwrap();
            let w = [4.0f64, 2.0, 2.0][top.token as usize];
            assert!((top.logprob as f64 - (w / 8.0).ln()).abs() < 1e-6);
        }
    }

    #[test]
    fn the_streaming_selection_finds_the_kth_largest_with_ties() {
        // Rows of 1000 values on a coarse grid (many ties) and their k-th largest by a full sort,
        // for k from 1 to 999: equal.
        let mut state = 1u64;
        for row in 0..20 {
            let x: Vec<f32> = (0..1000)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) % (20 + row * 50)) as f32 * 0.25 - 30.0
                })
                .collect();
            let mut sorted = x.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            for k in [1, 2, 7, 50, 250, 999] {
                let got = kth_largest(&x, &|v| x[v], k, &mut Vec::new());
                assert_eq!(got, sorted[k - 1], "row {row}, k {k}");
            }
        }
    }
}
