//! The fused sampler as a Burn backend extension: the operation on flex, and on autodiff over
//! flex with its hand-written backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};

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
}

/// The backward pass of the fused sampler: `∂L/∂logits = y ⊙ (g − yᵀg) / tau` per row, `y` the
/// soft sample (also for hard samples: straight-through).
#[derive(Debug)]
struct FusedBackward;

impl Backward<Flex, 1> for FusedBackward {
    /// The soft sample's rows, the temperature and the category axis.
    type State = (FlexTensor, f32, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (soft_rows, tau, dim) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            backward(&soft_rows, &grad, tau, dim)
        });
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
        match FusedBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let sample = forward(&primitive, tau, key, hard, true, dim);
                let soft_rows = sample.soft_rows.expect("kept for the backward pass");
                prep.finish((soft_rows, tau, dim), sample.out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(&primitive, tau, key, hard, false, dim).out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

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
