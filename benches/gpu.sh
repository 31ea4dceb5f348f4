#!/usr/bin/env bash
# Everything the GPU issues ask to measure, in one command on a lent GPU, nothing downloaded.
# It appends markdown tables to $OUT (default gpu-bench.md), row by row, the most wanted first,
# and stops starting rows when under 30 s are left of DEADLINE (default 540 s: a lent GPU's call
# runs at most 600 s); each skipped row says so. Each measurement stops after TIMEOUT (150 s) and
# each check after CHECK_TIMEOUT (60 s). On an H200 on 2026-11-26/27: a GRPO measurement of two
# steps 86-104 s, the two generation rows 135 s together, the first check (which compiles the
# CUDA kernels) over 30 s; everything takes about 15 minutes, so a 540-s budget should reach
# the rows up to about the f32 step. The rows, in order:
# - gpu_bench at Qwen2.5-VL-3B's real shape with random weights and the settings of
#   benches/gpu.ron (bf16 compute, layers and vision blocks recomputed): a decoding step split
#   into the decoder's forward pass and the sampling rule, for 1 sequence and 8 prompts × 5
#   (decoding is what to speed up first on GPUs, docs/benchmarks.md);
# - backend_check on CUDA for the tiny Qwen2.5-VL (logits, greedy tokens and a whole GRPO update
#   against ndarray);
# - a GRPO step with full fine-tuning (step time, tokens/s, the device's peak memory against
#   `seethink plan`, the last step's rollout and update with what cubecl's pools hold after
#   each), then the same step with the pools' unused memory released after each phase;
# - backend_check for the other three families;
# - the GRPO step in f32 without recomputation (the baseline on the same card), a step with
#   LoRA, and generation tokens/s for 1 sequence and for 8 prompts × 5 samples (64 × 5 does not
#   fit the 10 minutes with seethink's CUDA decoding as measured; --prompts 64 asks for it).
# Build here, carry the binaries, run from the repository root:
#   cargo build --release --features cuda --example backend_check --example gpu_bench
#   BIN=target/release/examples benches/gpu.sh
# (binaries stripped and compressed with `xz` are about 8 MB each, within a carry's 64 MiB;
# where the checkout has no git history, SEETHINK_COMMIT names the commit in the table)
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
started=$(date +%s)
# seconds left of DEADLINE, the whole script's budget (a lent GPU's call runs at most 600 s)
left() { echo $(( ${DEADLINE:-540} - ($(date +%s) - started) )); }
# what a row may take: $1 seconds, or what is left
limit() { local l; l=$(left); echo $(( $1 < l ? $1 : l )); }
# one gpu_bench measurement (its flags: --measure NAME first), or a row saying it was skipped
bench() {
  if [ "$(left)" -lt 30 ]; then
    echo "| $2 | skipped: under 30 s left of DEADLINE | | | | | | |" >> "$OUT"
    return
  fi
  "$BIN/gpu_bench" --backend "$BACKEND" --out "$OUT" --timeout "$(limit "${TIMEOUT:-150}")" "${shape[@]}" "$@" || status=1
}
# backend_check for one family's tiny checkpoint, a row of the checks' table
check() {
  local family=$1 log
  if [ "$(left)" -lt 30 ]; then
    echo "| $family | skipped: under 30 s left of DEADLINE |" >> "$OUT"
    return
  fi
  log=$(mktemp)
  if timeout "$(limit "${CHECK_TIMEOUT:-60}")" "$BIN/backend_check" --backend "$BACKEND" --model "tests/fixtures/$family/checkpoint" > "$log" 2>&1; then
    result="passes: $(grep -E '^logits|Δw' "$log" | sed 's/|/\\|/g' | tr '\n' ';')"
  else
    result="FAILS: $(tail -n 3 "$log" | sed 's/|/\\|/g' | tr '\n' ' ')"
    status=1
  fi
  echo "| $family | $result |" >> "$OUT"
  rm -f "$log"
}
checks_table() {
  {
    echo
    echo '| backend_check | result |'
    echo '|---|---|'
  } >> "$OUT"
}
bench --measure decode-split
checks_table
check qwen2_5_vl
bench --measure grpo-full
bench --measure grpo-full --release-memory
checks_table
for family in qwen3_vl internvl3 internvl3_5; do
  check "$family"
done
bench --measure grpo-full --set actor.mixed_precision=None --set actor.activation_checkpointing=false
bench --measure grpo-lora
bench --measure generate-one
bench --measure generate-batch
cat "$OUT"
exit $status
