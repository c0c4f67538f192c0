//! The fused sampler as a Burn backend extension on the cube backend: the operation on
//! `CubeBackend`, its lazy twin under Burn's fusion (generated), and on autodiff over the cube
//! backend with its hand-written backward pass.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Cube, backend_extension};
use burn::tensor::DType;
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;

use super::launch::{backward, forward, gumbel_noise};

/// The fused sampler on the cube backend: implemented for `CubeBackend`, generated for fusion
/// over it, and implemented for autodiff over the cube backend.
#[backend_extension(Cube: cfg(feature = "wgpu"), Fusion: cfg(feature = "wgpu"), Autodiff)]
pub trait CubeGumbelSoftmax: Backend {
    /// `softmax((logits + g) / tau)` along `dim` (or its one-hot with `hard`), `g` Gumbel noise
    /// from the counter-based generator under `key` (`[4]` i32, 16-bit pieces, low first: the
    /// key stays on the device).
    #[fusion(dtype = logits, shape = logits)]
    fn cube_gumbel_softmax(
        logits: FloatTensor<Self>,
        key: IntTensor<Self>,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> FloatTensor<Self>;

    /// The sample of [`cube_gumbel_softmax`](CubeGumbelSoftmax::cube_gumbel_softmax) and the
    /// soft sample in f32, from one pass: the forward pass of a tracked sample (a hard one, or
    /// half-precision logits).
    #[fusion(meta = |logits, _key, _tau, _hard, _dim| (
        logits.clone(),
        TensorSpec::new(logits.shape.clone(), DType::F32),
    ))]
    fn cube_gumbel_softmax_kept(
        logits: FloatTensor<Self>,
        key: IntTensor<Self>,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The Gumbel noise the sampling kernels draw for `logits` (categories along `dim`) under
    /// `key`, in f32: for the tensor-op paths (a learned temperature, the other estimators), so
    /// that one seed gives them the kernels' noise.
    #[fusion(meta = |logits, _key, _dim| TensorSpec::new(logits.shape.clone(), DType::F32))]
    fn cube_gumbel_noise(
        logits: &FloatTensor<Self>,
        key: IntTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self>;

    /// The gradient in the logits, `y ⊙ (grad − yᵀgrad) / tau` along `dim`, `y` the soft sample
    /// in f32: the backward pass of both samples (straight-through for the hard one).
    #[fusion(dtype = grad, shape = grad)]
    fn cube_gumbel_softmax_backward(
        soft: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        tau: f32,
        dim: usize,
    ) -> FloatTensor<Self>;
}

impl CubeGumbelSoftmax for CubeBackend {
    fn cube_gumbel_softmax(
        logits: CubeTensor,
        key: IntTensor<Self>,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> CubeTensor {
        forward(logits, key, 1.0 / tau, hard, false, dim).0
    }

    fn cube_gumbel_softmax_kept(
        logits: CubeTensor,
        key: IntTensor<Self>,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> (CubeTensor, CubeTensor) {
        let (out, soft) = forward(logits, key, 1.0 / tau, hard, true, dim);
        (out, soft.expect("kept"))
    }

    fn cube_gumbel_noise(logits: &CubeTensor, key: IntTensor<Self>, dim: usize) -> CubeTensor {
        gumbel_noise(logits, key, dim)
    }

    fn cube_gumbel_softmax_backward(
        soft: CubeTensor,
        grad: CubeTensor,
        tau: f32,
        dim: usize,
    ) -> CubeTensor {
        backward(soft, grad, 1.0 / tau, dim)
    }
}

/// The backward pass: `∂L/∂logits = y ⊙ (g − yᵀg) / tau` per row, `y` the soft sample (also for
/// hard samples: straight-through).
#[derive(Debug)]
struct CubeBackward;

/// The backward state: the soft sample in f32, the temperature and the category axis.
type State = (FloatTensor<Cube>, f32, usize);

impl Backward<Cube, 1> for CubeBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (soft, tau, dim) = ops.state;
        unary::<Cube, _>(ops.parents, ops.node, grads, |grad| {
            Cube::cube_gumbel_softmax_backward(soft, grad, tau, dim)
        });
    }
}

impl<C: CheckpointStrategy> CubeGumbelSoftmax for Autodiff<Cube, C> {
    fn cube_gumbel_softmax(
        logits: FloatTensor<Self>,
        key: IntTensor<Self>,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> FloatTensor<Self> {
        let (logits, node) = logits.into_parts();
        match CubeBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                // An f32 soft sample is the output itself; else it is kept apart in f32.
                let (out, soft) = match hard || logits.dtype() != DType::F32 {
                    true => Cube::cube_gumbel_softmax_kept(logits, key, tau, hard, dim),
                    false => {
                        let soft = Cube::cube_gumbel_softmax(logits, key, tau, false, dim);
                        (soft.clone(), soft)
                    }
                };
                prep.finish((soft, tau, dim), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Cube::cube_gumbel_softmax(logits, key, tau, hard, dim))
            }
        }
    }

    fn cube_gumbel_softmax_kept(
        logits: FloatTensor<Self>,
        key: IntTensor<Self>,
        tau: f32,
        hard: bool,
        dim: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // Not differentiated: only the operation above asks for both, for its backward pass.
        let logits = Autodiff::<Cube, C>::inner(logits);
        let (out, soft) = Cube::cube_gumbel_softmax_kept(logits, key, tau, hard, dim);
        (
            Autodiff::<Cube, C>::from_inner(out),
            Autodiff::<Cube, C>::from_inner(soft),
        )
    }

    fn cube_gumbel_noise(
        logits: &FloatTensor<Self>,
        key: IntTensor<Self>,
        dim: usize,
    ) -> FloatTensor<Self> {
        // Not differentiated: noise is a constant of the graph.
        let logits = Autodiff::<Cube, C>::inner(logits.clone());
        Autodiff::<Cube, C>::from_inner(Cube::cube_gumbel_noise(&logits, key, dim))
    }

    fn cube_gumbel_softmax_backward(
        soft: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        tau: f32,
        dim: usize,
    ) -> FloatTensor<Self> {
        // Not differentiated: a gradient of a gradient is not asked for.
        let out = Cube::cube_gumbel_softmax_backward(
            Autodiff::<Cube, C>::inner(soft),
            Autodiff::<Cube, C>::inner(grad),
            tau,
            dim,
        );
        Autodiff::<Cube, C>::from_inner(out)
    }
}
