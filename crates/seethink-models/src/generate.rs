//! Batched sampling with a KV cache: left-padded prompts are prefilled once, each prompt's
//! cache is shared by the `n` samples of its group, then one token per row per step.

use burn::tensor::{backend::Backend, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::positions::TokenBatch;
use crate::vlm::{ImageInput, Vlm};

pub use crate::sampling::SamplingConfig;

/// One prompt: token ids (image placeholders already expanded) and its images, if any.
#[derive(Clone, Debug)]
pub struct Prompt<B: Backend> {
    pub ids: Vec<u32>,
    pub images: Option<ImageInput<B>>,
}

/// One sampled response.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// Index of the prompt this sample answers.
    pub prompt: usize,
    /// New tokens only, the stop token included when one was produced.
    pub ids: Vec<u32>,
    /// `log p(token)` of each new token under the model's distribution at the sampling
    /// temperature (logits / T, T = 1 when greedy) over the whole vocabulary, without top-k/top-p
    /// truncation, as EasyR1's actor scores rollouts (the input-only placeholders, never sampled,
    /// keep their share of the normaliser).
    pub logprobs: Vec<f32>,
    /// Whether generation ended on a stop token (rather than `max_new_tokens`).
    pub stopped: bool,
}

/// Samples `n` completions for every prompt. Completions are returned grouped by prompt
/// (`n` consecutive entries per prompt). Row r (sample `r mod n` of prompt `r / n`) draws from
/// its own ChaCha8 stream `sampling.stream + r` of `sampling.seed`, so results are
/// reproducible and do not depend on how prompts are batched. The model's input-only tokens
/// (image/video placeholders) are never sampled. A prompt that with `max_new_tokens` would
/// outgrow the model's positions ([`Vlm::max_positions`]) is an error, before any work.
pub fn generate<B: Kernels, M: Vlm<B>>(
    model: &M,
    prompts: &[Prompt<B>],
    n: usize,
    sampling: &SamplingConfig,
    stop_ids: &[u32],
    pad_id: u32,
) -> Result<Vec<Completion>> {
    generate_keeping_kv_in(model, prompts, n, sampling, stop_ids, pad_id, None)
}

/// [`generate`] with the KV cache kept in `kv_storage` ([`crate::decode::KvCache::stored_as`];
/// `None`: as computed): the rollout's `kv_cache_dtype`. Laid out as the backend prefers
/// ([`KvLayout::of`]).
pub fn generate_keeping_kv_in<B: Kernels, M: Vlm<B>>(
    model: &M,
    prompts: &[Prompt<B>],
    n: usize,
    sampling: &SamplingConfig,
    stop_ids: &[u32],
    pad_id: u32,
    kv_storage: Option<burn::tensor::DType>,
) -> Result<Vec<Completion>> {
    let kv = KvLayout::of::<B>(kv_storage);
    generate_with(model, prompts, n, sampling, stop_ids, pad_id, kv)
}

/// Positions a sample's own KV buffers grow by at a time when prompts are shared
/// ([`KvLayout::shared_block`]): under 64 positions of room per sample, and a copy of its own
/// positions every 64 steps, a small part of what each step's gather of the prefixes copies.
pub const KV_BLOCK: usize = 64;

/// How generation holds its KV cache.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KvLayout {
    /// The type keys and values are kept in ([`crate::decode::KvCache::stored_as`]; `None`:
    /// as computed).
    pub storage: Option<burn::tensor::DType>,
    /// `Some(block)`: a prompt's keys and values are kept once for its `n` samples and each
    /// sample's own positions grow `block` at a time
    /// ([`crate::decode::KvCache::sharing_prefixes`]); `None`: every sample holds the prompt
    /// and room for `max_new_tokens` from the start.
    pub shared_block: Option<usize>,
}

impl KvLayout {
    /// `storage`, prompts shared where the backend prefers ([`Kernels::shares_prompt_cache`]).
    pub fn of<B: Kernels>(storage: Option<burn::tensor::DType>) -> Self {
        Self { storage, shared_block: B::shares_prompt_cache().then_some(KV_BLOCK) }
    }
}

/// [`generate`] with the KV cache held as `kv` says. The layout changes what is kept, not
/// what is computed: the keys and values each row attends to are the same.
pub fn generate_with<B: Kernels, M: Vlm<B>>(
    model: &M,
    prompts: &[Prompt<B>],
    n: usize,
    sampling: &SamplingConfig,
    stop_ids: &[u32],
    pad_id: u32,
    kv: KvLayout,
) -> Result<Vec<Completion>> {
    if prompts.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    validate(sampling)?;
    let rows: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
    if let Some(empty) = rows.iter().position(Vec::is_empty) {
        return Err(ModelError::Input(format!("prompt {empty} has no tokens")));
    }
    if let Some(max) = model.max_positions() {
        let needed = |row: &Vec<u32>| row.len() + sampling.max_new_tokens;
        if let Some(long) = rows.iter().position(|row| needed(row) > max) {
            return Err(ModelError::Input(format!(
                "prompt {long} has {} tokens; with max_new_tokens {} it needs {} positions, more than the \
                 model's {max} (max_position_embeddings in its config.json): shorten it or drop it \
                 (data.max_prompt_length in training)",
                rows[long].len(),
                sampling.max_new_tokens,
                needed(&rows[long])
            )));
        }
    }
    let tokens = TokenBatch::left_padded(&rows, pad_id);
    let images = ImageInput::concat(prompts.iter().filter_map(|p| p.images.as_ref()));
    let mut state = model.new_state();
    state.kv = state.kv.stored_as(kv.storage);
    let prefill = model.forward_at(&tokens, images.as_ref(), &mut state, &[tokens.seq - 1])?;
    let [batch, _, vocab] = prefill.dims();
    let last = prefill.reshape([batch, vocab]);
    let mut logits = repeat_rows(last, n);
    // the first new token's keys join the cache with the second's step
    state = state.for_samples(n, kv.shared_block, sampling.max_new_tokens.saturating_sub(1));
    let total = batch * n;
    let mut out: Vec<Completion> = (0..total)
        .map(|r| Completion { prompt: r / n, ids: Vec::new(), logprobs: Vec::new(), stopped: false })
        .collect();
    // `live[j]`: the completion that row j of the decoding state, of `logits` and of `rngs`
    // continues; rows whose completion stopped are dropped from all three, so they cost no
    // more work.
    let mut live: Vec<usize> = (0..total).collect();
    let mut rngs: Vec<ChaCha8Rng> = live
        .iter()
        .map(|&r| {
            let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
            rng.set_stream(sampling.stream.wrapping_add(r as u64));
            rng
        })
        .collect();
    let input_only = model.input_only_tokens();
    for step in 0..sampling.max_new_tokens {
        let picks = B::pick_tokens(logits, &mut rngs, &input_only, sampling)?;
        let mut next = Vec::with_capacity(live.len());
        let mut going = Vec::with_capacity(live.len());
        for (j, (token, logprob)) in picks.into_iter().enumerate() {
            let done = &mut out[live[j]];
            done.ids.push(token);
            done.logprobs.push(logprob);
            done.stopped = stop_ids.contains(&token);
            if !done.stopped {
                next.push(token);
                going.push(j);
            }
        }
        if step + 1 == sampling.max_new_tokens || going.is_empty() {
            break;
        }
        if going.len() < live.len() {
            state = state.select_rows(&going);
            live = going.iter().map(|&j| live[j]).collect();
            let mut j = 0;
            rngs.retain(|_| {
                j += 1;
                going.binary_search(&(j - 1)).is_ok()
            });
        }
        let step_tokens = TokenBatch::new(next, vec![true; live.len()], live.len(), 1)?;
        logits = model.forward_cached(&step_tokens, None, &mut state)?.reshape([live.len(), vocab]);
    }
    Ok(out)
}

fn validate(s: &SamplingConfig) -> Result<()> {
    let bad = |what: String| Err(ModelError::Input(format!("sampling: {what}")));
    if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
        return bad(format!("temperature must be ≥ 0, got {}", s.temperature));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return bad(format!("top_p must be in (0, 1], got {}", s.top_p));
    }
    Ok(())
}

/// `[B, V] → [B·n, V]`, each row repeated `n` times in place.
fn repeat_rows<B: Backend>(x: Tensor<B, 2>, n: usize) -> Tensor<B, 2> {
    let [b, v] = x.dims();
    x.unsqueeze_dim::<3>(1).expand([b, n, v]).reshape([b * n, v])
}
