//! Log-probabilities of given responses under a model: the inputs of every policy loss.
//!
//! Memory at real sizes: with Qwen's 151,936-token vocabulary, one `[sequences, tokens, vocab]`
//! f32 tensor of 8 × 1,024 response tokens is 5 GB. So the model returns hidden states, logits
//! are computed only at the positions that score a response token, and only `chunk_tokens`
//! rows (sequences × positions) at a time: a frozen pass (old or reference log-probs) peaks at
//! O(sequences × tokens × hidden + chunk × vocab). The trained pass does the same with
//! [`chunked_gradients`], which back-propagates chunk by chunk and then through the decoder
//! once, instead of keeping every chunk's graph alive until one backward pass.
//!
//! Work: the n responses of a GRPO group answer one prompt. Each distinct prompt of a batch is
//! run through the model once, and its keys and values are shared by every response to it
//! ([`response_positions`]): with 8 prompts of 300 tokens × 5 responses of 32, the decoder and
//! the vision tower see 2,400 + 1,280 tokens instead of 13,600, forward and backward.

use std::ops::Range;

use crate::data_parallel::Worker;
use crate::error::Result as EngineResult;
use crate::gradient_sink::GradientSink;
use crate::layer_checkpoints::LayerCheckpoints;
use crate::layer_prefetch::idle_layers;
pub use crate::scoring_calls::{response_positions, ResponseLogprobs, ResponsePositions, Scoring, Sequence};
use crate::scoring_calls::{response_positions_of, ScoringCalls};
use crate::train_backend::TrainBackend;
use crate::vision_checkpoints::VisionCheckpoints;
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use seethink_models::kernels::Kernels;
use seethink_models::{Result, Vlm};

/// `log π(y_t | x, y_<t)` for each response token ([`ResponsePositions`]), logits computed
/// `scoring.chunk_tokens` rows at a time; padding positions are 0.
pub fn response_logprobs<B: Kernels, M: Vlm<B>>(
    model: &M,
    sequences: &[Sequence<B>],
    scoring: Scoring,
) -> Result<ResponseLogprobs<B>> {
    let positions = response_positions(model, sequences, scoring)?;
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
    /// Every response token's log-prob, for losses that need whole responses before any chunk
    /// ([`add_chunked_gradients`] with `see_whole`); `None` otherwise.
    pub whole: Option<WholeResponses<B>>,
}

/// The log-probs of whole responses, without gradient.
#[derive(Clone)]
pub struct WholeResponses<B: Backend> {
    /// `[sequences, width]`, 0 on padding.
    pub logp: Tensor<B, 2>,
    /// `[sequences, width]`, 1 on response tokens.
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
pub fn chunked_gradients<B: TrainBackend, M>(
    model: &M,
    sequences: &[Sequence<B>],
    scoring: Scoring,
    loss: impl FnMut(ChunkLogprobs<B>) -> Result<Tensor<B, 1>>,
) -> EngineResult<GradientsParams>
where
    M: Vlm<B> + AutodiffModule<B>,
    M::InnerModule: Vlm<B::InnerBackend>,
{
    let alone = Worker::alone();
    let mut sink = GradientSink::new(model, &alone, scoring.checkpoint_layers);
    add_chunked_gradients(model, sequences, scoring, false, &mut sink, loss)?;
    sink.finish(model)
}

/// [`chunked_gradients`] of one micro-batch, handed to `sink` as they are produced (which ends
/// the micro-batch). With `see_whole`, for a loss that needs every response's log-probs
/// before its first chunk (GSPO's sequence-level ratio), each chunk also carries
/// [`ChunkLogprobs::whole`], scored once from the same hidden states without gradient (one
/// more pass of the output projection, chunk by chunk; the decoder runs once as before).
pub fn add_chunked_gradients<B: TrainBackend, M>(
    model: &M,
    sequences: &[Sequence<B>],
    scoring: Scoring,
    see_whole: bool,
    sink: &mut GradientSink<M>,
    mut loss: impl FnMut(ChunkLogprobs<B>) -> Result<Tensor<B, 1>>,
) -> EngineResult<()>
where
    M: Vlm<B> + AutodiffModule<B>,
    M::InnerModule: Vlm<B::InnerBackend>,
{
    let mut images = ScoringCalls::images_of(sequences);
    // with checkpoints, the vision tower runs without graph and its features enter as leaves
    let mut vision = None;
    if let Some(pixels) = images.take_if(|_| scoring.checkpoint_layers) {
        let (with_features, checkpoints) = VisionCheckpoints::forward(model, pixels)?;
        (images, vision) = (Some(with_features), checkpoints);
    }
    let calls = ScoringCalls::with_images(model, sequences, scoring, images.clone())?;
    let (positions, checkpoints) = match scoring.checkpoint_layers {
        true => LayerCheckpoints::forward(model, &calls, sink.worker())?,
        false => (response_positions_of(model, &calls), None),
    };
    // with layer checkpoints, the decoder input's graph (embeddings, vision tower) is rebuilt
    // for the last backward pass instead of kept alive through the layers' passes
    let calls = match checkpoints.is_some() {
        true => calls.detached(),
        false => calls,
    };
    let ranges = positions.chunks(scoring.chunk_tokens);
    let whole = see_whole.then(|| {
        let hidden = positions.hidden.clone().detach();
        let logp: Vec<Tensor<B, 2>> = ranges
            .iter()
            .map(|range| {
                let part = hidden.clone().narrow(1, range.start, range.len());
                positions.score(model, part, range.clone()).0.detach()
            })
            .collect();
        let mask = positions.mask.clone();
        let logp = match logp.is_empty() {
            true => mask.zeros_like(),
            false => Tensor::cat(logp, 1) * mask.clone(),
        };
        WholeResponses { logp, mask }
    });
    let detached = positions.hidden.clone().detach().require_grad();
    let mut hidden_grad = positions.hidden.clone().inner().zeros_like();
    for range in ranges {
        let hidden = detached.clone().narrow(1, range.start, range.len());
        let (logp, entropy) = positions.score(model, hidden, range.clone());
        let mask = positions.mask.clone().narrow(1, range.start, range.len());
        let grads = loss(ChunkLogprobs { range, logp, entropy, mask, whole: whole.clone() })?.backward();
        if let Some(g) = detached.grad(&grads) {
            hidden_grad = hidden_grad + g;
        }
        sink.add(model, GradientsParams::from_grads(grads, model));
    }
    sink.output_projection_done(model)?;
    let through_decoder = (positions.hidden * Tensor::from_inner(hidden_grad)).sum().backward();
    match checkpoints {
        Some(checkpoints) => {
            let below = || ScoringCalls::with_images(model, sequences, scoring, images);
            checkpoints.backward(model, &calls, &through_decoder, sink, below, vision)?
        }
        // no decoder call: the layers' hand-overs the other workers make
        None => idle_layers(model, sink)?,
    }
    sink.add(model, GradientsParams::from_grads(through_decoder, model));
    sink.end_micro_batch(model)
}
