//! The Qwen vision transformer, one module with the flags of both families.
//!
//! Qwen2.5-VL: patch embedding without bias, RMSNorm blocks with a SiLU-gated MLP, window
//! attention except in `fullatt_block_indexes` (patches permuted into window order and back).
//! Qwen3-VL: patch embedding with bias plus a learned position table bilinearly interpolated to
//! the grid, LayerNorm blocks with a GELU(tanh) MLP, full attention per image, and DeepStack
//! mergers whose outputs are added to the LLM hidden states.

mod block;
pub mod layout;

use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

pub use block::{PatchMerger, VisionBlock};
pub use layout::GridThw;

use crate::checkpoint::Checkpoint;
use crate::error::{ModelError, Result};
use crate::families::qwen_vl::config::{QwenVersion, VisionConfig};
use crate::kernels::Kernels;
use crate::nn::frozen::float_dtype;
use crate::nn::{vision_rope, Linear, LoraSite, Rope, Segments};
use crate::vision_stages::{trains, VisionStages};

/// The vision tower.
#[derive(Module, Debug)]
pub struct QwenVision<B: Backend> {
    /// The Conv3d patch embedding with stride = kernel, as a matmul over flattened patches.
    pub patch_embed: Linear<B>,
    /// Qwen3-VL's learned position table (`side²` rows).
    pub pos_embed: Option<Embedding<B>>,
    pub blocks: Vec<VisionBlock<B>>,
    pub merger: PatchMerger<B>,
    pub deepstack_mergers: Vec<PatchMerger<B>>,
    #[module(skip)]
    pub config: VisionConfig,
}

impl<B: Backend> QwenVision<B> {
    /// The linear layers LoRA can adapt: every block's (vision), then the merger's and the
    /// DeepStack mergers' (projector), at their module paths under `model.visual` (the patch
    /// embedding, a convolution in transformers, is not one).
    pub fn lora_sites_mut(&mut self, version: QwenVersion) -> Vec<LoraSite<'_, B>> {
        let blocks = self.blocks.iter_mut().enumerate();
        let mut sites: Vec<_> =
            blocks.flat_map(|(i, block)| block.lora_sites_mut("model.visual.blocks", i)).collect();
        sites.extend(self.merger.lora_sites_mut(version, "model.visual.merger", None));
        for (i, merger) in self.deepstack_mergers.iter_mut().enumerate() {
            sites.extend(merger.lora_sites_mut(version, "model.visual.deepstack_merger_list", Some(i)));
        }
        sites
    }
}

impl<B: Kernels> QwenVision<B> {
    /// Loads `model.visual.*`.
    pub fn load(
        ckpt: &Checkpoint,
        version: QwenVersion,
        c: &VisionConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let p = "model.visual";
        let patch_name = format!("{p}.patch_embed.proj");
        let kernel = [c.hidden_size, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size];
        let weight = ckpt.matrix_transposed(&format!("{patch_name}.weight"), &kernel, device)?;
        let bias = match version {
            QwenVersion::Qwen3Vl => Some(Param::from_tensor(ckpt.tensor(
                &format!("{patch_name}.bias"),
                [c.hidden_size],
                device,
            )?)),
            QwenVersion::Qwen2_5Vl => None,
        };
        let pos_embed = match version {
            QwenVersion::Qwen3Vl => {
                let table = ckpt.tensor(
                    &format!("{p}.pos_embed.weight"),
                    [c.num_position_embeddings, c.hidden_size],
                    device,
                )?;
                Some(Embedding { weight: Param::from_tensor(table) })
            }
            QwenVersion::Qwen2_5Vl => None,
        };
        let blocks = (0..c.depth)
            .map(|i| VisionBlock::load(ckpt, &format!("{p}.blocks.{i}"), version, c, device))
            .collect::<Result<Vec<_>>>()?;
        let merger = PatchMerger::load(ckpt, &format!("{p}.merger"), version, false, c, device)?;
        let deepstack_mergers = (0..c.deepstack_visual_indexes.len())
            .map(|i| {
                PatchMerger::load(ckpt, &format!("{p}.deepstack_merger_list.{i}"), version, true, c, device)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_embed: Linear { weight: Param::from_tensor(weight), bias, lora: None },
            pos_embed,
            blocks,
            merger,
            deepstack_mergers,
            config: c.clone(),
        })
    }

    /// The tower's stages for `pixel_values [patches, patch_dim]` of images with grids `grids`
    /// ([`crate::vision_stages`]): the rotary tables, attention segments and window order are
    /// computed once here.
    pub fn stages(&self, pixel_values: Tensor<B, 2>, grids: &[GridThw]) -> Result<QwenStages<'_, B>> {
        let c = &self.config;
        let merge = c.spatial_merge_size;
        let unit = merge * merge;
        let patches = layout::validate_grids(grids, merge)?;
        let [rows, dim] = pixel_values.dims();
        if rows != patches || dim != c.patch_dim() {
            return Err(ModelError::Input(format!(
                "pixel_values has shape [{rows}, {dim}], grids {grids:?} need [{patches}, {}]",
                c.patch_dim()
            )));
        }
        let device = pixel_values.device();
        // pixels come in the backend's float type; the tower computes in its norms' type
        let dtype = self.merger.norm.dtype();
        let positions = self
            .pos_embed
            .as_ref()
            .map(|table| interpolated_positions(table, grids, merge, &device).cast(dtype));
        let mut rows_cols = layout::patch_rows_cols(grids, merge);
        let full_segments = layout::frame_segments(grids);
        let window_size = c.window_size / merge / c.patch_size;
        let windows = (window_size > 0).then(|| layout::windows(grids, merge, window_size));
        if let Some(w) = &windows {
            rows_cols = w.order.iter().flat_map(|&u| rows_cols[u * unit..(u + 1) * unit].to_vec()).collect();
        }
        let rope = vision_rope::<B>(&rows_cols, c.hidden_size / c.num_heads, &device).cast(dtype);
        Ok(QwenStages {
            tower: self,
            pixels: pixel_values.cast(dtype),
            positions,
            rope,
            per_frame: Segments::new(&full_segments, &device),
            per_window: windows.as_ref().map(|w| Segments::new(&w.segments, &device)),
            window_order: windows.map(|w| w.order),
            unit,
        })
    }
}

/// [`QwenVision`]'s stages for one batch of images ([`QwenVision::stages`]).
pub struct QwenStages<'a, B: Backend> {
    tower: &'a QwenVision<B>,
    /// `[patches, patch_dim]` in the tower's compute type.
    pixels: Tensor<B, 2>,
    /// Qwen3-VL's interpolated position embeddings, `[patches, hidden]`.
    positions: Option<Tensor<B, 2>>,
    rope: Rope<B>,
    per_frame: Segments<B>,
    /// Qwen2.5-VL's window attention: the windows' segments and their units' order.
    per_window: Option<Segments<B>>,
    window_order: Option<Vec<usize>>,
    /// Patches merged into one token.
    unit: usize,
}

/// `[1, rows, d]` → `[rows, d]`.
fn rows<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 2> {
    let [_, n, d] = x.dims();
    x.reshape([n, d])
}

/// `[rows, d]` → `[1, rows, d]`.
fn batch_of_one<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 3> {
    x.unsqueeze()
}

impl<B: Kernels> VisionStages<B> for QwenStages<'_, B> {
    fn embed(&self) -> Tensor<B, 3> {
        let mut x = self.tower.patch_embed.forward(self.pixels.clone());
        if let Some(positions) = &self.positions {
            x = x + positions.clone();
        }
        if let Some(order) = &self.window_order {
            x = permute_units(x, order, self.unit);
        }
        batch_of_one(x)
    }

    fn blocks(&self) -> usize {
        self.tower.blocks.len()
    }

    fn block(&self, i: usize, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let segments = match &self.per_window {
            Some(windows) if !self.tower.config.fullatt_block_indexes.contains(&i) => windows,
            _ => &self.per_frame,
        };
        batch_of_one(self.tower.blocks[i].forward(rows(x), &self.rope, segments))
    }

    fn tap(&self, i: usize, x: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        let k = self.tower.config.deepstack_visual_indexes.iter().position(|&d| d == i)?;
        Some(self.tower.deepstack_mergers[k].forward(rows(x), self.unit))
    }

    fn head(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let embeds = self.tower.merger.forward(rows(x), self.unit);
        match &self.window_order {
            Some(order) => {
                let mut inverse = vec![0; order.len()];
                for (position, &token) in order.iter().enumerate() {
                    inverse[token] = position;
                }
                select_rows(embeds, &inverse)
            }
            None => embeds,
        }
    }

    fn trains(&self) -> bool {
        trains(self.tower)
    }
}

/// Reorders groups of `unit` consecutive rows: group p of the result is group `order[p]` of `x`.
fn permute_units<B: Backend>(x: Tensor<B, 2>, order: &[usize], unit: usize) -> Tensor<B, 2> {
    let [rows, dim] = x.dims();
    let grouped = x.reshape([rows / unit, unit * dim]);
    select_rows(grouped, order).reshape([rows, dim])
}

/// Rows `indices` of `x`, in that order.
fn select_rows<B: Backend>(x: Tensor<B, 2>, indices: &[usize]) -> Tensor<B, 2> {
    let device = x.device();
    let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [indices.len()]), &device);
    x.select(0, idx)
}

/// `Σ_k w_k · table[tap_k]` per patch: the table bilinearly interpolated to each grid.
fn interpolated_positions<B: Backend>(
    table: &Embedding<B>,
    grids: &[GridThw],
    merge: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    // a frozen table may be stored narrower (`nn::frozen`)
    let weight = table.weight.val().cast(float_dtype::<B>());
    let side = (weight.dims()[0] as f64).sqrt() as usize;
    let (taps, weights) = layout::bilinear_taps(grids, merge, side);
    let n = taps.len();
    (0..4)
        .map(|k| {
            let idx: Vec<usize> = taps.iter().map(|t| t[k]).collect();
            let w: Vec<f32> = weights.iter().map(|w| w[k]).collect();
            let w = Tensor::<B, 2>::from_data(TensorData::new(w, [n, 1]), device);
            select_rows(weight.clone(), &idx) * w
        })
        .reduce(|a, b| a + b)
        .expect("four taps")
}
