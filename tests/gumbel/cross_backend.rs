//! With the same explicit noise, every backend gives the same samples.

use burn_gumbel::gumbel_softmax_with_noise;

use crate::support::{devices, host_gumbel, host_uniform, rng_lock, tensor2, values};

#[test]
fn backends_agree_given_the_same_noise() {
    let _lock = rng_lock();
    let (rows, k) = (500, 12);
    let logits = host_uniform(rows * k, 71, -4.0, 4.0);
    let noise = host_gumbel(rows * k, 72);
    let all = devices();
    let (reference_name, reference) = &all[0];
    for tau in [0.1, 1.0, 10.0] {
        for hard in [false, true] {
            let run = |device| {
                let x = tensor2(logits.clone(), rows, k, device);
                let g = tensor2(noise.clone(), rows, k, device);
                values(gumbel_softmax_with_noise(x, g, tau, hard, -1))
            };
            let expected = run(reference);
            for (name, device) in &all[1..] {
                let got = run(device);
                // f32 softmax of the same inputs: backends differ only by the rounding of exp and
                // of the sum (a few ulp of values ≤ 1), far below 1e-5; hard samples must match
                // exactly, as they are the one-hots of the same argmax.
                let worst = got
                    .iter()
                    .zip(&expected)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                if hard {
                    assert_eq!(got, expected, "{name} vs {reference_name}: tau {tau}, hard");
                } else {
                    assert!(
                        worst <= 1e-5,
                        "{name} vs {reference_name}: tau {tau}: {worst}"
                    );
                }
            }
        }
    }
    // Checked against a host computation too, so that a single enabled backend is still tested.
    let reference_soft = {
        let x = tensor2(logits.clone(), rows, k, reference);
        let g = tensor2(noise.clone(), rows, k, reference);
        values(gumbel_softmax_with_noise(x, g, 1.0, false, -1))
    };
    for r in 0..rows {
        let z: Vec<f64> = (0..k)
            .map(|j| (logits[r * k + j] + noise[r * k + j]) as f64)
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = z.iter().map(|v| (v - m).exp()).sum();
        for j in 0..k {
            let exact = (z[j] - m).exp() / total;
            let got = reference_soft[r * k + j] as f64;
            assert!(
                (got - exact).abs() <= 1e-6,
                "{reference_name} row {r}: {got} vs {exact}"
            );
        }
    }
}
