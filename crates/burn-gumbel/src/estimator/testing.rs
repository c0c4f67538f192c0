//! Host-side references and fixed inputs shared by the estimators' tests.

use burn::tensor::{Device, Tensor};

pub(crate) fn softmax_host(x: &[f64]) -> Vec<f64> {
    let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// `J(q)·g = q ⊙ g − q·(qᵀg)`.
pub(crate) fn jvp_host(q: &[f64], g: &[f64]) -> Vec<f64> {
    let qg: f64 = q.iter().zip(g).map(|(a, b)| a * b).sum();
    q.iter().zip(g).map(|(a, b)| a * b - a * qg).collect()
}

pub(crate) fn argmax(x: &[f64]) -> usize {
    (0..x.len()).fold(0, |best, j| if x[j] > x[best] { j } else { best })
}

pub(crate) fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f64> {
    let v = x.into_data().try_into_vec_as::<f32>().unwrap();
    v.into_iter().map(f64::from).collect()
}

pub(crate) const THETA: [[f64; 4]; 2] = [[0.5, -1.0, 2.0, 0.0], [1.5, 1.0, -0.5, 3.0]];
pub(crate) const NOISE: [[f64; 4]; 2] = [[0.1, 0.2, -0.3, 2.9], [0.0, 2.5, 0.0, -0.4]];
pub(crate) const WEIGHTS: [[f64; 4]; 2] = [[1.0, -2.0, 0.5, 3.0], [0.3, 0.0, -1.0, 2.0]];

pub(crate) fn tensor(rows: &[[f64; 4]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::<1>::from_floats(flat.as_slice(), device).reshape([rows.len(), 4])
}

/// The gradient in the logits of `Σ weights · sample` and the sample.
pub(crate) fn grad_of(
    sample: impl Fn(Tensor<2>) -> Tensor<2>,
    theta: &[[f64; 4]],
    device: &Device,
) -> (Vec<f64>, Vec<f64>) {
    let logits = tensor(theta, device).require_grad();
    let z = sample(logits.clone());
    let grads = (z.clone() * tensor(&WEIGHTS, device)).sum().backward();
    (to_vec(z), to_vec(logits.grad(&grads).unwrap()))
}
