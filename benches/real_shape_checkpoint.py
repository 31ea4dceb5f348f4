"""Writes a Qwen2.5-VL checkpoint of real size with random weights, for benches/compare.sh.

The language model has Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 query / 2 key-value
heads, MLP 4864, vocabulary 151,936, tied embeddings, RoPE theta 1e6); the vision tower is a
small one (2 blocks of width 128). Weights are transformers' own initialisation from a fixed
seed, stored in f32, so seethink and PyTorch load the same numbers. About 2 GB.

  python benches/real_shape_checkpoint.py OUT_DIR
"""

import sys
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

out = Path(sys.argv[1])
special = dict(bos_token_id=151643, eos_token_id=151645, pad_token_id=151643)
tokens = dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653)
text = dict(
    vocab_size=151_936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    hidden_act="silu",
    max_position_embeddings=32_768,
    rms_norm_eps=1e-6,
    rope_theta=1_000_000.0,
    tie_word_embeddings=True,
    # head_dim 64: the temporal/height/width sections split its 32 frequencies
    rope_scaling={"type": "mrope", "rope_type": "default", "mrope_section": [8, 12, 12]},
    **special,
)
vision = dict(
    depth=2,
    hidden_size=128,
    num_heads=2,
    intermediate_size=256,
    out_hidden_size=896,
    patch_size=14,
    temporal_patch_size=2,
    spatial_merge_size=2,
    in_channels=3,
    window_size=112,
    fullatt_block_indexes=[1],
    hidden_act="silu",
    tokens_per_second=2,
)
config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **tokens, **special)
torch.manual_seed(0)
model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
model.save_pretrained(out)
parameters = sum(p.numel() for p in model.parameters())
print(f"{out}: {parameters / 1e6:.0f} M parameters")
