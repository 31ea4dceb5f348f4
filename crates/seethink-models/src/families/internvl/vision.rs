//! InternViT and the projector: tiles → patch embeddings (+ class token, learned positions) →
//! pre-norm layers with layer scale → pixel shuffle of the patch grid → `LayerNorm → Linear →
//! GELU → Linear` into the language model's hidden size.

use burn::module::{Module, Param};
use burn::nn::LayerNorm;
use burn::tensor::{backend::Backend, Tensor};

use super::config::{InternVisionConfig, InternVlConfig};
use super::names::Names;
use crate::checkpoint::Checkpoint;
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::nn::{
    attention, load_layer_norm, load_linear, Activation, Linear, LoraPart, LoraSite, Mlp, Norm, RmsNorm,
};
use crate::vision_stages::{trains, VisionStages};

/// Epsilon of the projector's LayerNorm (`nn.LayerNorm`'s default, in both releases).
const PROJECTOR_NORM_EPS: f64 = 1e-5;

/// The q/k/v projections: one fused matrix (the original release) or three (transformers).
#[derive(Module, Debug)]
pub enum QkvProjection<B: Backend> {
    Fused(Linear<B>),
    Split(SplitQkv<B>),
}

/// Separate q, k and v projections.
#[derive(Module, Debug)]
pub struct SplitQkv<B: Backend> {
    pub q: Linear<B>,
    pub k: Linear<B>,
    pub v: Linear<B>,
}

impl<B: Kernels> QkvProjection<B> {
    /// `(q, k, v)`, each `[.., dim]`, of `x [.., dim]`.
    fn forward(&self, x: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>) {
        match self {
            Self::Fused(qkv) => {
                let dim = x.dims()[2];
                let fused = qkv.forward(x);
                (
                    fused.clone().narrow(2, 0, dim),
                    fused.clone().narrow(2, dim, dim),
                    fused.narrow(2, 2 * dim, dim),
                )
            }
            Self::Split(s) => (s.q.forward(x.clone()), s.k.forward(x.clone()), s.v.forward(x)),
        }
    }
}

/// Full self-attention within each tile; q and k optionally RMS-normalised over the whole
/// embedding before the heads are split.
#[derive(Module, Debug)]
pub struct InternAttention<B: Backend> {
    pub qkv: QkvProjection<B>,
    pub q_norm: Option<RmsNorm<B>>,
    pub k_norm: Option<RmsNorm<B>>,
    pub proj: Linear<B>,
    pub num_heads: usize,
}

impl<B: Kernels> InternAttention<B> {
    /// `x [tiles, S, dim]` → `softmax(q·kᵀ/√d)·v` per head, projected: `[tiles, S, dim]`.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [tiles, seq, dim] = x.dims();
        let head_dim = dim / self.num_heads;
        let (mut q, mut k, v) = self.qkv.forward(x);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            (q, k) = (qn.forward(q), kn.forward(k));
        }
        let heads = |t: Tensor<B, 3>| t.reshape([tiles, seq, self.num_heads, head_dim]).swap_dims(1, 2);
        let out = attention(heads(q), heads(k), heads(v), None, (head_dim as f64).powf(-0.5));
        self.proj.forward(out.swap_dims(1, 2).reshape([tiles, seq, dim]))
    }
}

/// One layer: `h = x + λ₁ ⊙ attn(norm₁(x))`, `y = h + λ₂ ⊙ mlp(norm₂(h))`.
#[derive(Module, Debug)]
pub struct InternLayer<B: Backend> {
    pub norm1: Norm<B>,
    pub attn: InternAttention<B>,
    pub ls1: Param<Tensor<B, 1>>,
    pub norm2: Norm<B>,
    pub mlp: Mlp<B>,
    pub ls2: Param<Tensor<B, 1>>,
}

impl<B: Kernels> InternLayer<B> {
    fn load(
        ckpt: &Checkpoint,
        names: &Names,
        i: usize,
        c: &InternVisionConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let d = c.hidden_size;
        let name = |part: &str| names.layer(i, part);
        let linear =
            |part: &str, d_in, d_out, bias| load_linear(ckpt, &name(part), d_in, d_out, bias, device);
        let qkv = match names.fused_qkv {
            true => QkvProjection::Fused(linear("qkv", d, 3 * d, c.qkv_bias)?),
            false => QkvProjection::Split(SplitQkv {
                q: linear("q", d, d, c.qkv_bias)?,
                k: linear("k", d, d, c.qkv_bias)?,
                v: linear("v", d, d, c.qkv_bias)?,
            }),
        };
        let qk_norm = |part: &str| -> Result<Option<RmsNorm<B>>> {
            c.qk_norm.then(|| RmsNorm::load(ckpt, &name(part), d, c.qk_norm_eps, device)).transpose()
        };
        let scale = |part: &str| ckpt.tensor(&name(part), [d], device).map(Param::from_tensor);
        Ok(Self {
            norm1: Norm::load(ckpt, &name("norm1"), c.norm, d, c.norm_eps, device)?,
            attn: InternAttention {
                qkv,
                q_norm: qk_norm("q_norm")?,
                k_norm: qk_norm("k_norm")?,
                proj: linear("proj", d, d, true)?,
                num_heads: c.num_heads,
            },
            ls1: scale("ls1")?,
            norm2: Norm::load(ckpt, &name("norm2"), c.norm, d, c.norm_eps, device)?,
            mlp: Mlp::load(
                ckpt,
                &name("fc1"),
                &name("fc2"),
                [d, c.intermediate_size, d],
                c.hidden_act,
                device,
            )?,
            ls2: scale("ls2")?,
        })
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let scaled = |t: Tensor<B, 3>, s: &Param<Tensor<B, 1>>| t * s.val().unsqueeze::<3>();
        let h = x.clone() + scaled(self.attn.forward(self.norm1.forward(x)), &self.ls1);
        h.clone() + scaled(self.mlp.forward(self.norm2.forward(h)), &self.ls2)
    }
}

/// `fc2(gelu(fc1(norm(x))))`: shuffled patch features to language-model embeddings.
#[derive(Module, Debug)]
pub struct Projector<B: Backend> {
    pub norm: LayerNorm<B>,
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

/// The vision tower and projector of an InternVL model.
#[derive(Module, Debug)]
pub struct InternVision<B: Backend> {
    /// The Conv2d patch embedding with stride = kernel, as a matmul over flattened patches.
    pub patch_embedding: Linear<B>,
    /// `[1, 1, hidden]`
    pub class_embedding: Param<Tensor<B, 3>>,
    /// `[1, 1 + patches, hidden]`
    pub position_embedding: Param<Tensor<B, 3>>,
    pub layers: Vec<InternLayer<B>>,
    pub projector: Projector<B>,
    #[module(skip)]
    pub config: InternVisionConfig,
    #[module(skip)]
    pub shuffle: usize,
}

impl<B: Backend> InternVision<B> {
    /// The linear layers LoRA can adapt, at their module paths in `names`' layout: every
    /// layer's q/k/v (or fused qkv), output projection and MLP (vision), then the projector's
    /// two (projector). The patch embedding, a convolution in both releases, is not one.
    pub fn lora_sites_mut(&mut self, names: &Names) -> Vec<LoraSite<'_, B>> {
        let mut sites = Vec::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let mut named = match &mut layer.attn.qkv {
                QkvProjection::Fused(qkv) => vec![("qkv", qkv)],
                QkvProjection::Split(s) => vec![("q", &mut s.q), ("k", &mut s.k), ("v", &mut s.v)],
            };
            named.extend([
                ("proj", &mut layer.attn.proj),
                ("fc1", &mut layer.mlp.fc1),
                ("fc2", &mut layer.mlp.fc2),
            ]);
            sites.extend(named.into_iter().map(|(part, linear)| {
                let (stem, leaf) = names.layer_parts(part);
                LoraSite { part: LoraPart::Vision, stem, index: Some(i), leaf, linear }
            }));
        }
        let projector =
            [(names.projector(1), &mut self.projector.fc1), (names.projector(2), &mut self.projector.fc2)];
        sites.extend(projector.into_iter().map(|(path, linear)| {
            let (stem, leaf) = path.rsplit_once('.').expect("a projector path has a parent module");
            LoraSite { part: LoraPart::Projector, stem: stem.to_string(), index: None, leaf, linear }
        }));
        sites
    }
}

impl<B: Kernels> InternVision<B> {
    /// Loads the tower (only the layers whose output is used) and the projector.
    pub fn load(
        ckpt: &Checkpoint,
        names: &Names,
        config: &InternVlConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let c = &config.vision;
        let (d, p) = (c.hidden_size, c.patch_size);
        let patches = c.grid() * c.grid();
        let kernel = [d, c.num_channels, p, p];
        let merged = d * config.shuffle * config.shuffle;
        let text_hidden = config.text.hidden_size;
        Ok(Self {
            patch_embedding: Linear {
                weight: Param::from_tensor(ckpt.matrix_transposed(
                    &names.vision("patch.weight"),
                    &kernel,
                    device,
                )?),
                bias: Some(Param::from_tensor(ckpt.tensor(&names.vision("patch.bias"), [d], device)?)),
                lora: None,
            },
            class_embedding: Param::from_tensor(ckpt.tensor(&names.vision("class"), [1, 1, d], device)?),
            position_embedding: Param::from_tensor(ckpt.tensor(
                &names.vision("position"),
                [1, patches + 1, d],
                device,
            )?),
            layers: (0..config.vision_layers_used)
                .map(|i| InternLayer::load(ckpt, names, i, c, device))
                .collect::<Result<_>>()?,
            projector: Projector {
                norm: load_layer_norm(ckpt, names.projector(0), merged, PROJECTOR_NORM_EPS, device)?,
                fc1: load_linear(ckpt, names.projector(1), merged, text_hidden, true, device)?,
                fc2: load_linear(ckpt, names.projector(2), text_hidden, text_hidden, true, device)?,
            },
            config: c.clone(),
            shuffle: config.shuffle,
        })
    }

    /// The tower's stages for tiles `[tiles, channels·side²]` (channel planes, row-major;
    /// [`crate::vision_stages`]): its head gives one language-model embedding per shuffled
    /// patch group, `[tiles · tokens_per_tile, text hidden]`; no DeepStack taps.
    pub fn stages(&self, tiles: Tensor<B, 2>) -> Result<InternStages<'_, B>> {
        let c = &self.config;
        let [_, values] = tiles.dims();
        let side = c.image_size;
        if values != c.num_channels * side * side {
            return Err(ModelError::Input(format!(
                "InternVL tiles have {values} values each, a {side}x{side} tile of {} channels has {}",
                c.num_channels,
                c.num_channels * side * side
            )));
        }
        // pixels come in the backend's float type; the tower computes in its norms' type
        Ok(InternStages { tower: self, tiles: tiles.cast(self.projector.norm.gamma.val().dtype()) })
    }
}

/// [`InternVision`]'s stages for one batch of tiles ([`InternVision::stages`]).
pub struct InternStages<'a, B: Backend> {
    tower: &'a InternVision<B>,
    /// `[tiles, channels·side²]` in the tower's compute type.
    tiles: Tensor<B, 2>,
}

impl<B: Kernels> VisionStages<B> for InternStages<'_, B> {
    fn embed(&self) -> Tensor<B, 3> {
        let (tower, c) = (self.tower, &self.tower.config);
        let count = self.tiles.dims()[0];
        let (p, g, d) = (c.patch_size, c.grid(), c.hidden_size);
        // [T, C, g, p, g, p] → [T, g, g, C, p, p]: one row per patch, (channel, y, x) inside.
        let patches = self
            .tiles
            .clone()
            .reshape([count, c.num_channels, g, p, g, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([count * g * g, c.num_channels * p * p]);
        let embedded = tower.patch_embedding.forward(patches).reshape([count, g * g, d]);
        let class = tower.class_embedding.val().expand([count, 1, d]);
        Tensor::cat(vec![class, embedded], 1) + tower.position_embedding.val()
    }

    fn blocks(&self) -> usize {
        self.tower.layers.len()
    }

    fn block(&self, i: usize, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.tower.layers[i].forward(x)
    }

    fn tap(&self, _: usize, _: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        None
    }

    fn head(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let g = self.tower.config.grid();
        let features = pixel_shuffle(x.narrow(1, 1, g * g), g, self.tower.shuffle);
        let tokens = features.dims()[0] * features.dims()[1];
        let p = &self.tower.projector;
        let out = p.fc2.forward(Activation::Gelu.apply(p.fc1.forward(p.norm.forward(features))));
        let text_hidden = out.dims()[2];
        out.reshape([tokens, text_hidden])
    }

    fn trains(&self) -> bool {
        trains(self.tower)
    }
}

/// transformers' `pixel_shuffle` (the original's v2) of patch features `[T, g·g, d]` on a
/// `g × g` grid: token `(a, b)` of the `g/s × g/s` result is the concatenation, over
/// `i, j < s` (i major), of patch `(s·a + i, s·b + j)`: `[T, (g/s)², s²·d]`.
fn pixel_shuffle<B: Backend>(x: Tensor<B, 3>, g: usize, s: usize) -> Tensor<B, 3> {
    let [tiles, _, d] = x.dims();
    let h = g / s;
    x.reshape([tiles, h, s, h, s, d]).permute([0, 1, 3, 2, 4, 5]).reshape([tiles, h * h, s * s * d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    #[test]
    fn pixel_shuffle_concatenates_two_by_two_neighbours_row_major() {
        // a 4x4 grid of 1-d features numbered row by row
        let x = Tensor::<NdArray, 3>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 16, 1]),
            &Default::default(),
        );
        let out = pixel_shuffle(x, 4, 2).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out, [0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.]);
    }
}
