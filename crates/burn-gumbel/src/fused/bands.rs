//! Bands of a channels-first map over rayon's threads: each task takes a group of consecutive
//! bands (`layout.rs`), which its kernels work on in place through a shared pointer, or gather
//! into rows in a buffer of the thread's and scatter back.

use std::cell::RefCell;

use rayon::prelude::*;

use super::isa::Isa;
use super::layout::{BAND, Band, Layout, gather, scatter};

/// Elements per rayon task: small rows are grouped so that each task has work enough.
pub(super) const TASK_ELEMENTS: usize = 16_384;

/// A tensor's values that tasks read and write band by band, no two tasks the same band.
#[derive(Clone, Copy)]
pub(super) struct Shared(pub(super) *mut f32);

// SAFETY: the tasks that share it touch disjoint elements (`par_bands` gives each band to one
// task), and the buffer outlives them (`par_bands` returns when they are done).
unsafe impl Send for Shared {}
// SAFETY: as for `Send`.
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so that closures capture the `Shared`, not the raw pointer).
    pub(super) fn ptr(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    /// Each thread's buffer for the bands of [`par_bands`], kept between calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Buffers larger than this (in f32 values) are not kept by a thread after the call.
const KEPT_SCRATCH: usize = 1 << 22;

/// Runs `f(bands, scratch)` over rayon's threads for consecutive groups of the bands of `width`
/// positions of `layout`, a group holding about [`TASK_ELEMENTS`] values (whose rows, band after
/// band, are consecutive rows of the `[outer · inner, n]` view); `scratch` is the thread's, of
/// `buffers` buffers, each with room for a group's rows. Returns the sum of `f`'s results.
pub(super) fn par_bands(
    layout: &Layout,
    width: usize,
    buffers: usize,
    f: impl Fn(&[Band], &mut [f32]) -> f64 + Sync,
) -> f64 {
    let bands = layout.outer * layout.bands_per_slab(width);
    let per_task = (TASK_ELEMENTS / (width * layout.n).max(1)).max(1);
    let len = buffers * per_task * width * layout.n;
    let run = |task: usize, scratch: &mut [f32]| {
        let end = ((task + 1) * per_task).min(bands);
        let group: Vec<Band> = (task * per_task..end)
            .map(|index| layout.band(index, width))
            .collect();
        f(&group, scratch)
    };
    (0..bands.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            if len == 0 {
                return run(task, &mut []);
            }
            if len > KEPT_SCRATCH {
                return run(task, &mut vec![0.0; len]);
            }
            SCRATCH.with(|scratch| {
                // `f` starts no rayon work, so this thread cannot enter here again meanwhile.
                let mut scratch = scratch.borrow_mut();
                if scratch.len() < len {
                    scratch.resize(len, 0.0);
                }
                run(task, &mut scratch[..len])
            })
        })
        .sum()
}

/// The first row and the number of rows of a group of consecutive bands.
pub(super) fn extent(bands: &[Band]) -> (usize, usize) {
    (bands[0].row, bands.iter().map(|band| band.width).sum())
}

/// A group of bands' rows, `[rows, n]`, into `dst`, from the `[outer, n, inner]` values at `src`.
///
/// # Safety
/// As [`gather`]'s, for every band of the group.
pub(super) unsafe fn gather_group(
    isa: Isa,
    src: *const f32,
    layout: &Layout,
    bands: &[Band],
    dst: &mut [f32],
) {
    let first = bands[0].row;
    for &band in bands {
        let start = (band.row - first) * layout.n;
        // SAFETY: as the caller promised; `gather` checks that the slice holds the band.
        unsafe { gather(isa, src, layout, band, &mut dst[start..]) };
    }
}

/// The inverse of [`gather_group`].
///
/// # Safety
/// As [`scatter`]'s, for every band of the group.
pub(super) unsafe fn scatter_group(
    isa: Isa,
    src: &[f32],
    layout: &Layout,
    bands: &[Band],
    dst: *mut f32,
) {
    let first = bands[0].row;
    for &band in bands {
        let start = (band.row - first) * layout.n;
        // SAFETY: as the caller promised; `scatter` checks that the slice holds the band.
        unsafe { scatter(isa, &src[start..], layout, band, dst) };
    }
}

/// Runs `kernel(row, values, input, n)` on chunks of whole rows of `values` (in place) and the
/// same rows of `input`, both `[outer, n, inner]` tensors: each task gathers its group of bands
/// into rows in its thread's buffers, runs the kernel once and scatters `values`' rows back.
pub(super) fn par_gathered(
    values: &mut [f32],
    input: &[f32],
    layout: &Layout,
    kernel: impl Fn(usize, &mut [f32], &[f32], usize) -> f64 + Sync,
) -> f64 {
    assert_eq!(input.len(), values.len(), "one input value per value");
    let (isa, n) = (Isa::detect(), layout.n);
    let out = Shared(values.as_mut_ptr());
    par_bands(layout, BAND, 2, |bands, scratch| {
        let (first, rows) = extent(bands);
        let (a, b) = scratch.split_at_mut(scratch.len() / 2);
        let (grad, inputs) = (&mut a[..rows * n], &mut b[..rows * n]);
        // SAFETY: both tensors hold the layout's values; the bands are this task's alone.
        unsafe {
            gather_group(isa, out.ptr(), layout, bands, grad);
            gather_group(isa, input.as_ptr(), layout, bands, inputs);
        }
        let result = kernel(first, grad, inputs, n);
        // SAFETY: as above.
        unsafe { scatter_group(isa, grad, layout, bands, out.ptr()) };
        result
    })
}
