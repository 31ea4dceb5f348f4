#!/usr/bin/env bash
# Everything the GPU issues ask to measure, in one command on a lent GPU, nothing downloaded.
# It appends markdown tables to $OUT (default gpu-bench.md), row by row, the most wanted first,
# and stops starting rows when under 30 s are left of DEADLINE (default 540 s: a lent GPU's call
# runs at most 600 s); each skipped row says so. Each measurement stops after TIMEOUT (150 s)
# unless its row says otherwise, and each check after CHECK_TIMEOUT (60 s). The rows, in order:
# - backend_check on CUDA for the tiny Qwen2.5-VL (logits, greedy tokens with the shared prompt
#   cache a GPU decodes with, and a whole GRPO update against ndarray);
# - gpu_bench at Qwen2.5-VL-3B's real shape with random weights and the settings of
#   benches/gpu.ron (bf16 compute, layers and vision blocks recomputed): a decoding step split
#   into the decoder's forward pass and the sampling rule, for 1 sequence and 8 prompts × 5;
# - two data-parallel workers sharing the GPU under `trainer.sharding: Weights` against one
#   worker, on the sandbox's base model (`seethink train`, two GRPO steps each): each step's
#   time and whether the metrics agree (benches/data_parallel.sh does the same on the CPU);
# - generation side by side: seethink's `generate` for batches of 1, 64 and 256 image prompts,
#   then transformers' `generate` (bf16, static cache) on the same architecture, prompt length
#   and new tokens (benches/hf_generate.py; the device's own torch and transformers), and the
#   ratio of the two times;
# - a GRPO step with full fine-tuning at a paper-like per-GPU shape (32 prompts × 5 samples,
#   about 500-token image prompts, 256 new tokens, the paper's 4 mini-batches of micro-batches
#   of 4), two steps, the first compiling;
# - the design card's main job, `staged_qwen3` on the GPU, in what time is left (its time,
#   kernel compilation included, or how far it got);
# - backend_check for the other three families, the small GRPO step of benches/gpu.ron with
#   full fine-tuning (with and without the pools released after each phase), in f32 without
#   recomputation, with LoRA, and generation for 1 sequence and 8 prompts × 5.
# Build here, carry the binaries, run from the repository root:
#   cargo build --release --features cuda --example backend_check --example gpu_bench \
#     --example staged_qwen3 --bin seethink
#   BIN=target/release/examples SEETHINK=target/release/seethink benches/gpu.sh
# (binaries stripped and compressed with `xz` are about 8 MB each, within a carry's 64 MiB;
# where the checkout has no git history, SEETHINK_COMMIT names the commit in the table)
# On a machine without a GPU, BACKEND=ndarray TINY=1 runs the same rows at the tiny checkpoint's
# shape and sizes (tests/gpu_bench.rs does so in CI; the transformers row needs torch and is
# skipped where python cannot import it).
set -uo pipefail
BIN=${BIN:-target/release/examples}
SEETHINK=${SEETHINK:-$BIN/../seethink}
BACKEND=${BACKEND:-cuda}
OUT=${OUT:-gpu-bench.md}
PYTHON=${PYTHON:-python3}
status=0
{
  echo
  echo "## gpu.sh, $(date -u +%F), commit ${SEETHINK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
} >> "$OUT"
# each row's sizes: the real ones on a GPU, the tiny checkpoint's with TINY
if [ -n "${TINY:-}" ]; then
  model=(--config tests/fixtures/qwen2_5_vl/checkpoint --new-tokens 4 --image-side 32
         --set rollout.max_new_tokens=4 --set rollout.batch_size=4 --set actor.micro_batch_size=2)
  sizes=(--prompts 4 --samples 2)
  small=(--set trainer.prompts_per_step=2)
  batches=(1 2 4)
  paper=(--set trainer.prompts_per_step=4 --set rollout.max_new_tokens=8 --set rollout.batch_size=0
         --set actor.mini_batches=2 --set actor.micro_batch_size=2)
  workers=(--set trainer.prompts_per_step=4 --set rollout.n=4 --set rollout.max_new_tokens=64
           --set actor.micro_batch_size=8 --set actor.mini_batches=1)
  staged=(--stage-steps 1 --train-tasks 4 --heldout-tasks 2 --eval-k 1 --set trainer.prompts_per_step=2
          --set rollout.n=2 --set rollout.max_new_tokens=8)
  prompt_image=(--image-side 32)
else
  model=()
  sizes=()
  small=()
  batches=(1 64 256)
  paper=(--image-side 560 --set trainer.prompts_per_step=32 --set rollout.max_new_tokens=256
         --set rollout.batch_size=0 --set actor.mini_batches=4 --set actor.micro_batch_size=4)
  workers=(--set trainer.prompts_per_step=16 --set rollout.n=8 --set rollout.max_new_tokens=96
           --set actor.micro_batch_size=32 --set actor.mini_batches=1)
  staged=()
  prompt_image=(--image-side 448)
fi
started=$(date +%s)
# seconds left of DEADLINE, the whole script's budget (a lent GPU's call runs at most 600 s)
left() { echo $(( ${DEADLINE:-540} - ($(date +%s) - started) )); }
# what a row may take: $1 seconds, or what is left
limit() { local l; l=$(left); echo $(( $1 < l ? $1 : l )); }
# whether a row named $1 may start; otherwise says in a table row of $2 cells that it was skipped
room() {
  local cells=" |"
  if [ "$(left)" -lt 30 ]; then
    for _ in $(seq 3 "$2"); do cells+=" |"; done
    echo "| $1 | skipped: under 30 s left of DEADLINE$cells" >> "$OUT"
    return 1
  fi
}
# one gpu_bench measurement (its flags: --measure NAME first; TIMEOUT=s for this row), or a
# row saying it was skipped
bench() {
  room "$2" 8 || return 0
  "$BIN/gpu_bench" --backend "$BACKEND" --out "$OUT" --timeout "$(limit "${TIMEOUT:-150}")" "${model[@]}" "$@" || status=1
}
# backend_check for one family's tiny checkpoint, a row of the checks' table
check() {
  local family=$1 log
  room "$family" 2 || return 0
  log=$(mktemp)
  if timeout "$(limit "${CHECK_TIMEOUT:-60}")" "$BIN/backend_check" --backend "$BACKEND" --model "tests/fixtures/$family/checkpoint" > "$log" 2>&1; then
    result="passes: $(grep -E '^logits|Δw' "$log" | sed 's/|/\\|/g' | tr '\n' ';')"
  else
    result="FAILS: $(tail -n 3 "$log" | cell "$log")"
    status=1
  fi
  echo "| $family | $result |" >> "$OUT"
  rm -f "$log"
}
# text of a log for a table cell: the row's scratch directory $1 as <scratch>, pipes escaped
cell() { sed -e "s|$1|<scratch>|g" -e 's/|/\\|/g' | tr '\n' ' '; }
checks_table() {
  {
    echo
    echo '| backend_check | result |'
    echo '|---|---|'
  } >> "$OUT"
}
# transformers' generate for the batches above, and the side-by-side table with seethink's rows
transformers_generate() {
  room "transformers generate" 5 || return 0
  if ! "$PYTHON" -c 'import torch, transformers; assert torch.cuda.is_available()' 2> /dev/null; then
    printf '\n| transformers generate | skipped: %s cannot import torch and transformers with a GPU | | | |\n' "$PYTHON" >> "$OUT"
    return
  fi
  timeout "$(limit 150)" "$PYTHON" benches/hf_generate.py tests/fixtures/real_configs/qwen2_5_vl_3b "$OUT" \
    --batches "${batches[@]}" --new-tokens 32 --prompt-tokens "$prompt_tokens" "${prompt_image[@]}" --seethink "$OUT" \
    || { echo "| transformers generate | FAILS or stopped (status $?) | | | |" >> "$OUT"; status=1; }
}
# two data-parallel workers on this device with the weights sharded (`Weights`) against one,
# each two GRPO steps of the sandbox's base model from the same seed; the metrics must agree
two_workers() {
  room "2 workers, Weights" 8 || return 0
  local work row
  work=$(mktemp -d)
  "$SEETHINK" --backend "$BACKEND" data synth --out "$work/data" --n 8 --seed 0 > /dev/null || { status=1; return; }
  {
    echo
    echo "**Data-parallel workers on one $BACKEND device**, the sandbox's base model, configs/tiny-grpo.ron with ${workers[*]}, layers recomputed, two GRPO steps"
    echo
    echo '| workers | sharding | seconds per step | of which in weight gathers (summed over threads) | reward | pg_loss | kl | grad_norm |'
    echo '|---|---|---|---|---|---|---|---|'
  } >> "$OUT"
  for variant in 1-None 2-Weights; do
    if ! timeout "$(limit 90)" "$SEETHINK" --backend "$BACKEND" train --config configs/tiny-grpo.ron --out "$work/$variant" \
      --set model=experiments/sandbox/base --set "data.train=\"$work/data\"" --set data.format_prompt=Plain \
      --set 'data.min_pixels=Some(1024)' --set 'data.max_pixels=Some(4096)' --set trainer.steps=2 \
      --set trainer.save_every=100 --set actor.activation_checkpointing=true "${workers[@]}" \
      --set "trainer.devices=${variant%-*}" --set "trainer.sharding=${variant#*-}" > "$work/$variant.log" 2>&1; then
      echo "| ${variant%-*} | ${variant#*-} | FAILS: $(tail -n 2 "$work/$variant.log" | cell "$work") | | | | | |" >> "$OUT"
      status=1
      continue
    fi
    row=$("$PYTHON" - "$work/$variant/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
cell = lambda key, form: ", ".join(format(l[key], form) if key in l else "–" for l in lines)
print(" | ".join([cell("seconds", ".2f"), cell("gather_seconds", ".2f")] + [cell(k, ".9g") for k in ("reward", "pg_loss", "kl", "grad_norm")]))
PY
)
    echo "| ${variant%-*} | ${variant#*-} | $row |" >> "$OUT"
  done
  rm -rf "$work"
}
# the design card's main job on this backend, in the time left (a row with its time or how far
# it got)
main_job() {
  room "staged_qwen3" 3 || return 0
  local work code seconds started_at
  work=$(mktemp -d)
  started_at=$(date +%s)
  {
    echo
    echo "| staged_qwen3 --backend $BACKEND ${staged[*]} | time | result |"
    echo '|---|---|---|'
  } >> "$OUT"
  timeout "$(limit 3600)" "$BIN/staged_qwen3" --backend "$BACKEND" --verbose --out "$work/run" "${staged[@]}" > "$work/log" 2>&1
  code=$?
  seconds=$(( $(date +%s) - started_at ))
  case $code in
    0) echo "| finished | $seconds s | overall, start → end: $(grep -E '^\| start → ' "$work/log" | head -n 1 | awk -F'|' '{print $(NF-1)}' | cell "$work") |" >> "$OUT" ;;
    124) echo "| stopped at DEADLINE | $seconds s | last line: $(grep -v '^\s*$' "$work/log" | tail -n 1 | cut -c1-200 | cell "$work") |" >> "$OUT" ;;
    *) echo "| FAILS (status $code) | $seconds s | $(tail -n 2 "$work/log" | cell "$work") |" >> "$OUT"; status=1 ;;
  esac
  rm -rf "$work"
}
checks_table
check qwen2_5_vl
bench --measure decode-split "${sizes[@]}"
two_workers
for batch in "${batches[@]}"; do
  TIMEOUT=90 bench --measure generate-batch --prompts "$batch" --samples 1
done
prompt_tokens=$(grep -oE '^\| generate-batch \| 1 × 1 sequences, [0-9]+-token' "$OUT" | tail -n 1 | grep -oE '[0-9]+-token' | grep -oE '[0-9]+')
transformers_generate
TIMEOUT=200 bench --measure grpo-full "${paper[@]}" --steps 2
main_job
checks_table
for family in qwen3_vl internvl3 internvl3_5; do
  check "$family"
done
bench --measure grpo-full "${small[@]}"
bench --measure grpo-full --release-memory "${small[@]}"
bench --measure grpo-full --set actor.mixed_precision=None --set actor.activation_checkpointing=false "${small[@]}"
bench --measure grpo-lora "${small[@]}"
bench --measure generate-one
bench --measure generate-batch "${sizes[@]}"
cat "$OUT"
exit $status
