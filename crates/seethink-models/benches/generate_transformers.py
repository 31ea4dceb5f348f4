"""transformers' generation throughput on the same checkpoint and settings as benches/generate.rs.

Run inside the fixture venv (tests/fixtures/make_fixtures.py creates it):
  .venv-fixtures/bin/python crates/seethink-models/benches/generate_transformers.py [CHECKPOINT] [THREADS] [RUNS]
Prompts of 32 tokens, 32 new tokens, sampling at temperature 1 (min_new_tokens forces the
length); batch 1 and 8 prompts x 5 samples (num_return_sequences); best of RUNS (default 5)
runs after a warm-up.
"""

import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

ROOT = Path(__file__).resolve().parents[3]
checkpoint = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/fixtures/qwen3_vl/checkpoint"
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32).eval()


def prompt(seed):
    return [1 + (i * 7 + seed) % 250 for i in range(32)]


for label, prompts, n in [("batch 1", 1, 1), ("batch 8 x n=5", 8, 5)]:
    ids = torch.tensor([prompt(s) for s in range(prompts)])
    kwargs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=32,
        min_new_tokens=32,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        num_return_sequences=n,
    )
    with torch.no_grad():
        model.generate(**kwargs)
        best = 0.0
        for _ in range(runs):
            started = time.perf_counter()
            out = model.generate(**kwargs)
            tokens = (out.shape[1] - ids.shape[1]) * out.shape[0]
            best = max(best, tokens / (time.perf_counter() - started))
    print(f"{checkpoint}: {label}: {best:.0f} new tokens/s (transformers, {torch.get_num_threads()} threads)")
