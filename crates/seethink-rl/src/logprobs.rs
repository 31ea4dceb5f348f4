//! Log-probabilities of given responses under a model: the inputs of every policy loss.
//!
//! Memory at real sizes: with Qwen's 151,936-token vocabulary, one `[sequences, tokens, vocab]`
//! f32 tensor of 8 × 1,024 response tokens is 5 GB. So the model returns hidden states, logits
//! are computed only at the positions that score a response token, and only `chunk_tokens`
//! rows (sequences × positions) at a time: a frozen pass (old or reference log-probs) peaks at
//! O(sequences × tokens × hidden + chunk × vocab). The trained pass does the same with
//! [`chunked_gradients`], which back-propagates chunk by chunk and then through the decoder
//! once, instead of keeping every chunk's graph alive until one backward pass.

use std::ops::Range;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use seethink_models::nn::token_logprobs;
use seethink_models::vlm::select_positions;
use seethink_models::{ImageInput, Result, TokenBatch, Vlm};

/// How responses are scored: the tokenizer's pad id, the rows of logits computed at a time,
/// and the temperature the logits are divided by (the sampling temperature in GRPO, as EasyR1
/// does; 1 for SFT).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scoring {
    pub pad_id: u32,
    pub chunk_tokens: usize,
    pub temperature: f32,
}

/// Per-token log-probs of responses, right-aligned in `[sequences, longest response]`:
/// row b's response occupies its last `len_b` columns, where `mask` is 1.
pub struct ResponseLogprobs<B: Backend> {
    pub logp: Tensor<B, 2>,
    /// Entropy of the model's next-token distribution at each response token,
    /// `H = −Σ_v p_v log p_v` (0 on padding; never part of a gradient).
    pub entropy: Tensor<B, 2>,
    pub mask: Tensor<B, 2>,
}

/// The final hidden states at the positions that score response tokens, with the tokens they
/// score: the sequences `prompt ++ response` left-padded into one batch, the token at position
/// p scored by the hidden state at p − 1.
pub struct ResponsePositions<B: Backend> {
    /// `[sequences, width, hidden]`, width = the longest response.
    pub hidden: Tensor<B, 3>,
    /// `[sequences, width]`, the scored tokens (prompt tail where `mask` is 0).
    pub targets: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2>,
    temperature: f32,
}

/// The hidden states scoring each response token of `responses` after `prompts` (see
/// [`ResponsePositions`]).
pub fn response_positions<B: Backend, M: Vlm<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    images: Option<&ImageInput<B>>,
    scoring: Scoring,
) -> Result<ResponsePositions<B>> {
    let rows: Vec<Vec<u32>> =
        prompts.iter().zip(responses).map(|(p, r)| [p.as_slice(), r].concat()).collect();
    let tokens = TokenBatch::left_padded(&rows, scoring.pad_id);
    let width = responses.iter().map(Vec::len).max().unwrap_or(0);
    let hidden = model.hidden_states(&tokens, images, &mut model.new_state())?;
    let scoring_positions: Vec<usize> = (tokens.seq - width - 1..tokens.seq - 1).collect();
    let hidden = select_positions(hidden, &scoring_positions)?;
    let device = hidden.device();
    let batch = rows.len();
    // from the padded batch: a row shorter than the longest response has padding there (masked)
    let targets: Vec<i64> = tokens
        .ids
        .chunks(tokens.seq)
        .flat_map(|row| row[tokens.seq - width..].iter().map(|&t| t as i64))
        .collect();
    let mask: Vec<f32> = responses
        .iter()
        .flat_map(|r| (0..width).map(move |t| if t >= width - r.len() { 1.0 } else { 0.0 }))
        .collect();
    Ok(ResponsePositions {
        hidden,
        targets: Tensor::from_data(TensorData::new(targets, [batch, width]), &device),
        mask: Tensor::from_data(TensorData::new(mask, [batch, width]), &device),
        temperature: scoring.temperature,
    })
}

impl<B: Backend> ResponsePositions<B> {
    /// The longest response.
    pub fn width(&self) -> usize {
        self.mask.dims()[1]
    }

    /// Ranges of positions holding about `chunk_tokens` rows each (at least one position).
    pub fn chunks(&self, chunk_tokens: usize) -> Vec<Range<usize>> {
        let [batch, width] = self.mask.dims();
        let step = (chunk_tokens / batch.max(1)).max(1);
        (0..width).step_by(step).map(|start| start..(start + step).min(width)).collect()
    }

    /// `log π(target)` and entropy at positions `range`, from `hidden` (these positions'
    /// hidden states, `[sequences, range.len(), hidden]`): `log_softmax(logits / T)[target]`
    /// over the whole vocabulary, as EasyR1's actor computes it (and as `generate` reports it),
    /// and `H = −Σ_v p_v log p_v` computed without gradient.
    fn score<M: Vlm<B>>(
        &self,
        model: &M,
        hidden: Tensor<B, 3>,
        range: Range<usize>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let logits = model.logits(hidden);
        let logits = if self.temperature == 1.0 { logits } else { logits / self.temperature };
        let [batch, width, vocab] = logits.dims();
        let targets = self.targets.clone().narrow(1, range.start, width).reshape([batch * width]);
        let (logp, entropy) = token_logprobs(logits.reshape([batch * width, vocab]), targets);
        (logp.reshape([batch, width]), entropy.reshape([batch, width]))
    }
}

/// `log π(y_t | x, y_<t)` for each response token ([`ResponsePositions`]), logits computed
/// `scoring.chunk_tokens` rows at a time; padding positions are 0.
pub fn response_logprobs<B: Backend, M: Vlm<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    images: Option<&ImageInput<B>>,
    scoring: Scoring,
) -> Result<ResponseLogprobs<B>> {
    let positions = response_positions(model, prompts, responses, images, scoring)?;
    let (logp, entropy): (Vec<_>, Vec<_>) = positions
        .chunks(scoring.chunk_tokens)
        .into_iter()
        .map(|range| {
            let hidden = positions.hidden.clone().narrow(1, range.start, range.len());
            positions.score(model, hidden, range)
        })
        .unzip();
    let mask = positions.mask;
    let cat = |parts: Vec<Tensor<B, 2>>| match parts.is_empty() {
        true => mask.zeros_like(),
        false => Tensor::cat(parts, 1),
    };
    Ok(ResponseLogprobs { logp: cat(logp) * mask.clone(), entropy: cat(entropy) * mask.clone(), mask })
}

/// The log-probs of one chunk of positions, handed to the loss of [`chunked_gradients`].
pub struct ChunkLogprobs<B: Backend> {
    /// The chunk's positions among the response positions.
    pub range: Range<usize>,
    /// `[sequences, range.len()]`, with gradient.
    pub logp: Tensor<B, 2>,
    /// `[sequences, range.len()]`, without gradient.
    pub entropy: Tensor<B, 2>,
    /// `[sequences, range.len()]`
    pub mask: Tensor<B, 2>,
}

/// Gradients of `Σ_chunks loss(chunk)` with respect to `model`'s parameters, where `loss` sees
/// each chunk's log-probs (`scoring.chunk_tokens` rows at a time, see [`response_logprobs`]) and the
/// total must be a sum of per-chunk terms (as token- and sequence-mean losses with a fixed
/// normaliser are).
///
/// With `h` the hidden states at the response positions: each chunk's loss is back-propagated
/// on its own from a detached copy `ĥ` of `h` (giving the output projection's gradient and
/// `∂loss/∂ĥ` for that chunk), so at most one chunk's logits live at a time; then
/// `Σ h · stopgrad(Σ_chunks ∂loss/∂ĥ)` is back-propagated once through the decoder, which by the
/// chain rule adds exactly the remaining gradients.
pub fn chunked_gradients<B: AutodiffBackend, M: Vlm<B> + AutodiffModule<B>>(
    model: &M,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    images: Option<&ImageInput<B>>,
    scoring: Scoring,
    mut loss: impl FnMut(ChunkLogprobs<B>) -> Result<Tensor<B, 1>>,
) -> Result<GradientsParams> {
    let positions = response_positions(model, prompts, responses, images, scoring)?;
    let detached = positions.hidden.clone().detach().require_grad();
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut hidden_grad = positions.hidden.clone().inner().zeros_like();
    for range in positions.chunks(scoring.chunk_tokens) {
        let hidden = detached.clone().narrow(1, range.start, range.len());
        let (logp, entropy) = positions.score(model, hidden, range.clone());
        let mask = positions.mask.clone().narrow(1, range.start, range.len());
        let grads = loss(ChunkLogprobs { range, logp, entropy, mask })?.backward();
        if let Some(g) = detached.grad(&grads) {
            hidden_grad = hidden_grad + g;
        }
        accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    let through_decoder = (positions.hidden * Tensor::from_inner(hidden_grad)).sum();
    accumulator.accumulate(model, GradientsParams::from_grads(through_decoder.backward(), model));
    Ok(accumulator.grads())
}
