//! What a run measures and shows: the metrics of each epoch, `metrics.csv`, the progress bar.

use serde::{Deserialize, Serialize};

use crate::evaluation::Evaluation;

/// The measurements of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimizer steps done at the end of the epoch.
    pub step: u64,
    /// Temperature of the last step.
    pub tau: f64,
    /// Mean training negative ELBO over the epoch's steps (soft samples, as trained).
    pub train_nelbo: f64,
    /// Test-set evaluation at the end of the epoch.
    pub test: Evaluation,
    /// Wall time of the epoch's training steps, in seconds.
    pub seconds: f64,
    /// Training steps per second.
    pub steps_per_second: f64,
}

/// The metrics as CSV, a header and one line per epoch.
pub fn metrics_csv(history: &[EpochMetrics]) -> String {
    let mut csv = String::from(
        "epoch,step,tau,train_nelbo,test_nelbo_soft,test_nelbo_hard,test_reconstruction_soft,\
         test_reconstruction_hard,test_kl,seconds,steps_per_second\n",
    );
    for m in history {
        csv.push_str(&format!(
            "{},{},{:.5},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.3},{:.3}\n",
            m.epoch,
            m.step,
            m.tau,
            m.train_nelbo,
            m.test.nelbo_soft,
            m.test.nelbo_hard,
            m.test.reconstruction_soft,
            m.test.reconstruction_hard,
            m.test.kl,
            m.seconds,
            m.steps_per_second
        ));
    }
    csv
}

/// A progress bar over the `steps` of an epoch, or `None` when `show` is off.
pub(crate) fn progress_bar(
    show: bool,
    steps: u64,
    epoch: usize,
    epochs: usize,
) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_csv_has_a_line_per_epoch() {
        let test = Evaluation {
            nelbo_soft: 1.0,
            nelbo_hard: 2.0,
            reconstruction_soft: 0.5,
            reconstruction_hard: 1.5,
            kl: 0.5,
        };
        let m = EpochMetrics {
            epoch: 1,
            step: 100,
            tau: 0.9,
            train_nelbo: 3.0,
            test,
            seconds: 2.0,
            steps_per_second: 50.0,
        };
        let csv = metrics_csv(&[m.clone(), EpochMetrics { epoch: 2, ..m }]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("1,100,0.90000,3.0000,1.0000,2.0000"));
        assert_eq!(lines[0].split(',').count(), lines[2].split(',').count());
    }
}
