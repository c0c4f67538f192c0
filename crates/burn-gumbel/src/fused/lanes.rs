//! The lane helpers of the row kernels (`kernels.rs`): reductions over a row in `LANES`
//! independent accumulators, so that the compiler vectorizes them, and the guards of a fully
//! masked row. Inlined into each instruction-set variant with the kernels that call them.

use crate::math::fast_ln;

/// Independent lanes of the row reductions: one AVX-512 register of f32.
pub(super) const LANES: usize = 16;

/// `1 / sum` for the sum of a row's exponentials, 0 for a fully masked row's (whose sum is 0;
/// any other row's is at least 1, the term of its maximum).
#[inline(always)]
pub(super) fn inverse_or_zero(sum: f32) -> f32 {
    if sum > 0.0 { 1.0 / sum } else { 0.0 }
}

/// `Σ x_i` in LANES independent accumulators, so that it vectorizes.
#[inline(always)]
pub(super) fn lane_sum(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(c) {
            *lane += v;
        }
    }
    let mut sum = 0.0f32;
    for &v in chunks.remainder() {
        sum += v;
    }
    sum + lanes.iter().sum::<f32>()
}

/// `ln y` for normal `y`, 0 below the smallest normal f32 (branch-free).
#[inline(always)]
pub(super) fn ln_or_zero(y: f32) -> f32 {
    fast_ln(if y >= f32::MIN_POSITIVE { y } else { 1.0 })
}

/// `Σ a_i b_i` in LANES independent accumulators, so that it vectorizes.
#[inline(always)]
pub(super) fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
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

/// The maximum of a slice, in LANES independent lanes so that it vectorizes.
#[inline(always)]
pub(super) fn lane_max(x: &[f32]) -> f32 {
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

/// The index of the first element equal to `value` (0 if none), LANES at a time.
#[inline(always)]
pub(super) fn first_index_of(x: &[f32], value: f32) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
