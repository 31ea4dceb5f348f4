//! Activation checkpointing per decoder layer (EasyR1's `enable_gradient_checkpointing`, which
//! has transformers recompute each decoder layer in backward): the trained pass keeps only
//! every layer's input, and recomputes one layer at a time to back-propagate through it.
//!
//! Memory at real sizes: without it, backward keeps what every op of every layer saved, about
//! 31 values per token and hidden unit per layer on the host kernels (47 GiB for one 4,096-token
//! sequence of Qwen2.5-VL-7B's 28 layers); with it, `(layers + 2) × tokens × hidden` kept inputs
//! and gradients (1.6 GiB there, in f32) and one layer's activations at a time (1.7 GiB), for
//! one more forward pass of the decoder (seethink-rl's memory plan counts both).
//!
//! How: the forward pass runs each layer on the inner backend (no graph), keeping its input
//! `x_l` for every decoder call of the pass (the shared prompt prefix and the continuations,
//! `scoring_calls::ScoringCalls`). Backward goes from the last layer down: with `g_{l+1} = ∂L/∂x_{l+1}`
//! known, layer l is recomputed with graph from a leaf copy of `x_l`, and
//! `Σ layer_l(x_l) · stopgrad(g_{l+1})` is back-propagated, which by the chain rule gives layer
//! l's parameter gradients and `g_l`. A layer's calls are recomputed together, since the
//! continuation attends to the prefix's keys and values of the same layer. Deepstack features
//! added after layer l get `g_{l+1}` (the addition passes it through unchanged); the last step
//! rebuilds the decoder input with graph (the embeddings run again; the vision features are
//! leaves, `vision_checkpoints`) and back-propagates `Σ embeds · g_0 + Σ deepstack_l · g_{l+1}`
//! through it, then the vision tower block by block from the features' gradients.
//!
//! Why rebuilt, not kept: with the decoder input's graph alive through the layers' backward
//! passes, burn-autodiff 0.21's clean-up after a backward pass dropped part of that graph at
//! random (its order follows a hash map's), so the embeddings' and vision tower's gradients
//! came out short in some runs and not others (`tests/options.rs` checks four micro-batches
//! three times). Every backward pass here now runs on a graph that nothing else holds.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Tensor};
use seethink_models::kernels::Kernels;
use seethink_models::nn::Rope;
use seethink_models::text::{DecoderInput, DecoderLayer};
use seethink_models::{KvCache, Vlm};

use crate::data_parallel::Worker;
use crate::error::Result;
use crate::gradient_sink::GradientSink;
use crate::layer_prefetch::{backward_layers, forward_layers, idle_layers};
use crate::scoring_calls::{ResponsePositions, ScoringCalls};
use crate::train_backend::TrainBackend;
use crate::vision_checkpoints::VisionCheckpoints;
use crate::weighted_sum::weighted_sum;

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
    /// checkpoints when every response is empty (no decoder call). With the weights sharded,
    /// `worker` gathers each layer before it runs, the next one while it runs
    /// (`layer_prefetch`).
    pub fn forward<M: Vlm<B>>(
        model: &M,
        calls: &ScoringCalls<B>,
        worker: &Worker,
    ) -> Result<(ResponsePositions<B>, Option<Self>)> {
        if calls.continuation.is_none() {
            gather_each_layer(model, worker)?;
            return Ok((calls.positions(calls.empty_hidden(model)), None));
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
        forward_layers(model, worker, |l, layer| {
            kept.push(xs.clone());
            xs = layer_over_calls(&layer.valid(), std::mem::take(&mut xs), &tables, rows);
            for (x, input) in xs.iter_mut().zip(&inputs) {
                if let Some(extra) = input.deepstack.get(l) {
                    *x = x.clone() + extra.clone().inner();
                }
            }
            Ok(())
        })?;
        let last = Tensor::from_inner(xs.pop().expect("the continuation is a decoder call")).require_grad();
        let hidden = calls.scoring_columns(decoder.norm.forward(last.clone()));
        Ok((calls.positions(hidden), Some(Self { inputs: kept, last })))
    }

    /// Adds to `sink` the gradients of every parameter below the final norm, given the
    /// gradients `grads` of the pass above it (the scoring hidden states' backward, whose
    /// parameter gradients the caller adds): layer by layer from the last, recomputing each
    /// (see the module doc) and handing each layer's gradients over as soon as they are
    /// complete ([`GradientSink::add_layer`]; each layer gathered again, the next one in
    /// flight, when the weights are sharded), then the embeddings, on the decoder input
    /// `with_graph` rebuilds, and the vision tower block by block from `vision`'s checkpoints
    /// where the decoder input holds its features as leaves.
    pub fn backward<M: Vlm<B> + AutodiffModule<B>>(
        self,
        model: &M,
        calls: &ScoringCalls<B>,
        grads: &B::Gradients,
        sink: &mut GradientSink<M>,
        with_graph: impl FnOnce() -> seethink_models::Result<ScoringCalls<B>>,
        vision: Option<VisionCheckpoints<'_, B>>,
    ) -> Result<()> {
        let decoder = model.decoder().0;
        let (inputs, rows) = call_inputs(calls);
        let tables: Vec<_> = inputs.iter().map(|i| (&i.rope, &i.blocked)).collect();
        let continuation = inputs.len() - 1;
        // ∂L/∂(each call's output of the layer above); the prefix's last output is unused
        let mut upstream: Vec<Option<Tensor<Inner<B>, 3>>> = vec![None; inputs.len()];
        upstream[continuation] = self.last.grad(grads);
        // ∂L/∂(deepstack features added after layer l) = g_{l+1}, per call
        let mut deepstack_grads: Vec<Vec<Option<Tensor<Inner<B>, 3>>>> = Vec::new();
        backward_layers(model, sink, |l, layer| {
            if inputs.iter().any(|input| input.deepstack.get(l).is_some()) {
                deepstack_grads.push(upstream.clone());
            }
            let xs: Vec<Tensor<B, 3>> =
                self.inputs[l].iter().map(|x| Tensor::from_inner(x.clone()).require_grad()).collect();
            let ys = layer_over_calls(layer, xs.clone(), &tables, rows);
            Ok(match weighted_sum(ys.into_iter().zip(&upstream)) {
                Some(surrogate) => {
                    let layer_grads = surrogate.backward();
                    upstream = xs.iter().map(|x| x.grad(&layer_grads)).collect();
                    GradientsParams::from_grads(layer_grads, layer)
                }
                // no gradient reaches this layer: none to hand over, but the same hand-over
                None => GradientsParams::new(),
            })
        })?;
        let fresh = with_graph()?;
        let (inputs, _) = call_inputs(&fresh);
        let embeds = inputs.iter().map(|i| i.embeds.clone()).zip(&upstream);
        if let Some(below) = weighted_sum(embeds) {
            // a zero leaf with graph, so that the sum has a graph (and a backward pass) even
            // when nothing below the layers is trained
            let tracked = Tensor::<B, 1>::zeros([1], &below.device()).cast(below.dtype()).require_grad();
            // the deepstack features of layer l, from the last layer down as collected
            let layers_with_deepstack = (0..decoder.layers.len())
                .rev()
                .filter(|&l| inputs.iter().any(|i| i.deepstack.get(l).is_some()));
            let deepstack = layers_with_deepstack.zip(&deepstack_grads).filter_map(|(l, grads)| {
                let terms = inputs
                    .iter()
                    .zip(grads)
                    .filter_map(|(input, g)| Some((input.deepstack.get(l)?.clone(), g)));
                weighted_sum(terms)
            });
            let below = deepstack.fold(below + tracked, |sum, term| sum + term).backward();
            match vision {
                Some(vision) => vision.backward(model, below, sink)?,
                None => sink.add(model, GradientsParams::from_grads(below, model)),
            }
        }
        Ok(())
    }
}

/// The gathers of a forward pass through `model`'s decoder layers with nothing run: what a
/// worker with no decoder call in a micro-batch (or no micro-batch) does, so that it makes the
/// exchanges the others make when the weights are sharded; nothing otherwise.
pub(crate) fn gather_each_layer<B: TrainBackend, M: Vlm<B>>(model: &M, worker: &Worker) -> Result<()> {
    forward_layers(model, worker, |_, _| Ok(()))
}

/// A micro-batch this worker does not have but another does (the mini-batch's micro-batches do
/// not divide evenly): the exchanges of one with no gradients, when `sink` exchanges any.
pub fn idle_micro_batch<B: TrainBackend, M: Vlm<B> + AutodiffModule<B>>(
    model: &M,
    sink: &mut GradientSink<'_, M>,
) -> Result<()> {
    let (sharded, per_layer) = sink.exchanges();
    if !sharded {
        return Ok(());
    }
    if per_layer {
        gather_each_layer(model, sink.worker())?;
    }
    sink.output_projection_done(model)?;
    idle_layers(model, sink)?;
    sink.end_micro_batch(model)
}
