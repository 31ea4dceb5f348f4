#!/usr/bin/env bash
# Time per GRPO step with 1 and 2 data-parallel workers (trainer.devices), and 2 with AdamW's
# state sharded between them (trainer.sharding: OptimizerState), with the gradients too
# (Gradients: 2 micro-batches per worker, each exchanged as it ends), and with the weights too
# (Weights, which recomputes each decoder layer in backward: against 2 unsharded workers that
# recompute them, `2-None+ckpt`), twice each, on the
# sandbox base model: 16 prompts × 8 samples of the procedural benchmark, up to 96 new tokens,
# one update per step (release binary; run from the repository root):
#   cargo build --release --bin seethink && benches/data_parallel.sh
# Prints the mean seconds per step over steps 2–6 (step 1 warms up) and the rewards, which must be
# the same for every variant (the same rollouts). VARIANTS="2-None+ckpt 2-Weights+ckpt" runs some.
set -euo pipefail
BIN=${BIN:-target/release/seethink}
work=$(mktemp -d)
"$BIN" data synth --out "$work/data" --n 32 --seed 0 > /dev/null
all="1 2 2-OptimizerState 2-Gradients 2-None+ckpt 2-Weights+ckpt"
for variant in ${VARIANTS:-$all} ${VARIANTS:-$all}; do
  devices=${variant%%-*}
  sharding=$([ "$variant" = "$devices" ] && echo None || echo "${variant#*-}")
  checkpointing=$([ "${sharding%+ckpt}" = "$sharding" ] && echo false || echo true)
  sharding=${sharding%+ckpt}
  out="$work/run-$variant-$RANDOM"
  "$BIN" train --config configs/tiny-grpo.ron --out "$out" \
    --set model=experiments/sandbox/base --set "data.train=\"$work/data\"" \
    --set data.format_prompt=Plain --set 'data.min_pixels=Some(1024)' --set 'data.max_pixels=Some(4096)' \
    --set trainer.steps=6 --set trainer.prompts_per_step=16 --set trainer.save_every=100 \
    --set rollout.n=8 --set rollout.max_new_tokens=96 --set rollout.batch_size=64 \
    --set actor.micro_batch_size=32 --set actor.mini_batches=1 --set trainer.devices=$devices \
    --set trainer.sharding=$sharding --set actor.activation_checkpointing=$checkpointing \
    > "$out.log" 2>&1
  python3 - "$out" "$variant" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
seconds = [l["seconds"] for l in lines[1:]]
tokens = [l["tokens_per_second"] for l in lines[1:]]
print(f"workers {sys.argv[2]}: {sum(seconds) / len(seconds):.2f} s/step over steps 2-6 "
      f"(min {min(seconds):.2f}, max {max(seconds):.2f}), {sum(tokens) / len(tokens):.0f} response tokens/s; "
      f"rewards {[round(l['reward'], 4) for l in lines]}")
PY
done
rm -rf "$work"
