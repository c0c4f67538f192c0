//! Temperature annealing for the Gumbel-Softmax.

use serde::{Deserialize, Serialize};

/// The temperature as a function of the training step.
///
/// Jang, Gu, Poole 2016 ([arXiv:1611.01144](https://arxiv.org/abs/1611.01144), section 4) anneal
/// the temperature as
///
/// `tau(t) = max(tau_min, tau0 · exp(-rate · t))`, with `t` updated every `interval` steps
///
/// (that is, `t = interval · ⌊step / interval⌋`), from `tau0 = 1.0` with `rate = 3e-5`, a floor of
/// `0.5` and an update every `1000` steps. A schedule holds no state besides its parameters: the
/// temperature at any step is a pure function of the step, so resuming from a checkpoint only needs
/// the step count.
///
/// Serializes with serde, e.g. to JSON:
/// `{"Exponential":{"tau0":1.0,"rate":3e-5,"tau_min":0.5,"interval":1000}}` or
/// `{"Constant":{"tau":0.5}}`.
///
/// # Example
/// ```
/// use burn_gumbel::TemperatureSchedule;
///
/// let schedule = TemperatureSchedule::paper();
/// assert_eq!(schedule.tau(0), 1.0);
/// assert_eq!(schedule.tau(999), 1.0); // updated every 1000 steps
/// assert!((schedule.tau(1000) - (-0.03f64).exp()).abs() < 1e-12);
/// assert_eq!(schedule.tau(1_000_000), 0.5); // the floor
/// assert_eq!(TemperatureSchedule::constant(0.3).tau(12_345), 0.3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum TemperatureSchedule {
    /// The same temperature at every step.
    Constant {
        /// The temperature, finite and `> 0`.
        tau: f64,
    },
    /// `max(tau_min, tau0 · exp(-rate · t))`, `t` updated every `interval` steps.
    Exponential {
        /// The temperature at step 0, finite and `> 0`.
        tau0: f64,
        /// The decay rate per step, finite and `≥ 0`.
        rate: f64,
        /// The floor, finite and `> 0`.
        tau_min: f64,
        /// How many steps between updates, `≥ 1`.
        interval: u64,
    },
}

impl Default for TemperatureSchedule {
    /// The paper's schedule, [`TemperatureSchedule::paper`].
    fn default() -> Self {
        Self::paper()
    }
}

impl TemperatureSchedule {
    /// A constant temperature.
    ///
    /// # Panics
    /// If `tau` is not finite and `> 0`.
    pub fn constant(tau: f64) -> Self {
        let schedule = Self::Constant { tau };
        schedule.expect_valid("TemperatureSchedule");
        schedule
    }

    /// The annealing `max(tau_min, tau0 · exp(-rate · t))`, `t` updated every `interval` steps.
    ///
    /// # Panics
    /// If `tau0` or `tau_min` is not finite and `> 0`, `rate` is not finite and `≥ 0`, or
    /// `interval` is 0.
    pub fn exponential(tau0: f64, rate: f64, tau_min: f64, interval: u64) -> Self {
        let schedule = Self::Exponential {
            tau0,
            rate,
            tau_min,
            interval,
        };
        schedule.expect_valid("TemperatureSchedule");
        schedule
    }

    /// The paper's schedule: `tau0 = 1.0`, `rate = 3e-5`, `tau_min = 0.5`, `interval = 1000`.
    pub fn paper() -> Self {
        Self::exponential(1.0, 3e-5, 0.5, 1000)
    }

    /// Checks the parameters, e.g. of a schedule read from a file.
    ///
    /// # Errors
    /// A message naming the parameter, the rule and the value when one is invalid.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be finite and > 0, got {value}"))
            }
        };
        match *self {
            Self::Constant { tau } => positive("tau", tau),
            Self::Exponential {
                tau0,
                rate,
                tau_min,
                interval,
            } => {
                positive("tau0", tau0)?;
                positive("tau_min", tau_min)?;
                if !(rate.is_finite() && rate >= 0.0) {
                    return Err(format!("rate must be finite and >= 0, got {rate}"));
                }
                if interval == 0 {
                    return Err("interval must be >= 1, got 0".to_string());
                }
                Ok(())
            }
        }
    }

    #[track_caller]
    fn expect_valid(&self, op: &str) {
        if let Err(message) = self.validate() {
            panic!("{op}: {message}");
        }
    }

    /// The temperature at training step `step` (counted from 0).
    ///
    /// # Panics
    /// If the schedule's parameters are invalid (see [`validate`](Self::validate)); that can only
    /// happen to a schedule built field by field or deserialized without validation.
    pub fn tau(&self, step: u64) -> f64 {
        self.expect_valid("TemperatureSchedule::tau");
        match *self {
            Self::Constant { tau } => tau,
            Self::Exponential {
                tau0,
                rate,
                tau_min,
                interval,
            } => {
                let t = (step / interval * interval) as f64;
                (tau0 * (-rate * t).exp()).max(tau_min)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_follows_the_formula_at_each_interval() {
        let schedule = TemperatureSchedule::exponential(2.0, 1e-3, 0.1, 10);
        for step in [0u64, 9, 10, 11, 500, 999, 1000, 5000] {
            let t = (step / 10 * 10) as f64;
            let expected = (2.0 * (-1e-3 * t).exp()).max(0.1);
            assert_eq!(schedule.tau(step), expected, "step {step}");
        }
        assert_eq!(schedule.tau(1_000_000), 0.1);
    }

    #[test]
    fn paper_schedule_reaches_its_floor_near_23k_steps() {
        // exp(-3e-5 t) = 0.5 at t = ln 2 / 3e-5 ≈ 23,105: the last update above the floor is at
        // 23,000 and the first at the floor is 24,000.
        let schedule = TemperatureSchedule::paper();
        assert!(schedule.tau(23_999) > 0.5);
        assert_eq!(schedule.tau(24_000), 0.5);
    }

    #[test]
    fn round_trips_through_json() {
        for schedule in [
            TemperatureSchedule::paper(),
            TemperatureSchedule::constant(0.7),
        ] {
            let json = serde_json::to_string(&schedule).unwrap();
            let back: TemperatureSchedule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, schedule);
        }
    }

    #[test]
    #[should_panic = "TemperatureSchedule: tau must be finite and > 0, got 0"]
    fn zero_constant_panics() {
        let _ = TemperatureSchedule::constant(0.0);
    }

    #[test]
    #[should_panic = "TemperatureSchedule: rate must be finite and >= 0, got -1"]
    fn negative_rate_panics() {
        let _ = TemperatureSchedule::exponential(1.0, -1.0, 0.5, 10);
    }

    #[test]
    #[should_panic = "TemperatureSchedule: interval must be >= 1, got 0"]
    fn zero_interval_panics() {
        let _ = TemperatureSchedule::exponential(1.0, 1e-3, 0.5, 0);
    }

    #[test]
    #[should_panic = "TemperatureSchedule::tau: tau_min must be finite and > 0, got NaN"]
    fn invalid_deserialized_schedule_panics_when_used() {
        let json = r#"{"Exponential":{"tau0":1.0,"rate":0.0,"tau_min":NaN,"interval":1}}"#;
        // serde_json cannot read NaN, so build the invalid schedule field by field.
        assert!(serde_json::from_str::<TemperatureSchedule>(json).is_err());
        let schedule = TemperatureSchedule::Exponential {
            tau0: 1.0,
            rate: 0.0,
            tau_min: f64::NAN,
            interval: 1,
        };
        let _ = schedule.tau(0);
    }
}
