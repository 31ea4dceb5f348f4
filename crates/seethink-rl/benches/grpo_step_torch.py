"""The GRPO update of benches/grpo_step.rs in PyTorch (transformers model, same checkpoint):
old and reference forwards, policy forward + backward, grad-norm clip, AdamW; logits only for
the response positions (logits_to_keep); the best of RUNS (default 10) after a warm-up.

  .venv-fixtures/bin/python crates/seethink-rl/benches/grpo_step_torch.py [CHECKPOINT] [THREADS] [RESPONSE] [RUNS]
"""

import copy
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

ROOT = Path(__file__).resolve().parents[3]
checkpoint = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/fixtures/qwen3_vl/checkpoint"
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
response_len = int(sys.argv[3]) if len(sys.argv) > 3 else 31
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
policy = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32)
reference = copy.deepcopy(policy).eval()
optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6, weight_decay=0.01)

prompts = [[1 + (i * 7 + s) % 250 for i in range(32)] for s in range(8)]
responses = [[1 + (i * 11 + 3 * s) % 250 for i in range(response_len)] for s in range(8)]
ids = torch.tensor([p + r for p, r in zip(prompts, responses)])
advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 1.0, -1.0, 0.5, -0.5])[:, None]


def response_logp(model):
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=response_len + 1)
    return torch.log_softmax(out.logits[:, :-1].float(), -1).gather(-1, ids[:, 32:, None])[..., 0]


def step():
    started = time.perf_counter()
    with torch.no_grad():
        old = response_logp(policy)
        ref = response_logp(reference)
    logp = response_logp(policy)
    log_ratio = (logp - old).clamp(-20, 20)
    ratio = log_ratio.exp()
    clipped = log_ratio.clamp(torch.log(torch.tensor(0.8)), torch.log(torch.tensor(1.3))).exp()
    pg = torch.maximum(-advantages * ratio, -advantages * clipped)
    pg = torch.where(advantages < 0, torch.minimum(pg, -advantages * 3.0), pg)
    x = (ref - logp).clamp(-20, 20)
    kl = (x.exp() - x - 1).clamp(-10, 10)
    loss = (pg + 0.01 * kl).sum() / logp.numel()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()
    return time.perf_counter() - started


step()
best = min(step() for _ in range(runs))
print(f"{checkpoint}: GRPO update, 8 x {32 + response_len} tokens: {best * 1e3:.1f} ms (PyTorch, {torch.get_num_threads()} threads)")
