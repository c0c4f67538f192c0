//! How burn-train shows the run: [`EpochLines`], one line per epoch, with a progress bar of the
//! epoch's steps on a terminal.
//!
//! burn-train's own dashboard is not used: it puts the terminal in raw mode, where Ctrl-C is a
//! key it ignores instead of the signal that stops a run with a checkpoint, a SIGTERM leaves the
//! terminal raw, and its end waits for a key press.

use std::collections::HashMap;
use std::io::IsTerminal;

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};

/// [`EpochLines`], with a progress bar when standard output is a terminal and `plain` is false.
pub fn renderer(plain: bool) -> Box<dyn MetricsRenderer> {
    let bar = !plain && std::io::stdout().is_terminal();
    Box::new(EpochLines {
        bar: bar.then(ProgressBar::hidden),
        ..EpochLines::default()
    })
}

/// A renderer that prints, at the end of each epoch, one line with the epoch's mean of every
/// numeric metric, training then validation:
///
/// ```text
/// epoch 3/10 | train -ELBO 131.52, Reconstruction 98.20, ... | valid -ELBO 128.91, ...
/// ```
#[derive(Default)]
pub struct EpochLines {
    names: HashMap<MetricId, String>,
    order: Vec<MetricId>,
    train: HashMap<MetricId, f64>,
    valid: HashMap<MetricId, f64>,
    epoch: usize,
    epochs: usize,
    split: String,
    /// The progress bar of the split in progress (hidden between splits), on a terminal.
    bar: Option<ProgressBar>,
}

impl EpochLines {
    fn record(values: &mut HashMap<MetricId, f64>, state: MetricState) {
        if let MetricState::Numeric(entry, Some(NumericEntry::Final(value))) = state {
            values.insert(entry.metric_id, value);
        }
    }

    fn values(&self, values: &HashMap<MetricId, f64>) -> String {
        self.order
            .iter()
            .filter_map(|id| Some(format!("{} {:.4}", self.names[id], values.get(id)?)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The line of the epoch that just ended.
    pub fn line(&self) -> String {
        format!(
            "epoch {}/{} | train {} | valid {}",
            self.epoch,
            self.epochs,
            self.values(&self.train),
            self.values(&self.valid)
        )
    }
}

impl MetricsRendererTraining for EpochLines {
    fn update_train(&mut self, state: MetricState) {
        Self::record(&mut self.train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        Self::record(&mut self.valid, state);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for EpochLines {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for EpochLines {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        // burn-train counts epochs from 1: `starting_epoch` is the first one this process runs.
        self.epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        // Called when the epoch `epoch` (counted from 1) has ended.
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_string();
        if let Some(bar) = &mut self.bar {
            *bar = ProgressBar::new(total_items as u64).with_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} images, {eta} left")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(format!("epoch {}/{} {split}", self.epoch, self.epochs));
        }
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
    }

    fn end_split(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.split.eq_ignore_ascii_case("valid") {
            println!("{}", self.line());
        }
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for EpochLines {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, _total_items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for EpochLines {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        let id = definition.metric_id;
        if !self.names.contains_key(&id) {
            self.order.push(id.clone());
        }
        self.names.insert(id, definition.name.to_string());
    }
}
