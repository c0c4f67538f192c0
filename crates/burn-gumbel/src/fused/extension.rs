//! The fused sampler as a Burn backend extension: the operation on flex, and on autodiff over
//! flex with its hand-written backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;

use super::driver::{backward, forward};

/// The fused sampler as a Burn backend extension: implemented for flex and for autodiff over flex.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGumbelSoftmax: Backend {
    /// `softmax((logits + g) / tau)` along `dim` (or its one-hot with `hard`), `g` Gumbel noise
    /// from the counter-based generator under `key`.
    fn fused_gumbel_softmax(
        logits: FloatTensor<Self>,
        tau: f32,
        hard: bool,
        key: u64,
        dim: usize,
    ) -> FloatTensor<Self>;

    /// [`fused_gumbel_softmax`](FusedGumbelSoftmax::fused_gumbel_softmax) at a temperature held
    /// in a one-element tensor `tau` (`[1]`, positive), which is differentiated: a learned
    /// temperature.
    fn fused_gumbel_softmax_learned(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        hard: bool,
        key: u64,
        dim: usize,
    ) -> FloatTensor<Self>;
}

impl FusedGumbelSoftmax for Flex {
    fn fused_gumbel_softmax(
        logits: FlexTensor,
        tau: f32,
        hard: bool,
        key: u64,
        dim: usize,
    ) -> FlexTensor {
        forward(&logits, tau, key, hard, false, dim).out
    }

    fn fused_gumbel_softmax_learned(
        logits: FlexTensor,
        tau: FlexTensor,
        hard: bool,
        key: u64,
        dim: usize,
    ) -> FlexTensor {
        forward(&logits, value_of(&tau), key, hard, false, dim).out
    }
}

/// The value of a one-element f32 tensor.
fn value_of(tau: &FlexTensor) -> f32 {
    tau.to_contiguous()
        .as_slice::<f32>()
        .expect("an f32 temperature")[0]
}

/// The backward pass of the fused sampler: `∂L/∂logits = y ⊙ (g − yᵀg) / tau` per row, `y` the
/// soft sample (also for hard samples: straight-through).
#[derive(Debug)]
struct FusedBackward;

impl Backward<Flex, 1> for FusedBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (soft_rows, tau, dim) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            backward(&soft_rows, grad, tau, dim, false).logits
        });
    }
}

/// The backward pass of the fused sampler at a learned temperature: the gradient in the logits
/// as [`FusedBackward`]'s, and in the same pass the one in the temperature,
/// `∂L/∂tau = −Σ ∂L/∂θ_j · ln y_j` over every element (`kernels.rs` derives it).
#[derive(Debug)]
struct FusedLearnedBackward;

impl Backward<Flex, 2> for FusedLearnedBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (soft_rows, tau, dim) = ops.state;
        let [logits_node, tau_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let out = backward(&soft_rows, grad, tau, dim, tau_node.is_some());
        if let Some(node) = logits_node {
            grads.register::<Flex>(node.id, out.logits);
        }
        if let Some(node) = tau_node {
            let data = TensorData::new(vec![-out.tau_sum as f32], [1]);
            grads.register::<Flex>(node.id, FlexTensor::from_data(data));
        }
    }
}

impl<C: CheckpointStrategy> FusedGumbelSoftmax for Autodiff<Flex, C> {
    fn fused_gumbel_softmax(
        logits: FloatTensor<Self>,
        tau: f32,
        hard: bool,
        key: u64,
        dim: usize,
    ) -> FloatTensor<Self> {
        let (primitive, node) = logits.into_parts();
        let kind = FusedBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful();
        tracked_forward(kind, &primitive, tau, key, hard, dim)
    }

    fn fused_gumbel_softmax_learned(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        hard: bool,
        key: u64,
        dim: usize,
    ) -> FloatTensor<Self> {
        let (primitive, logits_node) = logits.into_parts();
        let (tau_primitive, tau_node) = tau.into_parts();
        let tau = value_of(&tau_primitive);
        let kind = FusedLearnedBackward
            .prepare::<C>([logits_node, tau_node])
            .compute_bound()
            .stateful();
        tracked_forward(kind, &primitive, tau, key, hard, dim)
    }
}

/// The backward state of both fused operations: the soft sample's rows, the temperature's value
/// and the category axis.
type State = (FlexTensor, f32, usize);

/// The forward pass under autodiff: the soft sample's rows kept as the backward state when the
/// graph records the operation.
fn tracked_forward<BO, C, const N: usize>(
    kind: OpsKind<BO, Flex, State, C, N>,
    logits: &FlexTensor,
    tau: f32,
    key: u64,
    hard: bool,
    dim: usize,
) -> FloatTensor<Autodiff<Flex, C>>
where
    BO: Backward<Flex, N, State = State>,
    C: CheckpointStrategy,
{
    match kind {
        OpsKind::Tracked(prep) => {
            let sample = forward(logits, tau, key, hard, true, dim);
            let soft_rows = sample.soft_rows.expect("kept for the backward pass");
            prep.finish((soft_rows, tau, dim), sample.out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(logits, tau, key, hard, false, dim).out),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::FusedGumbelSoftmax;
    use crate::fused::math::{GAMMA, uniform_of_state};

    #[test]
    fn the_learned_temperature_gets_the_gradient_of_the_relaxation() {
        // Σ w·y at a temperature tensor, through Burn's autodiff, against the derivative in f64
        // from its definition: y = softmax(u), u = (θ + g) / tau, ∂L/∂tau = −Σ s_j u_j / tau with
        // s = y ⊙ (w − yᵀw), the noise rebuilt from the kernel's generator under the same key.
        // The kernel computes it as −Σ ∂L/∂θ_j ln y_j instead (no noise kept). One row has a
        // masked category, which must add nothing. Hard samples take the soft sample's gradient.
        let device = Device::flex().autodiff();
        let (rows, n, key) = (6, 7, 1234u64);
        let mut theta: Vec<f64> = (0..rows * n)
            .map(|i| ((i * 37) % 17) as f64 * 0.5 - 4.0)
            .collect();
        theta[3] = f64::NEG_INFINITY;
        let w: Vec<f64> = (0..rows * n).map(|i| ((i * 11) % 9) as f64 - 4.0).collect();
        let tau = 0.7f64;
        let mut expected = 0.0;
        for r in 0..rows {
            let row = r * n..(r + 1) * n;
            let u: Vec<f64> = row
                .clone()
                .map(|i| {
                    let state = key.wrapping_add((i as u64 + 1).wrapping_mul(GAMMA));
                    let g = -(-(uniform_of_state(state) as f64).ln()).ln();
                    (theta[i] + g) / tau
                })
                .collect();
            let max = u.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = u.iter().map(|x| (x - max).exp()).collect();
            let y: Vec<f64> = e.iter().map(|x| x / e.iter().sum::<f64>()).collect();
            let dot: f64 = y.iter().zip(row.clone()).map(|(y, i)| y * w[i]).sum();
            for (j, i) in row.enumerate() {
                if y[j] > 0.0 {
                    expected -= y[j] * (w[i] - dot) * u[j] / tau;
                }
            }
        }
        for hard in [false, true] {
            let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
            let logits = Tensor::<1>::from_floats(to_f32(&theta).as_slice(), &device)
                .reshape([rows, n])
                .require_grad();
            let tau_tensor = Tensor::<1>::from_floats([tau as f32], &device).require_grad();
            let y = Tensor::<2>::from_dispatch(
                <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax_learned(
                    logits.clone().into_dispatch(),
                    tau_tensor.clone().into_dispatch(),
                    hard,
                    key,
                    1,
                ),
            );
            let weights =
                Tensor::<1>::from_floats(to_f32(&w).as_slice(), &device).reshape([rows, n]);
            let grads = (y * weights).sum().backward();
            let got = tau_tensor.grad(&grads).unwrap().into_scalar::<f32>() as f64;
            let logits_grad = logits.grad(&grads).unwrap();
            let logits_grad = logits_grad.into_data().try_into_vec_as::<f32>().unwrap();
            assert!(logits_grad.iter().all(|g| g.is_finite()), "hard {hard}");
            assert_eq!(logits_grad[3], 0.0, "the masked category's gradient");
            // Sums of 42 terms of order 1 with f32 samples and 2-ulp logarithms: 1e-4 relative is
            // some ten times the rounding.
            assert!(
                (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
                "hard {hard}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn the_autodiff_backend_passes_the_soft_samples_gradient_back() {
        // Through Burn's autodiff: the gradient of Σ w·y in the logits is y ⊙ (w − yᵀw) / tau, for
        // the soft sample and for the hard one (straight-through), with y the soft sample of the
        // same key.
        let device = Device::flex().autodiff();
        let theta = [[0.3, -1.2, 2.0, 0.0, 0.7], [1.0, 1.0, -0.5, 0.2, -2.0]];
        let w = [[1.0, -0.5, 2.0, 0.0, 0.3], [-1.0, 0.4, 0.0, 1.5, 2.0]];
        let tau = 0.6;
        for hard in [false, true] {
            device.seed(5);
            let soft = crate::fused::gumbel_softmax(
                Tensor::<2>::from_floats(theta, &device),
                tau,
                false,
                1,
            );
            let y = soft.into_data().try_into_vec_as::<f32>().unwrap();
            device.seed(5);
            let logits = Tensor::<2>::from_floats(theta, &device).require_grad();
            let sample = crate::fused::gumbel_softmax(logits.clone(), tau, hard, 1);
            let weights = Tensor::<2>::from_floats(w, &device);
            let grads = (sample * weights).sum().backward();
            let grad = logits.grad(&grads).unwrap();
            let grad = grad.into_data().try_into_vec_as::<f32>().unwrap();
            for r in 0..2 {
                let dot: f64 = (0..5).map(|k| y[5 * r + k] as f64 * w[r][k]).sum();
                for k in 0..5 {
                    let expected = y[5 * r + k] as f64 * (w[r][k] - dot) / tau;
                    let got = grad[5 * r + k] as f64;
                    // Values of order 1 in f32: 1e-6 is a few ulps.
                    assert!((got - expected).abs() < 1e-6, "hard {hard}, {r},{k}: {got}");
                }
            }
        }
    }
}
