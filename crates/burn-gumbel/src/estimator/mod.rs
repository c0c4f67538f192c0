//! Gradient estimators for hard (one-hot) samples: straight-through, Gumbel-Rao and ReinMax.
//!
//! Every estimator returns an exact one-hot sample forward; they differ in the gradient they give
//! the logits backward. Each backward pass is written as a *surrogate*: a tensor `s` whose
//! derivative is the estimator's, added as `one_hot + (s - s.detach())`, which is the one-hot to
//! the bit while its derivative is that of `s`. No custom autodiff operation is needed, so the
//! estimators run on every backend.
//!
//! This folder is the estimators' room, below the sampling core (`sampling.rs`), which calls it.
//! This file holds [`Estimator`], its parsing and checks, and [`hard_sample`], the tensor-op path
//! of each; the entries that draw with an estimator (`Estimator::sample` and its forms,
//! `gumbel_rao`, `reinmax`) call the sampling core, so they sit above it, in `hard_samples.rs`
//! (a folder below the core cannot hold them without an import cycle). Beside this file:
//!
//! | file | concern |
//! |---|---|
//! | `gumbel_rao.rs` | Gumbel-Rao's surrogate and conditional draws |
//! | `reinmax.rs` | ReinMax's surrogate |
//! | `testing.rs` | host references of the tests |

use core::fmt;
use core::str::FromStr;

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::key::Key;
use crate::ops::{Tau, masked_rows, one_hot_argmax, straight_through};
use crate::setting::{InvalidSetting, Setting};

mod gumbel_rao;
mod reinmax;
#[cfg(test)]
pub(crate) mod testing;

/// How a hard (one-hot) Gumbel-Softmax sample passes gradients to its logits.
///
/// The forward value is always an exact one-hot sample of the categorical law; the estimators
/// differ in bias, variance and cost of the backward pass (`docs/estimators.md` measures them).
///
/// Parses from and prints as `st`, `gumbel-rao:K` and `reinmax`.
///
/// # Example
/// ```
/// use burn_gumbel::Estimator;
///
/// let estimator: Estimator = "gumbel-rao:10".parse().unwrap();
/// assert_eq!(estimator, Estimator::GumbelRao { samples: 10 });
/// assert_eq!(estimator.to_string(), "gumbel-rao:10");
/// assert!("gumbel-rao:0".parse::<Estimator>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Estimator {
    /// Straight-through Gumbel-Softmax (Jang, Gu, Poole 2016): the gradient of the soft sample
    /// `softmax((logits + g) / tau)` drawn with the same noise `g` as the one-hot.
    #[default]
    StraightThrough,
    /// Gumbel-Rao (Paulus, Maddison, Krause 2021, [arXiv:2010.04838](https://arxiv.org/abs/2010.04838)):
    /// the straight-through gradient averaged over `samples` noise draws conditioned on the
    /// sampled category, a Rao-Blackwellization with the same mean and a lower variance. See
    /// `gumbel_rao`.
    GumbelRao {
        /// Number of conditional noise draws averaged in the backward pass, `≥ 1`.
        samples: usize,
    },
    /// ReinMax (Liu, Dong, Liu, Yu, Gao, NeurIPS 2023,
    /// [arXiv:2304.08612](https://arxiv.org/abs/2304.08612)): a second-order (Heun) correction of
    /// straight-through; samples from `softmax(logits)` and needs `tau ≥ 1`. See
    /// `reinmax`.
    ReinMax,
}

impl Estimator {
    /// Whether this estimator can serve a layer's samples, as a value: its own parameters
    /// (Gumbel-Rao's `samples ≥ 1`), for ReinMax a fixed temperature (`learnable_tau` false) that
    /// stays `≥ 1` (`lowest_tau`, the lowest temperature a run will use: a constant one, or a
    /// schedule's floor; `None` where it is not known yet, e.g. given per call, to be checked
    /// then), and one-hot samples (`hard`: only they have an estimator). The arguments in the
    /// crate's order, the temperature before `hard`. The rules of
    /// [`GumbelSoftmaxConfig::validate`](crate::GumbelSoftmaxConfig::validate), in one place for
    /// the programs that anneal the temperature too.
    ///
    /// # Errors
    /// The first rule broken, as an [`InvalidSetting`] of [`Setting::Estimator`].
    ///
    /// # Example
    /// ```
    /// use burn_gumbel::{Estimator, TemperatureSchedule};
    ///
    /// let schedule = TemperatureSchedule::paper(); // down to tau = 0.5
    /// let lowest = Some(schedule.tau(u64::MAX));
    /// assert!(Estimator::StraightThrough.validate(lowest, false, true).is_ok());
    /// assert!(Estimator::ReinMax.validate(lowest, false, true).is_err());
    /// assert!(Estimator::GumbelRao { samples: 4 }.validate(lowest, false, false).is_err());
    /// ```
    pub fn validate(
        self,
        lowest_tau: Option<f64>,
        learnable_tau: bool,
        hard: bool,
    ) -> Result<(), InvalidSetting> {
        let rule = |rule| InvalidSetting::check(Setting::Estimator, rule);
        if let Estimator::GumbelRao { samples } = self {
            rule(check::samples_rule(samples))?;
        }
        if self != Estimator::StraightThrough && !hard {
            rule(Err(format!(
                "the estimator {self} is for hard (one-hot) samples: set hard = true, got hard = \
                 false"
            )))?;
        }
        if self == Estimator::ReinMax {
            if learnable_tau {
                rule(Err(
                    "ReinMax's gradient does not reach the temperature: learnable_tau must \
                     be false with the estimator reinmax, got learnable_tau = true"
                        .to_string(),
                ))?;
            }
            if let Some(tau) = lowest_tau {
                rule(check::reinmax_tau_rule(tau))?;
            }
        }
        Ok(())
    }

    /// Panics unless the estimator's parameters are valid (`samples ≥ 1` for Gumbel-Rao).
    #[track_caller]
    pub(crate) fn check(&self, op: &str) {
        if let Estimator::GumbelRao { samples } = self {
            check::samples(op, *samples);
        }
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Estimator::StraightThrough => f.write_str("st"),
            Estimator::GumbelRao { samples } => write!(f, "gumbel-rao:{samples}"),
            Estimator::ReinMax => f.write_str("reinmax"),
        }
    }
}

impl FromStr for Estimator {
    type Err = String;

    /// Parses `st` (or `straight-through`), `gumbel-rao:K` with `K ≥ 1`, or `reinmax`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected st, gumbel-rao:K (K >= 1) or reinmax";
        match s {
            "st" | "straight-through" => Ok(Estimator::StraightThrough),
            "reinmax" => Ok(Estimator::ReinMax),
            _ => {
                let samples = s
                    .strip_prefix("gumbel-rao:")
                    .ok_or_else(|| format!("unknown estimator {s:?}: {expected}"))?;
                match samples.parse::<usize>() {
                    Ok(samples) if samples >= 1 => Ok(Estimator::GumbelRao { samples }),
                    _ => Err(format!("bad sample count {samples:?} in {s:?}: {expected}")),
                }
            }
        }
    }
}

/// A hard sample, `one_hot(argmax(logits + noise))`, with the gradient of `estimator`, on checked
/// arguments.
///
/// ReinMax takes a fixed temperature: [`GumbelSoftmax`](crate::GumbelSoftmax) refuses a learned
/// one with ReinMax before it gets here.
///
/// `key` names Gumbel-Rao's conditional draws (fresh from the device's generator without one).
pub(crate) fn hard_sample<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: &Tau,
    estimator: Estimator,
    key: Option<Key>,
    dim: usize,
) -> Tensor<D> {
    match (estimator, tau) {
        (Estimator::StraightThrough, _) => {
            let perturbed = logits + noise.detach();
            let z = tau.divide(perturbed.clone());
            // A fully masked row: no category (zeros) and, its logits replaced by zeros before
            // the softmax, a zero gradient rather than NaN.
            let masked = masked_rows(z.clone(), dim);
            let soft = softmax(z.mask_fill(masked.clone(), 0.0), dim);
            let hard = one_hot_argmax(perturbed.detach(), dim).mask_fill(masked, 0.0);
            straight_through(hard, soft)
        }
        (Estimator::GumbelRao { samples }, _) => {
            gumbel_rao::hard_sample(logits, noise, tau, samples, key, dim)
        }
        (Estimator::ReinMax, Tau::Fixed(tau)) => reinmax::hard_sample(logits, noise, *tau, dim),
        (Estimator::ReinMax, Tau::Learned(_)) => {
            unreachable!("GumbelSoftmax refuses ReinMax with a learned temperature")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, estimator) in [
            ("st", Estimator::StraightThrough),
            ("gumbel-rao:1", Estimator::GumbelRao { samples: 1 }),
            ("gumbel-rao:100", Estimator::GumbelRao { samples: 100 }),
            ("reinmax", Estimator::ReinMax),
        ] {
            assert_eq!(text.parse::<Estimator>().unwrap(), estimator);
            assert_eq!(estimator.to_string(), text);
        }
        assert_eq!(
            "straight-through".parse::<Estimator>().unwrap(),
            Estimator::StraightThrough
        );
        assert_eq!(
            "rao".parse::<Estimator>().unwrap_err(),
            "unknown estimator \"rao\": expected st, gumbel-rao:K (K >= 1) or reinmax"
        );
        assert_eq!(
            "gumbel-rao:x".parse::<Estimator>().unwrap_err(),
            "bad sample count \"x\" in \"gumbel-rao:x\": expected st, gumbel-rao:K (K >= 1) or reinmax"
        );
        assert!("gumbel-rao:0".parse::<Estimator>().is_err());
    }
}
