//! Batched sampling with a KV cache: left-padded prompts are prefilled once, each prompt's
//! cache is shared by the `n` samples of its group, then one token per row per step; with the
//! rows' own cache bounded, rows beyond it are preempted and resumed in later waves.

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
    /// With `shared_block`: the most positions the rows' own keys and values may hold at once,
    /// `live rows × ⌈own length / block⌉·block`. A step that would pass it first preempts the
    /// last rows: they leave the batch and resume in a later wave, their prompt and tokens so
    /// far prefilled again (recomputed, as vLLM preempts sequences when its cache runs out),
    /// with their own random streams carried on. A row alone goes on past it, so bound it at
    /// one whole response at least. `None`: no bound.
    pub own_positions: Option<usize>,
}

impl KvLayout {
    /// `storage`, prompts shared where the backend prefers ([`Kernels::shares_prompt_cache`]),
    /// no bound on the rows' own positions.
    pub fn of<B: Kernels>(storage: Option<burn::tensor::DType>) -> Self {
        Self { storage, shared_block: B::shares_prompt_cache().then_some(KV_BLOCK), own_positions: None }
    }

    /// This layout with the rows' own positions bounded by `own_positions` (`None`: unbounded).
    pub fn bounded(self, own_positions: Option<usize>) -> Self {
        Self { own_positions, ..self }
    }
}

/// [`generate`] with the KV cache held as `kv` says. The layout changes what is kept, not
/// what is computed: the keys and values each row attends to are the same, and a preempted
/// row ([`KvLayout::own_positions`]) continues from its prompt and tokens so far, drawing from
/// its own stream, as it would have in the batch.
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
    if let Some(empty) = prompts.iter().position(|p| p.ids.is_empty()) {
        return Err(ModelError::Input(format!("prompt {empty} has no tokens")));
    }
    if let Some(max) = model.max_positions() {
        let needed = |p: &Prompt<B>| p.ids.len() + sampling.max_new_tokens;
        if let Some(long) = prompts.iter().position(|p| needed(p) > max) {
            return Err(ModelError::Input(format!(
                "prompt {long} has {} tokens; with max_new_tokens {} it needs {} positions, more than the \
                 model's {max} (max_position_embeddings in its config.json): shorten it or drop it \
                 (data.max_prompt_length in training)",
                prompts[long].ids.len(),
                sampling.max_new_tokens,
                needed(&prompts[long])
            )));
        }
    }
    let total = prompts.len() * n;
    let mut out: Vec<Completion> = (0..total)
        .map(|r| Completion { prompt: r / n, ids: Vec::new(), logprobs: Vec::new(), stopped: false })
        .collect();
    let rngs = (0..total)
        .map(|r| {
            let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
            rng.set_stream(sampling.stream.wrapping_add(r as u64));
            rng
        })
        .collect();
    let first = Wave {
        prefixes: prompts.iter().map(|p| (p.ids.clone(), p.images.as_ref())).collect(),
        n,
        rows: (0..total).collect(),
        rngs,
    };
    let prefill_tokens = prompts.len() * prompts.iter().map(|p| p.ids.len()).max().unwrap_or(0);
    let mut preempted =
        decode_wave(model, first, sampling, stop_ids, pad_id, kv, kv.own_positions, &mut out)?;
    while !preempted.is_empty() {
        let (wave, own_positions, waiting) = resumed_wave(prompts, &out, preempted, kv, prefill_tokens);
        preempted = decode_wave(model, wave, sampling, stop_ids, pad_id, kv, own_positions, &mut out)?;
        preempted.extend(waiting);
        preempted.sort_by_key(|(row, _)| *row);
    }
    Ok(out)
}

/// Rows decoding together: row j continues prefix `j / n` (its token ids and images) and
/// fills completion `rows[j]`, drawing from `rngs[j]`.
struct Wave<'a, B: Backend> {
    prefixes: Vec<(Vec<u32>, Option<&'a ImageInput<B>>)>,
    n: usize,
    rows: Vec<usize>,
    rngs: Vec<ChaCha8Rng>,
}

/// The next wave of preempted rows (completion index, stream), in order: each row's prefix is
/// its prompt and its tokens so far (one sample each); as many rows as keep the wave's
/// left-padded prefill within `prefill_tokens` (the first wave's, so a resumed wave holds no
/// more than the first did, as vLLM bounds the tokens a step prefills) and, with a bound on the
/// own positions, with a block of their own each and their tokens so far counted in it.
/// Returns the wave, its bound on the rows' own positions, and the rows that wait for a later
/// wave (at least one row goes).
#[allow(clippy::type_complexity)]
fn resumed_wave<'a, B: Backend>(
    prompts: &'a [Prompt<B>],
    out: &[Completion],
    preempted: Vec<(usize, ChaCha8Rng)>,
    kv: KvLayout,
    prefill_tokens: usize,
) -> (Wave<'a, B>, Option<usize>, Vec<(usize, ChaCha8Rng)>) {
    let block = kv.shared_block.unwrap_or(1);
    let mut wave = Wave { prefixes: Vec::new(), n: 1, rows: Vec::new(), rngs: Vec::new() };
    let (mut so_far, mut longest, mut waiting) = (0, 0, Vec::new());
    for (row, rng) in preempted {
        let done = &out[row];
        let prompt = &prompts[done.prompt];
        let rows = wave.rows.len() + 1;
        let (tokens, length) = (so_far + done.ids.len(), longest.max(prompt.ids.len() + done.ids.len()));
        let fits =
            rows * length <= prefill_tokens && kv.own_positions.is_none_or(|b| tokens + rows * block <= b);
        if rows > 1 && (!fits || !waiting.is_empty()) {
            waiting.push((row, rng));
            continue;
        }
        (so_far, longest) = (tokens, length);
        wave.prefixes.push(([prompt.ids.as_slice(), &done.ids].concat(), prompt.images.as_ref()));
        wave.rows.push(row);
        wave.rngs.push(rng);
    }
    let own_positions = kv.own_positions.map(|bound| bound.saturating_sub(so_far));
    (wave, own_positions, waiting)
}

/// Decodes `wave` into `out` until each row stops or holds `max_new_tokens` tokens: its
/// prefixes prefilled once, left-padded, each continued by `n` rows; rows that stop leave the
/// batch. With shared prefixes and `own_positions`, when the next step would hold more than
/// `own_positions` own positions (`live × ⌈(step + 1) / block⌉·block`), the last rows are
/// preempted: returned (completion index, stream) for a later wave.
#[allow(clippy::too_many_arguments)]
fn decode_wave<B: Kernels, M: Vlm<B>>(
    model: &M,
    wave: Wave<'_, B>,
    sampling: &SamplingConfig,
    stop_ids: &[u32],
    pad_id: u32,
    kv: KvLayout,
    own_positions: Option<usize>,
    out: &mut [Completion],
) -> Result<Vec<(usize, ChaCha8Rng)>> {
    let ids: Vec<Vec<u32>> = wave.prefixes.iter().map(|(ids, _)| ids.clone()).collect();
    let tokens = TokenBatch::left_padded(&ids, pad_id);
    let images = ImageInput::concat(wave.prefixes.iter().filter_map(|(_, images)| *images));
    let mut state = model.new_state();
    state.kv = state.kv.stored_as(kv.storage);
    let prefill = model.forward_at(&tokens, images.as_ref(), &mut state, &[tokens.seq - 1])?;
    let [batch, _, vocab] = prefill.dims();
    let mut logits = repeat_rows(prefill.reshape([batch, vocab]), wave.n);
    let longest = wave.rows.iter().map(|&r| sampling.max_new_tokens - out[r].ids.len()).max().unwrap_or(0);
    // the first new token's keys join the cache with the second's step
    state = state.for_samples(wave.n, kv.shared_block, longest.saturating_sub(1));
    // `live[j]`: the completion that row j of the decoding state, of `logits` and of `rngs`
    // continues; rows whose completion stopped are dropped from all three, so they cost no
    // more work.
    let (mut live, mut rngs) = (wave.rows, wave.rngs);
    let mut preempted = Vec::new();
    let input_only = model.input_only_tokens();
    for step in 0usize.. {
        let picks = B::pick_tokens(logits, &mut rngs, &input_only, sampling)?;
        let mut next = Vec::with_capacity(live.len());
        let mut going = Vec::with_capacity(live.len());
        for (j, (token, logprob)) in picks.into_iter().enumerate() {
            let done = &mut out[live[j]];
            done.ids.push(token);
            done.logprobs.push(logprob);
            done.stopped = stop_ids.contains(&token);
            if !done.stopped && done.ids.len() < sampling.max_new_tokens {
                next.push(token);
                going.push(j);
            }
        }
        if let (Some(block), Some(bound)) = (kv.shared_block, own_positions) {
            let fit = (bound / ((step + 1).div_ceil(block) * block)).max(1);
            if going.len() > fit {
                preempted.extend(going.drain(fit..).map(|j| (live[j], rngs[j].clone())));
                next.truncate(fit);
            }
        }
        if going.is_empty() {
            break;
        }
        if going.len() < live.len() {
            state = state.select_rows(&going);
            live = going.iter().map(|&j| live[j]).collect();
            rngs = going.iter().map(|&j| rngs[j].clone()).collect();
        }
        let step_tokens = TokenBatch::new(next, vec![true; live.len()], live.len(), 1)?;
        logits = model.forward_cached(&step_tokens, None, &mut state)?.reshape([live.len(), vocab]);
    }
    Ok(preempted)
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
