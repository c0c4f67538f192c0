//! The token sampler: the next token of each row of a language model's logits, drawn with the
//! Gumbel-max trick under one [`Key`] per row, with temperature, top-k, top-p and min-p per row.
//!
//! | file | concern |
//! |---|---|
//! | `config.rs` | [`TokenSamplerConfig`]: one row's settings, their rules, the filters they make |
//! | `row.rs` | the row kernel: thresholds, the keyed draw, the log-probability |

use burn::tensor::{DType, Int, Tensor, TensorData, bf16, f16};

use crate::key::Key;

mod config;
mod row;

pub use config::TokenSamplerConfig;

use config::Filters;
use row::{Draw, RowError, Scratch, logprobs_row, sample_row};

/// The tokens [`sample_tokens`] drew: one id per row and its log-probability.
#[derive(Clone, Debug)]
pub struct Tokens {
    /// The token ids, `[batch]`.
    pub ids: Tensor<1, Int>,
    /// The log-probability of each token under the distribution it was drawn from (the filtered,
    /// renormalized `softmax(logits / T)`; 0 for greedy rows), `[batch]`, f32.
    pub logprobs: Tensor<1>,
}

/// Draws the next token of each row of `logits`, row `r` under `keys[r]` with `configs[r]`.
///
/// With `z = logits_r / T` and `S` the tokens the filters keep ([`TokenSamplerConfig`]: top-k,
/// then top-p, then min-p; a token below `e^-87` of the most probable one counts as probability
/// 0), the token is drawn from
///
/// `p_v = exp z_v / Σ_{u ∈ S} exp z_u` on `S`,
///
/// by a two-level Gumbel-max trick (Gumbel 1954; Maddison, Tarlow, Minka 2014): the tokens are cut
/// into blocks of 256 consecutive ids, a block `B = argmax_b (ln Σ_{v ∈ S ∩ b} exp z_v + G_b)`,
/// then `token_r = argmax_{v ∈ S ∩ B} (z_v + g_v)`, with `G_b` and `g_v` Gumbel(0, 1) noise; so the
/// noise is computed for one block, not for every token. `logprob_r = ln p_token`. A temperature
/// of 0 takes the first index of the largest logit (logprob 0). A `-inf` logit masks its token:
/// it is never drawn.
///
/// **Batch invariance.** The noise of row `r`'s block `b` and token `v` is a function of
/// `(keys[r], b)` and `(keys[r], v)` alone (counter-based uniforms under the row's key), and each
/// row is computed by one task in a fixed order: a row's token and log-probability do not depend
/// on its place in the batch, the batch size, its batchmates' settings, the thread count or the
/// backend (the same bits on flex and ndarray; on wgpu the same token, its log-probability within
/// a few ulps, as below). A server derives a request's key from its
/// seed and the position of the token it draws, e.g. `Key::new(request_seed).fold_in(position)`,
/// so that a request replays alone or in any batch, and keys requests without a seed from its own
/// generator.
///
/// **Where it runs.** On wgpu (a plain device, rows of 1,024 to 262,144 tokens) a CubeCL kernel
/// draws the greedy, temperature and min-p rows on the GPU, a cube per row, with the host's
/// arithmetic in its order, and reads back the ids and log-probabilities; a GPU that contracts a
/// multiply and an add moves a perturbed value by a few ulps, so a race closer than 1e-3 goes to
/// the host, as do the rows with top-k or top-p and rows to refuse, read back alone. Elsewhere the rows are sampled on the host, spread over
/// rayon's threads (with the `flex` feature): on flex the logits' memory is read in place, on
/// ndarray it is copied out, on an autodiff wgpu device read back. f16 and bf16 logits are
/// widened to f32 (f64 ones narrowed), row by row.
///
/// References: Holtzman et al., *The Curious Case of Neural Text Degeneration*, ICLR 2020 (top-p);
/// Nguyen et al., *Turning Up the Heat: Min-p Sampling*, 2024 (min-p).
///
/// # Shapes
/// - logits: `[batch, vocab]`
/// - keys: `batch` keys
/// - configs: `batch` settings, or one for every row
/// - output: [`Tokens`], `ids` and `logprobs` of shape `[batch]`
///
/// # Panics
/// - If `keys` does not hold one key per row, or `configs` one setting per row or one in all.
/// - If a setting breaks a rule of [`TokenSamplerConfig::validate`].
/// - If a row has a NaN logit, every logit `-inf`, or an infinite `logits / T`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, TokenSamplerConfig, sample_tokens};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[2.0, 1.0, 0.5, f32::NEG_INFINITY], [0.0, 3.0, 3.0, 1.0]], &device);
/// let keys = [Key::new(7).fold_in(0), Key::new(8).fold_in(0)]; // (request seed, position)
/// let configs = [
///     TokenSamplerConfig::new().with_temperature(0.7).with_top_p(0.9),
///     TokenSamplerConfig::greedy(),
/// ];
/// let tokens = sample_tokens(logits.clone(), &keys, &configs);
/// let ids = tokens.ids.into_data().try_into_vec_as::<i64>().unwrap();
/// assert_ne!(ids[0], 3); // masked
/// assert_eq!(ids[1], 1); // greedy: the first of the largest logits
///
/// // Row 0 alone draws the same token.
/// let alone = sample_tokens(logits.slice([0..1]), &keys[..1], &configs[..1]);
/// assert_eq!(alone.ids.into_data().try_into_vec_as::<i64>().unwrap()[0], ids[0]);
/// ```
pub fn sample_tokens(logits: Tensor<2>, keys: &[Key], configs: &[TokenSamplerConfig]) -> Tokens {
    const OP: &str = "sample_tokens";
    let device = logits.device();
    let [batch, vocab] = logits.dims();
    if keys.len() != batch {
        panic!(
            "{OP}: keys must hold one key per row of the logits ({batch}), got {} keys",
            keys.len()
        );
    }
    let filters = checked_filters(OP, batch, vocab, configs);
    #[cfg(feature = "wgpu")]
    let draws = on_cube(&logits, keys, &filters, configs);
    #[cfg(not(feature = "wgpu"))]
    let draws = None;
    let draws = draws.unwrap_or_else(|| {
        let rows: Vec<usize> = (0..batch).collect();
        on_host(logits, &rows, keys, &filters, configs)
    });
    let ids: Vec<i64> = draws.iter().map(|d| d.token as i64).collect();
    let logprobs: Vec<f32> = draws.iter().map(|d| d.logprob).collect();
    Tokens {
        ids: Tensor::from_data(TensorData::new(ids, [batch]), &device),
        logprobs: Tensor::from_data(TensorData::new(logprobs, [batch]), &device),
    }
}

/// The draws of rows `rows` of `logits` (all of its rows, or the ones it holds, in order) by the
/// host's row kernel: [`sample_tokens`]'s rows, on flex in place, elsewhere read back.
fn on_host(
    logits: Tensor<2>,
    rows: &[usize],
    keys: &[Key],
    filters: &[Filters],
    configs: &[TokenSamplerConfig],
) -> Vec<Draw> {
    const OP: &str = "sample_tokens";
    let vocab = logits.dims()[1];
    let host = Host::of(logits);
    let data = host.rows();
    each_row(rows.len(), |i, worker| {
        let r = rows[i];
        let x = data.row(i, vocab, &mut worker.widened);
        sample_row(x, keys[r], filters[r % filters.len()], &mut worker.scratch)
            .unwrap_or_else(|error| row_error(OP, r, error, configs))
    })
}

/// The draws of every row of `logits` on a wgpu device, by the GPU's row kernel
/// (`cube/tokens.rs`: greedy, temperature and min-p rows, the host's bits) and, for the rows it
/// leaves (top-k, top-p, and rows to refuse), by the host's, on those rows read back alone; `None`
/// where the kernel does not take the tensor (another backend, autodiff, over 262,144 tokens).
#[cfg(feature = "wgpu")]
fn on_cube(
    logits: &Tensor<2>,
    keys: &[Key],
    filters: &[Filters],
    configs: &[TokenSamplerConfig],
) -> Option<Vec<Draw>> {
    use crate::cube::tokens::{Mode, RowParams, sample_rows};
    if !crate::cube::applies(logits) {
        return None;
    }
    let batch = logits.dims()[0];
    let params: Vec<RowParams> = (0..batch)
        .map(|r| {
            let key_words = crate::counter::key_words(keys[r].bits());
            let (mode, inv_t, threshold) = match filters[r % filters.len()] {
                Filters::Greedy => (Mode::Greedy, 1.0, f32::NEG_INFINITY),
                Filters::Sample {
                    inv_temperature,
                    top_k: None,
                    top_p: None,
                    ln_min_p,
                } => (Mode::Sample, inv_temperature, ln_min_p),
                Filters::Sample { .. } => (Mode::Host, 1.0, f32::NEG_INFINITY),
            };
            RowParams {
                mode,
                inv_t,
                threshold,
                key_words,
            }
        })
        .collect();
    let results = sample_rows(logits, &params)?;
    let left: Vec<usize> = (0..batch).filter(|&r| results[r].is_none()).collect();
    let mut draws: Vec<Draw> = results
        .iter()
        .map(|result| {
            let (token, logprob) = result.unwrap_or((0, 0.0));
            Draw { token, logprob }
        })
        .collect();
    if !left.is_empty() {
        let device = logits.device();
        let index: Vec<i64> = left.iter().map(|&r| r as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [left.len()]), &device);
        let rows = logits.clone().select(0, index);
        for (&r, draw) in left
            .iter()
            .zip(on_host(rows, &left, keys, filters, configs))
        {
            draws[r] = draw;
        }
    }
    Some(draws)
}

/// The distribution [`sample_tokens`] draws each row's token from, as log-probabilities: with
/// `z = logits_r / T` and `S` the tokens the filters of `configs[r]` keep,
/// `ln p_v = z_v − ln Σ_{u ∈ S} exp z_u` on `S` and `-inf` outside it (greedy rows: 0 at the
/// first largest logit). What speculative decoding compares a draft's tokens against, and what
/// a caller inspects to see the filters at work; the same bits on every backend.
///
/// # Shapes
/// - logits: `[batch, vocab]`
/// - configs: `batch` settings, or one for every row
/// - output: `[batch, vocab]`, f32
///
/// # Panics
/// As [`sample_tokens`] (without keys).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{TokenSamplerConfig, token_logprobs};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let weights = [4.0f32, 3.0, 2.0, 1.0]; // probabilities 0.4, 0.3, 0.2, 0.1
/// let logits = Tensor::<1>::from_floats(weights.map(f32::ln), &device).reshape([1, 4]);
/// let top_p = TokenSamplerConfig::new().with_top_p(0.65); // 0.4 + 0.3 reaches 0.65
/// let p = token_logprobs(logits, &[top_p]).exp().into_data().try_into_vec_as::<f32>().unwrap();
/// assert!((p[0] - 4.0 / 7.0).abs() < 1e-6 && (p[1] - 3.0 / 7.0).abs() < 1e-6);
/// assert_eq!(&p[2..], [0.0, 0.0]);
/// ```
pub fn token_logprobs(logits: Tensor<2>, configs: &[TokenSamplerConfig]) -> Tensor<2> {
    const OP: &str = "token_logprobs";
    let device = logits.device();
    let [batch, vocab] = logits.dims();
    let filters = checked_filters(OP, batch, vocab, configs);
    let host = Host::of(logits);
    let rows = host.rows();
    let out = each_row(batch, |r, worker| {
        let x = rows.row(r, vocab, &mut worker.widened);
        let mut out = vec![0.0f32; vocab];
        logprobs_row(x, filters[r % filters.len()], &mut worker.scratch, &mut out)
            .unwrap_or_else(|error| row_error(OP, r, error, configs));
        out
    });
    Tensor::from_data(TensorData::new(out.concat(), [batch, vocab]), &device)
}

/// The row kernel's filters of `configs`, after the checks of the settings and the shapes: one
/// per row, or one for all rows.
#[track_caller]
fn checked_filters(
    op: &str,
    batch: usize,
    vocab: usize,
    configs: &[TokenSamplerConfig],
) -> Vec<Filters> {
    if configs.len() != batch && configs.len() != 1 {
        panic!(
            "{op}: configs must hold one setting per row of the logits ({batch}) or one for all, \
             got {} settings",
            configs.len()
        );
    }
    if vocab == 0 {
        panic!("{op}: the logits have no tokens (shape [{batch}, 0])");
    }
    for (r, config) in configs.iter().enumerate() {
        if let Err(error) = config.validate() {
            panic!("{op}: settings of row {r}: {error}");
        }
    }
    configs.iter().map(|c| c.filters(vocab)).collect()
}

/// The logits on the host: a flex tensor's own memory (read in place), or any other tensor's
/// data, read back: f32, f16 and bf16 as they are (half precision is widened row by row), any
/// other float dtype converted to f32.
enum Host {
    #[cfg(feature = "flex")]
    Flex(burn::backend::flex::FlexTensor),
    Data(TensorData),
}

impl Host {
    fn of(logits: Tensor<2>) -> Self {
        if !matches!(logits.dtype(), DType::F32 | DType::F16 | DType::BF16) {
            return Host::Data(logits.into_data().convert::<f32>());
        }
        #[cfg(feature = "flex")]
        if let Some(tensor) = crate::fused::flex_contiguous(&logits) {
            return Host::Flex(tensor);
        }
        Host::Data(logits.into_data())
    }

    /// Its rows, in their dtype.
    fn rows(&self) -> Rows<'_> {
        let rows = match self {
            #[cfg(feature = "flex")]
            Host::Flex(tensor) => match tensor.dtype() {
                DType::F16 => tensor.as_slice::<f16>().map(Rows::F16),
                DType::BF16 => tensor.as_slice::<bf16>().map(Rows::Bf16),
                _ => tensor.as_slice::<f32>().map(Rows::F32),
            },
            Host::Data(data) => match data.dtype() {
                DType::F16 => data.as_slice::<f16>().ok().map(Rows::F16),
                DType::BF16 => data.as_slice::<bf16>().ok().map(Rows::Bf16),
                _ => data.as_slice::<f32>().ok().map(Rows::F32),
            },
        };
        rows.expect("the logits' memory is readable in their dtype")
    }
}

/// Panics with the message of row `r`'s error.
fn row_error(op: &str, r: usize, error: RowError, configs: &[TokenSamplerConfig]) -> ! {
    match error {
        RowError::NaN(v) => panic!("{op}: row {r} has a NaN logit (token {v})"),
        RowError::Masked => panic!("{op}: every logit of row {r} is -inf: no token can be drawn"),
        RowError::Overflow(x) => panic!(
            "{op}: row {r}: logits / temperature overflows f32 (logit {x:e}, temperature {:e})",
            configs[r % configs.len()].temperature
        ),
    }
}

/// What one thread keeps across the rows it samples.
#[derive(Default)]
struct Worker {
    /// The row kernel's scratch space.
    scratch: Scratch,
    /// A half-precision row widened to f32.
    widened: Vec<f32>,
}

/// The logits on the host, in their dtype.
enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
}

impl Rows<'_> {
    /// Row `r` of `vocab` values in f32: a slice of the data, or widened into `buffer`.
    fn row<'b>(&'b self, r: usize, vocab: usize, buffer: &'b mut Vec<f32>) -> &'b [f32] {
        let range = r * vocab..(r + 1) * vocab;
        match self {
            Rows::F32(x) => &x[range],
            Rows::F16(x) => {
                buffer.clear();
                buffer.extend(x[range].iter().map(|v| v.to_f32()));
                buffer
            }
            Rows::Bf16(x) => {
                buffer.clear();
                buffer.extend(x[range].iter().map(|v| v.to_f32()));
                buffer
            }
        }
    }
}

/// `each(r)` for every row, each row one task: over rayon's threads with the `flex` feature.
#[cfg(feature = "flex")]
fn each_row<T: Send>(batch: usize, each: impl Fn(usize, &mut Worker) -> T + Sync) -> Vec<T> {
    use rayon::prelude::*;
    (0..batch)
        .into_par_iter()
        .map_init(Worker::default, |worker, r| each(r, worker))
        .collect()
}

/// `each(r)` for every row, one after the other (without the `flex` feature and its rayon).
#[cfg(not(feature = "flex"))]
fn each_row<T>(batch: usize, each: impl Fn(usize, &mut Worker) -> T) -> Vec<T> {
    let mut worker = Worker::default();
    (0..batch).map(|r| each(r, &mut worker)).collect()
}
