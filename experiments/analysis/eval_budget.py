"""More held-out tasks with fewer samples each, or fewer tasks with more? (issue 47, item 3)

Reads the held-out reports of `staged_qwen3 --seeds N` (default `runs/staged_qwen3`), splits the
variance of each phase's paired per-task change into its two parts, and gives the 95%
interval's half-width of the same change for other splits of the same number of samples.

Sample j of task t draws from the same random stream for every model (seethink's rollout gives
sequence i its own stream), so the two models' samples are paired: with `e_{t,j} = y_{B,t,j} −
y_{A,t,j}` the change of sample j between the models before (A) and after (B) a phase, and
`d_t` its mean over the K samples of task t,

    Var(d̄) = (σ²_Δ + W / K) / N,   W = E_t[ Var_j(e_{t,j}) ]

where `σ²_Δ` is the variance of the true change across tasks and `W / K` the sampling noise of K
samples per task (smaller than for independent samples when the shared random streams make the
two models' answers agree). `W` is estimated by the mean over tasks of the unbiased variance of
`e_{t,j}` over j, and `σ²_Δ = s²_d − W / K` (clipped at 0). A split (N', K') of the same N·K
samples then has the half-width `1.96 · sqrt((σ²_Δ + W / K') / N')`.

At equal evaluation time instead: a task costs `c_t` (its prompt) plus `c_s` per sample, so
the time of (N, K) is `N (c_t + K c_s)`, and the half-width is narrowest at
`K* = sqrt(W c_t / (σ²_Δ c_s))`. `c_t` and `c_s` are arguments (ms), measured with
`seethink eval` on the base model and the 900 test tasks at K = 1 and K = 8.

    python3 experiments/analysis/eval_budget.py [runs/staged_qwen3 [c_t c_s]] > experiments/results/main_job/eval_budget.md
"""

import json
import math
import sys
from pathlib import Path

POINTS = ["eval-start", "01-perception/eval", "02-text_reasoning/eval", "03-visual_reasoning/eval"]
PHASES = ["perception", "text reasoning", "visual reasoning"]
CAPABILITIES = ["perception", "text_reasoning", "visual_reasoning"]


def outcomes(report: Path):
    """Per capability: {task id: [accuracy of each sample, in sample order]}."""
    tasks = json.loads(report.read_text())["tasks"]
    out = {c: {} for c in CAPABILITIES}
    for task in tasks:
        out[task["capability"]][task["id"]] = [s["accuracy"] for s in task["samples"]]
    return out


def variance(xs):
    mean = sum(xs) / len(xs)
    return sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)


def components(before, after):
    """(s²_d, W, K) of the paired change from `before` to `after`, sample by sample."""
    ids = sorted(before)
    changes = [[b - a for a, b in zip(before[t], after[t])] for t in ids]
    k = len(changes[0])
    s2 = variance([sum(e) / k for e in changes])
    w = sum(variance(e) for e in changes) / len(changes)
    return s2, w, k


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/staged_qwen3")
    task_ms, sample_ms = (float(sys.argv[2]), float(sys.argv[3])) if len(sys.argv) > 3 else (5.7, 2.4)
    seeds = sorted(p for p in root.glob("seed-*") if (p / "staged" / POINTS[-1] / "report.json").exists())
    rows = {}
    for seed in seeds:
        reports = [outcomes(seed / "staged" / point / "report.json") for point in POINTS]
        for phase, (a, b) in zip(PHASES, zip(reports, reports[1:])):
            for capability in CAPABILITIES:
                rows.setdefault((phase, capability), []).append(components(a[capability], b[capability]))
    print("# Held-out tasks against samples per task\n")
    print(f"`python3 experiments/analysis/eval_budget.py {root}` over {len(seeds)} seeds of the main job "
          "(the test set: 300 tasks per capability × 8 samples). Per phase and capability, the mean over "
          "seeds of: the variance across tasks of the true paired change (σ²_Δ), the variance of one "
          "sample's paired change within a task (W), the share of Var(d̄) that sampling makes at "
          "K = 8, and the 95% half-width of the change for splits of the same 2,400 samples.\n")
    splits = [(2400, 1), (1200, 2), (600, 4), (300, 8), (150, 16)]
    header = " | ".join(f"N={n}, K={k}" for n, k in splits)
    print(f"| phase | capability | σ²_Δ | W | sampling share at K = 8 | {header} |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(splits))
    estimates = {}
    for (phase, capability), values in rows.items():
        s2 = sum(v[0] for v in values) / len(values)
        w = sum(v[1] for v in values) / len(values)
        k = values[0][2]
        between = max(s2 - w / k, 0.0)
        estimates[(phase, capability)] = (between, w)
        share = (w / k) / s2 if s2 > 0 else float("nan")
        widths = " | ".join(f"±{1.96 * math.sqrt((between + w / kk) / nn):.4f}" for nn, kk in splits)
        print(f"| {phase} | {capability.replace('_', ' ')} | {between:.4f} | {w:.4f} | {share:.0%} | {widths} |")
    budget = 300 * (task_ms + 8 * sample_ms)
    ks = [1, 2, 3, 4, 8, 16]
    print(f"\nAt equal time: a task costs c_t = {task_ms} ms plus c_s = {sample_ms} ms per sample (`seethink eval`, "
          "release build, the base model on the 900 test tasks at K = 1 and K = 8 with 64 sequences per "
          f"call: T = N (c_t + K c_s)), and each split gets the time of 300 tasks × 8 samples ({budget / 1000:.1f} s "
          "per capability). N per split, then the 95% half-width of each phase's change of its own capability, "
          "and the best K, K* = sqrt(W c_t / (σ²_Δ c_s)):\n")
    tasks = [int(budget / (task_ms + k * sample_ms)) for k in ks]
    print("| phase, own capability | " + " | ".join(f"K={k}, N={n}" for k, n in zip(ks, tasks)) + " | K* |")
    print("|---|" + "---:|" * (len(ks) + 1))
    for phase, capability in zip(PHASES, CAPABILITIES):
        between, w = estimates[(phase, capability)]
        widths = " | ".join(f"±{1.96 * math.sqrt((between + w / k) / n):.4f}" for k, n in zip(ks, tasks))
        best = math.sqrt(w * task_ms / (between * sample_ms)) if between > 0 else float("inf")
        print(f"| {phase} | {widths} | {best:.1f} |")


if __name__ == "__main__":
    main()
