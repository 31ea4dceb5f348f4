//! A checkpoint's size from its `config.json` alone: parameter counts of the vision tower
//! (projector included) and the language model, and the decoder's shape, for memory plans made
//! before any weight is read. Each count follows the family's loader tensor by tensor (the tests
//! compare it with the parameters of the loaded fixture models).

use std::path::Path;

use super::internvl::names::Names;
use super::internvl::InternVlConfig;
use super::qwen_vl::{QwenVersion, QwenVlConfig};
use super::{family_of, Family};
use crate::config::TextConfig;
use crate::error::Result;
use crate::nn::{LoraConfig, LoraPart, NormKind, LORA_TARGETS};

/// Parameters and shapes of a checkpoint, as its `config.json` describes them.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSize {
    /// The vision tower and its projector into the language model.
    pub vision_params: usize,
    /// The language model: embeddings, decoder layers, final norm, output projection.
    pub text_params: usize,
    /// The language model's shape (vocabulary, widths, layers, heads).
    pub text: TextConfig,
    /// The vision tower's shape.
    pub vision: VisionShape,
    /// The linear layers LoRA can adapt ([`AnyVlm::lora_sites_mut`](crate::AnyVlm::lora_sites_mut)).
    pub lora_linears: Vec<LinearShape>,
}

/// `count` linear layers `d_in → d_out` named `name` (the last part of their module path) in
/// `part` of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearShape {
    pub part: LoraPart,
    pub name: &'static str,
    pub d_in: usize,
    pub d_out: usize,
    pub count: usize,
}

impl LinearShape {
    fn new(part: LoraPart, name: &'static str, [d_in, d_out]: [usize; 2], count: usize) -> Self {
        Self { part, name, d_in, d_out, count }
    }
}

/// What a vision tower's activations scale with.
#[derive(Clone, Debug, PartialEq)]
pub struct VisionShape {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub layers: usize,
    pub heads: usize,
    /// Patches the blocks run on per image token the language model sees (Qwen-VL's
    /// `spatial_merge_size²`, InternVL's pixel shuffle `s²`).
    pub patches_per_token: usize,
    /// Image pixels per image token (`(patch_size · merge)²`).
    pub pixels_per_token: usize,
}

impl ModelSize {
    /// The size of checkpoint directory `dir`, from its `config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Ok(match family_of(dir)? {
            Family::QwenVl => {
                let c = QwenVlConfig::from_file(dir.join("config.json"))?;
                let v = &c.vision;
                Self {
                    vision_params: qwen_vision_params(&c),
                    text_params: text_params(&c.text),
                    vision: VisionShape {
                        hidden_size: v.hidden_size,
                        intermediate_size: v.intermediate_size,
                        layers: v.depth,
                        heads: v.num_heads,
                        patches_per_token: v.spatial_merge_size.pow(2),
                        pixels_per_token: (v.patch_size * v.spatial_merge_size).pow(2),
                    },
                    lora_linears: qwen_lora_linears(&c),
                    text: c.text,
                }
            }
            Family::InternVl => {
                let c = InternVlConfig::from_dir(dir)?;
                let v = &c.vision;
                Self {
                    vision_params: intern_vision_params(&c),
                    text_params: text_params(&c.text),
                    vision: VisionShape {
                        hidden_size: v.hidden_size,
                        intermediate_size: v.intermediate_size,
                        layers: c.vision_layers_used,
                        heads: v.num_heads,
                        patches_per_token: c.shuffle.pow(2),
                        pixels_per_token: (v.patch_size * c.shuffle).pow(2),
                    },
                    lora_linears: intern_lora_linears(&c),
                    text: c.text,
                }
            }
        })
    }

    /// All parameters.
    pub fn params(&self) -> usize {
        self.vision_params + self.text_params
    }

    /// Parameters of one decoder layer ([`decoder_layer_params`]).
    pub fn decoder_layer_params(&self) -> usize {
        decoder_layer_params(&self.text)
    }

    /// Parameters of the output projection: `h·V`, or none when it is tied to the embeddings.
    pub fn output_projection_params(&self) -> usize {
        output_projection_params(&self.text)
    }

    /// Parameters of the LoRA adapters `config` puts on the model: `r·(d_in + d_out)` per
    /// adapted linear layer ([`LoraConfig::adapts`]).
    pub fn lora_params(&self, config: &LoraConfig) -> usize {
        self.lora_linears
            .iter()
            .filter(|l| config.adapts(l.part, l.name))
            .map(|l| l.count * config.rank * (l.d_in + l.d_out))
            .sum()
    }

    /// The names of the vision tower's linear layers (what `vision_modules` may name).
    pub fn vision_linear_names(&self) -> Vec<&'static str> {
        self.lora_linears.iter().filter(|l| l.part == LoraPart::Vision).map(|l| l.name).collect()
    }
}

/// The decoder's projections, in every layer.
fn decoder_lora_linears(t: &TextConfig) -> Vec<LinearShape> {
    let (h, i, layers) = (t.hidden_size, t.intermediate_size, t.num_hidden_layers);
    let (q, kv) = (t.num_attention_heads * t.head_dim, t.num_key_value_heads * t.head_dim);
    let shapes = [[h, q], [h, kv], [h, kv], [q, h], [h, i], [h, i], [i, h]];
    LORA_TARGETS
        .into_iter()
        .zip(shapes)
        .map(|(name, dims)| LinearShape::new(LoraPart::Decoder, name, dims, layers))
        .collect()
}

/// Qwen-VL's: the decoder's; each vision block's qkv, proj and MLP (gated in 2.5, plain in 3);
/// the merger's two and each DeepStack merger's two.
fn qwen_lora_linears(c: &QwenVlConfig) -> Vec<LinearShape> {
    let v = &c.vision;
    let (d, i, depth) = (v.hidden_size, v.intermediate_size, v.depth);
    let merged = d * v.spatial_merge_size * v.spatial_merge_size;
    let vision = |name, dims| LinearShape::new(LoraPart::Vision, name, dims, depth);
    let mergers = 1 + v.deepstack_visual_indexes.len();
    let mut linears = decoder_lora_linears(&c.text);
    linears.extend([vision("qkv", [d, 3 * d]), vision("proj", [d, d])]);
    let (fc1, fc2) = match c.version {
        QwenVersion::Qwen2_5Vl => {
            linears.extend([
                vision("gate_proj", [d, i]),
                vision("up_proj", [d, i]),
                vision("down_proj", [i, d]),
            ]);
            ("0", "2")
        }
        QwenVersion::Qwen3Vl => {
            linears.extend([vision("linear_fc1", [d, i]), vision("linear_fc2", [i, d])]);
            ("linear_fc1", "linear_fc2")
        }
    };
    linears.push(LinearShape::new(LoraPart::Projector, fc1, [merged, merged], mergers));
    linears.push(LinearShape::new(LoraPart::Projector, fc2, [merged, v.out_hidden_size], mergers));
    linears
}

/// InternVL's: the decoder's; each used vision layer's q/k/v (fused in the original release),
/// output projection and MLP, named as in the checkpoint's layout; the projector's two.
fn intern_lora_linears(c: &InternVlConfig) -> Vec<LinearShape> {
    let v = &c.vision;
    let (d, i) = (v.hidden_size, v.intermediate_size);
    let names = Names::of(c.style);
    let vision = |part: &str, dims| {
        let leaf = names.layer_parts(part).1;
        let name = leaf.rsplit('.').next().unwrap_or(leaf);
        LinearShape::new(LoraPart::Vision, name, dims, c.vision_layers_used)
    };
    let mut linears = decoder_lora_linears(&c.text);
    match names.fused_qkv {
        true => linears.push(vision("qkv", [d, 3 * d])),
        false => linears.extend(["q", "k", "v"].map(|part| vision(part, [d, d]))),
    }
    linears.extend([vision("proj", [d, d]), vision("fc1", [d, i]), vision("fc2", [i, d])]);
    let (merged, text) = (d * c.shuffle * c.shuffle, c.text.hidden_size);
    for (k, dims) in [(1, [merged, text]), (2, [text, text])] {
        let path = names.projector(k);
        let name = path.rsplit('.').next().unwrap_or(path);
        linears.push(LinearShape::new(LoraPart::Projector, name, dims, 1));
    }
    linears
}

/// A `d_in → d_out` linear layer: `d_in·d_out (+ d_out)`.
fn linear(d_in: usize, d_out: usize, bias: bool) -> usize {
    d_in * d_out + if bias { d_out } else { 0 }
}

/// An RMSNorm (weight) or LayerNorm (weight and bias) over `dim`.
fn norm(kind: NormKind, dim: usize) -> usize {
    match kind {
        NormKind::Rms => dim,
        NormKind::Layer => 2 * dim,
    }
}

/// The shared decoder: `V·h` embeddings, the layers ([`decoder_layer_params`]), the final norm,
/// and the output projection ([`output_projection_params`]).
fn text_params(c: &TextConfig) -> usize {
    c.vocab_size * c.hidden_size
        + c.num_hidden_layers * decoder_layer_params(c)
        + c.hidden_size
        + output_projection_params(c)
}

/// One decoder layer: q/k/v/o, the gated MLP (gate, up, down), two norms and the optional
/// per-head q/k norms.
fn decoder_layer_params(c: &TextConfig) -> usize {
    let (h, d) = (c.hidden_size, c.head_dim);
    let (q, kv) = (c.num_attention_heads * d, c.num_key_value_heads * d);
    let attention = linear(h, q, c.qkv_bias) + 2 * linear(h, kv, c.qkv_bias) + linear(q, h, false);
    let mlp = 3 * c.hidden_size * c.intermediate_size;
    let qk_norm = if c.qk_norm { 2 * d } else { 0 };
    attention + mlp + 2 * h + qk_norm
}

/// `h·V` when the output projection is not tied to the embeddings.
fn output_projection_params(c: &TextConfig) -> usize {
    if c.tie_word_embeddings {
        0
    } else {
        c.hidden_size * c.vocab_size
    }
}

/// Qwen-VL's tower: the patch embedding (a bias in Qwen3-VL), Qwen3-VL's position table, blocks
/// of qkv/proj with biases, a gated (2.5) or plain (3) MLP with biases and two norms (RMS in 2.5,
/// Layer in 3), the merger and Qwen3-VL's DeepStack mergers.
fn qwen_vision_params(c: &QwenVlConfig) -> usize {
    let v = &c.vision;
    let (d, i) = (v.hidden_size, v.intermediate_size);
    let qwen3 = c.version == QwenVersion::Qwen3Vl;
    let kind = if qwen3 { NormKind::Layer } else { NormKind::Rms };
    let mlp = if qwen3 {
        linear(d, i, true) + linear(i, d, true)
    } else {
        2 * linear(d, i, true) + linear(i, d, true)
    };
    let block = linear(d, 3 * d, true) + linear(d, d, true) + mlp + 2 * norm(kind, d);
    let merged = d * v.spatial_merge_size * v.spatial_merge_size;
    let merger = |norm_dim: usize| {
        norm(kind, norm_dim) + linear(merged, merged, true) + linear(merged, v.out_hidden_size, true)
    };
    let patch = linear(v.patch_dim(), d, qwen3);
    let positions = if qwen3 { v.num_position_embeddings * d } else { 0 };
    patch + positions + v.depth * block + merger(d) + v.deepstack_visual_indexes.len() * merger(merged)
}

/// InternViT's used layers (qkv and its optional bias, optional q/k norms over the embedding,
/// proj, two layer scales, the MLP, two norms), the patch and class embeddings, the position
/// table, and the projector `LayerNorm → Linear → GELU → Linear`.
fn intern_vision_params(c: &InternVlConfig) -> usize {
    let v = &c.vision;
    let d = v.hidden_size;
    let qk_norm = if v.qk_norm { 2 * d } else { 0 };
    let layer = linear(d, 3 * d, v.qkv_bias)
        + qk_norm
        + linear(d, d, true)
        + 2 * d
        + linear(d, v.intermediate_size, true)
        + linear(v.intermediate_size, d, true)
        + 2 * norm(v.norm, d);
    let patches = v.grid() * v.grid();
    let embeddings = linear(v.num_channels * v.patch_size * v.patch_size, d, true) + d + (patches + 1) * d;
    let merged = d * c.shuffle * c.shuffle;
    let text = c.text.hidden_size;
    let projector = norm(NormKind::Layer, merged) + linear(merged, text, true) + linear(text, text, true);
    embeddings + c.vision_layers_used * layer + projector
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use burn::backend::NdArray;

    use super::ModelSize;
    use crate::AnyVlm;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
    }

    /// Every fixture checkpoint: the four families, InternVL in both layouts.
    const FIXTURES: [&str; 6] = [
        "qwen2_5_vl/checkpoint",
        "qwen3_vl/checkpoint",
        "internvl3/checkpoint",
        "internvl3/original",
        "internvl3_5/checkpoint",
        "internvl3_5/original",
    ];

    #[test]
    fn counts_from_config_equal_the_loaded_models_parameters() {
        for dir in FIXTURES {
            let dir = fixture(dir);
            let size = ModelSize::from_dir(&dir).unwrap();
            let model = AnyVlm::<NdArray<f32>>::load(&dir, &Default::default()).unwrap();
            assert_eq!((size.vision_params, size.text_params), model.param_split(), "{}", dir.display());
        }
    }

    #[test]
    fn a_real_checkpoint_s_count_is_its_published_one() {
        let size = ModelSize::from_dir(&fixture("real_configs/qwen2_5_vl_7b")).unwrap();
        // Qwen2.5-VL-7B-Instruct: 8,292,166,656 parameters (published); its vision tower and merger
        // are 676,550,144 of them by the same count
        assert_eq!((size.params(), size.vision_params), (8_292_166_656, 676_550_144));
        // Qwen2.5-VL-3B-Instruct: 3,754,622,976; Qwen3-VL-8B-Instruct: 8,767,123,696 (the Hub's
        // safetensors counts; tests/fixtures/real_configs/README.md)
        let size = ModelSize::from_dir(&fixture("real_configs/qwen2_5_vl_3b")).unwrap();
        assert_eq!(size.params(), 3_754_622_976);
        let size = ModelSize::from_dir(&fixture("real_configs/qwen3_vl_8b")).unwrap();
        assert_eq!(size.params(), 8_767_123_696);
    }

    #[test]
    fn lora_counts_equal_the_adapted_model_s_adapters() {
        use crate::nn::LoraConfig;
        use burn::module::Module;
        for dir in FIXTURES {
            let dir = fixture(dir);
            let size = ModelSize::from_dir(&dir).unwrap();
            let base = AnyVlm::<NdArray<f32>>::load(&dir, &Default::default()).unwrap();
            let vision = size.vision_linear_names();
            let strings = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let configs = [
                LoraConfig { rank: 3, target_modules: strings(&["q_proj", "v_proj"]), ..Default::default() },
                LoraConfig {
                    rank: 3,
                    target_modules: strings(&["k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
                    ..Default::default()
                },
                LoraConfig {
                    rank: 2,
                    target_modules: vec![],
                    vision_modules: strings(&vision),
                    ..Default::default()
                },
                LoraConfig {
                    rank: 2,
                    target_modules: vec![],
                    vision_modules: strings(&vision[..1]),
                    ..Default::default()
                },
                LoraConfig { rank: 5, target_modules: vec![], projector: true, ..Default::default() },
            ];
            for config in configs {
                let adapted = base.clone().with_lora(&config).unwrap();
                let adapters: usize = adapted.adapters().iter().map(|(_, a)| a.num_params()).sum();
                assert!(adapters > 0);
                assert_eq!(size.lora_params(&config), adapters, "{}: {config:?}", dir.display());
            }
        }
    }
}
