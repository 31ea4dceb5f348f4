//! The text decoder every family uses (Qwen2.5 and Qwen3 flavours) with an external KV cache.
//!
//! Pre-norm blocks: `h = x + attn(rms(x))`, `y = h + mlp(rms(h))`; GQA attention with
//! optional q/k/v bias (Qwen2.5) or per-head q/k RMSNorm before RoPE (Qwen3); SwiGLU MLP;
//! final RMSNorm; lm_head tied to the embeddings or separate.

use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::tensor::{backend::Backend, Bool, DType, Tensor};

use crate::checkpoint::Checkpoint;
use crate::config::TextConfig;
use crate::decode::{DecodeState, KvCache};
use crate::error::{ModelError, Result};
use crate::kernels::{causal_blocked, Kernels};
use crate::nn::frozen::float_dtype;
use crate::nn::{
    attention, load_linear, text_rope, weight_product, GatedMlp, Linear, LoraPart, LoraSite, RmsNorm, Rope,
    LORA_TARGETS,
};
use crate::positions::TokenBatch;

/// Self-attention of one decoder layer.
#[derive(Module, Debug)]
pub struct TextAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    pub q_norm: Option<RmsNorm<B>>,
    pub k_norm: Option<RmsNorm<B>>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

impl<B: Kernels> TextAttention<B> {
    fn load(ckpt: &Checkpoint, prefix: &str, c: &TextConfig, device: &B::Device) -> Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim);
        let q_out = c.num_attention_heads * d;
        let kv_out = c.num_key_value_heads * d;
        let norm = |name: &str| -> Result<Option<RmsNorm<B>>> {
            if c.qk_norm {
                RmsNorm::load(ckpt, &format!("{prefix}.{name}"), d, c.rms_norm_eps, device).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            q_proj: load_linear(ckpt, &format!("{prefix}.q_proj"), h, q_out, c.qkv_bias, device)?,
            k_proj: load_linear(ckpt, &format!("{prefix}.k_proj"), h, kv_out, c.qkv_bias, device)?,
            v_proj: load_linear(ckpt, &format!("{prefix}.v_proj"), h, kv_out, c.qkv_bias, device)?,
            o_proj: load_linear(ckpt, &format!("{prefix}.o_proj"), q_out, h, false, device)?,
            q_norm: norm("q_norm")?,
            k_norm: norm("k_norm")?,
            num_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads,
            head_dim: d,
        })
    }

    /// `x [B, S, hidden]` → `[B, S, hidden]`; with a cache, attends over cached + new keys.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        blocked: &Tensor<B, 4, Bool>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        // a projection's bias is added by the rotary embedding's kernel where the backend's does
        // and nothing comes between
        let heads = |(t, bias): (Tensor<B, 3>, Option<Tensor<B, 1>>), n: usize, norm: &Option<RmsNorm<B>>| {
            let t = t.reshape([batch, seq, n, self.head_dim]);
            let (t, bias) = match norm {
                Some(norm) => {
                    let t = match bias {
                        Some(bias) => t + bias.reshape([1, 1, n, self.head_dim]),
                        None => t,
                    };
                    (norm.forward(t), None)
                }
                None => (t, bias),
            };
            B::rotary(t.swap_dims(1, 2), bias, rope.cos.clone(), rope.sin.clone())
        };
        let project = |linear: &Linear<B>| match B::rotary_adds_bias() {
            true => linear.forward_deferring_bias(x.clone()),
            false => (linear.forward(x.clone()), None),
        };
        let q = heads(project(&self.q_proj), self.num_heads, &self.q_norm);
        let k = heads(project(&self.k_proj), self.num_kv_heads, &self.k_norm);
        let v =
            self.v_proj.forward(x).reshape([batch, seq, self.num_kv_heads, self.head_dim]).swap_dims(1, 2);
        let scale = (self.head_dim as f64).powf(-0.5);
        let out = match cache {
            Some((cache, layer)) => B::cached_attention(q, cache.extend(layer, k, v), blocked, scale),
            None => attention(q, k, v, Some(blocked), scale),
        };
        let out = out.swap_dims(1, 2).reshape([batch, seq, self.num_heads * self.head_dim]);
        self.o_proj.forward(out)
    }
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: TextAttention<B>,
    pub mlp: GatedMlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Kernels> DecoderLayer<B> {
    /// `y = h + mlp(rms(h))` with `h = x + attn(rms(x))`, for `x [B, S, hidden]`; with a
    /// cache, attends over its cached keys of layer `layer` and the new ones, which join it.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        blocked: &Tensor<B, 4, Bool>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        self.forward_residual(Residual { x, delta: None }, rope, blocked, cache).sum()
    }

    /// [`DecoderLayer::forward`] on the residual stream, leaving the MLP's residual add to
    /// whatever normalises the stream next, which adds it in the same kernel
    /// ([`Kernels::add_rms_norm`]).
    fn forward_residual(
        &self,
        x: Residual<B>,
        rope: &Rope<B>,
        blocked: &Tensor<B, 4, Bool>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Residual<B> {
        let (x, normed) = x.normed(&self.input_layernorm);
        let attn = self.self_attn.forward(normed, rope, blocked, cache);
        let (h, normed) = self.post_attention_layernorm.forward_after_add(x, attn);
        Residual { x: h, delta: Some(self.mlp.forward(normed)) }
    }
}

/// The residual stream between decoder layers, `x + delta`, with the add not yet done.
struct Residual<B: Backend> {
    x: Tensor<B, 3>,
    delta: Option<Tensor<B, 3>>,
}

impl<B: Kernels> Residual<B> {
    /// `x + delta`.
    fn sum(self) -> Tensor<B, 3> {
        match self.delta {
            Some(delta) => self.x + delta,
            None => self.x,
        }
    }

    /// The stream summed, and `norm` of it (one kernel for both where the backend fuses them).
    fn normed(self, norm: &RmsNorm<B>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        match self.delta {
            Some(delta) => norm.forward_after_add(self.x, delta),
            None => (self.x.clone(), norm.forward(self.x)),
        }
    }
}

/// What the decoder's layers take for a batch of new tokens: their input embeddings
/// `[B, S, hidden]`, rotary tables, attention mask (true = blocked, over cached + new keys) and
/// the features added after the first layers (Qwen3-VL's deepstack; empty otherwise).
#[derive(Clone, Debug)]
pub struct DecoderInput<B: Backend> {
    pub embeds: Tensor<B, 3>,
    pub rope: Rope<B>,
    pub blocked: Tensor<B, 4, Bool>,
    pub deepstack: Vec<Tensor<B, 3>>,
}

/// The decoder: embeddings, layers, final norm and the output projection.
#[derive(Module, Debug)]
pub struct TextModel<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `None` when the output projection is tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
}

impl<B: Kernels> TextModel<B> {
    /// Loads the decoder stored under `root` (e.g. `model.language_model`) and the output
    /// projection `{lm_head}.weight` (unless tied): the family chooses the names.
    pub fn load(
        ckpt: &Checkpoint,
        root: &str,
        lm_head: &str,
        c: &TextConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let p = root;
        let eps = c.rms_norm_eps;
        let embed =
            ckpt.tensor(&format!("{p}.embed_tokens.weight"), [c.vocab_size, c.hidden_size], device)?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = format!("{p}.layers.{i}");
                Ok(DecoderLayer {
                    self_attn: TextAttention::load(ckpt, &format!("{l}.self_attn"), c, device)?,
                    mlp: GatedMlp::load(
                        ckpt,
                        &format!("{l}.mlp"),
                        c.hidden_size,
                        c.intermediate_size,
                        false,
                        c.hidden_act,
                        device,
                    )?,
                    input_layernorm: RmsNorm::load(
                        ckpt,
                        &format!("{l}.input_layernorm"),
                        c.hidden_size,
                        eps,
                        device,
                    )?,
                    post_attention_layernorm: RmsNorm::load(
                        ckpt,
                        &format!("{l}.post_attention_layernorm"),
                        c.hidden_size,
                        eps,
                        device,
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if c.tie_word_embeddings {
            // a stored copy of a tied head is not read: transformers ties it to the embeddings
            // after loading, whatever the file holds
            ckpt.ignore(&format!("{lm_head}.weight"));
            None
        } else {
            Some(load_linear(ckpt, lm_head, c.hidden_size, c.vocab_size, false, device)?)
        };
        Ok(Self {
            embed_tokens: Embedding { weight: Param::from_tensor(embed) },
            layers,
            norm: RmsNorm::load(ckpt, &format!("{p}.norm"), c.hidden_size, eps, device)?,
            lm_head,
        })
    }

    /// Runs the layers over input embeddings `[B, S, hidden]` and returns the final-normed
    /// hidden states. `deepstack[i]` (dense `[B, S, hidden]`, zero off image tokens) is added
    /// to the output of layer i. With a cache, `blocked` covers cached + new keys.
    pub fn forward(
        &self,
        embeds: Tensor<B, 3>,
        rope: &Rope<B>,
        blocked: &Tensor<B, 4, Bool>,
        mut cache: Option<&mut KvCache<B>>,
        deepstack: &[Tensor<B, 3>],
    ) -> Tensor<B, 3> {
        let mut x = Residual { x: embeds, delta: None };
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward_residual(x, rope, blocked, cache.as_deref_mut().map(|c| (c, i)));
            if let Some(extra) = deepstack.get(i) {
                x = Residual { x: x.sum() + extra.clone(), delta: None };
            }
        }
        x.normed(&self.norm).1
    }

    /// [`TextModel::forward`] of a [`DecoderInput`].
    pub fn forward_input(&self, input: &DecoderInput<B>, cache: Option<&mut KvCache<B>>) -> Tensor<B, 3> {
        self.forward(input.embeds.clone(), &input.rope, &input.blocked, cache, &input.deepstack)
    }

    /// Token embeddings `[B, S, hidden]` of `tokens`; an error for an id outside the vocabulary.
    pub fn embed(&self, tokens: &TokenBatch) -> Result<Tensor<B, 3>> {
        let vocab = self.embed_tokens.weight.dims()[0];
        if let Some(bad) = tokens.ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary of {vocab} tokens"
            )));
        }
        let ids: Vec<i64> = tokens.ids.iter().map(|&i| i64::from(i)).collect();
        let device = self.embed_tokens.weight.device();
        let ids = Tensor::from_data(burn::tensor::TensorData::new(ids, [tokens.batch, tokens.seq]), &device);
        // a frozen table may be stored narrower (`nn::frozen`): its rows in the compute type
        Ok(self.embed_tokens.forward(ids).cast(self.dtype()))
    }

    /// What the layers take for the new `tokens` (embedded as `embeds`) at `positions` (laid
    /// out `[axes][batch][seq]` as [`text_rope`] reads them), attending causally to everything
    /// `state` has cached, which they join (their keys are recorded in `state`; the layers add
    /// their keys and values to its cache when they run); `deepstack` as in
    /// [`TextModel::forward`].
    pub fn decoder_input(
        embeds: Tensor<B, 3>,
        tokens: &TokenBatch,
        positions: &[i64],
        c: &TextConfig,
        state: &mut DecodeState<B>,
        deepstack: Vec<Tensor<B, 3>>,
    ) -> DecoderInput<B> {
        let device = embeds.device();
        let (batch, seq) = (tokens.batch, tokens.seq);
        let rope =
            text_rope(positions, batch, seq, c.head_dim, c.rope_theta, &c.rope, &device).cast(embeds.dtype());
        let room = state.kv.room_after(seq);
        let key_valid = state.extend_keys(tokens);
        let blocked = causal_blocked::<B>(&key_valid, batch, seq, room, &device);
        DecoderInput { embeds, rope, blocked, deepstack }
    }

    /// Every layer's projections LoRA can adapt ([`LORA_TARGETS`] order within a layer), with
    /// the decoder layers' module path `stem` (e.g. `model.language_model.layers`).
    pub fn lora_sites_mut(&mut self, stem: &str) -> Vec<LoraSite<'_, B>> {
        let mut out = Vec::with_capacity(self.layers.len() * LORA_TARGETS.len());
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let (a, m) = (&mut layer.self_attn, &mut layer.mlp);
            let named = [
                ("self_attn.q_proj", &mut a.q_proj),
                ("self_attn.k_proj", &mut a.k_proj),
                ("self_attn.v_proj", &mut a.v_proj),
                ("self_attn.o_proj", &mut a.o_proj),
                ("mlp.gate_proj", &mut m.gate_proj),
                ("mlp.up_proj", &mut m.up_proj),
                ("mlp.down_proj", &mut m.down_proj),
            ];
            out.extend(named.into_iter().map(|(leaf, linear)| LoraSite {
                part: LoraPart::Decoder,
                stem: stem.to_string(),
                index: Some(i),
                leaf,
                linear,
            }));
        }
        out
    }

    /// The type the decoder computes in: its norms' ([`crate::nn::precision`]).
    pub fn dtype(&self) -> DType {
        self.norm.dtype()
    }

    /// Vocabulary logits `[B, S, V]` of final hidden states `[B, S, hidden]`, in the backend's
    /// float type: computed in the hidden states' type, then cast, since log-probs and sampling
    /// read them in it ([`crate::nn::precision`]).
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let logits = match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let [batch, seq, dim] = hidden.dims();
                let weight = self.embed_tokens.weight.val();
                let vocab = weight.dims()[0];
                weight_product(hidden.reshape([batch * seq, dim]), weight.transpose())
                    .reshape([batch, seq, vocab])
            }
        };
        logits.cast(float_dtype::<B>())
    }
}
