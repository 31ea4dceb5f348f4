//! Activation checkpointing per decoder layer (EasyR1's `enable_gradient_checkpointing`, which
//! has transformers recompute each decoder layer in backward): the trained pass keeps only
//! every layer's input, and recomputes one layer at a time to back-propagate through it.
//!
//! Memory at real sizes: without it, backward keeps what every op of every layer saved, about
//! 31 values per token and hidden unit per layer on the host kernels (47 GiB for one 4,096-token
//! sequence of Qwen2.5-VL-7B's 28 layers); with it, `(layers + 2) × tokens × hidden` kept inputs
//! and gradients (1.6 GiB there, in f32) and one layer's activations at a time (1.7 GiB), for
//! one more forward pass of the decoder ([`crate::plan`] counts both).
//!
//! How: the forward pass runs each layer on the inner backend (no graph), keeping its input
//! `x_l` for every decoder call of the pass (the shared prompt prefix and the continuations,
//! `logprobs::ScoringCalls`). Backward goes from the last layer down: with `g_{l+1} = ∂L/∂x_{l+1}`
//! known, layer l is recomputed with graph from a leaf copy of `x_l`, and
//! `Σ layer_l(x_l) · stopgrad(g_{l+1})` is back-propagated, which by the chain rule gives layer
//! l's parameter gradients and `g_l`. A layer's calls are recomputed together, since the
//! continuation attends to the prefix's keys and values of the same layer. Deepstack features
//! added after layer l get `g_{l+1}` (the addition passes it through unchanged); the last step
//! back-propagates `Σ embeds · g_0 + Σ deepstack_l · g_{l+1}` through the embeddings and the
//! vision tower, whose graph is kept from the forward pass (not checkpointed).

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Bool, Tensor};
use seethink_models::kernels::Kernels;
use seethink_models::nn::Rope;
use seethink_models::text::{DecoderInput, DecoderLayer};
use seethink_models::{KvCache, Vlm};

use crate::logprobs::{ResponsePositions, ScoringCalls};
use crate::train_backend::TrainBackend;

type Inner<B> = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// The inputs of every decoder layer of one trained pass, kept without graph, and the leaf the
/// final norm was applied to.
pub(crate) struct LayerCheckpoints<B: TrainBackend> {
    /// `inputs[l][c]`: the input of layer l in decoder call c (prefix first, if any).
    inputs: Vec<Vec<Tensor<Inner<B>, 3>>>,
    /// The last layer's output for the continuation, the leaf the scoring hidden states
    /// are computed from.
    last: Tensor<B, 3>,
}

/// The decoder calls of `calls` in order (the prefix first, if any) and the rows the first
/// call's keys and values are repeated to before the second attends to them.
fn call_inputs<B: Kernels>(calls: &ScoringCalls<B>) -> (Vec<&DecoderInput<B>>, Option<&[usize]>) {
    let prefix = calls.prefix.as_ref();
    let inputs = prefix.map(|(p, _)| p).into_iter().chain(calls.continuation.as_ref()).collect();
    (inputs, prefix.map(|(_, rows)| rows.as_slice()))
}

/// `layer` over the decoder calls `xs` in order, each with its rotary tables and mask; after the
/// first call of two, its keys and values are repeated to `rows` for the second to attend to.
fn layer_over_calls<K: Kernels>(
    layer: &DecoderLayer<K>,
    xs: Vec<Tensor<K, 3>>,
    tables: &[(&Rope<K>, &Tensor<K, 4, Bool>)],
    rows: Option<&[usize]>,
) -> Vec<Tensor<K, 3>> {
    let mut cache = KvCache::new(1);
    let mut out = Vec::with_capacity(xs.len());
    for (c, (x, (rope, blocked))) in xs.into_iter().zip(tables).enumerate() {
        if let (1, Some(rows)) = (c, rows) {
            cache = cache.select_rows(rows);
        }
        out.push(layer.forward(x, rope, blocked, Some((&mut cache, 0))));
    }
    out
}

impl<B: TrainBackend> LayerCheckpoints<B> {
    /// The forward pass of `calls` without graph through the layers, keeping each layer's
    /// inputs: returns the scoring positions (their hidden states have graph only through
    /// the final norm, from [`LayerCheckpoints::last`]) and the checkpoints. `None` for the
    /// checkpoints when every response is empty (no decoder call).
    pub fn forward<M: Vlm<B>>(model: &M, calls: &ScoringCalls<B>) -> (ResponsePositions<B>, Option<Self>) {
        if calls.continuation.is_none() {
            return (calls.positions(calls.empty_hidden(model)), None);
        }
        let decoder = model.decoder().0;
        let (inputs, rows) = call_inputs(calls);
        let ropes: Vec<Rope<Inner<B>>> = inputs
            .iter()
            .map(|i| Rope { cos: i.rope.cos.clone().inner(), sin: i.rope.sin.clone().inner() })
            .collect();
        let blocked: Vec<Tensor<Inner<B>, 4, Bool>> =
            inputs.iter().map(|i| i.blocked.clone().inner()).collect();
        let tables: Vec<_> = ropes.iter().zip(&blocked).collect();
        let mut xs: Vec<Tensor<Inner<B>, 3>> = inputs.iter().map(|i| i.embeds.clone().inner()).collect();
        let mut kept = Vec::with_capacity(decoder.layers.len());
        for (l, layer) in decoder.layers.iter().enumerate() {
            kept.push(xs.clone());
            xs = layer_over_calls(&layer.valid(), xs, &tables, rows);
            for (x, input) in xs.iter_mut().zip(&inputs) {
                if let Some(extra) = input.deepstack.get(l) {
                    *x = x.clone() + extra.clone().inner();
                }
            }
        }
        let last = Tensor::from_inner(xs.pop().expect("the continuation is a decoder call")).require_grad();
        let hidden = calls.scoring_columns(decoder.norm.forward(last.clone()));
        (calls.positions(hidden), Some(Self { inputs: kept, last }))
    }

    /// Adds to `accumulator` the gradients of every parameter below the final norm, given the
    /// gradients `grads` of the pass above it (the scoring hidden states' backward, whose
    /// parameter gradients the caller accumulates): layer by layer from the last, recomputing
    /// each (see the module doc), then the embeddings and the vision tower.
    pub fn backward<M: Vlm<B> + AutodiffModule<B>>(
        self,
        model: &M,
        calls: &ScoringCalls<B>,
        grads: &B::Gradients,
        accumulator: &mut GradientsAccumulator<M>,
    ) {
        let decoder = model.decoder().0;
        let (inputs, rows) = call_inputs(calls);
        let tables: Vec<_> = inputs.iter().map(|i| (&i.rope, &i.blocked)).collect();
        let continuation = inputs.len() - 1;
        // ∂L/∂(each call's output of the layer above); the prefix's last output is unused
        let mut upstream: Vec<Option<Tensor<Inner<B>, 3>>> = vec![None; inputs.len()];
        upstream[continuation] = self.last.grad(grads);
        let mut deepstack_terms: Vec<Tensor<B, 1>> = Vec::new();
        for (l, layer) in decoder.layers.iter().enumerate().rev() {
            for (input, g) in inputs.iter().zip(&upstream) {
                if let (Some(extra), Some(g)) = (input.deepstack.get(l), g) {
                    deepstack_terms.push((extra.clone() * Tensor::from_inner(g.clone())).sum());
                }
            }
            let xs: Vec<Tensor<B, 3>> =
                self.inputs[l].iter().map(|x| Tensor::from_inner(x.clone()).require_grad()).collect();
            let ys = layer_over_calls(layer, xs.clone(), &tables, rows);
            let Some(surrogate) = weighted_sum(ys.into_iter().zip(&upstream)) else {
                return;
            };
            let layer_grads = surrogate.backward();
            upstream = xs.iter().map(|x| x.grad(&layer_grads)).collect();
            accumulator.accumulate(model, GradientsParams::from_grads(layer_grads, model));
        }
        let embeds = inputs.iter().map(|i| i.embeds.clone()).zip(&upstream);
        if let Some(below) = weighted_sum(embeds) {
            // a zero leaf with graph, so that the sum has a graph (and a backward pass) even
            // when nothing below the layers is trained
            let tracked = Tensor::<B, 1>::zeros([1], &below.device()).require_grad();
            let below = deepstack_terms.into_iter().fold(below + tracked, |sum, term| sum + term);
            accumulator.accumulate(model, GradientsParams::from_grads(below.backward(), model));
        }
    }
}

/// `Σ_c Σ y_c · stopgrad(g_c)` over the calls whose gradient `g_c` is known; `None` if none is.
fn weighted_sum<'a, B: TrainBackend>(
    terms: impl Iterator<Item = (Tensor<B, 3>, &'a Option<Tensor<Inner<B>, 3>>)>,
) -> Option<Tensor<B, 1>> {
    terms
        .filter_map(|(y, g)| g.as_ref().map(|g| (y * Tensor::from_inner(g.clone())).sum()))
        .reduce(|a, b| a + b)
}
