#!/usr/bin/env python3
"""Writes made-up ablation-suite results (suite.json + runs.jsonl) in the layout that
`experiments/results/` has, so that notebooks/ablations.ipynb can be executed before (or
without) a real suite run: `.ci/notebooks.sh` uses it when there are no real results.

The numbers are random draws around invented arm effects. They say nothing about the method;
never write them into experiments/results/ or commit them.

    python3 notebooks/synthetic_results.py OUT_DIR [--seeds N] [--steps N] [--drop-arm ARM]
"""

import argparse
import json
import random
from pathlib import Path

CAPS = ["perception", "text_reasoning", "visual_reasoning"]

# arm -> (label, phases as [(name, capabilities trained in it)], invented final-accuracy shifts)
ARMS = {
    "merged": ("merged (all data mixed)", [("merged", CAPS)], (0.00, 0.00, 0.00)),
    "staged": (
        "staged (paper order)",
        [("perception", ["perception"]), ("text_reasoning", ["text_reasoning"]),
         ("visual_reasoning", ["visual_reasoning"])],
        (0.03, 0.01, 0.04),
    ),
    "reverse": (
        "reverse (visual reasoning first)",
        [("visual_reasoning", ["visual_reasoning"]), ("text_reasoning", ["text_reasoning"]),
         ("perception", ["perception"])],
        (0.03, 0.00, -0.03),
    ),
    "sft_perception": (
        "perception by SFT on captions",
        [("perception_sft", ["perception"]), ("text_reasoning", ["text_reasoning"]),
         ("visual_reasoning", ["visual_reasoning"])],
        (0.00, 0.01, 0.01),
    ),
    "difficulty_only": ("difficulty only (easy to hard)", [("merged", CAPS)], (0.01, 0.01, 0.02)),
    "capability_x_difficulty": (
        "capability x difficulty",
        [("perception", ["perception"]), ("text_reasoning", ["text_reasoning"]),
         ("visual_reasoning", ["visual_reasoning"])],
        (0.04, 0.02, 0.05),
    ),
    "learning_progress": ("adaptive: learning progress", [("adaptive", CAPS)], (0.02, 0.01, 0.03)),
    "plateau": ("adaptive: advance on plateau", [("adaptive", CAPS)], (0.02, 0.00, 0.02)),
}


def clip(x):
    return min(1.0, max(0.0, x))


def make_eval(rng, acc, tokens, share):
    ev = {c: round(clip(a), 4) for c, a in zip(CAPS, acc)}
    ev["overall"] = round(sum(ev[c] for c in CAPS) / 3, 4)
    ev["mean_tokens"] = round(tokens, 2)
    ev["perception_error_share"] = None if share is None else round(clip(share), 4)
    return ev


def make_run(arm, seed, steps):
    label, phases, shift = ARMS[arm]
    rng = random.Random(f"{arm}/{seed}")
    base_rng = random.Random(f"base/{seed}")
    base = [0.35 + base_rng.gauss(0, 0.02), 0.20 + base_rng.gauss(0, 0.02),
            0.15 + base_rng.gauss(0, 0.02)]
    base_tokens = 48 + base_rng.gauss(0, 3)
    start = make_eval(rng, base, base_tokens, 0.8 + base_rng.gauss(0, 0.05))
    gain = [0.10 + s + rng.gauss(0, 0.015) for s in shift]
    tokens_factor = 0.8 if arm in ("staged", "capability_x_difficulty") else 1.0

    per_phase = [steps // len(phases)] * len(phases)
    per_phase[-1] += steps - sum(per_phase)
    curve, phase_out, step, trained = [], [], 0, {c: 0.0 for c in CAPS}
    for (name, caps), n in zip(phases, per_phase):
        for _ in range(n):
            step += 1
            frac = step / steps
            point = {"step": step, "phase": name}
            accs = []
            for c in caps:
                i = CAPS.index(c)
                trained[c] = min(1.0, trained[c] + 1.0 / (n if len(caps) == 1 else steps))
                a = clip(base[i] + gain[i] * trained[c] + rng.gauss(0, 0.08))
                point[f"accuracy_{c}"] = round(a, 4)
                accs.append(a)
            length = base_tokens * (1 - 0.2 * frac * (1 - tokens_factor) * 5) + rng.gauss(0, 4)
            if name.endswith("_sft"):
                # an SFT phase has no sampled answers to score: reward left out on purpose
                point["reward"] = None
            else:
                point["reward"] = round(sum(accs) / len(accs), 4)
            point["accuracy"] = round(sum(accs) / len(accs), 4)
            point["response_length"] = round(max(1.0, length), 2)
            curve.append(point)
        acc_now = [base[i] + gain[i] * trained[c] for i, c in enumerate(CAPS)]
        share = None if rng.random() < 0.05 else 0.75 + rng.gauss(0, 0.05)
        phase_out.append({"name": name, "steps": n,
                          "eval": make_eval(rng, acc_now, base_tokens * tokens_factor, share)})
    return {
        "arm": arm, "label": label, "seed": seed, "steps": steps,
        "seconds": round(steps * (1.8 + rng.random()), 1),
        "start": start, "final": phase_out[-1]["eval"], "phases": phase_out, "curve": curve,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--drop-arm", action="append", default=[],
                    help="leave this arm out of runs.jsonl (it stays in suite.json)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    suite = {
        "command": f"python3 notebooks/synthetic_results.py --seeds {args.seeds} (SYNTHETIC)",
        "commit": "synthetic",
        "date": "1970-01-01T00:00:00Z",
        "machine": "synthetic data, not a suite run",
        "seeds": seeds,
        "smoke": args.seeds < 2,
        "wall_minutes": 0.0,
        "arms": [{"arm": a, "label": v[0], "description": f"synthetic stand-in for {a}"}
                 for a, v in ARMS.items()],
        "settings": {"synthetic": True, "steps": args.steps},
    }
    (args.out / "suite.json").write_text(json.dumps(suite, indent=2) + "\n")
    with open(args.out / "runs.jsonl", "w") as f:
        for arm in ARMS:
            if arm in args.drop_arm:
                continue
            for seed in seeds:
                f.write(json.dumps(make_run(arm, seed, args.steps)) + "\n")
    print(f"synthetic results: {args.out} ({len(ARMS) - len(args.drop_arm)} arms x {len(seeds)} seeds)")


if __name__ == "__main__":
    main()
