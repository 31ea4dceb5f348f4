//! `config.json` of a Qwen-VL checkpoint (Qwen2.5-VL, Qwen3-VL), in all the variants found in
//! the wild.
//!
//! Text keys may be flat (older Qwen2.5-VL files) or under `text_config`; RoPE settings may be in
//! `rope_scaling` (transformers 4.x) or `rope_parameters` (transformers 5), and `rope_theta` at
//! the text level or inside `rope_parameters`. Every missing or ill-typed key is an error naming
//! the file and the key.

use std::path::Path;

use serde_json::Value;

use crate::config::{parse_text, Decoder, Keys, TextConfig};
use crate::error::{ModelError, Result};
use crate::nn::Activation;

/// The two generations of Qwen-VL, selected by `model_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QwenVersion {
    Qwen2_5Vl,
    Qwen3Vl,
}

impl QwenVersion {
    /// The language model flavour: Qwen2.5-VL's is Qwen2, Qwen3-VL's Qwen3.
    pub fn decoder(self) -> Decoder {
        match self {
            Self::Qwen2_5Vl => Decoder::Qwen2,
            Self::Qwen3Vl => Decoder::Qwen3,
        }
    }
}

/// The vision tower of a Qwen-VL checkpoint; version-specific fields are `Option`s/empty.
#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    pub in_channels: usize,
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub spatial_merge_size: usize,
    pub out_hidden_size: usize,
    pub hidden_act: Activation,
    /// Qwen2.5-VL: window size in pixels (window attention).
    pub window_size: usize,
    /// Qwen2.5-VL: blocks that attend over the whole image.
    pub fullatt_block_indexes: Vec<usize>,
    /// Qwen3-VL: size of the learned position table (a square).
    pub num_position_embeddings: usize,
    /// Qwen3-VL: blocks whose output feeds a DeepStack merger.
    pub deepstack_visual_indexes: Vec<usize>,
}

impl VisionConfig {
    /// Values per flattened patch: channels × temporal patch × patch².
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }
}

/// Special token ids that place images in the text.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenIds {
    pub image_token_id: usize,
    pub video_token_id: usize,
    pub vision_start_token_id: usize,
}

/// A parsed `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct QwenVlConfig {
    pub version: QwenVersion,
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub tokens: TokenIds,
}

impl QwenVlConfig {
    /// Reads and parses `path` (a `config.json`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Self::from_json_str(&text, path)
    }

    /// Parses config JSON; `path` is used in error messages only.
    pub fn from_json_str(json: &str, path: &Path) -> Result<Self> {
        let value: Value = serde_json::from_str(json)
            .map_err(|source| ModelError::Json { path: path.to_path_buf(), source })?;
        let root = Keys::root(&value, path)?;
        let model_type = root.string("model_type")?;
        let version = match model_type.as_str() {
            "qwen2_5_vl" => QwenVersion::Qwen2_5Vl,
            "qwen3_vl" => QwenVersion::Qwen3Vl,
            _ => return Err(ModelError::UnknownModelType { path: path.to_path_buf(), found: model_type }),
        };
        // Older Qwen2.5-VL files keep the text keys at the top level.
        let text_keys = root.child("text_config")?.unwrap_or_else(|| root.clone());
        let vision_keys = root.child("vision_config")?.ok_or_else(|| root.missing("vision_config"))?;
        let text = parse_text(&root, &text_keys, version.decoder())?;
        let vision = parse_vision(version, &vision_keys)?;
        let tokens = TokenIds {
            image_token_id: root.usize_in_either("image_token_id", &text_keys)?,
            video_token_id: root.usize_in_either("video_token_id", &text_keys)?,
            vision_start_token_id: root.usize_in_either("vision_start_token_id", &text_keys)?,
        };
        Ok(Self { version, text, vision, tokens })
    }
}

impl QwenVlConfig {
    /// The architecture in a few lines (`seethink inspect`).
    pub fn describe(&self) -> String {
        let (t, v) = (&self.text, &self.vision);
        format!(
            "family: {:?}\ntext: {} layers, hidden {}, heads {}/{} (q/kv), head_dim {}, vocab {}, rope {:?}, \
             tied lm_head: {}\nvision: {} blocks, hidden {}, heads {}, patch {}x{}x{}, merge {}",
            self.version,
            t.num_hidden_layers,
            t.hidden_size,
            t.num_attention_heads,
            t.num_key_value_heads,
            t.head_dim,
            t.vocab_size,
            t.rope,
            t.tie_word_embeddings,
            v.depth,
            v.hidden_size,
            v.num_heads,
            v.temporal_patch_size,
            v.patch_size,
            v.patch_size,
            v.spatial_merge_size
        )
    }
}

fn parse_vision(version: QwenVersion, keys: &Keys) -> Result<VisionConfig> {
    let (window_size, fullatt_block_indexes) = match version {
        QwenVersion::Qwen2_5Vl => (keys.usize("window_size")?, keys.usize_list("fullatt_block_indexes")?),
        QwenVersion::Qwen3Vl => (0, Vec::new()),
    };
    let (num_position_embeddings, deepstack_visual_indexes) = match version {
        QwenVersion::Qwen3Vl => {
            (keys.usize("num_position_embeddings")?, keys.usize_list("deepstack_visual_indexes")?)
        }
        QwenVersion::Qwen2_5Vl => (0, Vec::new()),
    };
    let depth = keys.usize("depth")?;
    for (key, blocks) in [
        ("fullatt_block_indexes", &fullatt_block_indexes),
        ("deepstack_visual_indexes", &deepstack_visual_indexes),
    ] {
        if let Some(bad) = blocks.iter().find(|&&b| b >= depth) {
            return Err(keys.invalid(key, format!("block {bad} >= depth {depth}")));
        }
    }
    let default_act = match version {
        QwenVersion::Qwen2_5Vl => "silu",
        QwenVersion::Qwen3Vl => "gelu_pytorch_tanh",
    };
    let in_channels = match keys.opt_usize("in_channels")? {
        Some(c) => c,
        None => keys.opt_usize("in_chans")?.unwrap_or(3),
    };
    let hidden_size = keys.usize("hidden_size")?;
    let num_heads = keys.usize("num_heads")?;
    if num_heads == 0 || hidden_size % num_heads != 0 || (hidden_size / num_heads) % 4 != 0 {
        return Err(keys.invalid(
            "num_heads",
            format!(
                "{num_heads} must divide hidden_size = {hidden_size} into heads of a multiple of 4 (2D RoPE)"
            ),
        ));
    }
    let patch_size = keys.usize("patch_size")?;
    let spatial_merge_size = keys.opt_usize("spatial_merge_size")?.unwrap_or(2);
    for (key, value) in [("patch_size", patch_size), ("spatial_merge_size", spatial_merge_size)] {
        if value == 0 {
            return Err(keys.invalid(key, "must be positive"));
        }
    }
    Ok(VisionConfig {
        depth,
        hidden_size,
        intermediate_size: keys.usize("intermediate_size")?,
        num_heads,
        in_channels,
        patch_size,
        temporal_patch_size: keys.opt_usize("temporal_patch_size")?.unwrap_or(2),
        spatial_merge_size,
        out_hidden_size: keys.usize("out_hidden_size")?,
        hidden_act: keys.activation("hidden_act", default_act)?,
        window_size,
        fullatt_block_indexes,
        num_position_embeddings,
        deepstack_visual_indexes,
    })
}
