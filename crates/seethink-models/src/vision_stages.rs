//! A vision tower as a chain of stages, so that a trainer can keep only each block's input and
//! recompute one block at a time in backward (activation checkpointing per vision block, as
//! transformers' `gradient_checkpointing` does for the vision blocks of Qwen-VL and InternViT).
//!
//! For a batch's images the tower is
//! `x_0 = embed()`, `x_{i+1} = block_i(x_i)` for `i < blocks`, `features = head(x_blocks)`, and
//! `deepstack_i = tap_i(x_{i+1})` after the blocks that have a tap (Qwen3-VL's DeepStack
//! mergers), in block order. A model's forward pass runs [`run_stages`] of its stages
//! ([`Vlm::vision_features`](crate::Vlm::vision_features)), so the checkpointed path computes
//! exactly what the plain one does.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};

/// What a vision tower gives the language model for a batch's images: one row per image token,
/// and the DeepStack features (Qwen3-VL; one per tapped block, in block order).
#[derive(Clone, Debug)]
pub struct VisionFeatures<B: Backend> {
    /// `[image tokens, text hidden]`
    pub embeds: Tensor<B, 2>,
    /// One `[image tokens, text hidden]` per tapped block.
    pub deepstack: Vec<Tensor<B, 2>>,
}

/// One image batch's pass through a vision tower, stage by stage (see the module doc). The
/// stage tensors are `[batch, rows, hidden]` (Qwen-VL: one batch row of all patches; InternVL:
/// one row per tile).
pub trait VisionStages<B: Backend> {
    /// `x_0`: the patch embeddings with positions (and InternVL's class token).
    fn embed(&self) -> Tensor<B, 3>;

    /// The number of blocks.
    fn blocks(&self) -> usize;

    /// `x_{i+1} = block_i(x_i)`.
    fn block(&self, i: usize, x: Tensor<B, 3>) -> Tensor<B, 3>;

    /// The DeepStack features of block i's output `x_{i+1}`, where block i has a tap.
    fn tap(&self, i: usize, x: Tensor<B, 3>) -> Option<Tensor<B, 2>>;

    /// The image tokens' features of the last block's output.
    fn head(&self, x: Tensor<B, 3>) -> Tensor<B, 2>;

    /// Whether any of the tower's parameters trains (a frozen tower needs no backward pass).
    fn trains(&self) -> bool;
}

/// The tower's forward pass: every stage in order.
pub fn run_stages<B: Backend>(stages: &dyn VisionStages<B>) -> VisionFeatures<B> {
    let mut x = stages.embed();
    let mut deepstack = Vec::new();
    for i in 0..stages.blocks() {
        x = stages.block(i, x);
        deepstack.extend(stages.tap(i, x.clone()));
    }
    VisionFeatures { embeds: stages.head(x), deepstack }
}

/// Whether any float parameter of `module` requires a gradient.
pub fn trains<B: Backend, M: Module<B>>(module: &M) -> bool {
    struct AnyTrained(bool);
    impl<B: Backend> ModuleVisitor<B> for AnyTrained {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0 |= param.is_require_grad();
        }
    }
    let mut visitor = AnyTrained(false);
    module.visit(&mut visitor);
    visitor.0
}
