//! What the benchmarks share: criterion's routine after untimed warm-up calls.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};

/// Benchmarks `routine` after `warm_up_runs` untimed calls, made only if criterion's filter
/// selects it: GPU backends compile and autotune kernels on first use, which can outlast
/// criterion's time-based warm-up and then land in the samples.
pub fn bench_routine<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    warm_up_runs: usize,
    mut routine: impl FnMut() -> R,
) {
    let mut warmed_up = false;
    group.bench_function(id, |b| {
        if !warmed_up {
            for _ in 0..warm_up_runs {
                black_box(routine());
            }
            warmed_up = true;
        }
        b.iter(&mut routine)
    });
}
