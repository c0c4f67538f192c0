//! The fused kernels compiled per instruction set (`crate::isa`'s [`multiversion!`]: the
//! x86-64 baseline, AVX2 and AVX-512), the widest the processor runs chosen at run time.

use super::columns::{COLUMNS, ColumnsBackward, ColumnsForward, columns_backward, columns_forward};
use crate::isa::{Isa, multiversion};

use super::kernels::{
    BackwardChunk, ForwardChunk, RaoChunk, backward_chunk, forward_chunk, gumbel_rao_chunk,
};

multiversion! {
    /// [`forward_chunk`] compiled for `isa`.
    pub(super) fn chunk_forward => forward_chunk(ForwardChunk<'_>) -> Vec<usize>
}

multiversion! {
    /// [`backward_chunk`] compiled for `isa`.
    pub(super) fn chunk_backward => backward_chunk(BackwardChunk<'_>) -> f32
}

multiversion! {
    /// [`columns_forward`] compiled for `isa`.
    pub(super) unsafe fn chunk_columns_forward => columns_forward(ColumnsForward<'_>) -> [u32; COLUMNS]
}

multiversion! {
    /// [`columns_backward`] compiled for `isa`.
    pub(super) unsafe fn chunk_columns_backward => columns_backward(ColumnsBackward<'_>) -> f32
}

multiversion! {
    /// [`gumbel_rao_chunk`] compiled for `isa`.
    pub(super) fn chunk_gumbel_rao => gumbel_rao_chunk(RaoChunk<'_>) -> f32
}

/// What the forward kernel needs besides the values.
#[derive(Clone, Copy)]
pub(super) struct Kernel {
    /// `1 / tau`.
    pub inv_tau: f32,
    /// The generator's key.
    pub key: u64,
    /// Normalize the rows (soft sample) or stop at `(θ + g) / tau`.
    pub normalize: bool,
    /// The instruction set the kernel runs with.
    pub isa: Isa,
}

impl Kernel {
    /// The forward kernel on rows `theta` (the first the `row`-th of the tensor) into `out`;
    /// each row's argmax.
    pub(super) fn run(
        self,
        theta: &[f32],
        out: &mut [std::mem::MaybeUninit<f32>],
        n: usize,
        row: usize,
    ) -> Vec<usize> {
        let chunk = ForwardChunk {
            theta,
            out,
            n,
            inv_tau: self.inv_tau,
            key: self.key,
            first: (row * n) as u64,
            normalize: self.normalize,
        };
        chunk_forward(self.isa, chunk)
    }
}

#[cfg(test)]
mod tests {
    use std::ptr::NonNull;

    use super::*;
    use crate::fused::kernels::as_out;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Rows of several lengths (vector remainders, short and long rows).
    const SHAPES: [(usize, usize); 6] = [(3, 1), (5, 7), (100, 10), (2, 33), (3, 64), (1, 1000)];

    fn theta(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 37) % 11) as f32 * 0.7 - 3.0)
            .collect()
    }

    #[test]
    fn every_instruction_set_gives_the_same_forward_bits() {
        // Soft and hard, against the generic code.
        let isa = Isa::detect();
        for (rows, n) in SHAPES {
            let theta = theta(rows * n);
            for normalize in [false, true] {
                let (mut a, mut b) = (vec![0.0; rows * n], vec![0.0; rows * n]);
                let chunk = |out| ForwardChunk {
                    theta: &theta,
                    out,
                    n,
                    inv_tau: 1.7,
                    key: 99,
                    first: 5 * n as u64,
                    normalize,
                };
                // SAFETY: only the kernel writes through it.
                let ja = forward_chunk(chunk(unsafe { as_out(&mut a) }));
                // SAFETY: as above.
                let jb = chunk_forward(isa, chunk(unsafe { as_out(&mut b) }));
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
    fn every_instruction_set_gives_the_same_backward_bits() {
        // A soft sample from the forward kernel and an incoming gradient of mixed signs, against
        // the generic code.
        let isa = Isa::detect();
        for (rows, n) in SHAPES {
            let mut y = vec![0.0; rows * n];
            forward_chunk(ForwardChunk {
                theta: &theta(rows * n),
                // SAFETY: only the kernel writes through it.
                out: unsafe { as_out(&mut y) },
                n,
                inv_tau: 1.3,
                key: 7,
                first: 0,
                normalize: true,
            });
            let g: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 13) % 7) as f32 * 0.3 - 1.0)
                .collect();
            let (mut a, mut b) = (g.clone(), g);
            let chunk = |grad| BackwardChunk {
                y: &y,
                grad,
                n,
                inv_tau: 1.0 / 1.3,
                tau_sum: true,
            };
            let sa = backward_chunk(chunk(&mut a));
            let sb = chunk_backward(isa, chunk(&mut b));
            assert_eq!(bits(&a), bits(&b), "{isa:?}, n = {n}");
            assert_eq!(
                sa.to_bits(),
                sb.to_bits(),
                "{isa:?}, n = {n}: the temperature's sum"
            );
            // The Gumbel-Rao kernel on the same logits and incoming gradient.
            let g = b.clone();
            let theta = theta(rows * n);
            let (mut c, mut d) = (g.clone(), g);
            let chunk = |grad| RaoChunk {
                theta: &theta,
                grad,
                n,
                inv_tau: 1.0 / 0.6,
                key: 11,
                first: 3 * n as u64,
                total: (rows * n * 4) as u64,
                samples: 5,
                tau_sum: true,
            };
            let sc = gumbel_rao_chunk(chunk(&mut c));
            let sd = chunk_gumbel_rao(isa, chunk(&mut d));
            assert_eq!(bits(&c), bits(&d), "{isa:?}, n = {n}: Gumbel-Rao");
            assert_eq!(
                sc.to_bits(),
                sd.to_bits(),
                "{isa:?}, n = {n}: Gumbel-Rao's sum"
            );
            // With one category the gradient is 0 (the sample is always 1); otherwise it is not.
            assert!(
                n == 1 || a.iter().any(|&x| x != 0.0),
                "n = {n}: a gradient to compare"
            );
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_column_bits() {
        // The column kernels on a band of strided categories, full and partial, soft and hard,
        // forward and backward, against the generic code.
        let isa = Isa::detect();
        for (n, width, stride) in [(7, COLUMNS, 40), (64, 5, 9), (1, 3, 3)] {
            let theta = theta((n - 1) * stride + width);
            for normalize in [false, true] {
                let (mut a, mut b) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
                let band = |out: &mut Vec<f32>| ColumnsForward {
                    theta: &theta,
                    out: normalize.then(|| NonNull::from(out.as_mut_slice()).cast()),
                    n,
                    width,
                    stride,
                    inv_tau: 1.3,
                    key: 17,
                    row: 12,
                };
                // SAFETY: the band lies inside the buffer, which this thread alone uses.
                let ja = unsafe { columns_forward(band(&mut a)) };
                // SAFETY: as above.
                let jb = unsafe { chunk_columns_forward(isa, band(&mut b)) };
                assert_eq!(ja, jb, "{isa:?}, n = {n}");
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "{isa:?}, n = {n}, normalize {normalize}"
                );
            }
            let mut y = vec![0.0; theta.len()];
            // SAFETY: as above.
            unsafe {
                columns_forward(ColumnsForward {
                    theta: &theta,
                    out: Some(NonNull::from(y.as_mut_slice()).cast()),
                    n,
                    width,
                    stride,
                    inv_tau: 1.3,
                    key: 17,
                    row: 12,
                })
            };
            let g: Vec<f32> = (0..y.len())
                .map(|i| ((i * 13) % 7) as f32 * 0.3 - 1.0)
                .collect();
            let (mut a, mut b) = (g.clone(), g);
            let band = |grad: &mut Vec<f32>| ColumnsBackward {
                y: &y,
                grad: NonNull::from(grad.as_mut_slice()).cast(),
                n,
                width,
                stride,
                inv_tau: 0.7,
                tau_sum: true,
            };
            // SAFETY: as above, the buffer initialized.
            let sa = unsafe { columns_backward(band(&mut a)) };
            // SAFETY: as above.
            let sb = unsafe { chunk_columns_backward(isa, band(&mut b)) };
            assert_eq!(bits(&a), bits(&b), "{isa:?}, n = {n}: backward");
            assert_eq!(
                sa.to_bits(),
                sb.to_bits(),
                "{isa:?}, n = {n}: the temperature's sum"
            );
        }
    }
}
