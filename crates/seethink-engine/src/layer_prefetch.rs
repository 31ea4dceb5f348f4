//! The decoder layers of a trained pass in the order they run, each gathered before it is
//! needed when the weights are sharded (`trainer.sharding: Weights`, [`crate::weight_shards`]):
//! while layer l runs, another thread gathers the layer that runs next, so that the exchange
//! overlaps the compute wherever the backend lets two threads work at once. Unsharded, each
//! layer is the model's own and nothing travels.
//!
//! Every worker makes the same exchanges in the same order, and a worker never has two in
//! flight at once (its collective pairs them with the others' by order):
//! - forward, layer 0 up: `gather(0)`, then `gather(l + 1)` in flight while layer l runs;
//! - backward, the last layer down: `gather(L − 1)`, then `gather(l − 1)` in flight while layer
//!   l's recomputed pass runs, finished before layer l's gradients are summed to their owners
//!   ([`GradientSink::add_layer`]).
//!
//! A worker with nothing to compute (no decoder call in a pass, or a micro-batch it does not
//! have) runs the same schedule with empty layers' work ([`GradientSink::idle_layers`],
//! `layer_checkpoints::gather_each_layer`).

use std::thread::{Scope, ScopedJoinHandle};

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use seethink_models::text::DecoderLayer;
use seethink_models::Vlm;

use crate::data_parallel::Worker;
use crate::error::Result;
use crate::gradient_sink::GradientSink;
use crate::train_backend::TrainBackend;

/// `run(l, layer l)` for every decoder layer of `model` from the first, each gathered by
/// `worker` (the next one's gather in flight while `run` computes; see the module doc).
pub(crate) fn forward_layers<B: TrainBackend, M: Vlm<B>>(
    model: &M,
    worker: &Worker,
    mut run: impl FnMut(usize, DecoderLayer<B>) -> Result<()>,
) -> Result<()> {
    let layers = &model.decoder().0.layers;
    if !worker.shards_weights() {
        return layers.iter().enumerate().try_for_each(|(l, layer)| run(l, layer.clone()));
    }
    std::thread::scope(|scope| {
        let gather = |l: usize| gather_on(scope, worker, &layers[l]);
        let mut next = (!layers.is_empty()).then(|| gather(0));
        for l in 0..layers.len() {
            let layer = joined(next.take().expect("a gather per layer"))?;
            next = (l + 1 < layers.len()).then(|| gather(l + 1));
            run(l, layer)?;
        }
        Ok(())
    })
}

/// For every decoder layer of `model` from the last: `run(l, layer l)` gives the layer's
/// gradients, which go to `sink` ([`GradientSink::add_layer`]); each layer gathered by the
/// sink's worker, the next one's gather in flight while `run` computes and finished before
/// the layer's gradients are exchanged (see the module doc).
pub(crate) fn backward_layers<B: TrainBackend, M: Vlm<B> + AutodiffModule<B>>(
    model: &M,
    sink: &mut GradientSink<M>,
    mut run: impl FnMut(usize, &DecoderLayer<B>) -> Result<GradientsParams>,
) -> Result<()> {
    let layers = &model.decoder().0.layers;
    let worker = sink.worker();
    if !worker.shards_weights() {
        for (l, layer) in layers.iter().enumerate().rev() {
            let grads = run(l, layer)?;
            sink.add_layer(model, layer, grads)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let gather = |l: usize| gather_on(scope, worker, &layers[l]);
        let mut ready = match layers.len() {
            0 => None,
            count => Some(joined(gather(count - 1))?),
        };
        for l in (0..layers.len()).rev() {
            let layer = ready.take().expect("a gather per layer");
            let pending = (l > 0).then(|| gather(l - 1));
            let grads = run(l, &layer);
            // the next layer's gather ends before this layer's gradients travel
            ready = pending.map(joined).transpose()?;
            sink.add_layer(model, &layer, grads?)?;
        }
        Ok(())
    })
}

/// `layer` gathered by `worker` on a thread of `scope`.
fn gather_on<'scope, B: TrainBackend>(
    scope: &'scope Scope<'scope, '_>,
    worker: &Worker,
    layer: &DecoderLayer<B>,
) -> ScopedJoinHandle<'scope, Result<DecoderLayer<B>>> {
    let (worker, layer) = (worker.clone(), layer.clone());
    scope.spawn(move || worker.gather_weights(layer))
}

/// The layer a gather thread returns; its panic as this thread's.
fn joined<B: TrainBackend>(gather: ScopedJoinHandle<'_, Result<DecoderLayer<B>>>) -> Result<DecoderLayer<B>> {
    match gather.join() {
        Ok(layer) => layer,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The exchanges of the decoder layers' groups with no gradients, from the last layer down
/// (with the weights sharded, each layer gathered as a recomputed pass gathers them): for a
/// trained pass with no decoder call (every response empty), so that this worker makes the
/// exchanges the others make; nothing unless `sink` exchanges a layer at a time.
pub(crate) fn idle_layers<B: TrainBackend, M: Vlm<B> + AutodiffModule<B>>(
    model: &M,
    sink: &mut GradientSink<'_, M>,
) -> Result<()> {
    match sink.exchanges() {
        (true, true) => backward_layers(model, sink, |_, _| Ok(GradientsParams::new())),
        _ => Ok(()),
    }
}
