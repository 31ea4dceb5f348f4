#!/usr/bin/env bash
# Everything the GPU issues ask to measure, in one command on a lent GPU (about 8 minutes on an
# H200 at e6817d8, before the --release-memory row was added; each measurement stopped after
# TIMEOUT = 150 s and each check after CHECK_TIMEOUT = 60 s: a GRPO measurement of two steps
# took 86-96 s and the first check, which compiles the CUDA kernels, over 30 s on 2026-11-26),
# nothing downloaded; appends
# markdown tables to $OUT (default gpu-bench.md), row by row, the most wanted first:
# - gpu_bench at Qwen2.5-VL-3B's real shape with random weights and the settings of
#   benches/gpu.ron (bf16 compute, layers and vision blocks recomputed): a decoding step split
#   into the decoder's forward pass and the sampling rule, for 1 sequence and 8 prompts × 5
#   (decoding is what to speed up first on GPUs, docs/benchmarks.md), a GRPO step with full
#   fine-tuning (step time, tokens/s, the device's peak memory against `seethink plan`, the
#   last step's rollout and update with what cubecl's pools hold after each), the same step
#   with the pools' unused memory released after each phase, the same step in f32 without
#   recomputation (the baseline on the same card), a step with LoRA,
#   and generation tokens/s for 1 sequence and 8 prompts × 5 samples (64 × 5 does not fit the
#   10 minutes with seethink's CUDA decoding as measured, docs/benchmarks.md; --prompts 64
#   asks for it);
# - backend_check on CUDA for the four families' tiny checkpoints (logits, greedy tokens and a
#   whole GRPO update against ndarray).
# Build here, carry the binaries, run from the repository root:
#   cargo build --release --features cuda --example backend_check --example gpu_bench
#   BIN=target/release/examples benches/gpu.sh
# (where the checkout has no git history, SEETHINK_COMMIT names the commit in the table)
# On a machine without a GPU, BACKEND=ndarray TINY=1 runs the same steps at the tiny checkpoint's
# shape (tests/gpu_bench.rs does so in CI).
set -uo pipefail
BIN=${BIN:-target/release/examples}
BACKEND=${BACKEND:-cuda}
OUT=${OUT:-gpu-bench.md}
status=0
{
  echo
  echo "## gpu.sh, $(date -u +%F), commit ${SEETHINK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
} >> "$OUT"
if [ -n "${TINY:-}" ]; then
  shape=(--config tests/fixtures/qwen2_5_vl/checkpoint --image-side 32 --prompts 4 --samples 2 --new-tokens 4
         --set trainer.prompts_per_step=2 --set rollout.max_new_tokens=4 --set rollout.batch_size=4 --set actor.micro_batch_size=2)
else
  shape=()
fi
bench=("$BIN/gpu_bench" --backend "$BACKEND" --out "$OUT" --timeout "${TIMEOUT:-150}" "${shape[@]}")
"${bench[@]}" --measure decode-split || status=1
"${bench[@]}" --measure grpo-full || status=1
"${bench[@]}" --measure grpo-full --release-memory || status=1
"${bench[@]}" --measure grpo-full --set actor.mixed_precision=None --set actor.activation_checkpointing=false || status=1
"${bench[@]}" --measure grpo-lora --measure generate-one --measure generate-batch || status=1
{
  echo
  echo '| backend_check | result |'
  echo '|---|---|'
} >> "$OUT"
for family in qwen3_vl qwen2_5_vl internvl3 internvl3_5; do
  log=$(mktemp)
  if timeout "${CHECK_TIMEOUT:-60}" "$BIN/backend_check" --backend "$BACKEND" --model "tests/fixtures/$family/checkpoint" > "$log" 2>&1; then
    result="passes: $(grep -E '^logits|Δw' "$log" | sed 's/|/\\|/g' | tr '\n' ';')"
  else
    result="FAILS: $(tail -n 3 "$log" | sed 's/|/\\|/g' | tr '\n' ' ')"
    status=1
  fi
  echo "| $family | $result |" >> "$OUT"
  rm -f "$log"
done
cat "$OUT"
exit $status
