//! The token sampler: the same token for a row alone, in any batch and on every backend; tokens
//! distributed as the filtered softmax (exact enumeration against a million draws); masked and
//! filtered tokens never drawn; bad input refused with its reason. Nothing here draws from a
//! device's generator (the inputs are built on the host, the noise is keyed), so the tests run
//! without the generator lock, beside the others.

use burn::tensor::{Device, Tensor, TensorData};
use burn_gumbel::{Key, TokenSamplerConfig, sample_tokens, token_logprobs};

use crate::support::{devices, host_uniform, indices, tensor2, values};

device_tests!(
    unlocked:
    a_row_draws_the_same_token_alone_and_in_any_batch,
    tokens_follow_the_filtered_distribution,
    masked_and_filtered_tokens_are_never_drawn,
    bad_rows_and_settings_are_refused_with_their_reason,
    the_filters_keep_what_pytorchs_warpers_keep,
    long_rows_follow_the_distribution,
);

/// The settings of row `r` of a mixed batch: greedy, temperature only, top-k, top-p, min-p and
/// their combinations, chosen by `r` and `salt`.
fn mixed(r: usize, salt: usize) -> TokenSamplerConfig {
    let t = [0.7, 1.0, 1.3][(r + salt) % 3];
    let base = TokenSamplerConfig::new().with_temperature(t);
    match (r * 7 + salt) % 7 {
        0 => TokenSamplerConfig::greedy(),
        1 => base,
        2 => base.with_top_k(50),
        3 => base.with_top_p(0.9),
        4 => base.with_min_p(0.05),
        5 => base.with_top_k(40).with_top_p(0.8).with_min_p(0.02),
        _ => base.with_top_k(1),
    }
}

/// `[rows, vocab]` logits like a language model's: a spread of 4 around 0 and a few large ones,
/// some masked.
fn lm_logits(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
    let mut x = host_uniform(rows * vocab, seed, -4.0, 4.0);
    let spikes = host_uniform(rows * 8, seed + 1, 0.0, 1.0);
    for r in 0..rows {
        for s in 0..8 {
            let v = (spikes[r * 8 + s] * vocab as f32) as usize % vocab;
            x[r * vocab + v] += 8.0 - s as f32;
        }
        x[r * vocab + (r * 31 % vocab)] = f32::NEG_INFINITY;
    }
    x
}

fn a_row_draws_the_same_token_alone_and_in_any_batch(device: &Device) {
    let (rows, vocab) = (64, 3000);
    let x = lm_logits(rows, vocab, 11);
    let keys: Vec<Key> = (0..rows as u64)
        .map(|r| Key::new(1000 + r).fold_in(5))
        .collect();
    let configs: Vec<_> = (0..rows).map(|r| mixed(r, 0)).collect();
    let batch = sample_tokens(tensor2(x.clone(), rows, vocab, device), &keys, &configs);
    let (ids, logprobs) = (indices(batch.ids), values(batch.logprobs));
    // Each row alone.
    for r in [0, 1, 2, 3, 4, 5, 6, 37, 63] {
        let row = x[r * vocab..(r + 1) * vocab].to_vec();
        let alone = sample_tokens(
            tensor2(row, 1, vocab, device),
            &keys[r..=r],
            &configs[r..=r],
        );
        assert_eq!(indices(alone.ids), [ids[r]], "row {r} alone");
        assert_eq!(values(alone.logprobs), [logprobs[r]], "row {r} alone");
    }
    // The rows in reverse order, among 64 new rows whose settings differ from the first batch's.
    let others = lm_logits(rows, vocab, 12);
    let mut shuffled = Vec::new();
    let (mut keys2, mut configs2) = (Vec::new(), Vec::new());
    for r in (0..rows).rev() {
        shuffled.extend_from_slice(&x[r * vocab..(r + 1) * vocab]);
        shuffled.extend_from_slice(&others[r * vocab..(r + 1) * vocab]);
        keys2.extend([keys[r], Key::new(r as u64)]);
        configs2.extend([configs[r], mixed(r, 3)]);
    }
    let mixed_batch = sample_tokens(
        tensor2(shuffled, 2 * rows, vocab, device),
        &keys2,
        &configs2,
    );
    let (ids2, logprobs2) = (indices(mixed_batch.ids), values(mixed_batch.logprobs));
    for r in 0..rows {
        let at = 2 * (rows - 1 - r);
        assert_eq!(ids2[at], ids[r], "row {r} in another batch");
        assert_eq!(logprobs2[at], logprobs[r], "row {r} in another batch");
    }
    // The keys matter: 200 keys on a flat row of 3000 tokens draw at least 180 distinct tokens
    // (about 193 expected; 180 is 6.5 times the binomial spread below it).
    let flat = tensor2(vec![0.0; 200 * vocab], 200, vocab, device);
    let flat_keys: Vec<Key> = (0..200).map(|i| Key::new(9).fold_in(i)).collect();
    let mut drawn = indices(sample_tokens(flat, &flat_keys, &[TokenSamplerConfig::new()]).ids);
    drawn.sort();
    drawn.dedup();
    assert!(
        drawn.len() >= 180,
        "{} distinct tokens in 200 draws",
        drawn.len()
    );
}

#[test]
fn backends_draw_the_same_tokens_and_logprobs() {
    let (rows, vocab) = (64, 3000);
    let x = lm_logits(rows, vocab, 21);
    let keys: Vec<Key> = (0..rows as u64).map(|r| Key::new(7).fold_in(r)).collect();
    let configs: Vec<_> = (0..rows).map(|r| mixed(r, 1)).collect();
    let run = |device: &Device| {
        let tokens = sample_tokens(tensor2(x.clone(), rows, vocab, device), &keys, &configs);
        let distribution = token_logprobs(tensor2(x.clone(), rows, vocab, device), &configs);
        (
            indices(tokens.ids),
            values(tokens.logprobs),
            values(distribution),
        )
    };
    let all = devices();
    let expected = run(&all[0].1);
    for (name, device) in &all[1..] {
        let (ids, logprobs, distribution) = run(device);
        assert_eq!(ids, expected.0, "{name} vs {}: ids", all[0].0);
        assert!(
            distribution == expected.2,
            "{name} vs {}: distribution",
            all[0].0
        );
        // wgpu's kernel draws the greedy, temperature and min-p rows with the host's arithmetic
        // in its order, on a device that may contract a multiply and an add into one rounding:
        // the same token (a close race goes to the host), the log-probability within a few ulps.
        for (r, (&got, &want)) in logprobs.iter().zip(&expected.1).enumerate() {
            let ulps = if *name == "wgpu" {
                1e-6 * want.abs().max(1.0)
            } else {
                0.0
            };
            assert!(
                (got - want).abs() <= ulps,
                "{name} vs {}: row {r}'s logprob {got} vs {want}",
                all[0].0
            );
        }
    }
    // The token's logprob is its entry in the distribution.
    let (ids, logprobs, distribution) = expected;
    for r in 0..rows {
        assert_eq!(
            logprobs[r],
            distribution[r * vocab + ids[r] as usize],
            "row {r}"
        );
    }
}

/// The kept set and the probabilities of `logits` under `config`, computed independently of the
/// sampler: in f64, by sorting, as Hugging Face's warpers do (top-k, then top-p on the
/// renormalized top-k distribution, then min-p), with the ties at a boundary kept.
fn reference(logits: &[f32], config: &TokenSamplerConfig) -> Vec<f64> {
    let t = config.temperature as f64;
    let z: Vec<f64> = logits.iter().map(|&x| x as f64 / t).collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut order: Vec<usize> = (0..z.len()).collect();
    order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
    let mut keep: Vec<bool> = z.iter().map(|&v| v > f64::NEG_INFINITY).collect();
    if config.top_k > 0 && config.top_k < z.len() {
        let kth = z[order[config.top_k - 1]];
        keep.iter_mut().zip(&z).for_each(|(k, &v)| *k &= v >= kth);
    }
    if config.top_p < 1.0 {
        let w: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let total: f64 = (0..z.len()).filter(|&v| keep[v]).map(|v| w[v]).sum();
        let mut prefix = 0.0;
        let mut last = f64::NEG_INFINITY;
        for &v in order.iter().filter(|&&v| keep[v]) {
            prefix += w[v];
            if prefix >= config.top_p as f64 * total {
                last = z[v];
                break;
            }
        }
        keep.iter_mut().zip(&z).for_each(|(k, &v)| *k &= v >= last);
    }
    if config.min_p > 0.0 {
        let ln_min_p = (config.min_p as f64).ln();
        keep.iter_mut()
            .zip(&z)
            .for_each(|(k, &v)| *k &= v - m >= ln_min_p);
    }
    let w: Vec<f64> = (0..z.len())
        .map(|v| if keep[v] { (z[v] - m).exp() } else { 0.0 })
        .collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|w| w / total).collect()
}

fn tokens_follow_the_filtered_distribution(device: &Device) {
    // Eight tokens, one masked; each setting's boundaries at least 1% away from a tie, so that
    // the f32 sampler and the f64 reference keep the same set. A million draws per setting, one
    // row each under its own key: every count within 5 standard errors of n·p (a token of
    // probability 0 never drawn), and each token's logprob within 1e-5 of ln p (the sampler's
    // is `d − ln Σ exp d` in f32 with a 2-ulp `exp`: off by a few 1e-7 for |ln p| < 5; 1e-5 is
    // the margin, far below the 0.1 between two tokens' ln p here).
    let logits = [2.0f32, 1.3, 0.9, 0.4, 0.0, -0.7, -1.5, f32::NEG_INFINITY];
    let vocab = logits.len();
    let n = 1_000_000usize;
    let settings = [
        TokenSamplerConfig::new(),
        TokenSamplerConfig::new()
            .with_temperature(0.5)
            .with_top_k(3),
        TokenSamplerConfig::new()
            .with_temperature(1.3)
            .with_top_p(0.8),
        TokenSamplerConfig::new().with_min_p(0.15),
        TokenSamplerConfig::new()
            .with_temperature(2.0)
            .with_top_k(6)
            .with_top_p(0.9)
            .with_min_p(0.3),
    ];
    let x: Vec<f32> = logits.iter().cycle().take(n * vocab).copied().collect();
    let tensor = tensor2(x, n, vocab, device);
    for (s, config) in settings.iter().enumerate() {
        let p = reference(&logits, config);
        let keys: Vec<Key> = (0..n as u64)
            .map(|i| Key::new(s as u64).fold_in(i))
            .collect();
        let tokens = sample_tokens(tensor.clone(), &keys, &[*config]);
        let (ids, logprobs) = (indices(tokens.ids), values(tokens.logprobs));
        let mut counts = vec![0usize; vocab];
        for (&id, &lp) in ids.iter().zip(&logprobs) {
            counts[id as usize] += 1;
            let exact = p[id as usize].ln();
            assert!(
                (lp as f64 - exact).abs() < 1e-5,
                "setting {s}: logprob {lp} vs {exact}"
            );
        }
        for v in 0..vocab {
            let expected = n as f64 * p[v];
            let se = (n as f64 * p[v] * (1.0 - p[v])).sqrt();
            if p[v] == 0.0 {
                assert_eq!(counts[v], 0, "setting {s}: token {v} is filtered out");
            } else {
                assert!(
                    (counts[v] as f64 - expected).abs() <= 5.0 * se,
                    "setting {s}: token {v} drawn {} times, expected {expected:.0} ± {se:.0}",
                    counts[v]
                );
            }
        }
        // The distribution itself, to 1e-6 (p ≤ 1 from an f32 logprob: a few ulp of 1, 1e-7).
        let row = Tensor::<1>::from_floats(logits, device).reshape([1, vocab]);
        let lp = values(token_logprobs(row, &[*config]));
        for v in 0..vocab {
            let got = (lp[v] as f64).exp();
            assert!(
                (got - p[v]).abs() < 1e-6,
                "setting {s}: p[{v}] {got} vs {}",
                p[v]
            );
        }
    }
}

/// Rows of 1024 tokens (four blocks; wgpu's kernel takes rows from 1024 tokens): 4 tokens in
/// blocks 0 and 2 with relative weights 1 to 8, the others masked or at `e^-25` of the lightest
/// (never expected in these draws); 20,000 draws per setting (82 MB of logits: wgpu's buffers
/// hold at most 128 MiB), one row each under its own
/// key, temperature only and min-p 0.3: Pearson's chi-square over the kept tokens below its mean
/// plus 5 standard deviations (χ²(k − 1)), masked and filtered tokens never drawn, the logprob
/// within 1e-5 of the exact one.
fn long_rows_follow_the_distribution(device: &Device) {
    let (vocab, n) = (1024, 20_000usize);
    let hot = |v: usize| v % 128 == 37 && (v / 256).is_multiple_of(2);
    let logits: Vec<f32> = (0..vocab)
        .map(|v| match v {
            _ if hot(v) => ((v / 128 + 1) as f32).ln(),
            _ if v % 3 == 0 => -25.0,
            _ => f32::NEG_INFINITY,
        })
        .collect();
    let x: Vec<f32> = logits.iter().cycle().take(n * vocab).copied().collect();
    let tensor = tensor2(x, n, vocab, device);
    for (s, config) in [
        TokenSamplerConfig::new(),
        TokenSamplerConfig::new().with_min_p(0.3),
    ]
    .iter()
    .enumerate()
    {
        let p = reference(&logits, config);
        let keys: Vec<Key> = (0..n as u64)
            .map(|i| Key::new(40 + s as u64).fold_in(i))
            .collect();
        let tokens = sample_tokens(tensor.clone(), &keys, &[*config]);
        let (ids, logprobs) = (indices(tokens.ids), values(tokens.logprobs));
        let mut counts = vec![0usize; vocab];
        for (&id, &lp) in ids.iter().zip(&logprobs) {
            assert!(hot(id as usize), "setting {s}: token {id} drawn");
            counts[id as usize] += 1;
            let exact = p[id as usize].ln();
            assert!(
                (lp as f64 - exact).abs() < 1e-5,
                "setting {s}: {lp} vs {exact}"
            );
        }
        // The tokens at e^-25 of the lightest (p < 1e-9) are not expected in 20,000 draws.
        assert_chi_square(&counts, &p, 1e-9, s);
    }
}

/// The draws `counts` (of `Σ counts` rows) against the probabilities `p` of setting `s`: every
/// token of probability at most `floor` never drawn, and Pearson's chi-square over the others
/// below its mean plus 5 standard deviations (its law χ²(k − 1): mean k − 1, variance 2(k − 1)).
fn assert_chi_square(counts: &[usize], p: &[f64], floor: f64, s: usize) {
    let n = counts.iter().sum::<usize>() as f64;
    let kept: Vec<usize> = (0..p.len()).filter(|&v| p[v] > floor).collect();
    for v in (0..p.len()).filter(|&v| p[v] <= floor) {
        assert_eq!(
            counts[v], 0,
            "setting {s}: token {v} is filtered out or masked"
        );
    }
    let chi2: f64 = kept
        .iter()
        .map(|&v| (counts[v] as f64 - n * p[v]).powi(2) / (n * p[v]))
        .sum();
    let dof = (kept.len() - 1) as f64;
    assert!(
        chi2 < dof + 5.0 * (2.0 * dof).sqrt(),
        "setting {s}: chi-square {chi2:.1} on {dof} degrees of freedom"
    );
}

fn masked_and_filtered_tokens_are_never_drawn(device: &Device) {
    never_drawn(device, 1_000_000);
}

/// The two-level draw across blocks of 256 token ids: on flex, 300,000 draws of a row of 300
/// tokens (two blocks, the second partial) with probabilities from 1 to 12 in relative weight
/// and every 50th token masked, temperature only and with top-k 100: Pearson's chi-square over
/// the kept tokens below its mean plus 5 standard deviations (its law χ²(n − 1)), the mass of
/// each block within 5 standard errors, filtered and masked tokens never drawn. The other
/// backends draw the same bits (`backends_draw_the_same_tokens_and_logprobs`).
#[cfg(feature = "flex")]
#[test]
fn the_two_level_draw_is_exact_across_blocks() {
    let device = crate::support::device("flex");
    let vocab = 300;
    let logits: Vec<f32> = (0..vocab)
        .map(|v| match v % 50 {
            7 => f32::NEG_INFINITY,
            _ => ((1 + (v * 37) % 12) as f32).ln(),
        })
        .collect();
    let n = 300_000usize;
    let x: Vec<f32> = logits.iter().cycle().take(n * vocab).copied().collect();
    let tensor = tensor2(x, n, vocab, &device);
    for (s, config) in [
        TokenSamplerConfig::new(),
        TokenSamplerConfig::new().with_top_k(100),
    ]
    .iter()
    .enumerate()
    {
        let p = reference(&logits, config);
        let keys: Vec<Key> = (0..n as u64)
            .map(|i| Key::new(50 + s as u64).fold_in(i))
            .collect();
        let ids = indices(sample_tokens(tensor.clone(), &keys, &[*config]).ids);
        let mut counts = vec![0usize; vocab];
        ids.iter().for_each(|&id| counts[id as usize] += 1);
        assert_chi_square(&counts, &p, 0.0, s);
        for block in [0..256, 256..vocab] {
            let mass: f64 = p[block.clone()].iter().sum();
            let drawn = counts[block.clone()].iter().sum::<usize>() as f64 / n as f64;
            let se = (mass * (1.0 - mass) / n as f64).sqrt();
            assert!(
                (drawn - mass).abs() <= 5.0 * se,
                "setting {s}: block {block:?}: {drawn} vs {mass}"
            );
        }
    }
}

/// 10⁸ draws on flex, where the rows never leave the host (the other backends copy them there
/// and draw with the same row kernel: a million draws each above).
#[cfg(feature = "flex")]
#[test]
fn a_hundred_million_draws_never_draw_a_masked_or_filtered_token() {
    never_drawn(&crate::support::device("flex"), 100_000_000);
}

fn never_drawn(device: &Device, draws: usize) {
    // Rows of four tokens: two masked (-inf), a third far below the best and cut by top-k 1 or
    // min-p, drawn in chunks of a million rows under distinct keys. None of the masked or
    // filtered tokens is ever drawn (the noise is finite, and a masked token is never a
    // candidate), and the kept token's logprob is exactly 0.
    let chunk = 1_000_000usize;
    let row = [f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY, -30.0];
    let x: Vec<f32> = row.iter().cycle().take(chunk * 4).copied().collect();
    let tensor = tensor2(x, chunk, 4, device);
    let filters = [
        TokenSamplerConfig::new().with_top_k(1),
        TokenSamplerConfig::new().with_min_p(1e-6),
    ];
    for c in 0..draws / chunk {
        let keys: Vec<Key> = (0..chunk as u64)
            .map(|i| Key::new(c as u64).fold_in(i))
            .collect();
        let tokens = sample_tokens(tensor.clone(), &keys, &filters[c % 2..=c % 2]);
        let ids = indices(tokens.ids);
        assert!(
            ids.iter().all(|&id| id == 1),
            "chunk {c}: a masked or filtered token"
        );
        assert!(values(tokens.logprobs).iter().all(|&lp| lp == 0.0));
    }
    // Without a filter the far token (probability e^-33 ≈ 5e-15) stays possible: the masked
    // ones are what the test above checks, and the unfiltered distribution keeps all three.
    let lp = values(token_logprobs(
        Tensor::<1>::from_floats(row, device).reshape([1, 4]),
        &[TokenSamplerConfig::new()],
    ));
    assert_eq!([lp[0], lp[2]], [f32::NEG_INFINITY; 2]);
    // ln p of the far token is −33 − ln(1 + e^-33) = −33 to f32's precision (ulp 4e-6 at 33);
    // the best token's is −ln(1 + e^-33) ≈ −4.7e-15.
    assert!((lp[3] + 33.0).abs() < 1e-5 && lp[1].abs() < 1e-14, "{lp:?}");
}

#[test]
fn half_precision_logits_draw_the_tokens_of_their_f32_values() {
    // f16 and bf16 logits are widened to f32: the tokens are those of the widened values, given
    // as f32 (both built on the host, so that no fused cast on the device skips a rounding). Not
    // on ndarray, which has no half-precision tensors.
    let (rows, vocab) = (16, 500);
    let x = lm_logits(rows, vocab, 31);
    let keys: Vec<Key> = (0..rows as u64).map(|r| Key::new(3).fold_in(r)).collect();
    let configs: Vec<_> = (0..rows).map(|r| mixed(r, 2)).collect();
    for (name, device) in devices().iter().filter(|(name, _)| *name != "ndarray") {
        let f16: Vec<burn::tensor::f16> =
            x.iter().map(|&v| burn::tensor::f16::from_f32(v)).collect();
        let bf16: Vec<burn::tensor::bf16> =
            x.iter().map(|&v| burn::tensor::bf16::from_f32(v)).collect();
        let cases = [
            (
                TensorData::new(f16.clone(), [rows, vocab]),
                f16.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
            ),
            (
                TensorData::new(bf16.clone(), [rows, vocab]),
                bf16.iter().map(|v| v.to_f32()).collect(),
            ),
        ];
        for (half, widened) in cases {
            let dtype = half.dtype();
            let a = sample_tokens(Tensor::from_data(half, device), &keys, &configs);
            let b = sample_tokens(tensor2(widened, rows, vocab, device), &keys, &configs);
            assert_eq!(indices(a.ids), indices(b.ids), "{name}: {dtype:?}");
            assert_eq!(values(a.logprobs), values(b.logprobs), "{name}: {dtype:?}");
        }
    }
}

/// The message of the panic of `f`.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let error = std::panic::catch_unwind(f).expect_err("a panic");
    match error.downcast::<String>() {
        Ok(s) => *s,
        Err(e) => e.downcast::<&str>().map(|s| s.to_string()).unwrap(),
    }
}

fn bad_rows_and_settings_are_refused_with_their_reason(device: &Device) {
    let x = |v: &[f32]| tensor2(v.to_vec(), 2, 3, device);
    let ok = [0.0, 1.0, 2.0, 0.5, 0.5, 0.5];
    let (mut nan, mut masked) = (ok, ok);
    nan[5] = f32::NAN;
    masked[..3].fill(f32::NEG_INFINITY);
    let keys = [Key::new(1), Key::new(2)];
    let config = [TokenSamplerConfig::new()];
    let cases = [
        (
            panic_message(|| drop(sample_tokens(x(&nan), &keys, &config))),
            "sample_tokens: row 1 has a NaN logit (token 2)",
        ),
        (
            panic_message(|| drop(sample_tokens(x(&masked), &keys, &config))),
            "sample_tokens: every logit of row 0 is -inf: no token can be drawn",
        ),
        (
            panic_message(|| drop(sample_tokens(x(&ok), &keys[..1], &config))),
            "sample_tokens: keys must hold one key per row of the logits (2), got 1 keys",
        ),
        (
            panic_message(|| drop(sample_tokens(x(&ok), &keys, &[config[0].with_top_p(0.0)]))),
            "sample_tokens: settings of row 0: top_p must be in (0, 1], got top_p = 0",
        ),
        (
            panic_message(|| drop(token_logprobs(x(&ok), &[config[0]; 3]))),
            "token_logprobs: configs must hold one setting per row of the logits (2) or one for \
             all, got 3 settings",
        ),
    ];
    for (got, expected) in cases {
        assert_eq!(got, expected);
    }
}

/// Golden rows from PyTorch: 60 rows of 64 logits (3 masked) under nine settings, and the tokens
/// that Hugging Face's warpers keep (`scripts/golden-token-filters.py` wrote
/// `tests/data/token-filters.json`, keeping only rows whose warpers agree in f32 and f64). The
/// tokens `token_logprobs` gives a finite log-probability are those, on every row.
fn the_filters_keep_what_pytorchs_warpers_keep(device: &Device) {
    let text = include_str!("../data/token-filters.json");
    let golden: serde_json::Value = serde_json::from_str(text).expect("the golden rows parse");
    let rows = golden["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 60);
    for (r, row) in rows.iter().enumerate() {
        let logits: Vec<f32> = row["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().map_or(f32::NEG_INFINITY, |x| x as f32))
            .collect();
        let config = TokenSamplerConfig::new()
            .with_temperature(row["temperature"].as_f64().unwrap() as f32)
            .with_top_k(row["top_k"].as_u64().unwrap() as usize)
            .with_top_p(row["top_p"].as_f64().unwrap() as f32)
            .with_min_p(row["min_p"].as_f64().unwrap() as f32);
        let expected: Vec<usize> = row["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let vocab = logits.len();
        let lp = values(token_logprobs(tensor2(logits, 1, vocab, device), &[config]));
        let kept: Vec<usize> = (0..vocab).filter(|&v| lp[v].is_finite()).collect();
        assert_eq!(kept, expected, "row {r}: {config:?}");
    }
}
