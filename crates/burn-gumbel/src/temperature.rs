//! A temperature that is either a number or a tensor (learned, or broadcast over a batch).

use burn::tensor::Tensor;

/// The temperature of a relaxed sample: a checked number, or a one-element tensor (a learned
/// temperature) that takes part in the autodiff graph.
#[derive(Clone, Debug)]
pub(crate) enum Tau {
    /// A number, checked finite and `> 0` by the caller.
    Fixed(f64),
    /// A tensor of shape `[1]`, positive by construction (e.g. `exp` of a parameter).
    Learned(Box<Tensor<1>>),
}

impl Tau {
    /// `x / tau`, the tensor temperature broadcast over every dimension of `x`.
    pub(crate) fn divide<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Tau::Fixed(tau) => x.div_scalar(*tau),
            Tau::Learned(tau) => x / tau.as_ref().clone().reshape([1; D]),
        }
    }
}
