//! The two terms of the negative ELBO of binarized images under a decoder of Bernoulli pixels
//! and a posterior of categorical codes, in nats per image (means over the batch):
//!
//! - reconstruction: `Σ_pixels [softplus(l) − l·x]`, the Bernoulli negative log-likelihood of
//!   the pixels `x ∈ {0, 1}` with logits `l`;
//! - KL: `Σ_codes Σ_k q_k (ln q_k + ln K)`, the divergence of `q = softmax(logits)` over the `K`
//!   categories of each code from the uniform prior.
//!
//! Jang, Gu, Poole 2016, section 4 ([arXiv:1611.01144](https://arxiv.org/abs/1611.01144)).

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softplus};

/// The Bernoulli negative log-likelihood of `images` under pixel logits, summed over each image
/// and averaged over the batch.
///
/// # Shapes
/// - pixel_logits, images: `[batch, ...]`, the same
/// - output: `[1]`
pub fn reconstruction<const D: usize>(pixel_logits: Tensor<D>, images: Tensor<D>) -> Tensor<1> {
    let batch = pixel_logits.dims()[0] as i32;
    (softplus(pixel_logits.clone(), 1.0) - pixel_logits * images)
        .reshape([batch, -1]) // [batch, pixels]
        .sum_dim(1)
        .mean()
}

/// The KL divergence of `softmax(logits)` over `dim` from the uniform distribution over its
/// `K = logits.dims()[dim]` categories, summed over the codes of each image and averaged over
/// the batch.
///
/// # Shapes
/// - logits: `[batch, ...]`, categories along `dim` (≥ 1)
/// - output: `[1]`
pub fn kl_to_uniform<const D: usize>(logits: Tensor<D>, dim: usize) -> Tensor<1> {
    let dims = logits.dims();
    let (batch, k) = (dims[0] as i32, dims[dim]);
    let log_q = log_softmax(logits, dim);
    (log_q.clone().exp() * log_q.add_scalar((k as f64).ln()))
        .reshape([batch, -1]) // [batch, codes · K]
        .sum_dim(1)
        .mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_match_their_closed_forms() {
        // Logits 0: each pixel costs ln 2 whatever it is, and q is uniform (KL 0). A code
        // certain at every cell (logit 30 against 0): KL = cells · ln K. Tolerance: f32 sums of
        // 784 (or 49) terms near 1, whose rounding stays below 1e-4.
        let device = burn_gumbel_support::reference_device();
        let zeros = Tensor::<4>::zeros([2, 1, 28, 28], &device);
        let nll = reconstruction(zeros.clone(), zeros.ones_like()).into_scalar::<f32>() as f64;
        assert!((nll - 784.0 * 2f64.ln()).abs() < 1e-3, "{nll}");
        let logits = Tensor::<4>::zeros([2, 4, 7, 7], &device);
        assert!(kl_to_uniform(logits.clone(), 1).into_scalar::<f32>().abs() < 1e-5);
        let certain = logits.slice_assign(
            [0..2, 0..1, 0..7, 0..7],
            Tensor::full([2, 1, 7, 7], 30.0, &device),
        );
        let kl = kl_to_uniform(certain, 1).into_scalar::<f32>() as f64;
        assert!((kl - 49.0 * 4f64.ln()).abs() < 1e-3, "{kl}");
        // Categories last, as the dense VAE has them: [batch, N, K].
        let last = Tensor::<3>::zeros([3, 20, 10], &device).slice_assign(
            [0..3, 0..20, 9..10],
            Tensor::full([3, 20, 1], 30.0, &device),
        );
        let kl = kl_to_uniform(last, 2).into_scalar::<f32>() as f64;
        assert!((kl - 20.0 * 10f64.ln()).abs() < 1e-3, "{kl}");
    }
}
