//! The memory plan of a run: what one training step holds at once, per component, from the
//! checkpoint's `config.json` ([`ModelSize`]) and the run config alone, before any weight is
//! read (`seethink plan`; `seethink train` refuses a run whose plan does not fit its device).
//!
//! A step has three phases, and its peak is what lives through the whole run plus the largest
//! phase:
//! - **always**: the policy's weights, the frozen KL reference (a second copy, GRPO with a KL
//!   term, none under LoRA: the base is the reference), AdamW's two moments of every trained
//!   parameter (the adapters only under LoRA). Frozen weights (the reference, the base under
//!   LoRA, a frozen vision tower) count at the checkpoint's type where the backend stores them
//!   narrower ([`Target::frozen_bytes`]), with the largest of them widened in each phase that
//!   computes with them;
//! - **rollout**: the KV cache of the generation calls running at once (in the frozen weights'
//!   type with `rollout.kv_cache_dtype: Checkpoint`; each prompt once for its samples and
//!   their own positions in blocks, at most `rollout.kv_cache_positions` of them, with one
//!   layer's keys and values gathered per row while it attends unless the host kernels read
//!   them in place: `KvLayout`), the activations of a
//!   prompt's prefill and the last position's logits (for one data-parallel worker's share of
//!   the prompts: the plan is per worker, each of which holds everything else whole);
//! - **old / reference log-probs**: a forward pass without gradients per micro-batch;
//! - **update**: the activations autodiff keeps for one micro-batch (with
//!   `actor.activation_checkpointing`, every layer's input and one layer's activations), one
//!   logits chunk with its gradient, and the gradients (those accumulated over the
//!   micro-batches before it, and, with activation checkpointing, from a worker's second
//!   micro-batch of an update on, the micro-batch's own gradients that do not join that sum as
//!   they arrive: [`gradients_beside_sum`]).
//!
//! The plan is one data-parallel worker's: with `trainer.sharding` it holds its share of
//! AdamW's moments (`OptimizerState`), of the gradients' sums with one group's whole gradients
//! in flight (`Gradients`), and of the trained weights and the KL reference between uses
//! (`Weights`: the others' weights gathered in the rollout and old-log-prob phases, in the
//! update all but the decoder layers and two layers (one running, the next prefetched), and
//! the reference gathered in a phase of its own, the reference passes).
//!
//! With mixed precision (`actor.mixed_precision`, where the backend stores the compute type:
//! [`Target::compute_bytes`]) each phase holds the policy cast to the compute type (with the
//! weights sharded, the gathered parts are that copy, whole), the KL reference is held in it,
//! and the KV cache and activations are in it; the trained weights, AdamW's moments, the
//! gradients and the logits stay in the backend's float type.
//!
//! Activations follow what each kernel path keeps for its backward pass ([`KernelPath`]'s
//! counts): neither keeps attention scores (the host kernels of `NdArray<f32>` and the generic
//! path's [`recomputed_attention`](seethink_models::kernels::recomputed_attention) recompute them in
//! backward), so activations grow with tokens, not tokens²; the two differ in what the MLP,
//! the logits and sampling keep. The counts are checked against a counting allocator on
//! ndarray (`tests/plan_memory_host.rs`, `tests/plan_memory_generic.rs`, within 15%). A GPU
//! backend's allocator pools and rounds its buffers, so there the plan is a lower bound of what
//! it reserves.

pub mod fit;

pub use fit::{fit_batch_size, plans_of, report, target, PlanDevice, Workers};

use std::fmt::Write as _;
use std::ops::Range;

use seethink_models::generate::KV_BLOCK;
use seethink_models::kernels::HOST_ROW_BY_ROW;
use seethink_models::nn::LoraConfig;
use seethink_models::ModelSize;

use crate::config::{KvCacheDtype, TrainConfig, Trainer};
use crate::grpo::{micro_batches, mini_batch_size, prompts_per_call, Aggregation};

/// Which kernels run the model, and so what autodiff keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPath {
    /// The fused host kernels of `NdArray<f32>` (attention recomputed in backward).
    Host,
    /// burn's ops (wgpu, cuda, `NdArray<f64>`), with attention recomputed in backward
    /// ([`recomputed_attention`](seethink_models::kernels::recomputed_attention)).
    Generic,
}

/// Where a run's tensors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub kernels: KernelPath,
    /// Bytes per element of the backend's float type (the trained weights, AdamW's moments,
    /// gradients, logits).
    pub element_bytes: usize,
    /// Bytes per element the passes compute in: `element_bytes`, or the type of
    /// `actor.mixed_precision` where the backend stores it.
    pub compute_bytes: usize,
    /// Bytes per element of frozen weights: the checkpoint's type where the backend stores it
    /// narrower ([`frozen_dtype`]), else `element_bytes`.
    ///
    /// [`frozen_dtype`]: seethink_models::nn::frozen::frozen_dtype
    pub frozen_bytes: usize,
    /// Generation calls, frozen passes and update micro-batches running side by side
    /// ([`Kernels::batch_threads`]).
    ///
    /// [`Kernels::batch_threads`]: seethink_models::kernels::Kernels::batch_threads
    pub threads: usize,
}

/// When a component is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Always,
    Rollout,
    Frozen,
    /// The reference passes when the weights are sharded: the policy dropped, the reference
    /// gathered (otherwise they are part of [`Phase::Frozen`]).
    Reference,
    Update,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Always => "always",
            Phase::Rollout => "rollout",
            Phase::Frozen => "old/ref log-probs",
            Phase::Reference => "ref log-probs",
            Phase::Update => "update",
        }
    }
}

/// One line of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub name: &'static str,
    pub phase: Phase,
    pub bytes: u64,
    /// How the figure is made.
    pub formula: String,
}

/// A run's memory per component and its peak.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    pub components: Vec<Component>,
}

/// What autodiff keeps of a decoder layer for its backward pass, in tensors per position of
/// each width, on one kernel path. The counts are set from the peaks a counting allocator
/// measured on ndarray at shapes where each width dominates in turn (`tests/plan_memory_*.rs`,
/// which keep them within 15%); the tensors named are what they stand for.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Kept {
    /// `[positions, hidden]`: the residual stream, the norms' inputs, normalised values and
    /// outputs (the projections' inputs: the projections reading one input keep it once, since
    /// the vendored burn-ndarray's reshape of a row-major tensor shares its storage).
    hidden: u64,
    /// `[positions, intermediate]`: the MLP's gate, up and their product.
    intermediate: u64,
    /// `[positions, heads·head_dim]`: q before and after its norm and RoPE, the attention's
    /// output before and after the head merge.
    query: u64,
    /// `[keys, kv heads·head_dim]` per key: k before and after its norm and RoPE, v.
    key_value: u64,
    /// `[rows, vocabulary]` tensors of a logits chunk scored and differentiated (the logits
    /// and their gradient; on the generic path also the log-softmax).
    logits: u64,
    /// `[positions, intermediate]` gradients alive at once during the backward pass (once,
    /// not per layer).
    backward: u64,
    /// `[rows, vocabulary]` tensors of a decoding step's logits and sampling (the host reads
    /// the logits once; the device samples through temperature, softmax and the inverse CDF).
    sampling: u64,
}

impl KernelPath {
    fn kept(self) -> Kept {
        match self {
            KernelPath::Host => Kept {
                hidden: 5,
                intermediate: 3,
                query: 6,
                key_value: 4,
                logits: 2,
                backward: 2,
                sampling: 2,
            },
            KernelPath::Generic => Kept {
                hidden: 5,
                intermediate: 4,
                query: 6,
                key_value: 4,
                logits: 3,
                backward: 2,
                sampling: 8,
            },
        }
    }
}

/// `[tokens, width]` tensors a forward pass without gradients holds at once, per width.
const FORWARD_LIVE: u64 = 2;

/// The tokens one pass over a micro-batch runs: `m` sequences of `g` distinct prompts of
/// `prompt` tokens and responses of `response` tokens. A shared prompt's prefix runs once and
/// its keys and values are repeated per sequence (`logprobs::response_positions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PassTokens {
    /// Positions the layers run on.
    queries: u64,
    /// Keys and values attended to.
    keys: u64,
}

impl PassTokens {
    fn new(sequences: u64, prompts: u64, prompt: u64, response: u64) -> Self {
        let whole = prompt + response;
        match prompts < sequences {
            true => Self { queries: prompts * prompt + sequences * response, keys: sequences * whole },
            false => Self { queries: sequences * whole, keys: sequences * whole },
        }
    }

    /// The largest pass over `pieces` of a rollout with `n` consecutive samples per prompt.
    fn largest(pieces: &[Range<usize>], n: usize, prompt: u64, response: u64) -> Self {
        pieces
            .iter()
            .map(|piece| Self::new(piece.len() as u64, prompts_in(piece, n), prompt, response))
            .max_by_key(|t| (t.queries, t.keys))
            .unwrap_or(Self { queries: 0, keys: 0 })
    }
}

/// The distinct prompts of samples `piece` of a rollout with `n` consecutive samples per prompt.
fn prompts_in(piece: &Range<usize>, n: usize) -> u64 {
    ((piece.end - 1) / n - piece.start / n + 1) as u64
}

impl MemoryPlan {
    /// The plan of one step of `config` on a checkpoint of size `size` on `target`, with
    /// prompts of `data.max_prompt_length` tokens (2048 when unbounded) and responses of
    /// `rollout.max_new_tokens`, the longest the run allows.
    pub fn new(size: &ModelSize, config: &TrainConfig, target: Target) -> Self {
        let e = target.element_bytes as u64;
        // mixed precision: every pass runs a copy of the policy in the compute type
        let c = target.compute_bytes.min(target.element_bytes) as u64;
        let mixed = c < e;
        let k = target.kernels.kept();
        let t = &size.text;
        let (h, inter, layers) =
            (t.hidden_size as u64, t.intermediate_size as u64, t.num_hidden_layers as u64);
        let (q, kv) =
            ((t.num_attention_heads * t.head_dim) as u64, (t.num_key_value_heads * t.head_dim) as u64);
        let vocab = t.vocab_size as u64;
        // LoRA: the adapters are the trained parameters (but those on a frozen vision tower),
        // the base frozen and the KL reference
        let lora = config.actor.lora.as_ref();
        let adapters = lora.map(|l| size.lora_params(l) as u64);
        let params = size.params() as u64 + adapters.unwrap_or(0);
        let trained = match (lora, config.actor.freeze_vision) {
            (Some(l), true) => {
                size.lora_params(&LoraConfig { vision_modules: vec![], projector: false, ..l.clone() }) as u64
            }
            (Some(_), false) => adapters.unwrap_or(0),
            (None, true) => size.text_params as u64,
            (None, false) => params,
        };
        // frozen: the base under LoRA, else a frozen vision tower
        let f = target.frozen_bytes as u64;
        // the KL reference is held in the compute type when that is narrower
        let fr = f.min(c);
        let frozen = match (adapters, config.actor.freeze_vision) {
            (Some(_), _) => size.params() as u64,
            (None, true) => (size.params() - size.text_params) as u64,
            (None, false) => 0,
        };
        let grpo = config.algorithm.trainer == Trainer::Grpo;
        let reference = grpo && config.algorithm.kl_coef != 0.0 && adapters.is_none();
        let prompt = config.data.max_prompt_length.unwrap_or(2048) as u64;
        let response = config.rollout.max_new_tokens as u64;
        let n = if grpo { config.rollout.n.max(1) } else { 1 };
        let samples = (config.trainer.prompts_per_step * n).max(1);
        let micro = config.actor.micro_batch_size.max(1);
        let threads = target.threads.max(1) as u64;
        let chunk = config.actor.logits_chunk_tokens.max(1) as u64;
        let mut components = Vec::new();
        let mut add = |name, phase, bytes: u64, formula: String| {
            components.push(Component { name, phase, bytes, formula })
        };
        let workers = config.trainer.topology().workers();
        let sharded_weights = config.trainer.sharding.weights() && workers > 1;
        match sharded_weights {
            // each worker holds its own trained parameters between uses (`weight_shards`) and
            // gathers the others' for the rollout and the old/ref passes (the whole policy) and
            // for an update (all but the decoder layers, and two layers at a time): on average
            // (N − 1)/N of what it gathers is the others'
            true => {
                let (own, share) = sharded(trained, workers);
                add(
                    "weights, own share",
                    Phase::Always,
                    own * e + frozen * f,
                    format!("{share} × {e} B + {frozen} frozen × {f} B"),
                );
                // with mixed precision the own share is cast too: a whole copy in the compute type
                let gathered_part = |part: u64| match mixed {
                    true => (part * c, format!("{c} B (in the compute type)")),
                    false => (
                        (part * (workers as u64 - 1)).div_ceil(workers as u64) * e,
                        format!("({workers} − 1)/{workers} × {e} B"),
                    ),
                };
                let (bytes, how) = gathered_part(trained);
                let phases: &[Phase] = if grpo { &[Phase::Rollout, Phase::Frozen] } else { &[] };
                for &phase in phases {
                    add("gathered weights", phase, bytes, format!("{trained} trained parameters × {how}"));
                }
                let (gathered, what) = gathered_for_update(size, config, trained);
                let (bytes, how) = gathered_part(gathered);
                add("gathered for the update", Phase::Update, bytes, format!("{what} × {how}"));
            }
            false => {
                add(
                    "weights",
                    Phase::Always,
                    (params - frozen) * e + frozen * f,
                    format!("{} parameters × {e} B + {frozen} frozen × {f} B", params - frozen),
                );
                let phases: &[Phase] = match (mixed, grpo) {
                    (true, true) => &[Phase::Rollout, Phase::Frozen, Phase::Update],
                    (true, false) => &[Phase::Update],
                    (false, _) => &[],
                };
                for &phase in phases {
                    let formula =
                        format!("{trained} trained parameters × {c} B, the policy in the compute type");
                    add("compute copy", phase, trained * c, formula);
                }
            }
        }
        match (reference, sharded_weights) {
            // each worker holds its share of the reference (the trained parameters' owners; the
            // rest, frozen in the policy too, whole) and gathers the others' for the reference
            // passes, after the rollout's policy is dropped
            (true, true) => {
                let (own, share) = sharded(trained, workers);
                let whole = params - trained;
                add(
                    "KL reference, own share",
                    Phase::Always,
                    (own + whole) * fr,
                    format!("a frozen copy: {share} + {whole} whole × {fr} B"),
                );
                let others = (trained * (workers as u64 - 1)).div_ceil(workers as u64);
                add(
                    "gathered reference",
                    Phase::Reference,
                    others * fr,
                    format!("{trained} parameters × ({workers} − 1)/{workers} × {fr} B"),
                );
            }
            (true, false) => {
                add("KL reference", Phase::Always, params * fr, format!("a frozen copy: {params} × {fr} B"))
            }
            (false, _) => {}
        }
        // with the weights sharded the reference passes are a phase of their own
        let reference_phase = if reference && sharded_weights { Phase::Reference } else { Phase::Frozen };
        // a product with a frozen matrix stored narrower than the compute type widens it first:
        // at most the largest (the vocabulary projection) at a time, in every phase that
        // computes with one
        if f < c {
            let widened = vocab * h * c;
            let formula = format!("{vocab} × {h} × {c} B, the largest frozen matrix widened for a product");
            let phases: &[Phase] = match (adapters.is_some(), grpo, reference) {
                (true, true, _) => &[Phase::Rollout, Phase::Frozen, Phase::Update],
                (true, false, _) => &[Phase::Update],
                (false, _, true) => std::slice::from_ref(&reference_phase),
                (false, _, false) => &[],
            };
            for &phase in phases {
                add("widened frozen matrix", phase, widened, formula.clone());
            }
        }
        // the plan is per worker: with the optimizer state sharded each holds the moments of
        // its share (`sharding::owners` deals whole parameters, so a share can exceed 1/N by
        // less than the largest parameter)
        let (held, formula) = match config.trainer.sharding.optimizer_state() && workers > 1 {
            true => {
                let (own, share) = sharded(trained, workers);
                (own, format!("2 × {share} × {e} B"))
            }
            false => (trained, format!("2 × {trained} trained parameters × {e} B")),
        };
        add("AdamW moments", Phase::Always, 2 * held * e, formula);
        let grouping = if grpo && config.actor.aggregation == Aggregation::TokenMean { n } else { 1 };
        let mini = mini_batch_size(samples, config.actor.mini_batches);
        let minis: Vec<Vec<Range<usize>>> = (0..samples)
            .step_by(mini)
            .map(|start| micro_batches(start..(start + mini).min(samples), grouping, micro))
            .collect();
        // the most micro-batches a worker sums for one optimizer update
        let summed = minis.iter().map(|m| m.len().div_ceil(workers)).max().unwrap_or(0);
        let pieces: Vec<Range<usize>> = minis.concat();
        if grpo {
            // each data-parallel worker rolls out its share of the prompts
            let prompts = (config.trainer.prompts_per_step / workers).max(1);
            let per_call = prompts_per_call(config.rollout.batch_size, n, prompts, target.threads);
            let rows = (per_call * n) as u64;
            let calls = (prompts.div_ceil(per_call) as u64).min(threads);
            // kept in the checkpoint's type with `rollout.kv_cache_dtype: Checkpoint`
            let kv_e = match config.rollout.kv_cache_dtype {
                KvCacheDtype::Compute => c,
                KvCacheDtype::Checkpoint => f.min(c),
            };
            // each prompt once, each row's own positions in blocks (`KvLayout::shared_block`) up
            // to `rollout.kv_cache_positions` over all rows (a resumed row's tokens so far
            // counted in it)
            let own = response.div_ceil(KV_BLOCK as u64) * KV_BLOCK as u64;
            let (owned, own_formula) = match config.rollout.kv_cache_positions as u64 {
                0 => (rows * own, format!("{rows} rows × {own} own")),
                bound => ((rows * own).min(bound), format!("min({rows} rows × {own} own, {bound})")),
            };
            let held = per_call as u64 * prompt + owned;
            add(
                "rollout KV cache",
                Phase::Rollout,
                calls * layers * 2 * kv * held * kv_e,
                format!(
                    "{calls} call(s) × {layers} layers × 2 × {kv} × ({per_call} prompts × {prompt} + {own_formula}) tokens × {kv_e} B"
                ),
            );
            // one layer's keys and values gathered per row for its attention call, unless the
            // host kernels read them where they are
            let in_place = target.kernels == KernelPath::Host
                && kv_e == c
                && t.num_attention_heads / t.num_key_value_heads.max(1) <= HOST_ROW_BY_ROW;
            if !in_place {
                add(
                    "rollout KV gathered",
                    Phase::Rollout,
                    calls * 2 * kv * (rows * prompt * (kv_e + c) + owned * c),
                    format!(
                        "{calls} call(s) × 2 × {kv} × ({rows} rows × {prompt} prefix tokens × ({kv_e} + {c}) B + {own_formula} tokens × {c} B)"
                    ),
                );
            }
            let prefill = calls * per_call as u64 * prompt * FORWARD_LIVE * (h + inter + q + kv) * c;
            add(
                "rollout prefill",
                Phase::Rollout,
                prefill,
                format!(
                    "{calls} × {per_call} prompts × {prompt} tokens × {FORWARD_LIVE}·({h} + {inter} + {q} + {kv}) × {c} B"
                ),
            );
            let sampled = k.sampling;
            let logits = calls * rows * vocab * sampled * e;
            add(
                "rollout logits",
                Phase::Rollout,
                logits,
                format!("{calls} × {rows} rows × {sampled} × {vocab} × {e} B"),
            );
            // the old and reference passes take the update's micro-batches
            let pass = PassTokens::largest(&pieces, n, prompt, response);
            let passes = threads.min(pieces.len() as u64);
            let frozen = passes
                * ((pass.queries * FORWARD_LIVE * (h + inter + q + kv) + pass.keys * 2 * kv) * c
                    + chunk.min(pass.queries) * vocab * 2 * e);
            let formula = format!(
                "{passes} × (({} positions × {FORWARD_LIVE}·({h} + {inter} + {q} + {kv}) + {} keys × 2·{kv}) × {c} B + 2 × {chunk} × {vocab} × {e} B)",
                pass.queries, pass.keys
            );
            add("old/ref passes", Phase::Frozen, frozen, formula.clone());
            if reference_phase == Phase::Reference {
                add("old/ref passes", Phase::Reference, frozen, formula);
            }
        }
        let pass = PassTokens::largest(&pieces, n, prompt, response);
        // micro-batches side by side, one per core, where each can run apart (no exchange
        // during it, no layer-by-layer gradients: `GradientSink::takes_whole_micro_batches`):
        // each with its activations, its logits chunk and its own gradients until they join
        // the sum in order
        let sharded_gradients = config.trainer.sharding.gradients() && workers > 1;
        let apart = !config.actor.activation_checkpointing && !sharded_gradients;
        let side_by_side = if apart { threads.min(summed as u64).max(1) } else { 1 };
        let times = |formula: String| match side_by_side {
            1 => formula,
            side => format!("{side} side by side × {formula}"),
        };
        let per_query = k.hidden * h + k.intermediate * inter + k.query * q;
        let (queries, keys) = (pass.queries, pass.keys);
        let one_layer = queries * per_query + keys * k.key_value * kv;
        let backward = queries * k.backward * inter;
        let (activations, formula) = match config.actor.activation_checkpointing {
            // every layer's input kept, one layer's activations recomputed at a time, and the
            // gradient arriving at the layer and the one leaving it
            true => (
                ((layers + 2) * queries * h + one_layer + backward) * c,
                format!(
                    "(({layers} + 2) inputs and gradients × {queries} positions × {h} + one layer's {queries} positions × ({}·{h} + {}·{inter} + {}·{q}) + {keys} keys × {}·{kv} + {queries} × {}·{inter}) × {c} B",
                    k.hidden, k.intermediate, k.query, k.key_value, k.backward
                ),
            ),
            false => (
                (layers * one_layer + backward) * c,
                format!(
                    "({layers} layers × ({queries} positions × ({}·{h} + {}·{inter} + {}·{q}) + {keys} keys × {}·{kv}) + {queries} × {}·{inter}) × {c} B",
                    k.hidden, k.intermediate, k.query, k.key_value, k.backward
                ),
            ),
        };
        add("activations", Phase::Update, side_by_side * activations, times(formula));
        // the vision blocks keep activations only where they train (`vision_checkpoints`)
        let vision_trains = !config.actor.freeze_vision
            && config.actor.lora.as_ref().is_none_or(|l| !l.vision_modules.is_empty());
        let images = pieces.iter().map(|piece| prompts_in(piece, n)).max().unwrap_or(0);
        if vision_trains && images > 0 {
            let (v, checkpointing) = (&size.vision, config.actor.activation_checkpointing);
            let (bytes, formula) =
                vision_activations(v, images, prompt, config.data.max_pixels, checkpointing, k);
            add(
                "vision activations",
                Phase::Update,
                side_by_side * bytes * c,
                times(format!("{formula} × {c} B")),
            );
        }
        let rows = chunk.min(pieces.iter().map(|p| p.len() as u64).max().unwrap_or(1) * response);
        add(
            "logits chunk",
            Phase::Update,
            side_by_side * rows * vocab * k.logits * e,
            times(format!("{} × {rows} rows × {vocab} × {e} B", k.logits)),
        );
        match sharded_gradients {
            // each worker keeps its own parameters' sums, and one group's whole gradients are
            // in flight at a time (`gradient_sink`): the output projection, then one decoder
            // layer (with activation checkpointing) or all the rest, then what the layers leave
            true => {
                let (own, share) = sharded(trained, workers);
                add("gradients, own share", Phase::Update, own * e, format!("{share} × {e} B"));
                let (in_flight, formula) = gradients_in_flight(size, config, trained);
                add("gradients in flight", Phase::Update, in_flight * e, format!("{formula} × {e} B"));
            }
            false => {
                add("gradients", Phase::Update, trained * e, format!("{trained} trained parameters × {e} B"));
                // one micro-batch's gradients beside the sum are within the row above; side by
                // side, each other one's too, until it joins the sum in its turn
                if side_by_side > 1 {
                    let others = side_by_side - 1;
                    let formula = format!("{others} × {trained} trained parameters × {e} B");
                    add(
                        "gradients of micro-batches side by side",
                        Phase::Update,
                        others * trained * e,
                        formula,
                    );
                }
                if summed > 1 && config.actor.activation_checkpointing {
                    let (beside, formula) = gradients_beside_sum(size, config, trained);
                    add("a micro-batch's gradients", Phase::Update, beside * e, format!("{formula} × {e} B"));
                }
            }
        }
        Self { components }
    }

    /// Bytes of the components alive in `phase` (and always).
    pub fn phase_bytes(&self, phase: Phase) -> u64 {
        self.components.iter().filter(|c| c.phase == phase || c.phase == Phase::Always).map(|c| c.bytes).sum()
    }

    /// The step's peak: what is always alive plus the largest phase.
    pub fn peak(&self) -> u64 {
        [Phase::Rollout, Phase::Frozen, Phase::Reference, Phase::Update]
            .into_iter()
            .map(|p| self.phase_bytes(p))
            .max()
            .unwrap_or(0)
    }

    /// The table `seethink plan` prints.
    pub fn table(&self) -> String {
        let mut out = String::from("| component | when | GiB | how |\n|---|---|---:|---|\n");
        for c in &self.components {
            let _ =
                writeln!(out, "| {} | {} | {:.2} | {} |", c.name, c.phase.name(), gib(c.bytes), c.formula);
        }
        let _ = writeln!(out, "| **peak** | | **{:.2}** | always + the largest phase |", gib(self.peak()));
        if let Some(largest) = self.components.iter().max_by_key(|c| c.bytes) {
            let _ = writeln!(
                out,
                "\nlargest component: {} ({:.2} GiB, {}: {:.0}% of the peak)",
                largest.name,
                gib(largest.bytes),
                largest.phase.name(),
                100.0 * largest.bytes as f64 / self.peak().max(1) as f64
            );
        }
        out
    }
}

/// Elements the trained pass keeps of the vision tower `v` for `images` images (one per
/// prompt), each of `max_pixels` (or as many image tokens as a prompt of `prompt` tokens holds),
/// and how: its blocks' activations as a decoder layer's per patch, `patches × (hidden·d +
/// intermediate·i + (query + key_value)·d)` per block; with `checkpointing`
/// (`vision_checkpoints`) every block's input, one block's activations and its backward pass.
fn vision_activations(
    v: &seethink_models::families::size::VisionShape,
    images: u64,
    prompt: u64,
    max_pixels: Option<usize>,
    checkpointing: bool,
    k: Kept,
) -> (u64, String) {
    let tokens = max_pixels.map_or(prompt, |pixels| (pixels / v.pixels_per_token.max(1)) as u64).min(prompt);
    let patches = images * tokens * v.patches_per_token as u64;
    let (d, i, blocks) = (v.hidden_size as u64, v.intermediate_size as u64, v.layers as u64);
    let per_patch = k.hidden * d + k.intermediate * i + (k.query + k.key_value) * d;
    let backward = patches * k.backward * i;
    let one_block = format!(
        "{patches} patches ({images} images × {tokens} tokens × {}) × ({}·{d} + {}·{i} + {}·{d})",
        v.patches_per_token,
        k.hidden,
        k.intermediate,
        k.query + k.key_value
    );
    match checkpointing {
        true => (
            ((blocks + 1) * patches * d + patches * per_patch + backward),
            format!("(({blocks} + 1) inputs × {patches} patches × {d} + one block's {one_block} + {patches} × {}·{i})", k.backward),
        ),
        false => (
            blocks * patches * per_patch + backward,
            format!("({blocks} blocks × {one_block} + {patches} × {}·{i})", k.backward),
        ),
    }
}

/// The most gradients a worker holds whole at once with `trainer.sharding: Gradients`
/// (`gradient_sink`'s groups), in elements, and how: the largest of the output projection `O`,
/// one decoder layer `L` and the rest (`trained − layers·L − O`) with activation checkpointing,
/// of `O` and `trained − O` without. Under LoRA, the trained adapters whole.
fn gradients_in_flight(size: &ModelSize, config: &TrainConfig, trained: u64) -> (u64, String) {
    if config.actor.lora.is_some() {
        return (trained, format!("{trained} trained adapter parameters"));
    }
    let head = size.output_projection_params() as u64;
    let layer = size.decoder_layer_params() as u64;
    let layers = size.text.num_hidden_layers as u64;
    match config.actor.activation_checkpointing {
        true => {
            let rest = trained.saturating_sub(layers * layer + head);
            let most = head.max(layer).max(rest);
            (most, format!("max(output projection {head}, one layer {layer}, the rest {rest})"))
        }
        false => {
            let rest = trained.saturating_sub(head);
            (head.max(rest), format!("max(output projection {head}, the rest {rest})"))
        }
    }
}

/// The gradients of a later micro-batch held beside the worker's sum before they join it
/// (unsharded, with activation checkpointing: `gradient_sink`), in elements, and how: all but
/// the decoder layers' (which join the sum as each layer's recomputed backward pass completes
/// them), `trained − layers·L`: the output projection's, held from the first logits chunk to
/// the micro-batch's end, and the rest's. Under LoRA, the trained adapters whole. (Without
/// checkpointing, burn's autodiff returns a backward pass's gradients at once, as it frees the
/// activations: the activations' row covers them, as the counting allocator measures.)
fn gradients_beside_sum(size: &ModelSize, config: &TrainConfig, trained: u64) -> (u64, String) {
    if config.actor.lora.is_some() {
        return (trained, format!("{trained} trained adapter parameters"));
    }
    let (layer, layers) = (size.decoder_layer_params() as u64, size.text.num_hidden_layers as u64);
    let rest = trained.saturating_sub(layers * layer);
    (rest, format!("({trained} trained parameters − {layers} layers × {layer})"))
}

/// One worker's share of `trained` parameters dealt over `workers`, `⌈trained / workers⌉`, and
/// how.
fn sharded(trained: u64, workers: usize) -> (u64, String) {
    (trained.div_ceil(workers as u64), format!("{trained} trained parameters / {workers} workers (sharded)"))
}

/// The trained parameters an update of `trainer.sharding: Weights` holds gathered at once, in
/// elements, and how: everything but the decoder layers (the embeddings, the vision tower, the
/// final norm and the output projection, for the whole mini-batch) and two layers (the one
/// whose pass runs and the next, prefetched: `layer_prefetch`). Under LoRA, the trained
/// adapters whole.
fn gathered_for_update(size: &ModelSize, config: &TrainConfig, trained: u64) -> (u64, String) {
    if config.actor.lora.is_some() {
        return (trained, format!("{trained} trained adapter parameters"));
    }
    let layer = size.decoder_layer_params() as u64;
    let layers = size.text.num_hidden_layers as u64;
    let outside = trained.saturating_sub(layers * layer);
    let held = layers.min(2);
    (outside + held * layer, format!("({outside} outside the decoder layers + {held} layers × {layer})"))
}

/// Bytes in GiB.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use seethink_models::nn::LoraConfig;
    use seethink_models::ModelSize;

    use super::{KernelPath, MemoryPlan, Phase, Target};
    use crate::config::TrainConfig;

    /// The line `name` of `plan`, in bytes (0 when absent).
    fn bytes(plan: &MemoryPlan, name: &str) -> u64 {
        plan.components.iter().filter(|c| c.name == name).map(|c| c.bytes).max().unwrap_or(0)
    }

    #[test]
    fn frozen_weights_in_two_byte_floats_halve_the_reference_and_the_base_under_lora() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/real_configs/qwen2_5_vl_7b");
        let size = ModelSize::from_dir(&dir).unwrap();
        let params = size.params() as u64;
        let config: TrainConfig = ron::from_str("(model: \"m\", data: (train: \"d\"))").unwrap();
        let gpu = |frozen_bytes| Target {
            kernels: KernelPath::Generic,
            element_bytes: 4,
            compute_bytes: 4,
            frozen_bytes,
            threads: 1,
        };
        let (f32_plan, bf16_plan) =
            (MemoryPlan::new(&size, &config, gpu(4)), MemoryPlan::new(&size, &config, gpu(2)));
        assert_eq!(bytes(&f32_plan, "KL reference"), 4 * params);
        assert_eq!(bytes(&bf16_plan, "KL reference"), 2 * params);
        assert_eq!(bytes(&bf16_plan, "weights"), 4 * params, "the trained policy stays f32");
        assert_eq!(bytes(&f32_plan, "widened frozen matrix"), 0);
        let widened = bytes(&bf16_plan, "widened frozen matrix");
        assert_eq!(widened, (size.text.vocab_size * size.text.hidden_size * 4) as u64);
        let frozen_pass = |plan: &MemoryPlan| plan.phase_bytes(Phase::Frozen);
        assert_eq!(frozen_pass(&f32_plan) - frozen_pass(&bf16_plan), 2 * params - widened);

        let lora = TrainConfig {
            actor: crate::config::ActorConfig {
                lora: Some(LoraConfig { rank: 16, ..Default::default() }),
                ..config.actor
            },
            ..config
        };
        let adapters = (MemoryPlan::new(&size, &lora, gpu(4)).components[0].bytes - 4 * params) / 4;
        assert!(adapters > 0);
        assert_eq!(bytes(&MemoryPlan::new(&size, &lora, gpu(2)), "weights"), 2 * params + 4 * adapters);
        assert_eq!(bytes(&MemoryPlan::new(&size, &lora, gpu(2)), "AdamW moments"), 2 * 4 * adapters);

        // adapters on the vision tower and projector add weights, and train unless it is frozen
        let mut vision = lora.clone();
        let names = size.vision_linear_names().iter().map(|s| s.to_string()).collect();
        vision.actor.lora =
            Some(LoraConfig { rank: 16, vision_modules: names, projector: true, ..Default::default() });
        let more = bytes(&MemoryPlan::new(&size, &vision, gpu(2)), "weights") - (2 * params + 4 * adapters);
        assert!(more > 0 && more.is_multiple_of(4));
        let moments = |c: &TrainConfig| bytes(&MemoryPlan::new(&size, c, gpu(2)), "AdamW moments");
        assert_eq!(moments(&vision), 2 * (4 * adapters + more));
        vision.actor.freeze_vision = true;
        assert_eq!(moments(&vision), 2 * 4 * adapters, "a frozen tower's adapters take no AdamW state");
    }
}
