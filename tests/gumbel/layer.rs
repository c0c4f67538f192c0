//! The GumbelSoftmax layer in a model: sampling in training, per-call temperature, eval modes.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_gumbel::{EvalMode, GumbelSoftmaxConfig, TemperatureSchedule, gumbel_softmax};

use crate::support::{host_uniform, tensor2, values};

device_tests!(
    layer_samples_as_the_function_does,
    layer_keeps_sampling_outside_training_by_default,
);

fn logits(device: &Device) -> Tensor<3> {
    // [batch, n_latent, n_categories]
    tensor2(host_uniform(8 * 3 * 5, 81, -2.0, 2.0), 8 * 3, 5, device).reshape([8, 3, 5])
}

fn layer_samples_as_the_function_does(device: &Device) {
    let device = device.clone().autodiff();
    let layer = GumbelSoftmaxConfig::new().with_hard(true).init(&device);
    let tau = TemperatureSchedule::paper().tau(30_000);
    device.seed(82);
    let from_layer = values(layer.forward_with_tau(logits(&device), tau));
    device.seed(82);
    let from_function = values(gumbel_softmax(logits(&device), tau, true, -1));
    assert_eq!(from_layer, from_function);
}

fn layer_keeps_sampling_outside_training_by_default(device: &Device) {
    // A device without autodiff: the layer is not training, and EvalMode::Sample draws anyway.
    let device = device.clone().without_autodiff();
    let layer = GumbelSoftmaxConfig::new().init(&device);
    assert_eq!(layer.eval_mode, EvalMode::Sample);
    device.seed(83);
    let first = values(layer.forward(logits(&device)));
    let second = values(layer.forward(logits(&device)));
    assert_ne!(first, second, "two draws gave the same sample");
    // Frozen on an autodiff device, EvalMode::Argmax gives the noise-free mode every time.
    let frozen = GumbelSoftmaxConfig::new()
        .with_eval_mode(EvalMode::Argmax)
        .init(&device)
        .freeze();
    let a = values(frozen.forward(logits(&device.clone().autodiff())));
    let b = values(frozen.forward(logits(&device.clone().autodiff())));
    assert_eq!(a, b);
    assert_eq!(a.iter().filter(|&&v| v == 1.0).count(), 8 * 3);
}
