//! The GumbelSoftmax layer in a model: sampling in training, per-call temperature, eval modes.

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor, s};
use burn_gumbel::{EvalMode, GumbelSoftmaxConfig, TemperatureSchedule, gumbel_softmax};

use crate::support::{host_uniform, tensor2, values};

device_tests!(
    layer_samples_as_the_function_does,
    layer_keeps_sampling_outside_training_by_default,
    learned_temperature_has_the_gradient_of_the_sample,
    learned_temperature_is_trained_with_the_model,
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

/// Logits that favour category 0 (3 against 0), `[64, 3, 5]`.
fn favouring_logits(device: &Device) -> Tensor<3> {
    let row = [3.0, 0.0, 0.0, 0.0, 0.0];
    Tensor::<1>::from_floats(row, device)
        .reshape([1, 1, 5])
        .repeat_dim(0, 64)
        .repeat_dim(1, 3) // [64, 3, 5]
}

/// The loss of the temperature tests: minus the mean mass on category 0, which the logits favour,
/// so that a lower temperature (a sharper sample) lowers it on most draws.
fn mass_loss(y: Tensor<3>) -> Tensor<1> {
    y.slice(s![.., .., 0..1]).mean().neg()
}

fn learned_temperature_has_the_gradient_of_the_sample(device: &Device) {
    let device = device.clone().autodiff();
    let tau = 0.8;
    let layer = GumbelSoftmaxConfig::new()
        .with_tau(tau)
        .with_learnable_tau(true)
        .init(&device);
    let learned = values(layer.learned_tau().unwrap())[0] as f64;
    assert!((learned - tau).abs() < 1e-6, "initial tau {learned}");

    // d loss / d ln tau from autodiff, against a central difference in ln tau with the same
    // noise (same seed, same draws).
    device.seed(84);
    let loss = mass_loss(layer.forward(favouring_logits(&device)));
    let grads = loss.backward();
    let log_tau = layer.log_tau.as_ref().unwrap();
    let autodiff = values(log_tau.grad(&grads).unwrap())[0] as f64;
    let h = 1e-3;
    let loss_at = |log_tau: f64| {
        device.seed(84);
        // The same seed: forward_with_tau draws the noise of forward with a learned tau (the
        // fused kernel's key on flex, gumbel_noise elsewhere).
        let y = layer.forward_with_tau(favouring_logits(&device), log_tau.exp());
        values(mass_loss(y))[0] as f64
    };
    let central = (loss_at(tau.ln() + h) - loss_at(tau.ln() - h)) / (2.0 * h);
    // The central difference is exact to O(h²) ≈ 1e-6 here, and f32 rounding of losses of size ~1
    // divided by 2h adds ~1e-4.
    assert!(
        (autodiff - central).abs() < 5e-4,
        "autodiff {autodiff} vs central difference {central}"
    );
    assert!(
        autodiff > 0.0,
        "a higher tau should raise this loss, gradient {autodiff}"
    );
}

fn learned_temperature_is_trained_with_the_model(device: &Device) {
    let device = device.clone().autodiff();
    let mut layer = GumbelSoftmaxConfig::new()
        .with_learnable_tau(true)
        .init(&device);
    let mut optim = SgdConfig::new().init();
    device.seed(85);
    for _ in 0..20 {
        let loss = mass_loss(layer.forward(favouring_logits(&device)));
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(1.0, layer, grads);
    }
    // Sharper samples lower the loss: 20 steps of SGD take tau from 1 to about 0.25 (seed 85, on
    // every backend); below 0.8 leaves a wide margin while still failing if tau does not learn.
    let tau = values(layer.learned_tau().unwrap())[0];
    assert!(tau < 0.8, "tau after training: {tau}");
}
