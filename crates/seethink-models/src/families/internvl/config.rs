//! `config.json` of an InternVL checkpoint, in both styles: transformers' `-hf` conversion
//! (`model_type` `internvl`: `text_config`, `vision_config` with transformers' names) and the
//! original release (`internvl_chat`: `llm_config`, `vision_config` with InternViT's names,
//! `force_image_size`, `select_layer`, the dynamic-tiling settings). Every missing or ill-typed
//! key is an error naming the file and the key.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{parse_text, Decoder, Keys, TextConfig};
use crate::error::{ModelError, Result};
use crate::nn::{Activation, NormKind};

/// Who wrote a checkpoint's config and names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The original OpenGVLab release (`internvl_chat`, `InternVLChatModel`).
    Original,
    /// transformers' conversion (`internvl`, `InternVLForConditionalGeneration`, the hub's `-hf`).
    Hf,
}

/// The string of the image context token the original release looks up in its tokenizer.
pub const IMAGE_CONTEXT_TOKEN: &str = "<IMG_CONTEXT>";

/// InternViT, the vision tower.
#[derive(Clone, Debug, PartialEq)]
pub struct InternVisionConfig {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    /// Side of the square tile the tower takes, in pixels.
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    /// Bias on the q/k/v projections.
    pub qkv_bias: bool,
    /// RMSNorm of q and k over the whole embedding (not per head) before splitting heads.
    pub qk_norm: bool,
    /// Epsilon of the q/k RMSNorm (transformers: always 1e-6; the original: `layer_norm_eps`).
    pub qk_norm_eps: f64,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub hidden_act: Activation,
}

impl InternVisionConfig {
    /// Patches per side of a tile.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

/// The dynamic-resolution tiling the original release keeps in `config.json` (the `-hf`
/// checkpoints keep it in `preprocessor_config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct TilingConfig {
    pub min_tiles: usize,
    pub max_tiles: usize,
    pub thumbnail: bool,
    /// `false`: every image is one tile resized to the tile size.
    pub dynamic: bool,
}

/// A parsed InternVL `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct InternVlConfig {
    /// The original release's config (and tensor names) or transformers' conversion.
    pub style: Style,
    /// The language model's flavour: InternVL3 is Qwen2.5-based, InternVL3.5 Qwen3-based.
    pub decoder: Decoder,
    pub text: TextConfig,
    pub vision: InternVisionConfig,
    /// Pixel shuffle factor per side (`1 / downsample_ratio`): `s²` neighbouring patches become
    /// one language-model token.
    pub shuffle: usize,
    /// Hidden states of this many vision layers are used (from `select_layer` /
    /// `vision_feature_layer`, which may count from the end).
    pub vision_layers_used: usize,
    pub image_token_id: usize,
    /// The original release's tiling settings (`None` for `-hf` checkpoints).
    pub tiling: Option<TilingConfig>,
}

impl InternVlConfig {
    /// Language-model tokens per tile: `(grid / shuffle)²`.
    pub fn tokens_per_tile(&self) -> usize {
        let side = self.vision.grid() / self.shuffle;
        side * side
    }

    /// Reads and parses `dir/config.json`. The original release names no image token id in
    /// it; then the id of [`IMAGE_CONTEXT_TOKEN`] in `dir/tokenizer.json` is used.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        Self::from_json_str(&text, &path, &|| {
            added_token_id(&dir.join("tokenizer.json"), IMAGE_CONTEXT_TOKEN)
        })
    }

    /// Parses config JSON (`path` names it in errors); `context_token_id` gives the image token
    /// id when the config has none.
    pub fn from_json_str(
        json: &str,
        path: &Path,
        context_token_id: &dyn Fn() -> Result<usize>,
    ) -> Result<Self> {
        let value: Value = serde_json::from_str(json)
            .map_err(|source| ModelError::Json { path: path.to_path_buf(), source })?;
        let root = Keys::root(&value, path)?;
        let model_type = root.string("model_type")?;
        let style = match model_type.as_str() {
            "internvl" => Style::Hf,
            "internvl_chat" => Style::Original,
            _ => return Err(ModelError::UnknownModelType { path: path.to_path_buf(), found: model_type }),
        };
        let text_key = match style {
            Style::Hf => "text_config",
            Style::Original => "llm_config",
        };
        let text_keys = root.child(text_key)?.ok_or_else(|| root.missing(text_key))?;
        let decoder = match text_keys.string("model_type")?.as_str() {
            "qwen2" => Decoder::Qwen2,
            "qwen3" => Decoder::Qwen3,
            other => {
                return Err(text_keys.invalid(
                    "model_type",
                    format!(
                        "language model `{other}` is not supported (qwen2: InternVL3, qwen3: InternVL3.5)"
                    ),
                ))
            }
        };
        let text = parse_text(&root, &text_keys, decoder)?;
        let vision_keys = root.child("vision_config")?.ok_or_else(|| root.missing("vision_config"))?;
        let vision = parse_vision(style, &root, &vision_keys)?;
        let ratio = root.opt_f64("downsample_ratio")?.unwrap_or(0.5);
        let shuffle = (1.0 / ratio).round() as usize;
        if !(ratio > 0.0) || shuffle == 0 || (shuffle as f64 * ratio - 1.0).abs() > 1e-9 {
            return Err(root.invalid("downsample_ratio", format!("{ratio} is not 1/n for a whole n")));
        }
        if vision.grid() % shuffle != 0 {
            return Err(root.invalid(
                "downsample_ratio",
                format!("a tile of {} patches per side cannot be shuffled by {shuffle}", vision.grid()),
            ));
        }
        let layer_key = match style {
            Style::Hf => "vision_feature_layer",
            Style::Original => "select_layer",
        };
        let vision_layers_used = layers_used(&root, layer_key, vision.num_layers)?;
        let image_token_id = match root.opt_usize("image_token_id")? {
            Some(id) => id,
            None => match style {
                Style::Hf => return Err(root.missing("image_token_id")),
                Style::Original => context_token_id()?,
            },
        };
        if style == Style::Hf {
            let strategy = root.get("vision_feature_select_strategy").and_then(Value::as_str);
            if strategy.is_some_and(|s| s != "default") {
                return Err(root.invalid(
                    "vision_feature_select_strategy",
                    "only `default` (the class token dropped) is supported",
                ));
            }
            if root.get("projector_hidden_act").and_then(Value::as_str).is_some_and(|a| a != "gelu") {
                return Err(root.invalid("projector_hidden_act", "only gelu is supported"));
            }
        }
        let tiling = match style {
            Style::Original => {
                if root.get("ps_version").and_then(Value::as_str).is_some_and(|v| v != "v2") {
                    return Err(root.invalid("ps_version", "only the v2 pixel shuffle is supported"));
                }
                Some(TilingConfig {
                    min_tiles: root.opt_usize("min_dynamic_patch")?.unwrap_or(1),
                    max_tiles: root.opt_usize("max_dynamic_patch")?.unwrap_or(12),
                    thumbnail: root.opt_bool("use_thumbnail")?.unwrap_or(true),
                    dynamic: root.opt_bool("dynamic_image_size")?.unwrap_or(true),
                })
            }
            Style::Hf => None,
        };
        Ok(Self { style, decoder, text, vision, shuffle, vision_layers_used, image_token_id, tiling })
    }

    /// The architecture in a few lines (`seethink inspect`).
    pub fn describe(&self) -> String {
        let (t, v) = (&self.text, &self.vision);
        format!(
            "family: InternVL ({:?} language model, {} style)\ntext: {} layers, hidden {}, heads {}/{} (q/kv), \
             head_dim {}, vocab {}, tied lm_head: {}\nvision: {} layers (using {}), hidden {}, heads {}, tile {}, \
             patch {}, {:?} norm, q/k norm {}, pixel shuffle {} -> {} tokens per tile",
            self.decoder,
            match self.style {
                Style::Original => "original",
                Style::Hf => "transformers -hf",
            },
            t.num_hidden_layers,
            t.hidden_size,
            t.num_attention_heads,
            t.num_key_value_heads,
            t.head_dim,
            t.vocab_size,
            t.tie_word_embeddings,
            v.num_layers,
            self.vision_layers_used,
            v.hidden_size,
            v.num_heads,
            v.image_size,
            v.patch_size,
            v.norm,
            v.qk_norm,
            self.shuffle,
            self.tokens_per_tile(),
        )
    }
}

/// How many vision layers feed the projector when `key` (default -1) picks a hidden state:
/// index 0 is the embeddings, i the output of layer i, negative indices count from the end.
fn layers_used(root: &Keys, key: &str, num_layers: usize) -> Result<usize> {
    let chosen = match root.get(key) {
        None => -1,
        Some(v) => v.as_i64().ok_or_else(|| root.invalid(key, format!("expected an integer, found {v}")))?,
    };
    let states = num_layers as i64 + 1;
    let index = if chosen < 0 { states + chosen } else { chosen };
    if !(1..states).contains(&index) {
        return Err(root.invalid(key, format!("{chosen} picks no layer output of {num_layers} layers")));
    }
    Ok(index as usize)
}

/// A side given as a number or as `[height, width]` (transformers' vision config); both sides
/// must be equal.
fn square_side(keys: &Keys, key: &str) -> Result<usize> {
    let value = keys.get(key).ok_or_else(|| keys.missing(key))?;
    let side = match value {
        Value::Array(_) => {
            let sides = keys.usize_list(key)?;
            match sides.as_slice() {
                [h, w] if h == w => *h,
                _ => return Err(keys.invalid(key, format!("expected a square [side, side], found {value}"))),
            }
        }
        _ => keys.usize(key)?,
    };
    if side == 0 {
        return Err(keys.invalid(key, "must be positive"));
    }
    Ok(side)
}

fn parse_vision(style: Style, root: &Keys, keys: &Keys) -> Result<InternVisionConfig> {
    let hidden_size = keys.usize("hidden_size")?;
    let num_heads = keys.usize("num_attention_heads")?;
    if num_heads == 0 || hidden_size % num_heads != 0 {
        return Err(
            keys.invalid("num_attention_heads", format!("{num_heads} must divide hidden_size {hidden_size}"))
        );
    }
    let patch_size = square_side(keys, "patch_size")?;
    // The original release overrides the tower's image size with `force_image_size`.
    let image_size = match (style, root.opt_usize("force_image_size")?) {
        (Style::Original, Some(side)) => side,
        _ => square_side(keys, "image_size")?,
    };
    if image_size % patch_size != 0 {
        return Err(
            keys.invalid("image_size", format!("{image_size} is not a multiple of patch_size {patch_size}"))
        );
    }
    let norm_eps = keys.opt_f64("layer_norm_eps")?.unwrap_or(1e-6);
    let (qkv_bias, qk_norm, norm_default, qk_norm_eps) = match style {
        Style::Hf => {
            for (key, expected) in [("use_absolute_position_embeddings", true), ("use_mean_pooling", true)] {
                if keys.opt_bool(key)?.is_some_and(|v| v != expected) {
                    return Err(keys.invalid(key, format!("only {expected} is supported")));
                }
            }
            (
                keys.opt_bool("attention_bias")?.unwrap_or(false),
                keys.opt_bool("use_qk_norm")?.unwrap_or(false),
                "layer_norm",
                1e-6,
            )
        }
        Style::Original => (
            keys.opt_bool("qkv_bias")?.unwrap_or(true),
            keys.opt_bool("qk_normalization")?.unwrap_or(false),
            "rms_norm",
            norm_eps,
        ),
    };
    let norm = match keys.get("norm_type").and_then(Value::as_str).unwrap_or(norm_default) {
        "layer_norm" => NormKind::Layer,
        "rms_norm" => NormKind::Rms,
        other => {
            return Err(keys.invalid("norm_type", format!("`{other}` is neither layer_norm nor rms_norm")))
        }
    };
    Ok(InternVisionConfig {
        hidden_size,
        num_layers: keys.usize("num_hidden_layers")?,
        num_heads,
        intermediate_size: keys.usize("intermediate_size")?,
        image_size,
        patch_size,
        num_channels: keys.opt_usize("num_channels")?.unwrap_or(3),
        qkv_bias,
        qk_norm,
        qk_norm_eps,
        norm,
        norm_eps,
        hidden_act: keys.activation("hidden_act", "gelu")?,
    })
}

/// The id of added token `content` in `tokenizer.json` (its `added_tokens` list).
fn added_token_id(path: &PathBuf, content: &str) -> Result<usize> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|source| ModelError::Json { path: path.clone(), source })?;
    value
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|t| t.get("content").and_then(Value::as_str) == Some(content))
        .and_then(|t| t.get("id").and_then(Value::as_u64))
        .map(|id| id as usize)
        .ok_or_else(|| ModelError::Tokenizer {
            path: path.clone(),
            message: format!(
                "config.json names no image_token_id and {content} is not an added token of the tokenizer"
            ),
        })
}
