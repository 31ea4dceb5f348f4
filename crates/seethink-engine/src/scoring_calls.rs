//! What a scoring pass takes and gives before any logits: the sequences, the decoder calls that
//! score their responses (each distinct prompt's prefix once, then every sequence's
//! continuation), and the hidden states at the positions that score each response token. The
//! log-prob passes (`logprobs`) and the layer checkpoints (`layer_checkpoints`) both build on
//! them.

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use seethink_models::kernels::Kernels;
use seethink_models::nn::{token_logprobs, Rope};
use seethink_models::text::DecoderInput;
use seethink_models::{ImageInput, ModelError, Result, TokenBatch, Vlm};

/// One training sequence: prompt ids, response ids, and the prompt's images (if any).
#[derive(Clone, Debug)]
pub struct Sequence<B: Backend> {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    pub images: Option<ImageInput<B>>,
}

impl<B: Kernels> Sequence<B> {
    /// Whether `other` has the same prompt: the same ids, and the same images (grids and
    /// pixel values).
    fn same_prompt(&self, other: &Self) -> bool {
        self.prompt == other.prompt
            && match (&self.images, &other.images) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    a.grids == b.grids
                        && a.pixel_values.dims() == b.pixel_values.dims()
                        && a.pixel_values
                            .clone()
                            .equal(b.pixel_values.clone())
                            .all()
                            .into_data()
                            .iter::<bool>()
                            .all(|x| x)
                }
                _ => false,
            }
    }
}

/// The distinct prompts of `sequences`: the index of the first sequence holding each (in
/// order of first appearance), and for every sequence the index of its prompt among those.
fn distinct_prompts<B: Kernels>(sequences: &[Sequence<B>]) -> (Vec<usize>, Vec<usize>) {
    let mut firsts: Vec<usize> = Vec::new();
    let of = sequences
        .iter()
        .enumerate()
        .map(|(i, s)| match firsts.iter().position(|&f| sequences[f].same_prompt(s)) {
            Some(p) => p,
            None => {
                firsts.push(i);
                firsts.len() - 1
            }
        })
        .collect();
    (firsts, of)
}

/// How responses are scored: the tokenizer's pad id, the rows of logits computed at a time,
/// the temperature the logits are divided by (the sampling temperature in GRPO, as EasyR1
/// does; 1 for SFT), and whether the trained pass recomputes each decoder layer in backward
/// instead of keeping its activations ([`crate::layer_checkpoints`]; the same gradients).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scoring {
    pub pad_id: u32,
    pub chunk_tokens: usize,
    pub temperature: f32,
    pub checkpoint_layers: bool,
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
/// score, right-aligned like [`ResponseLogprobs`]: column t of row b holds the hidden state of
/// the token before the response token it scores.
pub struct ResponsePositions<B: Backend> {
    /// `[sequences, width, hidden]`, width = the longest response.
    pub hidden: Tensor<B, 3>,
    /// `[sequences, width]`, the scored tokens (the pad id where `mask` is 0).
    pub targets: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2>,
    temperature: f32,
}

/// The hidden states scoring each response token of `sequences` (see [`ResponsePositions`]).
///
/// With `p = p_1 … p_m` a prompt and `y = y_1 … y_k` a response, `y_t` is scored by the
/// hidden state of `(p ++ y)` at the token before it. When some prompt has several responses
/// (a GRPO group), the model computes these in two calls:
/// 1. the prefix `p_1 … p_{m−1}` of each distinct prompt (ids, images), left-padded into one
///    batch, fills a decoding state (keys and values of every layer), whose rows are then
///    repeated for the sequences sharing that prompt;
/// 2. the continuation `p_m, y_1 … y_{k−1}` of every sequence, left-padded to the longest
///    response (its positions shifted so the first real token follows the prompt directly),
///    gives the hidden states at exactly the scoring positions.
///
/// Otherwise one call over every `p ++ y_1 … y_{k−1}`, left-padded, whose last `k` positions
/// per row are the scoring ones. Both equal one forward pass over each `p ++ y` (the same
/// attention, positions and masks); gradients reach a shared prefix through the repeated keys
/// and values. The last prompt token must be text (every processor ends a prompt with the
/// chat template's assistant header), since a continuation carries no images.
pub fn response_positions<B: Kernels, M: Vlm<B>>(
    model: &M,
    sequences: &[Sequence<B>],
    scoring: Scoring,
) -> Result<ResponsePositions<B>> {
    Ok(response_positions_of(model, &ScoringCalls::new(model, sequences, scoring)?))
}

/// [`response_positions`] of the decoder calls `calls`.
pub(crate) fn response_positions_of<B: Kernels, M: Vlm<B>>(
    model: &M,
    calls: &ScoringCalls<B>,
) -> ResponsePositions<B> {
    let hidden = match &calls.continuation {
        None => calls.empty_hidden(model),
        Some(continuation) => {
            let decoder = model.decoder().0;
            let mut kv = model.new_state().kv;
            if let Some((prefix, rows)) = &calls.prefix {
                decoder.forward_input(prefix, Some(&mut kv));
                kv = kv.select_rows(rows);
            }
            calls.scoring_columns(decoder.forward_input(continuation, Some(&mut kv)))
        }
    };
    calls.positions(hidden)
}

/// The decoder calls of [`response_positions`], with the tokens they score.
pub(crate) struct ScoringCalls<B: Backend> {
    /// The distinct prompts' prefixes, and for every sequence the row of its prompt among them
    /// (the rows the prefix's keys and values are repeated to); `None` when no prompt is
    /// answered twice.
    pub prefix: Option<(DecoderInput<B>, Vec<usize>)>,
    /// The continuations of every sequence; `None` when every response is empty.
    pub continuation: Option<DecoderInput<B>>,
    /// The continuations' padded length: their last `width` positions score.
    seq: usize,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2>,
    temperature: f32,
}

impl<B: Kernels> ScoringCalls<B> {
    /// The same calls without autodiff graph.
    pub fn detached(self) -> Self {
        let detach = |input: DecoderInput<B>| DecoderInput {
            embeds: input.embeds.detach(),
            rope: Rope { cos: input.rope.cos.detach(), sin: input.rope.sin.detach() },
            blocked: input.blocked,
            deepstack: input.deepstack.into_iter().map(Tensor::detach).collect(),
        };
        Self {
            prefix: self.prefix.map(|(input, rows)| (detach(input), rows)),
            continuation: self.continuation.map(detach),
            ..self
        }
    }

    /// The calls scoring `sequences` (see [`response_positions`]); an error for an empty
    /// prompt or one ending with an image placeholder.
    pub fn new<M: Vlm<B>>(model: &M, sequences: &[Sequence<B>], scoring: Scoring) -> Result<Self> {
        Self::with_images(model, sequences, scoring, Self::images_of(sequences))
    }

    /// The images of `sequences`' distinct prompts as one batch input, as the calls give them
    /// to the model (`None` without images).
    pub fn images_of(sequences: &[Sequence<B>]) -> Option<ImageInput<B>> {
        let (firsts, _) = distinct_prompts(sequences);
        ImageInput::concat(firsts.iter().filter_map(|&i| sequences[i].images.as_ref()))
    }

    /// [`ScoringCalls::new`] with `images`, [`ScoringCalls::images_of`] `sequences` (their
    /// vision features attached or not).
    pub fn with_images<M: Vlm<B>>(
        model: &M,
        sequences: &[Sequence<B>],
        scoring: Scoring,
        images: Option<ImageInput<B>>,
    ) -> Result<Self> {
        let input_only = model.input_only_tokens();
        for (b, s) in sequences.iter().enumerate() {
            let Some(last) = s.prompt.last() else {
                return Err(ModelError::Input(format!("sequence {b} has an empty prompt")));
            };
            if input_only.contains(last) {
                return Err(ModelError::Input(format!(
                    "sequence {b}'s prompt ends with the image placeholder {last}: a prompt must end with text"
                )));
            }
        }
        let (firsts, of) = distinct_prompts(sequences);
        // with no prompt answered twice, each sequence is one pass (the whole prompt continues)
        let shared = firsts.len() < sequences.len();
        let cut = |s: &Sequence<B>| if shared { s.prompt.len() - 1 } else { 0 };
        let mut state = model.new_state();
        let mut prefix = None;
        if shared {
            let heads: Vec<Vec<u32>> =
                firsts.iter().map(|&i| sequences[i].prompt[..cut(&sequences[i])].to_vec()).collect();
            if heads.iter().any(|h| !h.is_empty()) {
                let input = model.decoder_input(
                    &TokenBatch::left_padded(&heads, scoring.pad_id),
                    images.as_ref(),
                    &mut state,
                )?;
                state = state.select_rows(&of);
                prefix = Some((input, of));
            }
        }
        let batch = sequences.len();
        let width = sequences.iter().map(|s| s.response.len()).max().unwrap_or(0);
        // the rest of each prompt and the response but its last token (never an input)
        let continuations: Vec<Vec<u32>> = sequences
            .iter()
            .map(|s| {
                let mut row: Vec<u32> = s.prompt[cut(s)..].iter().chain(&s.response).copied().collect();
                row.pop();
                row
            })
            .collect();
        let tokens = TokenBatch::left_padded(&continuations, scoring.pad_id);
        let continuation = match width {
            0 => None,
            _ => {
                state.left_pad_next(
                    &continuations.iter().map(|row| tokens.seq - row.len()).collect::<Vec<_>>(),
                );
                let images = if shared { None } else { images.as_ref() };
                Some(model.decoder_input(&tokens, images, &mut state)?)
            }
        };
        let pads: Vec<usize> = sequences.iter().map(|s| width - s.response.len()).collect();
        let targets: Vec<i64> = sequences
            .iter()
            .zip(&pads)
            .flat_map(|(s, &pad)| {
                std::iter::repeat_n(scoring.pad_id, pad).chain(s.response.iter().copied()).map(i64::from)
            })
            .collect();
        let mask: Vec<f32> =
            pads.iter().flat_map(|&pad| (0..width).map(move |t| if t >= pad { 1.0 } else { 0.0 })).collect();
        let device = model.devices().into_iter().next().unwrap_or_default();
        Ok(Self {
            prefix,
            continuation,
            seq: tokens.seq,
            targets: Tensor::from_data(TensorData::new(targets, [batch, width]), &device),
            mask: Tensor::from_data(TensorData::new(mask, [batch, width]), &device),
            temperature: scoring.temperature,
        })
    }

    /// The longest response.
    fn width(&self) -> usize {
        self.mask.dims()[1]
    }

    /// The continuation's final hidden states `[sequences, seq, hidden]` at the positions that
    /// score: its last `width`.
    pub fn scoring_columns(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let width = self.width();
        hidden.narrow(1, self.seq - width, width)
    }

    /// The scoring hidden states when every response is empty: `[sequences, 0, hidden]`.
    pub fn empty_hidden<M: Vlm<B>>(&self, model: &M) -> Tensor<B, 3> {
        let (decoder, config) = model.decoder();
        Tensor::<B, 3>::zeros([self.mask.dims()[0], 0, config.hidden_size], &self.mask.device())
            .cast(decoder.dtype())
    }

    /// The positions scored by `hidden` (the scoring hidden states).
    pub fn positions(&self, hidden: Tensor<B, 3>) -> ResponsePositions<B> {
        ResponsePositions {
            hidden,
            targets: self.targets.clone(),
            mask: self.mask.clone(),
            temperature: self.temperature,
        }
    }
}

impl<B: Kernels> ResponsePositions<B> {
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
    pub(crate) fn score<M: Vlm<B>>(
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
