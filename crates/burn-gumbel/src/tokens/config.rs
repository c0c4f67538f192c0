//! [`TokenSamplerConfig`]: one request's settings (temperature, top-k, top-p, min-p), their rules,
//! and the filters a row kernel applies.

use burn::config::Config;

use crate::setting::{InvalidSetting, Setting};

/// The settings of one row of [`sample_tokens`](crate::sample_tokens): one request of a batch.
///
/// With `z = logits / temperature` and `p = softmax(z)`, the filters keep a set `S` of tokens,
/// in this order (that of Hugging Face's logits warpers):
/// 1. **top-k** (`top_k = k > 0`): the tokens whose `z` is at least the `k`-th largest `z`
///    (ties with it kept, so `|S|` may exceed `k`);
/// 2. **top-p**, nucleus (`top_p = q < 1`; Holtzman et al. 2020): of the top-k tokens, ranked by
///    `p` (largest first), the shortest prefix whose mass reaches `q` times the top-k mass, and
///    every token tied with its last;
/// 3. **min-p** (`min_p = m > 0`; Nguyen et al. 2024): the tokens with `p ≥ m · max p`,
///    computed as `z − max z ≥ ln m`.
///
/// The token is then drawn from `p` restricted to `S` and renormalized. Each filter keeps the
/// largest `p`, so `S` is never empty. A temperature of 0 is greedy decoding: the first index of
/// the largest logit, whatever the filters.
///
/// # Example
/// ```
/// use burn_gumbel::{Setting, TokenSamplerConfig};
///
/// let nucleus = TokenSamplerConfig::new().with_temperature(0.7).with_top_p(0.9);
/// assert!(nucleus.validate().is_ok());
/// let error = TokenSamplerConfig::new().with_top_p(1.5).validate().unwrap_err();
/// assert_eq!(error.setting, Setting::TopP);
/// assert_eq!(error.to_string(), "top_p must be in (0, 1], got top_p = 1.5");
/// ```
#[derive(Config, Debug, Copy, PartialEq)]
pub struct TokenSamplerConfig {
    /// The temperature `T`: logits are divided by it. 0 is greedy (argmax); otherwise finite and
    /// `> 0`, and `1 / T` a finite f32. Default: 1.0.
    #[config(default = 1.0)]
    pub temperature: f32,
    /// Keep the `k` largest logits (and their ties); 0 keeps all. Default: 0.
    #[config(default = 0)]
    pub top_k: usize,
    /// Keep the smallest set of most probable tokens whose probability reaches `top_p`, in
    /// `(0, 1]`; 1 keeps all. Default: 1.0.
    #[config(default = 1.0)]
    pub top_p: f32,
    /// Keep the tokens at least `min_p` times as probable as the most probable one, in `[0, 1]`;
    /// 0 keeps all. Default: 0.0.
    #[config(default = 0.0)]
    pub min_p: f32,
}

impl TokenSamplerConfig {
    /// The settings of greedy decoding: temperature 0, the argmax of each row.
    pub fn greedy() -> Self {
        Self::new().with_temperature(0.0)
    }

    /// Checks the settings without panicking: the rules
    /// [`sample_tokens`](crate::sample_tokens) enforces.
    ///
    /// # Errors
    /// The first rule broken: a temperature that is not 0 or a finite `T > 0` with `1 / T`
    /// finite in f32 ([`Setting::Temperature`]), a `top_p` outside `(0, 1]`
    /// ([`Setting::TopP`]), a `min_p` outside `[0, 1]` ([`Setting::MinP`]).
    ///
    /// # Example
    /// ```
    /// use burn_gumbel::{Setting, TokenSamplerConfig};
    ///
    /// assert!(TokenSamplerConfig::greedy().validate().is_ok());
    /// let error = TokenSamplerConfig::new().with_temperature(-1.0).validate().unwrap_err();
    /// assert_eq!(error.setting, Setting::Temperature);
    /// ```
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let t = self.temperature;
        InvalidSetting::check(
            Setting::Temperature,
            match t == 0.0 || (t.is_finite() && t > 0.0 && (1.0 / t).is_finite()) {
                true => Ok(()),
                false => Err(format!(
                    "the temperature must be 0 (greedy) or finite and > 0 with 1 / temperature \
                     finite in f32, got temperature = {t:e}"
                )),
            },
        )?;
        InvalidSetting::check(
            Setting::TopP,
            match self.top_p > 0.0 && self.top_p <= 1.0 {
                true => Ok(()),
                false => Err(format!(
                    "top_p must be in (0, 1], got top_p = {}",
                    self.top_p
                )),
            },
        )?;
        InvalidSetting::check(
            Setting::MinP,
            match (0.0..=1.0).contains(&self.min_p) {
                true => Ok(()),
                false => Err(format!(
                    "min_p must be in [0, 1], got min_p = {}",
                    self.min_p
                )),
            },
        )
    }

    /// The row kernel's form of these settings, for rows of `vocab` tokens.
    pub(super) fn filters(&self, vocab: usize) -> Filters {
        if self.temperature == 0.0 {
            return Filters::Greedy;
        }
        Filters::Sample {
            inv_temperature: 1.0 / self.temperature,
            top_k: (self.top_k > 0 && self.top_k < vocab).then_some(self.top_k),
            top_p: (self.top_p < 1.0).then_some(self.top_p),
            ln_min_p: match self.min_p > 0.0 {
                true => (self.min_p as f64).ln() as f32,
                false => f32::NEG_INFINITY,
            },
        }
    }
}

/// What a row kernel does with a row: the settings with the filters that keep every token left
/// out, and `ln min_p` computed once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Filters {
    /// Temperature 0: the first index of the largest logit.
    Greedy,
    /// A draw from `softmax(logits · inv_temperature)` restricted by the filters.
    Sample {
        /// `1 / T`, which multiplies the logits (a product is correctly rounded on every device).
        inv_temperature: f32,
        /// `k`, when `0 < k < vocab`.
        top_k: Option<usize>,
        /// `q`, when `q < 1`.
        top_p: Option<f32>,
        /// `ln m`, `-inf` when `m = 0`.
        ln_min_p: f32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_refuses_its_bad_values_and_names_its_setting() {
        let base = TokenSamplerConfig::new();
        for t in [-1.0, f32::NAN, f32::INFINITY, 1e-40] {
            let error = base.with_temperature(t).validate().unwrap_err();
            assert_eq!(error.setting, Setting::Temperature, "temperature {t}");
        }
        for p in [0.0, -0.1, 1.01, f32::NAN] {
            assert_eq!(
                base.with_top_p(p).validate().unwrap_err().setting,
                Setting::TopP
            );
        }
        for m in [-0.1, 1.5, f32::NAN] {
            assert_eq!(
                base.with_min_p(m).validate().unwrap_err().setting,
                Setting::MinP
            );
        }
        for good in [
            base,
            TokenSamplerConfig::greedy(),
            base.with_temperature(1e-30)
                .with_top_k(1)
                .with_top_p(1e-6)
                .with_min_p(1.0),
        ] {
            assert_eq!(good.validate(), Ok(()));
        }
    }

    #[test]
    fn filters_that_keep_everything_are_left_out() {
        let config = TokenSamplerConfig::new()
            .with_temperature(0.5)
            .with_top_k(100);
        assert_eq!(
            config.filters(100),
            Filters::Sample {
                inv_temperature: 2.0,
                top_k: None,
                top_p: None,
                ln_min_p: f32::NEG_INFINITY
            }
        );
        assert_eq!(TokenSamplerConfig::greedy().filters(5), Filters::Greedy);
    }
}
