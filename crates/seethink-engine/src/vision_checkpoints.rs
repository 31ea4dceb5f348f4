//! Activation checkpointing per vision block, beside the decoder layers' (`layer_checkpoints`;
//! EasyR1's `enable_gradient_checkpointing` has transformers recompute the vision blocks too):
//! the trained pass keeps only each block's input and recomputes one block at a time in
//! backward.
//!
//! Memory at real sizes: without it, backward keeps what every op of every block saved, about
//! 30 values per patch and hidden unit per block (Qwen2.5-VL-7B's 32 blocks of 1,280 on the
//! 3,920 patches of a 1,003,520-pixel image, EasyR1's `max_pixels`: 18 GiB in f32); with it,
//! `(blocks + 1) × patches × hidden` kept inputs (0.6 GiB there) and one block's activations
//! at a time (seethink-rl's memory plan counts both).
//!
//! How, with the tower's stages `x_0 = embed()`, `x_{i+1} = block_i(x_i)`, `taps_i(x_{i+1})`,
//! `features = head(x_n)` ([`seethink_models::vision_stages`]):
//! - forward: the stages run on the inner backend (no graph), keeping every `x_i`; the features
//!   and DeepStack taps enter the decoder input as leaves
//!   ([`ImageInput::with_features`]), so the decoder input's graph ends at them;
//! - backward: from the leaves' gradients `g_f` (and `g_t` of each tap), the head is recomputed
//!   from a leaf copy of `x_n` and `head(x_n) · stopgrad(g_f)` back-propagated, which gives the
//!   merger's gradients and `g_n = ∂L/∂x_n`; then from the last block down, block i is
//!   recomputed and `block_i(x_i) · stopgrad(g_{i+1}) + tap_i(block_i(x_i)) · stopgrad(g_t)`
//!   back-propagated, giving its (and its tap's) gradients and `g_i`; last,
//!   `embed() · stopgrad(g_0)` gives the patch embedding's.
//!
//! A tower that trains nothing (`actor.freeze_vision`) runs once without graph, and nothing of it
//! is kept.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use seethink_models::{ImageInput, VisionFeatures, VisionStages, Vlm};

use crate::error::Result;
use crate::gradient_sink::GradientSink;
use crate::train_backend::TrainBackend;
use crate::weighted_sum::weighted_sum;

type Inner<B> = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// The inputs of every vision block of one trained pass, kept without graph, and the features
/// the decoder input was given as leaves.
pub(crate) struct VisionCheckpoints<'a, B: TrainBackend> {
    /// The tower's stages with graph, for the recomputations.
    stages: Box<dyn VisionStages<B> + 'a>,
    /// `inputs[i] = x_i` for every block i, then the last block's output `x_n`.
    inputs: Vec<Tensor<Inner<B>, 3>>,
    /// The leaves the decoder input holds.
    features: VisionFeatures<B>,
}

impl<'a, B: TrainBackend> VisionCheckpoints<'a, B> {
    /// `images` through `model`'s vision tower without graph, keeping each block's input:
    /// returns the images with their features attached (leaves where the tower trains) and the
    /// checkpoints (`None` where the tower trains nothing).
    pub fn forward<M>(model: &'a M, images: ImageInput<B>) -> Result<(ImageInput<B>, Option<Self>)>
    where
        M: Vlm<B> + AutodiffModule<B>,
        M::InnerModule: Vlm<Inner<B>>,
    {
        let stages = model.vision_stages(&images)?;
        let inner_model = model.valid();
        let pixels = ImageInput { features: None, ..images.clone() }.map_pixels(|t| t.inner());
        let inner = inner_model.vision_stages(&pixels)?;
        let mut x = inner.embed();
        let mut inputs = Vec::with_capacity(inner.blocks() + 1);
        let mut taps = Vec::new();
        for i in 0..inner.blocks() {
            inputs.push(x.clone());
            x = inner.block(i, x);
            taps.extend(inner.tap(i, x.clone()));
        }
        let embeds = inner.head(x.clone());
        inputs.push(x);
        let trains = stages.trains();
        let leaf = |t: Tensor<Inner<B>, 2>| match trains {
            true => Tensor::from_inner(t).require_grad(),
            false => Tensor::from_inner(t),
        };
        let features =
            VisionFeatures { embeds: leaf(embeds), deepstack: taps.into_iter().map(leaf).collect() };
        let images = images.with_features(features.clone());
        Ok((images, trains.then_some(Self { stages, inputs, features })))
    }

    /// Adds to `sink` the gradients `grads` of the pass below the decoder layers (the decoder
    /// input built on the features' leaves), then the vision tower's, block by block from the
    /// last (see the module doc).
    pub fn backward<M: AutodiffModule<B>>(
        self,
        model: &M,
        grads: B::Gradients,
        sink: &mut GradientSink<M>,
    ) -> Result<()> {
        let features_grad = self.features.embeds.grad(&grads);
        let mut tap_grads: Vec<_> = self.features.deepstack.iter().map(|t| t.grad(&grads)).collect();
        sink.add(model, GradientsParams::from_grads(grads, model));
        let stages = self.stages;
        let mut inputs = self.inputs;
        let leaf = |x: Tensor<Inner<B>, 3>| Tensor::<B, 3>::from_inner(x).require_grad();
        // back-propagates `sum` (where some gradient reached it), hands the parameters'
        // gradients to the sink and returns the stage input's
        let pull = |sink: &mut GradientSink<M>, x: Option<Tensor<B, 3>>, sum: Option<Tensor<B, 1>>| {
            let sum = sum?;
            let grads = sum.backward();
            let upstream = x.and_then(|x| x.grad(&grads));
            sink.add(model, GradientsParams::from_grads(grads, model));
            upstream
        };
        let last = leaf(inputs.pop().expect("the last block's output"));
        let head = weighted_sum(std::iter::once((stages.head(last.clone()), &features_grad)));
        let mut upstream = pull(sink, Some(last), head);
        for i in (0..stages.blocks()).rev() {
            let x = leaf(inputs.pop().expect("one input per block"));
            let y = stages.block(i, x.clone());
            let tap = stages.tap(i, y.clone()).map(|t| (t, tap_grads.pop().expect("one feature per tap")));
            let through_block = weighted_sum(std::iter::once((y, &upstream)));
            let through_tap = tap.and_then(|(t, g)| weighted_sum(std::iter::once((t, &g))));
            let sum = match (through_block, through_tap) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            upstream = pull(sink, Some(x), sum);
        }
        pull(sink, None, weighted_sum(std::iter::once((stages.embed(), &upstream))));
        Ok(())
    }
}
