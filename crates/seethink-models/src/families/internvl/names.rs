//! The tensor names of InternVL's two checkpoint styles, as canonical names (see [`KEYS`]).
//!
//! The original release and transformers' conversion differ inside the vision tower, not only
//! in prefixes (`encoder.layers.{i}.attn.qkv` vs `encoder.layer.{i}.attention.{q,k,v}_proj`),
//! and the original fuses q/k/v into one matrix, so the loader asks for each style's own names
//! (and builds a fused or split projection); export replays the loader and so writes the same
//! names back. The language model is named alike in both (`language_model.model.*`, which
//! [`KEYS`] canonicalises).
//!
//! [`KEYS`]: super::KEYS

use super::config::Style;

/// Names of one layout.
pub struct Names {
    vision_root: &'static str,
    layers: &'static str,
    /// (canonical part, stored part) inside a vision layer.
    layer_parts: &'static [(&'static str, &'static str)],
    /// (canonical part, stored part) of the embeddings.
    embedding_parts: &'static [(&'static str, &'static str)],
    /// The projector's LayerNorm, first and second Linear.
    projector: [&'static str; 3],
    /// Where the decoder and the output projection live.
    pub text_root: &'static str,
    /// The decoder layers' module path in the model class of this layout (transformers'
    /// `InternVLForConditionalGeneration`; the release's `InternVLChatModel`, whose language
    /// model is a `*ForCausalLM`), the path peft names LoRA layers by.
    pub decoder_layers: &'static str,
    pub lm_head: &'static str,
    /// Whether q/k/v are one `qkv` matrix.
    pub fused_qkv: bool,
}

/// transformers' `-hf` conversion.
const HF: Names = Names {
    vision_root: "model.vision_tower",
    layers: "encoder.layer",
    layer_parts: &[
        ("norm1", "layernorm_before"),
        ("norm2", "layernorm_after"),
        ("q", "attention.q_proj"),
        ("k", "attention.k_proj"),
        ("v", "attention.v_proj"),
        ("q_norm", "attention.q_norm"),
        ("k_norm", "attention.k_norm"),
        ("proj", "attention.projection_layer"),
        ("ls1", "lambda_1"),
        ("ls2", "lambda_2"),
        ("fc1", "mlp.fc1"),
        ("fc2", "mlp.fc2"),
    ],
    embedding_parts: &[
        ("patch.weight", "embeddings.patch_embeddings.projection.weight"),
        ("patch.bias", "embeddings.patch_embeddings.projection.bias"),
        ("class", "embeddings.cls_token"),
        ("position", "embeddings.position_embeddings"),
    ],
    projector: [
        "model.multi_modal_projector.layer_norm",
        "model.multi_modal_projector.linear_1",
        "model.multi_modal_projector.linear_2",
    ],
    text_root: "model.language_model",
    decoder_layers: "model.language_model.layers",
    lm_head: "lm_head",
    fused_qkv: false,
};

/// The original OpenGVLab release (`InternVLChatModel`).
const ORIGINAL: Names = Names {
    vision_root: "vision_model",
    layers: "encoder.layers",
    layer_parts: &[
        ("norm1", "norm1"),
        ("norm2", "norm2"),
        ("qkv", "attn.qkv"),
        ("q_norm", "attn.q_norm"),
        ("k_norm", "attn.k_norm"),
        ("proj", "attn.proj"),
        ("ls1", "ls1"),
        ("ls2", "ls2"),
        ("fc1", "mlp.fc1"),
        ("fc2", "mlp.fc2"),
    ],
    embedding_parts: &[
        ("patch.weight", "embeddings.patch_embedding.weight"),
        ("patch.bias", "embeddings.patch_embedding.bias"),
        ("class", "embeddings.class_embedding"),
        ("position", "embeddings.position_embedding"),
    ],
    projector: ["mlp1.0", "mlp1.1", "mlp1.3"],
    text_root: "model.language_model",
    decoder_layers: "language_model.model.layers",
    lm_head: "lm_head",
    fused_qkv: true,
};

impl Names {
    /// The names of checkpoints of `style`.
    pub fn of(style: Style) -> &'static Names {
        match style {
            Style::Original => &ORIGINAL,
            Style::Hf => &HF,
        }
    }

    /// Stored name of vision-layer `i`'s `part` (e.g. `norm1`, `qkv`, `fc2`).
    pub fn layer(&self, i: usize, part: &str) -> String {
        let (stem, leaf) = self.layer_parts(part);
        format!("{stem}.{i}.{leaf}")
    }

    /// Where vision layer `i`'s `part` lives, as `(stem, leaf)` with stored name
    /// `{stem}.{i}.{leaf}` ([`Self::layer`]).
    pub fn layer_parts(&self, part: &str) -> (String, &'static str) {
        (format!("{}.{}", self.vision_root, self.layers), lookup(self.layer_parts, part))
    }

    /// Stored name of an embedding tensor (`patch.weight`, `patch.bias`, `class`, `position`).
    pub fn vision(&self, part: &str) -> String {
        format!("{}.{}", self.vision_root, lookup(self.embedding_parts, part))
    }

    /// Stored prefix of the projector's `k`-th module (0: LayerNorm, 1, 2: Linear).
    pub fn projector(&self, k: usize) -> &'static str {
        self.projector[k]
    }
}

fn lookup(parts: &[(&str, &'static str)], part: &str) -> &'static str {
    parts
        .iter()
        .find(|(canonical, _)| *canonical == part)
        .map(|(_, stored)| *stored)
        .unwrap_or_else(|| panic!("no InternVL tensor part `{part}`: a loader bug, not a checkpoint problem"))
}
