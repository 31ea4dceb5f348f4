#!/usr/bin/env bash
# Kernel launches per decoding step on burn's wgpu backend: what a GPU launches, counted where
# there is none. Mesa's Vulkan CPU driver (lavapipe; Debian: mesa-vulkan-drivers) runs the same
# kernels from the same shaders, so the count is a GPU's; the times are a CPU's. cubecl logs
# every launch (a `cubecl.toml` with `[profiling.logger]` in the working directory); one
# sequence generates 8 and then 40 new tokens, and the difference over the 32 extra decoding
# steps is one step's launches. The model has Qwen2.5-VL-3B's depth (36 decoder layers) and
# vocabulary (151,936), narrow layers and random weights (benches/launches/; the number of
# launches does not depend on the widths). Run from the repository root:
#   benches/launches.sh                 # builds gpu_bench with --features wgpu first
#   BIN=path/to/gpu_bench benches/launches.sh
# CONFIG=<checkpoint dir> counts another architecture (e.g. tests/fixtures/qwen2_5_vl/checkpoint).
# MAX_LAUNCHES=N fails (exit 1) when a decoding step launches more than N kernels (.ci/run: 600).
set -euo pipefail
root=$(pwd)
CONFIG=$(realpath "${CONFIG:-benches/launches/qwen2_5_vl_3b_depth}")
if [ -z "${BIN:-}" ]; then
  cargo build --locked --features wgpu --example gpu_bench >&2
  BIN=${CARGO_TARGET_DIR:-target}/debug/examples/gpu_bench
fi
BIN=$(realpath "$BIN")
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
launches() {
  rm -f "$work/launches.log"
  printf '[profiling.logger]\nlevel = "minimal"\nfile = "%s"\n' "$work/launches.log" > "$work/cubecl.toml"
  (cd "$work" && "$BIN" --backend wgpu --config "$CONFIG" --side-files "$root/tests/fixtures/qwen2_5_vl/checkpoint" \
    --run "$root/benches/gpu.ron" --image-side 32 --measure generate-one --new-tokens "$1" \
    --set actor.mixed_precision=None --out "$work/out.md" > "$work/run.log" 2>&1) ||
    { cat "$work/run.log" >&2; exit 1; }
  grep -c . "$work/launches.log"
}
short=$(launches 8)
long=$(launches 40)
per_step=$(( (long - short) / 32 ))
echo "launches: $short for 8 new tokens, $long for 40; per decoding step: $per_step"
if [ -n "${MAX_LAUNCHES:-}" ] && [ "$per_step" -gt "$MAX_LAUNCHES" ]; then
  echo "more than MAX_LAUNCHES=$MAX_LAUNCHES launches per decoding step" >&2
  exit 1
fi
