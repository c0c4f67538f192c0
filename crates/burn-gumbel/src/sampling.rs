//! The sampling core: every Gumbel-Softmax sample — soft, or one-hot with an estimator's
//! gradient; from the functions, their keyed and given-noise forms, [`Estimator::sample`], the
//! layer, and the distribution's `rsample` at a temperature given as a number — is drawn by
//! [`sample`], and [`engine`] alone decides which engine serves it. (A distribution with a
//! tensor temperature, and its `rsample_log`, compute `softmax((θ + g) / tau)` with tensor ops
//! on the noise of [`Noise::gumbel`].)

use burn::tensor::Tensor;

use crate::estimator::{Estimator, hard_sample};
use crate::key::Key;
pub(crate) use crate::noise::Noise;
use crate::ops::{Tau, in_f32, masked_rows, softmax_or_zero};

/// What is drawn: a soft sample, or a one-hot one whose gradient is the estimator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `softmax((logits + g) / tau)`.
    Soft,
    /// The one-hot of `argmax(logits + g)`, with the gradient of the estimator.
    Hard(Estimator),
}

impl Kind {
    /// A soft sample, or with `hard` a one-hot one with the straight-through gradient.
    pub(crate) fn straight_through(hard: bool) -> Kind {
        match hard {
            true => Kind::Hard(Estimator::StraightThrough),
            false => Kind::Soft,
        }
    }
}

/// The engines that compute a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    /// The flex kernel (`fused/`), on its counter-based noise.
    #[cfg(feature = "flex")]
    Fused,
    /// The CubeCL kernel on wgpu (`cube/`), on the same noise.
    #[cfg(feature = "wgpu")]
    Cube,
    /// Burn tensor ops on any backend, on the noise of [`Noise::gumbel`].
    TensorOps,
}

/// The engine that serves a sample of `kind` at `tau` on `logits` with `noise`: a kernel where
/// one is compiled in, computes `kind` and takes the logits and temperature (its `serves`), else
/// the tensor ops. Given noise always
/// takes the tensor ops, which read it.
pub(crate) fn engine<const D: usize>(
    logits: &Tensor<D>,
    tau: &Tau,
    kind: Kind,
    noise: &Noise<D>,
) -> Engine {
    if matches!(noise, Noise::Given(_)) {
        return Engine::TensorOps;
    }
    // The flex kernel computes every kind but ReinMax; the wgpu kernel soft samples and
    // straight-through.
    #[cfg(feature = "flex")]
    if kind != Kind::Hard(Estimator::ReinMax) && crate::fused::serves(logits, tau) {
        return Engine::Fused;
    }
    #[cfg(feature = "wgpu")]
    if matches!(kind, Kind::Soft | Kind::Hard(Estimator::StraightThrough))
        && crate::cube::serves(logits, tau)
    {
        return Engine::Cube;
    }
    let _ = (logits, tau, kind);
    Engine::TensorOps
}

/// The sample of `kind` on checked arguments, in the logits' dtype, by the [`engine`] that serves
/// it. A fully masked row gives zeros (and a zero gradient) on every engine.
pub(crate) fn sample<const D: usize>(
    logits: Tensor<D>,
    tau: &Tau,
    kind: Kind,
    noise: Noise<D>,
    dim: usize,
) -> Tensor<D> {
    let key = noise.key();
    match engine(&logits, tau, kind, &noise) {
        #[cfg(feature = "flex")]
        Engine::Fused => {
            use crate::fused::Output;
            let output = match kind {
                Kind::Soft => Output::Soft,
                Kind::Hard(Estimator::StraightThrough) => Output::StraightThrough,
                Kind::Hard(Estimator::GumbelRao { samples }) => Output::GumbelRao { samples },
                Kind::Hard(Estimator::ReinMax) => unreachable!("the flex kernel has no ReinMax"),
            };
            let key = crate::noise::kernel_key(key, &logits.device());
            crate::fused::fused_sample(logits, key, tau, output, dim)
        }
        #[cfg(feature = "wgpu")]
        Engine::Cube => {
            let key = crate::noise::device_key_words(key, &logits.device());
            crate::cube::cube_sample(logits, key, tau, kind != Kind::Soft, dim)
        }
        _ => {
            let g = noise.gumbel(&logits, dim);
            in_f32(logits, |logits| tensor_ops(logits, g, tau, kind, key, dim))
        }
    }
}

/// The tensor-op sample on f32 (or f64) logits and their Gumbel noise `g`; `key` names the
/// conditional draws of Gumbel-Rao (fresh without one).
fn tensor_ops<const D: usize>(
    logits: Tensor<D>,
    g: Tensor<D>,
    tau: &Tau,
    kind: Kind,
    key: Option<Key>,
    dim: usize,
) -> Tensor<D> {
    match kind {
        Kind::Hard(estimator) => hard_sample(logits, g, tau, estimator, key, dim),
        Kind::Soft => {
            let z = tau.divide(logits + g.detach());
            let masked = masked_rows(z.clone(), dim);
            softmax_or_zero(z, masked, dim)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// The devices of the compiled-in backends, by name.
    #[allow(clippy::vec_init_then_push)] // each push is under its backend's feature
    fn devices() -> Vec<(&'static str, Device)> {
        let mut devices = Vec::new();
        #[cfg(feature = "flex")]
        devices.push(("flex", Device::flex()));
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // burn-ndarray is deprecated upstream
        devices.push(("ndarray", Device::ndarray()));
        #[cfg(feature = "wgpu")]
        devices.push((
            "wgpu",
            Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        ));
        devices
    }

    /// The policy, written out: given noise takes the tensor ops; flex's kernel serves all but
    /// ReinMax; wgpu's serves soft and straight-through samples at a fixed temperature.
    fn expected(backend: &str, kind: Kind, fixed: bool, noise: &str) -> Engine {
        let _ = (kind, fixed); // read only by the kernels' arms
        match (backend, noise) {
            (_, "given") => Engine::TensorOps,
            #[cfg(feature = "flex")]
            ("flex", _) if kind != Kind::Hard(Estimator::ReinMax) => Engine::Fused,
            #[cfg(feature = "wgpu")]
            ("wgpu", _)
                if fixed && matches!(kind, Kind::Soft | Kind::Hard(Estimator::StraightThrough)) =>
            {
                Engine::Cube
            }
            _ => Engine::TensorOps,
        }
    }

    #[test]
    fn one_rule_picks_the_engine_of_every_call() {
        // Every kind × temperature × noise on every backend (plain and autodiff), against the
        // policy written out: given noise takes the tensor ops; flex's kernel serves all but
        // ReinMax (a learned temperature in f32); wgpu's serves soft and straight-through samples
        // at a fixed temperature; the rest, and every other backend, take the tensor ops.
        let kinds = [
            Kind::Soft,
            Kind::Hard(Estimator::StraightThrough),
            Kind::Hard(Estimator::GumbelRao { samples: 2 }),
            Kind::Hard(Estimator::ReinMax),
        ];
        for (backend, device) in devices() {
            for device in [device.clone(), device.autodiff()] {
                let logits = Tensor::<2>::zeros([3, 4], &device);
                let learned = Tau::Learned(Box::new(Tensor::<1>::ones([1], &device)));
                for tau in [Tau::Fixed(0.5), learned] {
                    for kind in kinds {
                        let noises = [
                            ("fresh", Noise::Fresh),
                            ("keyed", Noise::Keyed(Key::new(1))),
                            ("given", Noise::Given(Box::new(logits.zeros_like()))),
                        ];
                        for (noise_name, noise) in noises {
                            let fixed = matches!(tau, Tau::Fixed(_));
                            let expected = expected(backend, kind, fixed, noise_name);
                            assert_eq!(
                                engine(&logits, &tau, kind, &noise),
                                expected,
                                "{backend}, {kind:?}, fixed tau {fixed}, {noise_name} noise"
                            );
                        }
                    }
                }
            }
        }
    }
}
