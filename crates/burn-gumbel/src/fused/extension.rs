//! The fused sampler as a Burn backend extension: the operation on flex, and on autodiff over
//! flex with its hand-written backward pass.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;

use super::driver::{self, backward, forward, gumbel_rao_backward};

/// The fused sampler as a Burn backend extension: implemented for flex and for autodiff over flex.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGumbelSoftmax: Backend {
    /// `softmax((logits + g) / tau)` along `dim` (or its one-hot with `hard`), `g` Gumbel noise
    /// from the counter-based generator under `key`.
    fn fused_gumbel_softmax(
        logits: FloatTensor<Self>,
        key: u64,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> FloatTensor<Self>;

    /// [`fused_gumbel_softmax`](FusedGumbelSoftmax::fused_gumbel_softmax) at a temperature held
    /// in a one-element tensor `tau` (`[1]`, positive), which is differentiated: a learned
    /// temperature.
    fn fused_gumbel_softmax_learned(
        logits: FloatTensor<Self>,
        key: u64,
        tau: FloatTensor<Self>,
        hard: bool,
        dim: usize,
    ) -> FloatTensor<Self>;

    /// The hard sample of [`fused_gumbel_softmax`](FusedGumbelSoftmax::fused_gumbel_softmax)
    /// with the Gumbel-Rao gradient of `samples` conditional draws (`kernels.rs`), at a
    /// temperature held in a one-element tensor `tau` (`[1]`, positive; differentiated when it
    /// is tracked).
    fn fused_gumbel_rao(
        logits: FloatTensor<Self>,
        key: u64,
        tau: FloatTensor<Self>,
        samples: usize,
        dim: usize,
    ) -> FloatTensor<Self>;
}

impl FusedGumbelSoftmax for Flex {
    fn fused_gumbel_softmax(
        logits: FlexTensor,
        key: u64,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> FlexTensor {
        forward(&logits, key, tau, hard, false, dim).out
    }

    fn fused_gumbel_softmax_learned(
        logits: FlexTensor,
        key: u64,
        tau: FlexTensor,
        hard: bool,
        dim: usize,
    ) -> FlexTensor {
        forward(&logits, key, value_of(&tau), hard, false, dim).out
    }

    fn fused_gumbel_rao(
        logits: FlexTensor,
        key: u64,
        tau: FlexTensor,
        _samples: usize,
        dim: usize,
    ) -> FlexTensor {
        forward(&logits, key, value_of(&tau), true, false, dim).out
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
        let (soft, tau, dim) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            backward(&soft, grad, tau, dim, false).logits
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
        let (soft, tau, dim) = ops.state;
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let out = backward(&soft, grad, tau, dim, parents[1].is_some());
        register(grads, parents, out);
    }
}

/// Registers the gradients of a sampler of (logits, temperature): `∂L/∂tau = −tau_sum`.
fn register(grads: &mut Gradients, [logits, tau]: [Option<NodeId>; 2], out: driver::Gradients) {
    if let Some(id) = logits {
        grads.register::<Flex>(id, out.logits);
    }
    if let Some(id) = tau {
        let data = TensorData::new(vec![-out.tau_sum as f32], [1]);
        grads.register::<Flex>(id, FlexTensor::from_data(data));
    }
}

/// The backward pass of the fused Gumbel-Rao sampler: the conditional draws recomputed from the
/// forward pass's key and averaged (`kernels.rs`), in the logits and, tracked, the temperature.
#[derive(Debug)]
struct GumbelRaoBackward;

/// The backward state of the fused Gumbel-Rao sampler.
#[derive(Clone, Debug)]
struct RaoState {
    /// The logits, as the forward pass saw them.
    logits: FlexTensor,
    /// The temperature's value.
    tau: f32,
    /// The conditional draws per row.
    samples: usize,
    /// The forward pass's generator key.
    key: u64,
    /// The category axis.
    dim: usize,
}

impl Backward<Flex, 2> for GumbelRaoBackward {
    type State = RaoState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let RaoState {
            logits,
            tau,
            samples,
            key,
            dim,
        } = ops.state;
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let tau_sum = parents[1].is_some();
        let out = gumbel_rao_backward(&logits, grad, tau, samples, key, dim, tau_sum);
        register(grads, parents, out);
    }
}

impl<C: CheckpointStrategy> FusedGumbelSoftmax for Autodiff<Flex, C> {
    fn fused_gumbel_softmax(
        logits: FloatTensor<Self>,
        key: u64,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> FloatTensor<Self> {
        let (primitive, node) = logits.into_parts();
        let kind = FusedBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful();
        tracked_forward(kind, &primitive, key, tau, hard, dim)
    }

    fn fused_gumbel_softmax_learned(
        logits: FloatTensor<Self>,
        key: u64,
        tau: FloatTensor<Self>,
        hard: bool,
        dim: usize,
    ) -> FloatTensor<Self> {
        let (primitive, logits_node) = logits.into_parts();
        let (tau_primitive, tau_node) = tau.into_parts();
        let tau = value_of(&tau_primitive);
        let kind = FusedLearnedBackward
            .prepare::<C>([logits_node, tau_node])
            .compute_bound()
            .stateful();
        tracked_forward(kind, &primitive, key, tau, hard, dim)
    }

    fn fused_gumbel_rao(
        logits: FloatTensor<Self>,
        key: u64,
        tau: FloatTensor<Self>,
        samples: usize,
        dim: usize,
    ) -> FloatTensor<Self> {
        let (logits, logits_node) = logits.into_parts();
        let (tau_primitive, tau_node) = tau.into_parts();
        let tau = value_of(&tau_primitive);
        // The forward pass is the hard sample's; the backward pass needs only the logits and the
        // key.
        let out = forward(&logits, key, tau, true, false, dim).out;
        let kind = GumbelRaoBackward
            .prepare::<C>([logits_node, tau_node])
            .compute_bound()
            .stateful();
        match kind {
            OpsKind::Tracked(prep) => {
                let state = RaoState {
                    logits,
                    tau,
                    samples,
                    key,
                    dim,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// The backward state of both fused operations: the soft sample, the temperature's value
/// and the category axis.
type State = (FlexTensor, f32, usize);

/// The forward pass under autodiff: the soft sample kept as the backward state when the
/// graph records the operation.
fn tracked_forward<BO, C, const N: usize>(
    kind: OpsKind<BO, Flex, State, C, N>,
    logits: &FlexTensor,
    key: u64,
    tau: f32,
    hard: bool,
    dim: usize,
) -> FloatTensor<Autodiff<Flex, C>>
where
    BO: Backward<Flex, N, State = State>,
    C: CheckpointStrategy,
{
    match kind {
        OpsKind::Tracked(prep) => {
            let sample = forward(logits, key, tau, hard, true, dim);
            let soft = sample.soft.expect("kept for the backward pass");
            prep.finish((soft, tau, dim), sample.out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(logits, key, tau, hard, false, dim).out),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::FusedGumbelSoftmax;
    use crate::counter::uniform;

    type Dispatched = burn::backend::tensor::FloatTensor<burn::backend::Dispatch>;

    /// `[6, 7]` logits of mixed signs with one masked category (element 3), and the weights `w`
    /// of the loss `Σ w·y`.
    fn logits_and_weights() -> (Vec<f64>, Vec<f64>, [usize; 2]) {
        let (rows, n) = (6, 7);
        let mut theta: Vec<f64> = (0..rows * n)
            .map(|i| ((i * 37) % 17) as f64 * 0.5 - 4.0)
            .collect();
        theta[3] = f64::NEG_INFINITY;
        let w: Vec<f64> = (0..rows * n).map(|i| ((i * 11) % 9) as f64 - 4.0).collect();
        (theta, w, [rows, n])
    }

    /// The sample of `op(logits, tau)` at a tracked temperature tensor, with the gradients of
    /// `Σ w·y` in the logits and in the temperature, through Burn's autodiff on flex.
    fn run_at_tau(
        op: impl FnOnce(Dispatched, Dispatched) -> Dispatched,
        (theta, w, [rows, n]): &(Vec<f64>, Vec<f64>, [usize; 2]),
        tau: f64,
    ) -> (Vec<f32>, Vec<f32>, f64) {
        let device = Device::flex().autodiff();
        let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        let logits = Tensor::<1>::from_floats(to_f32(theta).as_slice(), &device)
            .reshape([*rows, *n])
            .require_grad();
        let tau_tensor = Tensor::<1>::from_floats([tau as f32], &device).require_grad();
        let y = Tensor::<2>::from_dispatch(op(
            logits.clone().into_dispatch(),
            tau_tensor.clone().into_dispatch(),
        ));
        let weights = Tensor::<1>::from_floats(to_f32(w).as_slice(), &device).reshape([*rows, *n]);
        let grads = (y.clone() * weights).sum().backward();
        let logits_grad = logits.grad(&grads).unwrap();
        let tau_grad = tau_tensor.grad(&grads).unwrap().into_scalar::<f32>() as f64;
        let values = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap();
        (values(y), values(logits_grad), tau_grad)
    }

    #[test]
    fn the_learned_temperature_gets_the_gradient_of_the_relaxation() {
        // Σ w·y at a temperature tensor, through Burn's autodiff, against the derivative in f64
        // from its definition: y = softmax(u), u = (θ + g) / tau, ∂L/∂tau = −Σ s_j u_j / tau with
        // s = y ⊙ (w − yᵀw), the noise rebuilt from the kernel's generator under the same key.
        // The kernel computes it as −Σ ∂L/∂θ_j ln y_j instead (no noise kept). One row has a
        // masked category, which must add nothing. Hard samples take the soft sample's gradient.
        let inputs = logits_and_weights();
        let (theta, w, [rows, n]) = &inputs;
        let (rows, n, key) = (*rows, *n, 1234u64);
        let tau = 0.7f64;
        let mut expected = 0.0;
        for r in 0..rows {
            let row = r * n..(r + 1) * n;
            let u: Vec<f64> = row
                .clone()
                .map(|i| {
                    let g = -(-(uniform(key, i as u64) as f64).ln()).ln();
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
            let op = |logits, tau| {
                <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_softmax_learned(
                    logits, key, tau, hard, 1,
                )
            };
            let (_, logits_grad, got) = run_at_tau(op, &inputs, tau);
            assert!(logits_grad.iter().all(|g| g.is_finite()), "hard {hard}");
            assert_eq!(logits_grad[3], 0.0, "the masked category's gradient");
            // Sums of 42 terms of order 1 with f32 samples and 1-ulp logarithms: 1e-4 relative is
            // some ten times the rounding.
            assert!(
                (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
                "hard {hard}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn gumbel_rao_averages_the_soft_gradient_over_the_conditional_draws() {
        // Σ w·z through Burn's autodiff against the estimator's definition in f64, the noise
        // rebuilt from the kernel's generator: the sample's Gumbel noise from counters 0..total,
        // conditional draw s from counters (s + 1)·total + e, E = −ln u; then θ_i + G_i =
        // ln Z − ln E_i for the sampled i, θ_j + G_j = −ln(E_j e^{−θ_j} + E_i / Z) otherwise
        // (the definition, not the kernel's rearranged form), and the mean over the draws of the
        // soft sample's gradient. The temperature's gradient from its definition
        // −Σ ∂L/∂u_j · u_j / tau (u the scaled draw), which the kernel computes as −Σ ∂L/∂θ_j ln y_j.
        // One row has a masked category: never drawn, no gradient.
        let inputs = logits_and_weights();
        let (theta, w, [rows, n]) = &inputs;
        let (rows, n, key, samples) = (*rows, *n, 4321u64, 3usize);
        let total = (rows * n) as u64;
        let tau = 0.7f64;
        let uniform = |counter: u64| uniform(key, counter) as f64;
        let (mut hard, mut grad, mut tau_grad) = (vec![0.0; rows * n], vec![0.0; rows * n], 0.0);
        for r in 0..rows {
            let row = r * n..(r + 1) * n;
            let perturbed: Vec<f64> = row
                .clone()
                .map(|e| theta[e] - (-uniform(e as u64).ln()).ln())
                .collect();
            let i = (0..n).fold(0, |b, j| if perturbed[j] > perturbed[b] { j } else { b });
            hard[r * n + i] = 1.0;
            let z: f64 = row.clone().map(|e| theta[e].exp()).sum();
            for s in 0..samples as u64 {
                let e_draw = |j: usize| -uniform((s + 1) * total + (r * n + j) as u64).ln();
                let u: Vec<f64> = (0..n)
                    .map(|j| match j == i {
                        true => (z.ln() - e_draw(i).ln()) / tau,
                        false => {
                            -(e_draw(j) * (-theta[r * n + j]).exp() + e_draw(i) / z).ln() / tau
                        }
                    })
                    .collect();
                let max = u.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(max, u[i], "the draw keeps the sample's category on top");
                let e: Vec<f64> = u.iter().map(|x| (x - max).exp()).collect();
                let y: Vec<f64> = e.iter().map(|x| x / e.iter().sum::<f64>()).collect();
                let dot: f64 = (0..n).map(|j| y[j] * w[r * n + j]).sum();
                for j in 0..n {
                    let du = y[j] * (w[r * n + j] - dot); // ∂L/∂u_j of this draw
                    grad[r * n + j] += du / tau / samples as f64;
                    if y[j] > 0.0 {
                        tau_grad -= du * u[j] / tau / samples as f64;
                    }
                }
            }
        }
        let op = |logits, tau| {
            <burn::backend::Dispatch as FusedGumbelSoftmax>::fused_gumbel_rao(
                logits, key, tau, samples, 1,
            )
        };
        let (z, got, got_tau) = run_at_tau(op, &inputs, tau);
        let hard: Vec<f32> = hard.iter().map(|&x| x as f32).collect();
        assert_eq!(z, hard, "the forward pass is the hard sample");
        assert_eq!(got[3], 0.0, "the masked category's gradient");
        for (k, (&got, &expected)) in got.iter().zip(&grad).enumerate() {
            // Values of order 1 from f32 draws and 1-ulp logarithms: 1e-5 is some ten times the
            // rounding.
            assert!(
                (got as f64 - expected).abs() < 1e-5,
                "{k}: {got} vs {expected}"
            );
        }
        // A sum of 126 terms of order 1: 1e-4 relative.
        assert!(
            (got_tau - tau_grad).abs() < 1e-4 * tau_grad.abs().max(1.0),
            "the temperature's gradient: {got_tau} vs {tau_grad}"
        );
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
            let tau_fixed = crate::ops::Tau::Fixed(tau);
            let key = 5;
            let soft = crate::fused::fused_sample(
                Tensor::<2>::from_floats(theta, &device),
                key,
                &tau_fixed,
                crate::fused::Output::Soft,
                1,
            );
            let y = soft.into_data().try_into_vec_as::<f32>().unwrap();
            let logits = Tensor::<2>::from_floats(theta, &device).require_grad();
            let output = match hard {
                true => crate::fused::Output::StraightThrough,
                false => crate::fused::Output::Soft,
            };
            let sample = crate::fused::fused_sample(logits.clone(), key, &tau_fixed, output, 1);
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
