"""The peer of `gpu_bench --measure generate-batch`: transformers' `generate` on the same
architecture (a config.json, random weights in bf16 on the GPU, a static KV cache), for the same
batches of image prompts of the same length, sampling the same number of new tokens.

  python benches/hf_generate.py CONFIG_DIR OUT --batches 1 64 256 --new-tokens 32 \
      --prompt-tokens 350 --image-side 448 [--seethink GPU_BENCH_MARKDOWN]

Each batch is generated twice: a warm-up call of 4 new tokens (which compiles what transformers
compiles for a static cache at that batch), then the timed call. Appends to OUT a table of
transformers' times and, with --seethink, the side-by-side table: seethink's `generate-one` /
`generate-batch` rows of that file at the same batch and prompt length, transformers' time and
the ratio seethink / transformers (below 1: seethink is faster).

The prompts are what seethink's processor makes of a square image of IMAGE_SIDE pixels: its
patches (random pixel values; decoding speed does not depend on them), `vision_start`, the
image tokens and `vision_end`, then random text tokens up to PROMPT_TOKENS. Each row's new tokens
are forced (`min_new_tokens`), as seethink's random-weight generation has no stop token.
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

parser = argparse.ArgumentParser()
parser.add_argument("config_dir", type=Path)
parser.add_argument("out", type=Path)
parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
parser.add_argument("--new-tokens", type=int, default=32)
parser.add_argument("--prompt-tokens", type=int, default=350)
parser.add_argument("--image-side", type=int, default=448)
parser.add_argument("--seethink", type=Path)
parser.add_argument("--device", default="cuda", help="cpu: a check of this script at a tiny shape")
args = parser.parse_args()

config = Qwen2_5_VLConfig.from_pretrained(args.config_dir)
vision = config.vision_config
grid = args.image_side // vision.patch_size
image_tokens = grid * grid // vision.spatial_merge_size**2
patch_values = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
text_tokens = args.prompt_tokens - image_tokens - 2
vocab = getattr(config, "text_config", config).vocab_size
assert text_tokens > 0, f"{args.prompt_tokens}-token prompts cannot hold {image_tokens} image tokens"

torch.manual_seed(0)
with torch.device(args.device):
    try:
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    except TypeError:  # transformers before `dtype` replaced `torch_dtype`
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, torch_dtype=torch.bfloat16)
model = model.eval()
device_name = torch.cuda.get_device_name() if args.device == "cuda" else args.device
sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)


def inputs(batch):
    """`batch` image prompts as the processor lays them out."""
    text = torch.randint(0, vocab, (batch, text_tokens))
    for special in (config.image_token_id, config.video_token_id, config.vision_start_token_id, config.vision_end_token_id):
        text[text == special] = 0
    ids = torch.cat(
        [
            torch.full((batch, 1), config.vision_start_token_id),
            torch.full((batch, image_tokens), config.image_token_id),
            torch.full((batch, 1), config.vision_end_token_id),
            text,
        ],
        dim=1,
    ).to(args.device)
    pixels = torch.randn(batch * grid * grid, patch_values, dtype=torch.bfloat16, device=args.device)
    grid_thw = torch.tensor([[1, grid, grid]] * batch, device=args.device)
    return dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        pixel_values=pixels,
        image_grid_thw=grid_thw,
    )


cache = "static"


def generate(batch, new_tokens):
    """Seconds of one `generate` call and the new tokens it made, with the static cache where
    this transformers has it for the model (else its default cache, which the table then says)."""
    global cache
    try:
        return timed_generate(batch, new_tokens, cache)
    except Exception as error:
        if cache is None or isinstance(error, torch.cuda.OutOfMemoryError):
            raise
        print(f"static cache failed ({type(error).__name__}: {error}); the default cache from here on", flush=True)
        cache = None
        return timed_generate(batch, new_tokens, cache)


def timed_generate(batch, new_tokens, cache):
    kwargs = inputs(batch)
    sync()
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            **kwargs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            cache_implementation=cache,
            pad_token_id=config.pad_token_id,
        )
    sync()
    seconds = time.perf_counter() - started
    return seconds, (out.shape[1] - kwargs["input_ids"].shape[1]) * batch


rows = []
for batch in args.batches:
    try:
        warm, _ = generate(batch, 4)
        seconds, tokens = generate(batch, args.new_tokens)
        rows.append(dict(batch=batch, warm_up=warm, seconds=seconds, tokens=tokens))
    except Exception as error:  # a batch that does not fit is a row that says so
        rows.append(dict(batch=batch, error=f"{type(error).__name__}: {error}"[:200]))
    if args.device == "cuda":
        torch.cuda.empty_cache()
    print(json.dumps(rows[-1]), flush=True)

lines = [
    "",
    f"**transformers {transformers.__version__} `generate`, torch {torch.__version__}, {device_name}**: "
    f"architecture of `{args.config_dir}`, random weights in bf16, {cache or 'default (dynamic)'} KV cache, "
    f"{args.prompt_tokens}-token image prompts ({image_tokens} image tokens), {args.new_tokens} new tokens "
    f"per sequence (forced), sampled at temperature 1",
    "",
    "| batch | warm-up call, 4 new tokens | time | tokens/s | time per new token (prefill included) |",
    "|---|---|---|---|---|",
]
for row in rows:
    if "error" in row:
        lines.append(f"| {row['batch']} | failed: {row['error']} | | | |")
    else:
        lines.append(
            f"| {row['batch']} | {row['warm_up']:.2f} s | {row['seconds']:.2f} s | {row['tokens'] / row['seconds']:.0f} | "
            f"{1000 * row['seconds'] / args.new_tokens:.1f} ms |"
        )

if args.seethink and args.seethink.exists():
    # seethink's rows: "| generate-batch | 64 × 1 sequences, 350-token prompts, 32 new tokens each, ... | 5.12 s | 400 | ..."
    pattern = re.compile(r"^\| generate-(?:one|batch) \| (\d+) × (\d+) sequences, (\d+)-token prompts, (\d+) new tokens each[^|]*\| ([\d.]+) s \|")
    ours = {}
    for line in args.seethink.read_text().splitlines():
        match = pattern.match(line)
        if match:
            prompts, samples, prompt_tokens, new_tokens, seconds = match.groups()
            if int(prompt_tokens) == args.prompt_tokens and int(new_tokens) == args.new_tokens:
                ours[int(prompts) * int(samples)] = float(seconds)
    lines += [
        "",
        f"**Generation side by side** ({device_name}, {args.prompt_tokens}-token image prompts, {args.new_tokens} new tokens each)",
        "",
        "| batch | seethink | transformers | seethink / transformers |",
        "|---|---|---|---|",
    ]
    for row in rows:
        mine = ours.get(row["batch"])
        theirs = row.get("seconds")
        ratio = f"{mine / theirs:.2f}" if mine and theirs else "n/a"
        lines.append(
            f"| {row['batch']} | {f'{mine:.2f} s' if mine else 'not measured'} | "
            f"{f'{theirs:.2f} s' if theirs else 'failed'} | {ratio} |"
        )

with args.out.open("a") as out:
    out.write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if all("error" not in row for row in rows) else 1)
