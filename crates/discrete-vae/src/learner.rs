//! The model in burn-train: [`TrainStep`] and [`InferenceStep`], the item a step returns, and
//! its metrics.
//!
//! burn-train 0.22's [`TrainStep::step`] does not see the iteration number, so the model counts
//! its optimizer steps itself: [`TrainStep::optimize`] (and `optimize_multi`, used by the
//! sharded multi-device strategy) advances [`DiscreteVae`]'s counter after the optimizer's update.
//! The counter is saved with the model, so a resumed run anneals the temperature, and keys its
//! noise ([`DiscreteVae::noise_key`]), from where it stopped. Each optimizer step passes a fault
//! point of [`mnist_run::files`], where the crash tests kill the process.
//!
//! After each optimizer step the model tells its [`Watch`] (a stop asked by a signal saves a
//! checkpoint of that step); the metric of the negative ELBO tells it when the loss is not
//! finite, and each training metric records its running sums of the epoch there, which the
//! checkpoint of a stop inside an epoch keeps and the resumed run's metrics continue from
//! ([`VaeMetric::training`]).

use std::sync::Arc;

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{ExecutionError, Tensor, TensorReadError};
use burn::train::checkpoint::Checkpoint;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use burn::train::{InferenceStep, ItemLazy, TrainOutput, TrainStep};
use mnist_run::files::fault_point;

use crate::data::DigitBatch;
use crate::model::{DiscreteVae, code_perplexity, negative_elbo};
use crate::watch::Watch;

/// What a training or validation step reports: the terms of the negative ELBO, the temperature
/// and the perplexity of the codes used, each `[1]`.
#[derive(Clone, Debug)]
pub struct StepItem {
    /// Images in the batch.
    pub batch: usize,
    /// The negative ELBO, nats per image.
    pub nelbo: Tensor<1>,
    /// Its reconstruction term.
    pub reconstruction: Tensor<1>,
    /// Its KL term.
    pub kl: Tensor<1>,
    /// The temperature of the step.
    pub tau: Tensor<1>,
    /// The perplexity of code usage in the batch (see [`code_perplexity`]).
    pub perplexity: Tensor<1>,
}

impl ItemLazy for StepItem {
    fn sync(self) -> Result<Self, ExecutionError> {
        // The metrics read the scalars on their own thread, off the autodiff graph.
        self.nelbo.device().flush()?;
        let plain = |t: Tensor<1>| t.without_autodiff();
        Ok(Self {
            batch: self.batch,
            nelbo: plain(self.nelbo),
            reconstruction: plain(self.reconstruction),
            kl: plain(self.kl),
            tau: plain(self.tau),
            perplexity: plain(self.perplexity),
        })
    }
}

impl DiscreteVae {
    /// Tells the watch, if any, of the optimizer step that left this model and `optim`.
    fn after_step(&self, optim: &ModuleOptimizer) {
        if let Some(watch) = self.watch() {
            watch.after_step(self.step(), || {
                Ok((
                    self.clone().into_record().checkpoint_into_bytes()?,
                    optim.to_record().checkpoint_into_bytes()?,
                ))
            });
        }
    }

    /// A forward pass over `batch` and the item it reports; the negative ELBO keeps its graph.
    fn item(&self, batch: DigitBatch) -> StepItem {
        let [n, _, _, _] = batch.images.dims();
        let key = self.noise_key(batch.first);
        let forward = self.forward_with_key(batch.images.clone(), key);
        let elbo = negative_elbo(batch.images, &forward);
        StepItem {
            batch: n,
            nelbo: elbo.loss,
            reconstruction: elbo.reconstruction.detach(),
            kl: elbo.kl.detach(),
            perplexity: code_perplexity(forward.codes.detach()),
            tau: forward.tau,
        }
    }
}

impl TrainStep for DiscreteVae {
    type Input = DigitBatch;
    type Output = StepItem;

    fn step(&self, batch: DigitBatch) -> TrainOutput<StepItem> {
        let item = self.item(batch);
        let grads = item.nelbo.backward();
        TrainOutput::new(self, grads, item)
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        fault_point("training step");
        let model = optim.step(lr, self, grads).advance();
        model.after_step(optim);
        model
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        fault_point("training step");
        let model = optim.step_multi(lr, self, grads).advance();
        model.after_step(optim);
        model
    }
}

impl InferenceStep for DiscreteVae {
    type Input = DigitBatch;
    type Output = StepItem;

    fn step(&self, batch: DigitBatch) -> StepItem {
        self.item(batch)
    }
}

impl Adaptor<StepItem> for StepItem {
    fn adapt(&self) -> StepItem {
        self.clone()
    }
}

/// Which value of a [`StepItem`] a [`VaeMetric`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// The negative ELBO (nats).
    NegativeElbo,
    /// Its reconstruction term (nats).
    Reconstruction,
    /// Its KL term (nats).
    Kl,
    /// The temperature.
    Temperature,
    /// The perplexity of code usage.
    Perplexity,
}

impl Quantity {
    /// Every quantity, in the order of the metrics' columns.
    pub const ALL: [Quantity; 5] = [
        Quantity::NegativeElbo,
        Quantity::Reconstruction,
        Quantity::Kl,
        Quantity::Temperature,
        Quantity::Perplexity,
    ];

    /// The metric's name, as burn-train logs it.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::NegativeElbo => "-ELBO",
            Quantity::Reconstruction => "Reconstruction",
            Quantity::Kl => "KL",
            Quantity::Temperature => "Temperature",
            Quantity::Perplexity => "Code perplexity",
        }
    }

    fn of(self, item: &StepItem) -> &Tensor<1> {
        match self {
            Quantity::NegativeElbo => &item.nelbo,
            Quantity::Reconstruction => &item.reconstruction,
            Quantity::Kl => &item.kl,
            Quantity::Temperature => &item.tau,
            Quantity::Perplexity => &item.perplexity,
        }
    }
}

/// A numeric burn-train metric of one [`Quantity`]: per batch, and averaged over the epoch
/// weighted by the batch sizes.
#[derive(Clone)]
pub struct VaeMetric {
    quantity: Quantity,
    name: MetricName,
    state: NumericMetricState,
    /// The epoch's running sums, as `state` accumulates them (its own are private).
    sum: f64,
    count: usize,
    watch: Option<Arc<Watch>>,
    training: Option<Training>,
}

/// A training metric's part in a stop inside an epoch: the watch it records its sums in, and the
/// sums it starts from in a run resumed inside an epoch (taken once).
#[derive(Clone)]
struct Training {
    watch: Arc<Watch>,
    resume: Option<(f64, usize)>,
}

impl VaeMetric {
    /// The metric of `quantity`.
    pub fn new(quantity: Quantity) -> Self {
        Self {
            quantity,
            name: Arc::new(quantity.name().to_string()),
            state: NumericMetricState::default(),
            sum: 0.0,
            count: 0,
            watch: None,
            training: None,
        }
    }

    /// The same metric, telling `watch` when a value is not finite (the run diverged).
    pub fn watching(self, watch: Arc<Watch>) -> Self {
        Self {
            watch: Some(watch),
            ..self
        }
    }

    /// The same metric as a training metric: it records its running sums of the epoch in
    /// `watch` after each step ([`Watch::record_sums`]), and, given the `resume` sums of a
    /// checkpoint inside an epoch (`Σ value × batch`, `Σ batch`), continues from them, so that
    /// the epoch's mean is the one of the run that was not stopped, bit for bit.
    pub fn training(self, watch: Arc<Watch>, resume: Option<(f64, usize)>) -> Self {
        Self {
            training: Some(Training { watch, resume }),
            ..self
        }
    }

    /// Starts the epoch's state from the sums a resumed run continues, once. burn-train's
    /// `NumericMetricState` adds `value × count` to its sum: an update by `(sum, 1)` sets it to
    /// exactly `sum`, and one by `(0, count - 1)` brings its count to `count` without changing
    /// it.
    fn continue_resumed(&mut self) {
        let Some((sum, count)) = self.training.as_mut().and_then(|t| t.resume.take()) else {
            return;
        };
        if count == 0 {
            return;
        }
        self.state.update(sum, 1);
        self.state.update(0.0, count - 1);
        (self.sum, self.count) = (sum, count);
    }

    /// Adds a step's `value` over `batch` images, as `state` does, and records the sums.
    fn add(&mut self, value: f64, batch: usize) {
        self.continue_resumed();
        self.state.update(value, batch);
        if batch > 0 {
            self.sum += value * batch as f64;
            self.count += batch;
        }
        if let Some(training) = &self.training {
            training
                .watch
                .record_sums(self.quantity.name(), self.sum, self.count);
        }
    }

    fn format(&self) -> FormatOptions {
        let precision = match self.quantity {
            Quantity::Temperature => 4,
            _ => 2,
        };
        FormatOptions::new(self.name.clone()).precision(precision)
    }
}

impl Metric for VaeMetric {
    type Input = StepItem;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: matches!(self.quantity, Quantity::Perplexity),
        }
        .into()
    }

    fn update(
        &mut self,
        item: &StepItem,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let value = self.quantity.of(item).clone().try_into_scalar::<f64>()?;
        if let Some(watch) = &self.watch {
            watch.check_loss(value);
        }
        self.add(value, item.batch);
        Ok(self.state.compute_update(self.format()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        // A run resumed after the last step of an epoch has no step of it left to see.
        self.continue_resumed();
        Ok(self.state.compute_final(self.format()))
    }

    fn clear(&mut self) {
        self.state.reset();
        (self.sum, self.count) = (0.0, 0);
    }
}

impl Numeric for VaeMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::Interrupter;
    use mnist_run::signals::StopFlag;

    #[test]
    fn a_metric_resumed_inside_an_epoch_ends_it_with_the_uninterrupted_mean() {
        let steps = [(201.37, 100), (198.5, 100), (0.1 + 0.2, 100), (187.03, 64)];
        let watch = || Arc::new(Watch::new(Interrupter::new(), StopFlag::new(), 1e-3, 4));
        let final_value = |metric: &mut VaeMetric| {
            metric.compute().unwrap();
            metric.final_value().current()
        };
        let name = Quantity::NegativeElbo.name();
        let whole = watch();
        let mut uninterrupted = VaeMetric::new(Quantity::NegativeElbo).training(whole, None);
        for (value, batch) in steps {
            uninterrupted.add(value, batch);
        }
        let expected = final_value(&mut uninterrupted);
        for stop in 1..=steps.len() {
            let first = watch();
            let mut before = VaeMetric::new(Quantity::NegativeElbo).training(first.clone(), None);
            for &(value, batch) in &steps[..stop] {
                before.add(value, batch);
            }
            let sums = first.sums()[name];
            let mut after = VaeMetric::new(Quantity::NegativeElbo).training(watch(), Some(sums));
            for &(value, batch) in &steps[stop..] {
                after.add(value, batch);
            }
            // The same bits, also with no step left (a stop after the epoch's last one).
            assert_eq!(
                final_value(&mut after).to_bits(),
                expected.to_bits(),
                "stop {stop}"
            );
        }
    }
    use crate::data::{DigitBatcher, Digits};
    use crate::model::DiscreteVaeConfig;
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    use burn::module::Module;
    use burn::optim::AdamConfig;

    #[test]
    fn optimize_advances_the_step_and_the_record_keeps_it() {
        let device = burn_gumbel_support::reference_device().autodiff();
        let model = DiscreteVaeConfig::new()
            .with_codes(4)
            .with_channels(2)
            .init(&device);
        let digits = Digits::new(mnist_run::data::Mnist::embedded().test.truncate(4));
        let batch = DigitBatcher.batch((0..4).map(|i| digits.get(i).unwrap()).collect(), &device);
        let mut optim = AdamConfig::new().init();
        let model = model.with_seed(5);
        let output = TrainStep::step(&model, batch);
        assert!(output.item.nelbo.clone().into_scalar::<f32>().is_finite());
        let model = model.optimize(&mut optim, 1e-3.into(), output.grads);
        assert_eq!(model.step(), 1);
        let fresh = DiscreteVaeConfig::new()
            .with_codes(4)
            .with_channels(2)
            .init(&device);
        let restored = fresh.load_record(model.clone().into_record());
        assert_eq!(restored.with_loaded_step().step(), 1);
    }

    #[test]
    fn a_record_round_trips_through_the_checkpointer() {
        use burn::module::Module;
        use burn::store::ModuleRecord;
        let dir = std::env::temp_dir().join(format!("dvae-round-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let device = burn_gumbel_support::reference_device();
        let config = crate::model::DiscreteVaeConfig::new()
            .with_codes(3)
            .with_channels(2);
        let model = config.init(&device).advance();
        let [checkpointer, ..] = crate::checkpoint::checkpointers(&dir, None).unwrap();
        burn::train::checkpoint::Checkpointer::<ModuleRecord>::save(
            &checkpointer,
            7,
            model.clone().into_record(),
        )
        .unwrap();
        assert!(!dir.join("model-7.bpk.tmp").exists());
        let record: ModuleRecord =
            burn::train::checkpoint::Checkpointer::restore(&checkpointer, 7).unwrap();
        let restored = config.init(&device).load_record(record).with_loaded_step();
        assert_eq!(restored.step(), 1);
        burn::train::checkpoint::Checkpointer::<ModuleRecord>::delete(&checkpointer, 7).unwrap();
        assert!(!dir.join("model-7.bpk").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
