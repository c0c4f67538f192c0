//! Bands of a channels-first map over rayon's threads: each task takes a group of consecutive
//! bands (`layout.rs`), which its kernels work on in place through a shared pointer, or gather
//! into rows in a buffer of the thread's and scatter back.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::layout::{BAND, Band, Layout, gather, scatter};
use crate::isa::Isa;

/// Elements per rayon task: small rows are grouped so that each task has work enough.
pub(super) const TASK_ELEMENTS: usize = 16_384;

/// A tensor's values that tasks read and write band by band, no two tasks the same band: `len`
/// f32 values (which may be uninitialized) at a pointer that may cross threads.
///
/// Made from a mutable slice, so the pointer is valid for `len` values for as long as the buffer
/// lives and is not otherwise used; every access through it is an `unsafe` block of the caller,
/// which states why its element is this task's alone.
#[derive(Clone, Copy)]
pub(super) struct Shared {
    ptr: NonNull<f32>,
    len: usize,
}

// SAFETY: the tasks that share it touch disjoint elements (`par_bands` gives each band to one
// task), and the buffer outlives them (`par_bands` returns when they are done).
unsafe impl Send for Shared {}
// SAFETY: as for `Send`.
unsafe impl Sync for Shared {}

impl Shared {
    /// The values of `values`.
    pub(super) fn of(values: &mut [f32]) -> Self {
        Self {
            ptr: NonNull::from(&mut *values).cast(),
            len: values.len(),
        }
    }

    /// The values of `values`, to be written before they are read.
    pub(super) fn of_uninit(values: &mut [MaybeUninit<f32>]) -> Self {
        Self {
            ptr: NonNull::from(&mut *values).cast(),
            len: values.len(),
        }
    }

    /// The pointer to the first value (a method, so that closures capture the `Shared`, not the
    /// raw pointer).
    pub(super) fn ptr(self) -> *mut f32 {
        self.ptr.as_ptr()
    }

    /// The pointer to value `offset`, which may be one past the last.
    ///
    /// # Panics
    /// If `offset` is past that.
    pub(super) fn at(self, offset: usize) -> NonNull<f32> {
        assert!(
            offset <= self.len,
            "Shared::at: offset {offset} past the {} values",
            self.len
        );
        // SAFETY: `offset` is within the buffer of `len` values, or one past its end.
        unsafe { self.ptr.add(offset) }
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
    // The rows the groups cover, in debug builds: with each group's bands consecutive rows and
    // each band inside the tensor (`Layout::band`), their total being every row means that the
    // groups tile the tensor, which the callers' `unsafe` blocks rely on.
    let covered = AtomicUsize::new(0);
    let run = |task: usize, scratch: &mut [f32]| {
        let end = ((task + 1) * per_task).min(bands);
        let group: Vec<Band> = (task * per_task..end)
            .map(|index| layout.band(index, width))
            .collect();
        if cfg!(debug_assertions) {
            for pair in group.windows(2) {
                assert_eq!(
                    pair[1].row(),
                    pair[0].row() + pair[0].width(),
                    "consecutive bands"
                );
            }
            covered.fetch_add(extent(&group).1, Ordering::Relaxed);
        }
        f(&group, scratch)
    };
    let sum: f64 = (0..bands.div_ceil(per_task))
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
        .sum();
    if cfg!(debug_assertions) {
        let rows = layout.outer * layout.inner;
        assert_eq!(
            covered.into_inner(),
            rows,
            "par_bands: the groups tile the {rows} rows"
        );
    }
    sum
}

/// The first row and the number of rows of a group of consecutive bands.
pub(super) fn extent(bands: &[Band]) -> (usize, usize) {
    (bands[0].row(), bands.iter().map(|band| band.width()).sum())
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
    let first = bands[0].row();
    for &band in bands {
        let start = (band.row() - first) * layout.n;
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
    let first = bands[0].row();
    for &band in bands {
        let start = (band.row() - first) * layout.n;
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
    let out = Shared::of(values);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn the_groups_of_bands_tile_every_row_once() {
        // The property the `unsafe` blocks of the callers rest on: each row of the
        // `[outer · inner, n]` view in exactly one band of one task, each band inside the tensor.
        // Layouts of one band per slab and of many, several tasks, ragged last bands.
        for (outer, n, inner, width) in [
            (3, 6, 4, BAND),
            (2000, 10, 3, BAND),
            (2, 9, 70, 64),
            (1, 700, 40, 64),
            (5, 1, 1000, 64),
        ] {
            let layout = Layout { outer, n, inner };
            let seen = Mutex::new(Vec::new());
            par_bands(&layout, width, 1, |bands, scratch| {
                assert!(
                    scratch.len() >= extent(bands).1 * n,
                    "a buffer for the group's rows"
                );
                for &band in bands {
                    assert!(layout.holds(band), "{band:?} inside {layout:?}");
                    seen.lock().unwrap().push((band.row(), band.width()));
                }
                0.0
            });
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            let mut next = 0;
            for (row, width) in seen {
                assert_eq!(row, next, "{layout:?}: rows {next}.. in no band, or in two");
                next += width;
            }
            assert_eq!(next, outer * inner, "{layout:?}: every row");
        }
    }
}
