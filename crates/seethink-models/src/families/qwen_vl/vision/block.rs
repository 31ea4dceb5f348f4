//! Layers of the vision transformer: norms, attention, blocks and patch mergers.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::families::qwen_vl::config::{QwenVersion, VisionConfig};
use crate::kernels::Kernels;
use crate::nn::{
    apply_rotary, load_linear, Activation, GatedMlp, LoraPart, LoraSite, Mlp, Norm, NormKind, Rope, Segments,
};

/// Epsilon of every norm in both vision towers.
const VISION_NORM_EPS: f64 = 1e-6;

/// The vision tower's norm kind: RMSNorm in Qwen2.5-VL, LayerNorm in Qwen3-VL.
fn norm_kind(version: QwenVersion) -> NormKind {
    match version {
        QwenVersion::Qwen2_5Vl => NormKind::Rms,
        QwenVersion::Qwen3Vl => NormKind::Layer,
    }
}

/// The names of a patch merger's norm and two linear layers: `ln_q`, `mlp.0`, `mlp.2` in
/// Qwen2.5-VL; `norm`, `linear_fc1`, `linear_fc2` in Qwen3-VL.
fn merger_parts(version: QwenVersion) -> [&'static str; 3] {
    match version {
        QwenVersion::Qwen2_5Vl => ["ln_q", "mlp.0", "mlp.2"],
        QwenVersion::Qwen3Vl => ["norm", "linear_fc1", "linear_fc2"],
    }
}

/// SiLU-gated MLP (Qwen2.5-VL) or two-layer GELU MLP (Qwen3-VL).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one variant per version; a model holds only one kind
pub enum VisionMlp<B: Backend> {
    Gated(GatedMlp<B>),
    Plain(Mlp<B>),
}

/// Multi-head self-attention over patches with fused qkv and 2D RoPE.
#[derive(Module, Debug)]
pub struct VisionAttention<B: Backend> {
    pub qkv: crate::nn::Linear<B>,
    pub proj: crate::nn::Linear<B>,
    pub num_heads: usize,
}

impl<B: Kernels> VisionAttention<B> {
    /// `x [N, C]` → `[N, C]`, attending within `segments`.
    fn forward(&self, x: Tensor<B, 2>, rope: &Rope<B>, segments: &Segments<B>) -> Tensor<B, 2> {
        let [n, dim] = x.dims();
        let head_dim = dim / self.num_heads;
        // [N, 3·C] → [3, heads, N, head_dim]
        let qkv = self.qkv.forward(x).reshape([n, 3, self.num_heads, head_dim]).permute([1, 2, 0, 3]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1);
        let q = apply_rotary(part(0), rope);
        let k = apply_rotary(part(1), rope);
        let out = segments.attention(q, k, part(2), (head_dim as f64).powf(-0.5));
        let out = out.swap_dims(1, 2).reshape([n, dim]);
        self.proj.forward(out)
    }
}

/// One pre-norm vision block: `h = x + attn(norm1(x))`, `y = h + mlp(norm2(h))`.
#[derive(Module, Debug)]
pub struct VisionBlock<B: Backend> {
    pub norm1: Norm<B>,
    pub norm2: Norm<B>,
    pub attn: VisionAttention<B>,
    pub mlp: VisionMlp<B>,
}

impl<B: Backend> VisionBlock<B> {
    /// The block's linear layers as LoRA sites of block `index` under `stem`
    /// (`attn.qkv`, `attn.proj`, then `mlp.gate_proj`, `mlp.up_proj`, `mlp.down_proj` or
    /// `mlp.linear_fc1`, `mlp.linear_fc2`).
    pub fn lora_sites_mut(&mut self, stem: &str, index: usize) -> Vec<LoraSite<'_, B>> {
        let mut named = vec![("attn.qkv", &mut self.attn.qkv), ("attn.proj", &mut self.attn.proj)];
        match &mut self.mlp {
            VisionMlp::Gated(m) => named.extend([
                ("mlp.gate_proj", &mut m.gate_proj),
                ("mlp.up_proj", &mut m.up_proj),
                ("mlp.down_proj", &mut m.down_proj),
            ]),
            VisionMlp::Plain(m) => {
                named.extend([("mlp.linear_fc1", &mut m.fc1), ("mlp.linear_fc2", &mut m.fc2)])
            }
        }
        let site = |(leaf, linear)| LoraSite {
            part: LoraPart::Vision,
            stem: stem.to_string(),
            index: Some(index),
            leaf,
            linear,
        };
        named.into_iter().map(site).collect()
    }
}

impl<B: Kernels> VisionBlock<B> {
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        version: QwenVersion,
        c: &VisionConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let (dim, hidden) = (c.hidden_size, c.intermediate_size);
        let mlp = match version {
            QwenVersion::Qwen2_5Vl => VisionMlp::Gated(GatedMlp::load(
                ckpt,
                &format!("{prefix}.mlp"),
                dim,
                hidden,
                true,
                c.hidden_act,
                device,
            )?),
            QwenVersion::Qwen3Vl => VisionMlp::Plain(Mlp::load(
                ckpt,
                &format!("{prefix}.mlp.linear_fc1"),
                &format!("{prefix}.mlp.linear_fc2"),
                [dim, hidden, dim],
                c.hidden_act,
                device,
            )?),
        };
        Ok(Self {
            norm1: Norm::load(
                ckpt,
                &format!("{prefix}.norm1"),
                norm_kind(version),
                dim,
                VISION_NORM_EPS,
                device,
            )?,
            norm2: Norm::load(
                ckpt,
                &format!("{prefix}.norm2"),
                norm_kind(version),
                dim,
                VISION_NORM_EPS,
                device,
            )?,
            attn: VisionAttention {
                qkv: load_linear(ckpt, &format!("{prefix}.attn.qkv"), dim, 3 * dim, true, device)?,
                proj: load_linear(ckpt, &format!("{prefix}.attn.proj"), dim, dim, true, device)?,
                num_heads: c.num_heads,
            },
            mlp,
        })
    }

    pub fn forward(&self, x: Tensor<B, 2>, rope: &Rope<B>, segments: &Segments<B>) -> Tensor<B, 2> {
        let h = x.clone() + self.attn.forward(self.norm1.forward(x), rope, segments);
        let normed = self.norm2.forward(h.clone());
        let mlp = match &self.mlp {
            VisionMlp::Gated(m) => m.forward(normed),
            VisionMlp::Plain(m) => m.forward(normed),
        };
        h + mlp
    }
}

/// Merges each run of m² patches into one LLM token:
/// `fc2(gelu(fc1(concat(norm(x)))))`, or with `postshuffle`, `norm` after the concat.
#[derive(Module, Debug)]
pub struct PatchMerger<B: Backend> {
    pub norm: Norm<B>,
    pub fc1: crate::nn::Linear<B>,
    pub fc2: crate::nn::Linear<B>,
    pub postshuffle: bool,
}

impl<B: Backend> PatchMerger<B> {
    /// The merger's two linear layers as projector LoRA sites at `stem` (and `index` in a
    /// list of mergers).
    pub fn lora_sites_mut(
        &mut self,
        version: QwenVersion,
        stem: &str,
        index: Option<usize>,
    ) -> Vec<LoraSite<'_, B>> {
        let [_, fc1, fc2] = merger_parts(version);
        [(fc1, &mut self.fc1), (fc2, &mut self.fc2)]
            .into_iter()
            .map(|(leaf, linear)| LoraSite {
                part: LoraPart::Projector,
                stem: stem.to_string(),
                index,
                leaf,
                linear,
            })
            .collect()
    }
}

impl<B: Kernels> PatchMerger<B> {
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        version: QwenVersion,
        postshuffle: bool,
        c: &VisionConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let merged = c.hidden_size * c.spatial_merge_size * c.spatial_merge_size;
        let norm_dim = if postshuffle { merged } else { c.hidden_size };
        let [norm, fc1, fc2] = merger_parts(version);
        Ok(Self {
            norm: Norm::load(
                ckpt,
                &format!("{prefix}.{norm}"),
                norm_kind(version),
                norm_dim,
                VISION_NORM_EPS,
                device,
            )?,
            fc1: load_linear(ckpt, &format!("{prefix}.{fc1}"), merged, merged, true, device)?,
            fc2: load_linear(ckpt, &format!("{prefix}.{fc2}"), merged, c.out_hidden_size, true, device)?,
            postshuffle,
        })
    }

    /// `x [N, C]` → `[N/unit, out_hidden]`.
    pub fn forward(&self, x: Tensor<B, 2>, unit: usize) -> Tensor<B, 2> {
        let [n, dim] = x.dims();
        let merged = if self.postshuffle {
            self.norm.forward(x.reshape([n / unit, unit * dim]))
        } else {
            self.norm.forward(x).reshape([n / unit, unit * dim])
        };
        self.fc2.forward(Activation::Gelu.apply(self.fc1.forward(merged)))
    }
}
