//! [`InvalidSetting`]: a setting of the layer or of the token sampler that its rules refuse, as
//! a value.

use core::fmt;

/// The settings of [`GumbelSoftmaxConfig`](crate::GumbelSoftmaxConfig) and
/// [`TokenSamplerConfig`](crate::TokenSamplerConfig) that a rule can refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The (fixed or initial) temperature `tau`.
    Tau,
    /// The gradient estimator of hard samples, and what it needs of the other settings.
    Estimator,
    /// The token sampler's temperature.
    Temperature,
    /// The token sampler's top-p.
    TopP,
    /// The token sampler's min-p.
    MinP,
}

/// A setting the layer or the token sampler refuses: which one, and the rule with the value
/// received.
///
/// Returned by [`GumbelSoftmaxConfig::validate`](crate::GumbelSoftmaxConfig::validate) and
/// [`Estimator::validate`](crate::Estimator::validate), the rules that
/// [`GumbelSoftmaxConfig::init`](crate::GumbelSoftmaxConfig::init) and the layer's forward calls
/// enforce by panicking. A program maps [`setting`](Self::setting) to its own flag and prints the
/// message after it.
///
/// # Example
/// ```
/// use burn_gumbel::{Estimator, GumbelSoftmaxConfig, Setting};
///
/// let config = GumbelSoftmaxConfig::new()
///     .with_hard(true)
///     .with_tau(0.5)
///     .with_estimator(Estimator::ReinMax);
/// let error = config.validate().unwrap_err();
/// assert_eq!(error.setting, Setting::Estimator);
/// assert_eq!(
///     error.to_string(),
///     "ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The setting whose rule was broken.
    pub setting: Setting,
    /// The rule and the value received.
    pub message: String,
}

impl InvalidSetting {
    /// `Err` of the rule's message for `setting`, if `rule` failed.
    pub(crate) fn check(setting: Setting, rule: Result<(), String>) -> Result<(), InvalidSetting> {
        rule.map_err(|message| InvalidSetting { setting, message })
    }
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidSetting {}
