//! What a run refuses before it writes anything, and how it learns that it diverged.
//!
//! Both trainers call [`check_data`] before they write `config.json`, so that a run refused for
//! its data leaves nothing behind, and [`finite_loss`] on the loss they read back, so that a run
//! whose loss became NaN or infinite stops with one line instead of training on and saving
//! weights that are NaN.

use burn::tensor::Tensor;

use crate::data::Mnist;
use crate::error::Error;

/// Refuses a data set with an empty training or test split (setting `data`): nothing to train
/// on, or nothing to evaluate on.
///
/// # Errors
/// As said, naming the split and where the data came from.
pub fn check_data(data: &Mnist) -> Result<(), Error> {
    for (split, images) in [("training", &data.train), ("test", &data.test)] {
        if images.is_empty() {
            return Err(Error::invalid(
                "data",
                format!("the {split} set of {} has no image", data.source),
            ));
        }
    }
    Ok(())
}

/// `loss` if it is finite; else the error that ends a diverged run (setting `learning_rate`),
/// naming the optimizer step it was seen at.
///
/// # Errors
/// A loss that is NaN or infinite.
pub fn finite_loss(loss: f64, step: u64) -> Result<f64, Error> {
    if !loss.is_finite() {
        return Err(Error::invalid(
            "learning_rate",
            format!("the loss became {loss} by step {step}: the run diverged; lower it"),
        ));
    }
    Ok(loss)
}

/// Whether `logits` hold a value that is not finite, in debug builds (always `false` in release
/// builds, where it costs nothing).
///
/// burn-gumbel's samplers refuse NaN logits with a panic in debug builds; a trainer whose weights
/// diverged would end there instead of in [`finite_loss`]'s error. The models ask this first and,
/// when it is true, pass the logits on in place of the sample, so that the loss becomes NaN, as
/// it does in a release build, and the run ends with the divergence's error.
pub fn diverged<const D: usize>(logits: &Tensor<D>) -> bool {
    cfg!(debug_assertions)
        && logits
            .clone()
            .is_finite()
            .bool_not()
            .any()
            .into_scalar::<bool>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Images;

    #[test]
    fn an_empty_split_is_refused_naming_it() {
        let mut data = Mnist::embedded();
        assert!(check_data(&data).is_ok());
        data.test = Images {
            pixels: Vec::new(),
            labels: Vec::new(),
        };
        let error = check_data(&data).unwrap_err().to_string();
        assert!(error.starts_with("data: the test set of "), "{error}");
        assert!(error.ends_with(" has no image"), "{error}");
    }

    #[test]
    fn a_loss_that_is_not_finite_ends_the_run() {
        assert_eq!(finite_loss(1.5, 3).unwrap(), 1.5);
        assert_eq!(
            finite_loss(f64::NAN, 20).unwrap_err().to_string(),
            "learning_rate: the loss became NaN by step 20: the run diverged; lower it"
        );
        assert!(finite_loss(f64::INFINITY, 1).is_err());
    }

    #[test]
    fn logits_that_are_not_finite_are_seen_in_debug_builds() {
        let device = burn_gumbel_support::reference_device();
        let finite = Tensor::<2>::from_floats([[1.0, -2.0], [0.0, 3.0]], &device);
        assert!(!diverged(&finite));
        let nan = finite
            .clone()
            .slice_assign([1..2, 0..1], Tensor::from_floats([[f32::NAN]], &device));
        assert_eq!(diverged(&nan), cfg!(debug_assertions));
        let inf = finite.slice_assign(
            [0..1, 1..2],
            Tensor::from_floats([[f32::INFINITY]], &device),
        );
        assert_eq!(diverged(&inf), cfg!(debug_assertions));
    }
}
