"""The peer of `seethink train --config configs/tiny-grpo.ron`: TRL's GRPOTrainer on the same
checkpoint and the same procedural image tasks, with the settings matched as far as TRL allows.

  python benches/trl_grpo_step.py CHECKPOINT DATA_DIR STEPS

One seethink GRPO step (8 prompts x 5 samples, then two optimizer updates of 20 responses) is two
TRL optimizer steps (per_device_train_batch_size 20, steps_per_generation 2). Prints one JSON line:
the median seconds per GRPO step over STEPS steps after a warm-up step, and the peak RSS.

Settings that cannot be matched exactly (see docs/benchmarks.md):
- TRL's `delta` caps the ratio from above for every token (INTELLECT-2); EasyR1's dual clip
  bounds the loss of negative-advantage tokens by 3|A|. Both cost one extra min per token.
- TRL's `dapo` loss normalises by the tokens of the whole generation batch, EasyR1's token-mean
  by those of the mini-batch: the same work.
- TRL runs each update as one forward/backward of 20 responses; seethink in micro-batches of 8.
- TRL samples neither vision start/end nor video tokens (it crashes on them otherwise); seethink
  excludes only the image and video placeholders.
- TRL has no EasyR1 pixel bounds: images go straight to the processor (the Rust side runs with
  `data.min_pixels: None`, so both reach the same 25 image tokens).
"""

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

checkpoint, data_dir, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
FORMAT = (
    " You FIRST think about the reasoning process as an internal monologue and then provide the final answer."
    " The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in"
    " \\boxed{}. i.e. <thinking> reasoning here </thinking> \\boxed{final answer here}"
)


def records():
    for line in (data_dir / "tasks.jsonl").read_text().splitlines():
        task = json.loads(line)
        if not task.get("images"):
            continue  # TRL cannot batch text-only prompts with image prompts
        text = task["problem"].replace("<image>", "").strip() + FORMAT
        yield {
            "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}],
            "image": Image.open(data_dir / task["images"][0]).convert("RGB"),
            "answer": task["answer"],
        }


def exact_answer(completions, answer, **_):
    return [float(c[0]["content"].strip() == a) for c, a in zip(completions, answer)]


class StepClock(TrainerCallback):
    def __init__(self):
        self.ends = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


torch.manual_seed(0)
model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32)
processor = AutoProcessor.from_pretrained(checkpoint)
processor.tokenizer.padding_side = "left"  # TRL left-pads the prompt ids; mm_token_type_ids must follow
config = GRPOConfig(
    output_dir="/tmp/trl-grpo-bench",
    use_cpu=True,
    bf16=False,
    per_device_train_batch_size=20,
    steps_per_generation=2,
    num_generations=5,
    max_completion_length=32,
    temperature=1.0,
    top_p=1.0,
    beta=0.01,
    epsilon=0.2,
    epsilon_high=0.3,
    delta=3.0,
    loss_type="dapo",
    scale_rewards="group",
    learning_rate=1e-4,
    weight_decay=0.01,
    max_grad_norm=1.0,
    lr_scheduler_type="constant",
    max_steps=2 * (steps + 1),
    logging_steps=1000,
    save_strategy="no",
    report_to=[],
    seed=0,
    dataloader_num_workers=0,
    # TRL suppresses only the image placeholder; a sampled video or vision start/end token makes
    # transformers' M-RoPE indexing fail on the next forward, so those are suppressed as well.
    generation_kwargs={"suppress_tokens": [model.config.image_token_id, model.config.video_token_id,
                                           model.config.vision_start_token_id, model.config.vision_end_token_id]},
)
clock = StepClock()
trainer = GRPOTrainer(
    model=model,
    reward_funcs=exact_answer,
    args=config,
    train_dataset=Dataset.from_list(list(records())),
    processing_class=processor,
    callbacks=[clock],
)
started = time.perf_counter()
trainer.train()
ends = [started] + clock.ends
per_step = [ends[i + 2] - ends[i] for i in range(2, len(ends) - 1, 2)]  # skip the warm-up step
print(
    json.dumps(
        {
            "grpo_step_s": statistics.median(per_step),
            "steps": len(per_step),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(),
            "versions": {"torch": torch.__version__, "trl": __import__("trl").__version__},
        }
    )
)
