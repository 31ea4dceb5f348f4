#!/usr/bin/env bash
# seethink side by side with the Python peers, one case after the other on this machine, both
# limited to the same cores. Prints one line per case: seethink's figure, the peer's, the ratio
# (seethink time / peer time, or peer throughput / seethink throughput: below 1 is faster), and
# each side's peak memory where the case is a process of its own.
#
#   PYTHON=/path/to/venv/bin/python [THREADS=2] benches/compare.sh
#
# PYTHON must have torch, transformers, trl and torchvision (TRL's Qwen3-VL processor imports it;
# docs/benchmarks.md lists the versions measured).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PYTHON:?set PYTHON to a Python with torch, transformers, trl and torchvision}"
THREADS=${THREADS:-$(nproc)}
CORES="0-$((THREADS - 1))"
CHECKPOINT=tests/fixtures/qwen3_vl/checkpoint
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=$THREADS
PIN=(taskset -c "$CORES")
# peak resident memory in MB of a command whose stdout goes to $WORK/out
measured() { /usr/bin/time -f %M -o "$WORK/rss" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; echo $(($(cat "$WORK/rss") / 1024)); }
row() { printf '%-58s | seethink %-16s | peer %-16s | ratio %s\n' "$1" "$2" "$3" "$4"; }
ratio() { "$PYTHON" -c "print(f'{$1 / $2:.2f}')"; }

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), limited to $THREADS"
peer=$("$PYTHON" -c 'import torch, torchvision, transformers, trl; print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")')
echo "peer: $peer"
cargo build --release --locked --quiet --bin seethink
cargo build --release --locked --quiet -p seethink-models --bench generate
cargo build --release --locked --quiet -p seethink-rl --bench grpo_step
SEETHINK=target/release/seethink
[ -n "${CARGO_TARGET_DIR:-}" ] && SEETHINK=$CARGO_TARGET_DIR/release/seethink
bench() { find "$(dirname "$SEETHINK")/deps" -maxdepth 1 -type f -executable -name "$1-*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2; }

# 1. A GRPO step as a user runs it: configs/tiny-grpo.ron (8 prompts x 5 samples, 32 new tokens,
#    KL 0.01 with a reference model, two updates) on the benchmark's image tasks, against TRL's
#    GRPOTrainer (benches/trl_grpo_step.py lists the settings that differ).
"$SEETHINK" data synth --out "$WORK/all" --n 32 --seed 0 >/dev/null
mkdir -p "$WORK/synth" && cp -r "$WORK/all/images" "$WORK/synth/"
grep '"images":\[' "$WORK/all/tasks.jsonl" >"$WORK/synth/tasks.jsonl"
ours_mb=$(measured "${PIN[@]}" "$SEETHINK" train --config configs/tiny-grpo.ron --out "$WORK/grpo" \
  --set "data.train=\"$WORK/synth\"" --set data.min_pixels=None \
  --set trainer.steps=6 --set trainer.save_every=1000)
ours_s=$("$PYTHON" -c "
import json, statistics
steps = [json.loads(l)['seconds'] for l in open('$WORK/grpo/metrics.jsonl')][1:]
print(f'{statistics.median(steps):.2f}')")
peer_mb=$(measured "${PIN[@]}" "$PYTHON" benches/trl_grpo_step.py "$CHECKPOINT" "$WORK/synth" 5)
peer_s=$("$PYTHON" -c "import json; print(f\"{json.loads(open('$WORK/out').read().splitlines()[-1])['grpo_step_s']:.2f}\")")
row "GRPO step, tiny Qwen3-VL, images, 8x5, vs TRL (s)" "${ours_s} s ${ours_mb} MB" "${peer_s} s ${peer_mb} MB" "$(ratio "$ours_s" "$peer_s")"

# Generation (32-token prompts, 32 new tokens, sampling at temperature 1) against transformers'
# generate, at batch 1 and 8 prompts x 5 samples: generation LABEL CHECKPOINT RUNS (the best of
# RUNS after a warm-up; both batch cases run in one process, so they share its peak memory).
generation() {
  ours_mb=$(measured env SEETHINK_BENCH_MODEL="$2" SEETHINK_BENCH_RUNS="$3" "${PIN[@]}" "$(bench generate)")
  cp "$WORK/out" "$WORK/ours"
  peer_mb=$(measured "${PIN[@]}" "$PYTHON" crates/seethink-models/benches/generate_transformers.py "$2" "$THREADS" "$3")
  for case in "batch 1" "batch 8 x n=5"; do
    ours=$(grep ": $case: " "$WORK/ours" | grep -o '[0-9]* new tokens/s' | cut -d' ' -f1)
    peer=$(grep ": $case: " "$WORK/out" | grep -o '[0-9]* new tokens/s' | cut -d' ' -f1)
    row "generation, $1, $case (new tokens/s)" "$ours ${ours_mb} MB" "$peer ${peer_mb} MB" "$(ratio "$peer" "$ours")"
  done
}

# One GRPO update (old, reference, policy forward + backward, clip, AdamW) on 8 text sequences
# of 32 prompt + RESPONSE tokens, against the same update in PyTorch:
# update LABEL CHECKPOINT RESPONSE RUNS.
update() {
  ours_mb=$(measured env SEETHINK_BENCH_MODEL="$2" SEETHINK_BENCH_RESPONSE="$3" SEETHINK_BENCH_RUNS="$4" \
    "${PIN[@]}" "$(bench grpo_step)")
  ours=$(grep -o '[0-9.]* ms' "$WORK/out" | cut -d' ' -f1)
  peer_mb=$(measured "${PIN[@]}" "$PYTHON" crates/seethink-rl/benches/grpo_step_torch.py "$2" "$THREADS" "$3" "$4")
  peer=$(grep -o '[0-9.]* ms' "$WORK/out" | cut -d' ' -f1)
  row "GRPO update, $1, 8 x (32 + $3) tokens (ms)" "$ours ms ${ours_mb} MB" "$peer ms ${peer_mb} MB" "$(ratio "$ours" "$peer")"
}

# 2. The tiny fixture.
generation "tiny Qwen3-VL" "$CHECKPOINT" 5
update "tiny Qwen3-VL" "$CHECKPOINT" 31 10

# 3. A real-shape model: Qwen2.5-VL with Qwen2.5-0.5B's language model (hidden 896, 24 layers,
#    14/2 heads, vocabulary 151,936) and a small vision tower, random weights written once by
#    transformers and read by both sides (benches/real_shape_checkpoint.py; REAL_CHECKPOINT
#    reuses a directory it wrote). One timed run after a warm-up: each takes minutes here.
REAL=${REAL_CHECKPOINT:-$WORK/real}
[ -f "$REAL/config.json" ] || "$PYTHON" benches/real_shape_checkpoint.py "$REAL" >/dev/null
generation "Qwen2.5-0.5B-sized" "$REAL" 1
update "Qwen2.5-0.5B-sized" "$REAL" 256 1
