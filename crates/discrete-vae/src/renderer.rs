//! How burn-train shows the run: [`EpochLines`], one line per epoch, with a progress bar of the
//! epoch's steps on a terminal, and [`MetricsCsv`], the same line in `metrics.csv`.
//!
//! burn-train's own dashboard is not used: it puts the terminal in raw mode, where Ctrl-C is a
//! key it ignores instead of the signal that stops a run with a checkpoint, a SIGTERM leaves the
//! terminal raw, and its end waits for a key press.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};
use mnist_run::Error;
use mnist_run::files::write_atomic;

use crate::watch::Watch;

/// [`EpochLines`], with a progress bar when standard output is a terminal and `plain` is false,
/// recording each epoch in `csv` if given.
pub fn renderer(plain: bool, csv: Option<MetricsCsv>) -> Box<dyn MetricsRenderer> {
    let bar = !plain && std::io::stdout().is_terminal();
    Box::new(EpochLines {
        bar: bar.then(ProgressBar::hidden),
        csv,
        ..EpochLines::default()
    })
}

/// A run's `metrics.csv`: a header, then a line per epoch with the epoch's mean of every metric,
/// training then validation, rewritten atomically after each epoch. An error writing it (a full
/// disk) ends the run through its [`Watch`], with one line.
pub struct MetricsCsv {
    path: PathBuf,
    header: Option<String>,
    rows: Vec<(usize, String)>,
    watch: Arc<Watch>,
}

impl MetricsCsv {
    /// The file at `path`, keeping the lines of its first `done` epochs (those of the checkpoint
    /// a run resumes from; a later line belongs to an epoch that will run again).
    ///
    /// # Errors
    /// A file that exists but cannot be read.
    pub fn open(path: &Path, done: usize, watch: Arc<Watch>) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::file(path, format!("cannot read: {e}"))),
        };
        let mut lines = text.lines();
        let header = lines.next().map(str::to_string);
        let rows = lines
            .filter_map(|line| {
                let epoch = line.split(',').next()?.parse::<usize>().ok()?;
                (epoch <= done).then(|| (epoch, line.to_string()))
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
            watch,
        })
    }

    /// Records the line of `epoch` (replacing one of the same epoch) under `header`, and writes
    /// the file.
    fn record(&mut self, epoch: usize, header: String, row: String) {
        self.header = Some(header);
        self.rows.retain(|(e, _)| *e < epoch);
        self.rows.push((epoch, row));
        let mut text = self.header.clone().unwrap_or_default();
        for (_, row) in &self.rows {
            text.push('\n');
            text.push_str(row);
        }
        text.push('\n');
        if let Err(error) = write_atomic(&self.path, text.as_bytes()) {
            self.watch.fail(error);
        }
    }
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
    /// Where each epoch's line is recorded.
    csv: Option<MetricsCsv>,
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

    /// Writes the epoch that just ended into the CSV file, if any.
    fn write_csv(&mut self) {
        let Some(csv) = &mut self.csv else {
            return;
        };
        let mut header = vec!["epoch".to_string()];
        let mut row = vec![self.epoch.to_string()];
        for (split, values) in [("train", &self.train), ("valid", &self.valid)] {
            for id in &self.order {
                header.push(format!("{split} {}", self.names[id]));
                row.push(values.get(id).map_or(String::new(), f64::to_string));
            }
        }
        csv.record(self.epoch, header.join(","), row.join(","));
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
            self.write_csv();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::Stop;
    use burn::train::Interrupter;
    use mnist_run::signals::StopFlag;

    fn watch() -> Arc<Watch> {
        Arc::new(Watch::new(Interrupter::new(), StopFlag::new(), 1e-3, 3))
    }

    #[test]
    fn a_resumed_run_keeps_the_lines_of_its_checkpoint_and_replaces_the_rest() {
        let dir = std::env::temp_dir().join(format!("dvae-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        std::fs::write(&path, "epoch,train -ELBO\n1,200\n2,190\n3,185\n").unwrap();
        // Resumed from the checkpoint of epoch 2: epoch 3's line is from the run that died.
        let mut csv = MetricsCsv::open(&path, 2, watch()).unwrap();
        csv.record(3, "epoch,train -ELBO".to_string(), "3,184.5".to_string());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "epoch,train -ELBO\n1,200\n2,190\n3,184.5\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_written_ends_the_run() {
        let watch = watch();
        let path = std::env::temp_dir()
            .join("no-such-folder-dvae")
            .join("metrics.csv");
        let mut csv = MetricsCsv::open(&path, 0, watch.clone()).unwrap();
        csv.record(1, "epoch".to_string(), "1".to_string());
        match watch.take_stop() {
            Some(Stop::Failed(error)) => {
                assert!(
                    error.to_string().contains("metrics.csv.tmp: cannot write"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
