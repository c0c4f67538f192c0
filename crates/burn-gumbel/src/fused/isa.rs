//! Instruction-set dispatch: the kernels compiled for the x86-64 baseline, AVX2 and AVX-512, and
//! the widest variant the processor runs chosen at run time.

use super::columns::{COLUMNS, ColumnsBackward, ColumnsForward, columns_backward, columns_forward};
use super::kernels::{
    BackwardChunk, ForwardChunk, RaoChunk, backward_chunk, forward_chunk, gumbel_rao_chunk,
};

/// The instruction sets [`chunk_forward`] and [`chunk_backward`] are compiled for, the best one
/// chosen at run time.
///
/// The code is the same for each (IEEE arithmetic without contraction into fused multiply-adds),
/// so every variant gives the same bits; wider vectors only make it faster. Builds for the
/// x86-64 baseline have SSE2 alone: 4 lanes and no vector 64-bit multiply for the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
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
    pub(super) fn detect() -> Self {
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
        pub(super) fn $name(isa: Isa, args: $args) -> $ret {
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

multiversion! {
    /// [`forward_chunk`] compiled for `isa`.
    fn chunk_forward => forward_chunk(ForwardChunk<'_>) -> Vec<usize>
}

multiversion! {
    /// [`backward_chunk`] compiled for `isa`.
    fn chunk_backward => backward_chunk(BackwardChunk<'_>) -> f32
}

multiversion! {
    /// [`columns_forward`] compiled for `isa`.
    fn chunk_columns_forward => columns_forward(ColumnsForward<'_>) -> [u32; COLUMNS]
}

multiversion! {
    /// [`columns_backward`] compiled for `isa`.
    fn chunk_columns_backward => columns_backward(ColumnsBackward<'_>) -> f32
}

multiversion! {
    /// [`gumbel_rao_chunk`] compiled for `isa`.
    fn chunk_gumbel_rao => gumbel_rao_chunk(RaoChunk<'_>) -> f32
}

#[cfg(test)]
mod tests {
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
                let ja = forward_chunk(chunk(as_out(&mut a)));
                let jb = chunk_forward(isa, chunk(as_out(&mut b)));
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
                out: as_out(&mut y),
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
                    out: out.as_mut_ptr(),
                    n,
                    width,
                    stride,
                    inv_tau: 1.3,
                    key: 17,
                    row: 12,
                    normalize,
                };
                let ja = columns_forward(band(&mut a));
                let jb = chunk_columns_forward(isa, band(&mut b));
                assert_eq!(ja, jb, "{isa:?}, n = {n}");
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "{isa:?}, n = {n}, normalize {normalize}"
                );
            }
            let mut y = vec![0.0; theta.len()];
            columns_forward(ColumnsForward {
                theta: &theta,
                out: y.as_mut_ptr(),
                n,
                width,
                stride,
                inv_tau: 1.3,
                key: 17,
                row: 12,
                normalize: true,
            });
            let g: Vec<f32> = (0..y.len())
                .map(|i| ((i * 13) % 7) as f32 * 0.3 - 1.0)
                .collect();
            let (mut a, mut b) = (g.clone(), g);
            let band = |grad: &mut Vec<f32>| ColumnsBackward {
                y: &y,
                grad: grad.as_mut_ptr(),
                n,
                width,
                stride,
                inv_tau: 0.7,
                tau_sum: true,
            };
            let sa = columns_backward(band(&mut a));
            let sb = chunk_columns_backward(isa, band(&mut b));
            assert_eq!(bits(&a), bits(&b), "{isa:?}, n = {n}: backward");
            assert_eq!(
                sa.to_bits(),
                sb.to_bits(),
                "{isa:?}, n = {n}: the temperature's sum"
            );
        }
    }
}
