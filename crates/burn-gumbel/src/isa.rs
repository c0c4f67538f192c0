//! Instruction-set dispatch for the host kernels (the fused flex kernel, the token sampler's row
//! kernel): an [`Isa`] this processor runs, detected at run time, and [`multiversion!`], which
//! compiles a generic kernel for the x86-64 baseline, AVX2 and AVX-512 and runs the variant an
//! `Isa` names. The kernels are written with IEEE arithmetic that Rust never contracts into fused
//! multiply-adds, so every variant computes the same bits; wider vectors only make it faster.

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
pub(crate) struct Isa(Level);

/// The variants, in the order of their width (public to the crate for [`multiversion!`]'s
/// dispatch only: an [`Isa`] is made by [`Isa::detect`] and [`Isa::baseline`] alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
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
    pub(crate) fn detect() -> Self {
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
    pub(crate) fn baseline() -> Self {
        Isa(Level::Baseline)
    }

    /// The variant, for [`multiversion!`]'s dispatch.
    pub(crate) fn level(self) -> Level {
        self.0
    }

    /// Whether this processor has AVX (every variant above the baseline).
    pub(crate) fn has_avx(self) -> bool {
        self.0 != Level::Baseline
    }
}

/// Defines `$name(isa, args)`, which runs `$generic(args)` compiled for the instruction set `isa`
/// names: a safe `fn` for a safe `$generic`, an `unsafe fn` with its contract for an `unsafe fn`.
/// Both dispatch through one `@variants` body, whose `#[target_feature]` copies are the only
/// place the features are named.
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis fn $name:ident => $generic:ident($args:ty) -> $ret:ty) => {
        $(#[$doc])*
        $vis fn $name(isa: $crate::isa::Isa, args: $args) -> $ret {
            // The generic kernel is a safe function: an `unsafe fn` does not coerce to a safe
            // function pointer, so this arm refuses one at compile time (its `unsafe` arm is the
            // one that passes a contract on).
            let _: fn($args) -> $ret = $generic;
            $crate::isa::multiversion!(@variants $generic($args) -> $ret);
            // SAFETY: the generic kernel is a safe function (checked above): its variants' only
            // contract is the processor's features, which `isa` vouches for.
            unsafe { variant(isa, args) }
        }
    };
    ($(#[$doc:meta])* $vis:vis unsafe fn $name:ident => $generic:ident($args:ty) -> $ret:ty) => {
        $(#[$doc])*
        ///
        /// # Safety
        #[doc = concat!("As [`", stringify!($generic), "`]'s.")]
        $vis unsafe fn $name(isa: $crate::isa::Isa, args: $args) -> $ret {
            $crate::isa::multiversion!(@variants $generic($args) -> $ret);
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
        unsafe fn variant(isa: $crate::isa::Isa, args: $args) -> $ret {
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
            match isa.level() {
                // SAFETY: as the caller promised.
                $crate::isa::Level::Baseline => unsafe { $generic(args) },
                // SAFETY: as the caller promised; an `Isa` holds these levels only where
                // `Isa::detect` found every feature they enable.
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Level::Avx2 => unsafe { avx2(args) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Level::Avx512 => unsafe { avx512(args) },
            }
        }
    };
}

pub(crate) use multiversion;
