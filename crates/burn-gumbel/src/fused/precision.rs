//! Half-precision logits in the fused kernel: f16 and bf16 tensors widened to f32 for the kernel,
//! and its results narrowed back, in parallel chunks with the processor's conversion
//! instructions (F16C for f16). The kernel itself computes in f32: f16's range ends at 65504 and
//! its `exp` overflows early.

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use rayon::prelude::*;

/// Elements per rayon task of a conversion.
const TASK_ELEMENTS: usize = 1 << 16;

/// Whether the fused kernel takes logits of `dtype`.
pub(super) fn supported(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
}

/// `tensor` itself (a cheap reference-counted clone) when its storage is one contiguous run, else
/// a contiguous copy.
pub(super) fn contiguous(tensor: &FlexTensor) -> FlexTensor {
    match tensor.layout().contiguous_offsets() {
        Some(_) => tensor.clone(),
        None => tensor.to_contiguous(),
    }
}

/// The values of a contiguous f32, f16 or bf16 tensor in f32: borrowed for f32, widened for half
/// precision (exactly: every half value is an f32).
pub(super) fn widened(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    fn widen<H: Sync + Copy>(values: &[H], convert: fn(&[H], &mut [f32])) -> Vec<f32> {
        let mut out = vec![0.0f32; values.len()];
        out.par_chunks_mut(TASK_ELEMENTS)
            .zip(values.par_chunks(TASK_ELEMENTS))
            .for_each(|(out, values)| convert(values, out));
        out
    }
    const CONTIGUOUS: &str = "a contiguous tensor";
    match tensor.dtype() {
        DType::F32 => Cow::Borrowed(tensor.as_slice::<f32>().expect(CONTIGUOUS)),
        DType::F16 => Cow::Owned(widen(
            tensor.as_slice::<f16>().expect(CONTIGUOUS),
            |v, out| v.convert_to_f32_slice(out),
        )),
        DType::BF16 => Cow::Owned(widen(
            tensor.as_slice::<bf16>().expect(CONTIGUOUS),
            |v, out| v.convert_to_f32_slice(out),
        )),
        dtype => unreachable!("the fused kernel is used for f32, f16 and bf16 only, got {dtype:?}"),
    }
}

/// f32 values as a tensor of `shape` in `dtype`: the vector itself for f32, narrowed (rounded to
/// nearest) for f16 and bf16.
pub(super) fn tensor_of(values: Vec<f32>, shape: Shape, dtype: DType) -> FlexTensor {
    match dtype {
        DType::F32 => FlexTensor::from_data(TensorData::new(values, shape)),
        _ => narrowed(&values, shape, dtype),
    }
}

/// f32 values as a half-precision tensor of `shape` (f16 or bf16), rounded to nearest.
pub(super) fn narrowed(values: &[f32], shape: Shape, dtype: DType) -> FlexTensor {
    fn narrow<H: Send + Copy + Default>(values: &[f32], convert: fn(&mut [H], &[f32])) -> Vec<H> {
        let mut out = vec![H::default(); values.len()];
        out.par_chunks_mut(TASK_ELEMENTS)
            .zip(values.par_chunks(TASK_ELEMENTS))
            .for_each(|(out, values)| convert(out, values));
        out
    }
    let data = match dtype {
        DType::F16 => TensorData::new(
            narrow::<f16>(values, |o, v| o.convert_from_f32_slice(v)),
            shape,
        ),
        DType::BF16 => TensorData::new(
            narrow::<bf16>(values, |o, v| o.convert_from_f32_slice(v)),
            shape,
        ),
        dtype => unreachable!("half precision is f16 or bf16, got {dtype:?}"),
    };
    FlexTensor::from_data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_values_round_trip_through_f32() {
        // Every f16 and bf16 value is an f32, so widening then narrowing gives it back, over
        // several tasks.
        let values: Vec<f32> = (0..200_000).map(|i| (i as f32 - 1e5) * 0.37).collect();
        for dtype in [DType::F16, DType::BF16] {
            let half = narrowed(&values, Shape::new([values.len()]), dtype);
            let wide = widened(&half).into_owned();
            let again = narrowed(&wide, Shape::new([values.len()]), dtype);
            assert_eq!(half.bytes(), again.bytes(), "{dtype:?}");
            // And the narrowing rounds: within half an ulp (2^-11 or 2^-8 relative).
            let tolerance = if dtype == DType::F16 {
                1.0 / 2048.0
            } else {
                1.0 / 256.0
            };
            for (w, v) in wide.iter().zip(&values) {
                if v.abs() < 6e4 {
                    assert!(
                        (w - v).abs() <= tolerance * v.abs(),
                        "{dtype:?}: {v} -> {w}"
                    );
                }
            }
        }
    }
}
