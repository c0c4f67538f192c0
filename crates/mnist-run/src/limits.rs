//! The bounds of the settings both trainers share, and their checks. A value outside its bound
//! is refused before any work, naming its setting, instead of running for days, allocating
//! terabytes or ending in NaN.

use crate::error::Error;

/// A gibibyte.
pub const GIB: u64 = 1 << 30;
/// The most epochs a run may ask for.
pub const MAX_EPOCHS: usize = 1_000_000;
/// The largest batch.
pub const MAX_BATCH_SIZE: usize = 65_536;
/// The most conditional samples of the Gumbel-Rao estimator.
pub const MAX_GUMBEL_RAO_SAMPLES: usize = 1000;
/// The largest training state (weights, gradients, Adam's two moments) or estimator buffer a
/// configuration may ask for: 16 GiB.
pub const MAX_MODEL_BYTES: u64 = 16 * GIB;

/// Adam's ε of both trainers: 1e-8, the value of the paper's optimizer (PyTorch's and
/// TensorFlow's Adam). Burn's `AdamConfig::new()` has 1e-5; a run made before ε was a setting
/// was trained with that, and resumes with it.
pub const ADAM_EPSILON: f64 = 1e-8;
/// Adam's ε of runs made before it was recorded in `config.json`: Burn's default.
pub const LEGACY_ADAM_EPSILON: f64 = 1e-5;

/// Refuses a count outside `min..=max`, naming its `setting`.
///
/// # Errors
/// `value < min` or `value > max`.
pub fn check_count(setting: &str, value: usize, min: usize, max: usize) -> Result<(), Error> {
    if value < min {
        return Err(Error::invalid(
            setting,
            format!("must be >= {min}, got {value}"),
        ));
    }
    if value > max {
        return Err(Error::invalid(
            setting,
            format!("must be <= {max}, got {value}"),
        ));
    }
    Ok(())
}

/// `value` as the errors print a setting: as written in decimal between 1e-4 and 1e15, in
/// scientific notation outside (Rust's `{}` writes all 301 digits of 1e300, and 1e-50 as 0.000…1).
pub fn shown(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || !value.is_finite() || (1e-4..1e15).contains(&magnitude) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// Refuses a learning rate that is not finite and `> 0` (setting `learning_rate`; Burn's
/// optimizers take it in f64, as it is checked).
///
/// # Errors
/// As said.
pub fn check_learning_rate(learning_rate: f64) -> Result<(), Error> {
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return Err(Error::invalid(
            "learning_rate",
            format!("must be finite and > 0, got {}", shown(learning_rate)),
        ));
    }
    Ok(())
}

/// Refuses an Adam ε that is not finite and in `(0, 1]` (setting `adam_epsilon`), or that f32,
/// in which Burn's Adam keeps it, holds only as 0 or a subnormal: below f32's smallest normal,
/// about 1.18e-38.
///
/// # Errors
/// As said.
pub fn check_adam_epsilon(epsilon: f64) -> Result<(), Error> {
    if !(epsilon.is_finite() && epsilon > 0.0 && epsilon <= 1.0) {
        return Err(Error::invalid(
            "adam_epsilon",
            format!("must be finite and in (0, 1], got {}", shown(epsilon)),
        ));
    }
    if (epsilon as f32) < f32::MIN_POSITIVE {
        return Err(Error::invalid(
            "adam_epsilon",
            format!(
                "must be at least {:e}, f32's smallest normal (Adam keeps it in f32), got {}",
                f32::MIN_POSITIVE,
                shown(epsilon)
            ),
        ));
    }
    Ok(())
}

/// Refuses Gumbel-Rao with more than [`MAX_GUMBEL_RAO_SAMPLES`] samples, or whose
/// `samples × batch × codes` f32 buffers (4 of them: the exponential noise, the conditional
/// logits, their soft samples and their gradient) pass [`MAX_MODEL_BYTES`], naming the
/// estimator's `setting` (`model.estimator`).
///
/// # Errors
/// As said.
pub fn check_gumbel_rao(
    setting: &str,
    samples: usize,
    batch: usize,
    codes: usize,
) -> Result<(), Error> {
    let bytes = (samples as u64)
        .saturating_mul(batch as u64)
        .saturating_mul(codes as u64)
        .saturating_mul(16);
    if samples > MAX_GUMBEL_RAO_SAMPLES || bytes > MAX_MODEL_BYTES {
        return Err(Error::invalid(
            setting,
            format!(
                "gumbel-rao needs at most {MAX_GUMBEL_RAO_SAMPLES} samples and their tensors \
                 within {} GiB, got {samples} samples ({:.1} GiB for batches of {batch} × {codes} \
                 codes)",
                MAX_MODEL_BYTES / GIB,
                bytes as f64 / GIB as f64,
            ),
        ));
    }
    Ok(())
}

/// A temperature schedule's error (`tau_min must be …`, from burn-gumbel's
/// `TemperatureSchedule::validate`) as the error of the part it names, under the schedule's `setting` (`schedule.tau_min`); of the schedule when it
/// names none.
pub fn schedule_error(setting: &str, message: String) -> Error {
    // `tau_min` before `tau`, which it starts with.
    for field in ["tau_min", "tau0", "tau", "rate", "interval"] {
        if let Some(rule) = message.strip_prefix(&format!("{field} ")) {
            return Error::invalid(&format!("{setting}.{field}"), rule);
        }
    }
    Error::invalid(setting, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_names_its_setting_and_value() {
        let error = |r: Result<(), Error>| r.unwrap_err().to_string();
        assert_eq!(
            error(check_count("epochs", 0, 1, 9)),
            "epochs: must be >= 1, got 0"
        );
        assert_eq!(
            error(check_count("epochs", 10, 1, 9)),
            "epochs: must be <= 9, got 10"
        );
        assert!(check_count("epochs", 9, 1, 9).is_ok());
        assert_eq!(
            error(check_learning_rate(f64::NAN)),
            "learning_rate: must be finite and > 0, got NaN"
        );
        assert_eq!(
            error(check_adam_epsilon(0.0)),
            "adam_epsilon: must be finite and in (0, 1], got 0"
        );
        assert!(check_adam_epsilon(ADAM_EPSILON).is_ok());
        // 0 in f32, where Adam uses it; then a value Rust would print with 301 digits.
        assert_eq!(
            error(check_adam_epsilon(1e-50)),
            "adam_epsilon: must be at least 1.1754944e-38, f32's smallest normal (Adam keeps it \
             in f32), got 1e-50"
        );
        assert!(check_adam_epsilon(1e-37).is_ok());
        assert_eq!(
            error(check_adam_epsilon(1e300)),
            "adam_epsilon: must be finite and in (0, 1], got 1e300"
        );
        assert_eq!(
            error(check_learning_rate(-2.5)),
            "learning_rate: must be finite and > 0, got -2.5"
        );
        assert_eq!(shown(1e-3), "0.001");
        assert_eq!(shown(2.5e20), "2.5e20");
        let rao = "model.estimator";
        assert!(check_gumbel_rao(rao, 1000, 100, 49 * 64).is_ok());
        assert!(
            error(check_gumbel_rao(rao, 100_000, 100, 64))
                .starts_with("model.estimator: gumbel-rao needs at most 1000 samples"),
        );
        // 1000 samples of 65,536 × 8192 codes: 8 TiB of buffers.
        assert!(check_gumbel_rao(rao, 1000, 65_536, 8192).is_err());
    }

    #[test]
    fn a_schedule_error_names_the_part_it_is_about() {
        let error = |message: &str| schedule_error("schedule", message.to_string()).to_string();
        assert_eq!(
            error("tau_min must be finite and > 0, got 0"),
            "schedule.tau_min: must be finite and > 0, got 0"
        );
        assert_eq!(
            error("tau must be > 0, got -1"),
            "schedule.tau: must be > 0, got -1"
        );
        assert_eq!(error("rate must be >= 0"), "schedule.rate: must be >= 0");
        assert_eq!(error("something else"), "schedule: something else");
    }
}
