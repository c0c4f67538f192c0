//! Instruction-set dispatch: the kernels compiled for the x86-64 baseline, AVX2 and AVX-512, and
//! the widest variant the processor runs chosen at run time.

use super::columns::{COLUMNS, ColumnsBackward, ColumnsForward, columns_backward, columns_forward};
use super::kernels::{
    BackwardChunk, ForwardChunk, RaoChunk, backward_chunk, forward_chunk, gumbel_rao_chunk,
};

/// An instruction set this processor runs, for the kernels compiled per instruction set
/// ([`chunk_forward`], [`chunk_backward`], …) and the AVX transposes of `layout.rs`.
///
/// A capability token: its field is private, and its only constructors are [`Isa::detect`],
/// which checks every feature the variant it returns enables, and [`Isa::baseline`], what the
/// build targets. So a variant the processor lacks cannot be asked for, and the `unsafe` calls
/// into the variants compiled with `#[target_feature]` rest on this type alone.
///
/// The code is the same for each (IEEE arithmetic without contraction into fused multiply-adds),
/// so every variant gives the same bits; wider vectors only make it faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Isa(Level);

/// The variants, in the order of their width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// What the build targets (SSE2 alone for x86-64's baseline: 4 lanes).
    Baseline,
    /// AVX, AVX2 and FMA: 8 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 F, DQ, VL and BW, with AVX2 and FMA: 16 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest variant this processor runs: every feature the variant's `#[target_feature]`
    /// enables is detected first (`multiversion!` below, `transpose_avx` in `layout.rs`).
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx") && has!("avx2") && has!("fma");
            let avx512 =
                has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx512bw");
            if avx2 && avx512 {
                return Isa(Level::Avx512);
            }
            if avx2 {
                return Isa(Level::Avx2);
            }
        }
        Isa::baseline()
    }

    /// The variant every processor the build targets runs.
    pub(super) fn baseline() -> Self {
        Isa(Level::Baseline)
    }

    /// Whether this processor has AVX (every variant above the baseline).
    pub(super) fn has_avx(self) -> bool {
        self.0 != Level::Baseline
    }
}

/// Defines `$name(isa, args)`, which runs `$generic(args)` compiled for the instruction set `isa`
/// names: a safe `fn` for a safe `$generic`, an `unsafe fn` with its contract for an `unsafe fn`.
/// Both dispatch through one `@variants` body, whose `#[target_feature]` copies are the only
/// place the features are named.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident => $generic:ident($args:ty) -> $ret:ty) => {
        $(#[$doc])*
        pub(super) fn $name(isa: Isa, args: $args) -> $ret {
            // The generic kernel is a safe function: an `unsafe fn` does not coerce to a safe
            // function pointer, so this arm refuses one at compile time (its `unsafe` arm is the
            // one that passes a contract on).
            let _: fn($args) -> $ret = $generic;
            multiversion!(@variants $generic($args) -> $ret);
            // SAFETY: the generic kernel is a safe function (checked above): its variants' only
            // contract is the processor's features, which `isa` vouches for.
            unsafe { variant(isa, args) }
        }
    };
    ($(#[$doc:meta])* unsafe fn $name:ident => $generic:ident($args:ty) -> $ret:ty) => {
        $(#[$doc])*
        ///
        /// # Safety
        #[doc = concat!("As [`", stringify!($generic), "`]'s.")]
        pub(super) unsafe fn $name(isa: Isa, args: $args) -> $ret {
            multiversion!(@variants $generic($args) -> $ret);
            // SAFETY: as the caller promised; the features as `isa` vouches.
            unsafe { variant(isa, args) }
        }
    };
    (@variants $generic:ident($args:ty) -> $ret:ty) => {
        /// The generic kernel compiled for `isa`.
        ///
        /// # Safety
        /// As the generic kernel's, if it is an `unsafe fn` (the `unsafe` blocks around its calls
        /// below are otherwise unused).
        #[inline(always)]
        #[allow(unused_unsafe)]
        unsafe fn variant(isa: Isa, args: $args) -> $ret {
            /// # Safety
            /// As `variant`'s, on a processor with the features enabled here.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx,avx2,fma")]
            unsafe fn avx2(args: $args) -> $ret {
                // SAFETY: as the caller promised.
                unsafe { $generic(args) }
            }
            /// # Safety
            /// As `variant`'s, on a processor with the features enabled here.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx,avx2,fma")]
            unsafe fn avx512(args: $args) -> $ret {
                // SAFETY: as the caller promised.
                unsafe { $generic(args) }
            }
            match isa.0 {
                // SAFETY: as the caller promised.
                Level::Baseline => unsafe { $generic(args) },
                // SAFETY: as the caller promised; an `Isa` holds these levels only where
                // `Isa::detect` found every feature they enable.
                #[cfg(target_arch = "x86_64")]
                Level::Avx2 => unsafe { avx2(args) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                Level::Avx512 => unsafe { avx512(args) },
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
    unsafe fn chunk_columns_forward => columns_forward(ColumnsForward<'_>) -> [u32; COLUMNS]
}

multiversion! {
    /// [`columns_backward`] compiled for `isa`.
    unsafe fn chunk_columns_backward => columns_backward(ColumnsBackward<'_>) -> f32
}

multiversion! {
    /// [`gumbel_rao_chunk`] compiled for `isa`.
    fn chunk_gumbel_rao => gumbel_rao_chunk(RaoChunk<'_>) -> f32
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
