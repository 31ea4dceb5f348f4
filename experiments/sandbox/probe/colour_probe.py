"""The colour probe of docs/sandbox.md ("The base model does not see"): 6,000 single large
shapes drawn with PIL, each asked its colour, answered in the sandbox's worked style.

    python3 experiments/sandbox/probe/colour_probe.py /tmp/colour          # needs Pillow
    python3 experiments/sandbox/probe/colour_probe.py /tmp/colour-small small    # the sandbox's sizes
    # SFT from the sandbox's random initialisation (runs/pretrain/init, written by `seethink
    # pretrain`), 200 steps of 32, lr 2e-3 cosine: copy runs/pretrain/sft/config.ron, set
    # data.train to /tmp/colour, steps/total to 200, prompts_per_step and micro_batch_size to 32
    seethink train --config /tmp/colour/sft.ron
    seethink generate --model /tmp/colour/run/final --image red_triangle.png \
        --prompt "What color is the triangle?"

With large shapes (half-size 10–24 px) the trained model names the colour of a red, blue, green
and yellow triangle right after 200 steps; with the sandbox's sizes (half-size 5 or 10 px, seed 1)
it names all four yellow even after 600 steps (loss 0.053 → 0.048, where not seeing colour costs
ln 6 per answer, about 0.05 per token), and at 96×96 pixels (no downscaling) after 200. Trained
on the large shapes first (200 steps), then on the small ones (model: the large run's final,
200 steps), it names every small triangle's colour right (loss 0.0007): a size curriculum. The
base model committed before that curriculum (docs/sandbox.md, "How we got here") named all four
green; the committed base model was pretrained with the size curriculum this probe found.
"""
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 70),
    "yellow": (240, 210, 40), "purple": (140, 60, 190), "orange": (245, 140, 30),
}
# the synthetic scenes' own palette (seethink_data::synth::scene::Color::rgb)
SCENE_COLOURS = {
    "red": (220, 30, 30), "blue": (30, 70, 220), "green": (30, 160, 50),
    "yellow": (235, 205, 20), "purple": (140, 50, 180), "orange": (250, 130, 20),
}


def main(out: Path, small: bool, n: int = 6000) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(1 if small else 0)
    with open(out / "tasks.jsonl", "w") as tasks:
        for i in range(n):
            palette = SCENE_COLOURS if small else COLOURS
            kind, colour = rng.choice(["triangle", "circle", "square"]), rng.choice(list(palette))
            image = Image.new("RGB", (96, 96), (255, 255, 255))
            draw = ImageDraw.Draw(image)
            if small:
                s = rng.choice([5, 10])
                x, y = rng.randint(s + 2, 93 - s), rng.randint(s + 2, 93 - s)
            else:
                s = rng.randint(10, 24)
                x, y = rng.randint(s, 96 - s), rng.randint(s, 96 - s)
            box = [x - s, y - s, x + s, y + s]
            if kind == "circle":
                draw.ellipse(box, fill=palette[colour])
            elif kind == "square":
                draw.rectangle(box, fill=palette[colour])
            else:
                draw.polygon([(x, y - s), (x - s, y + s), (x + s, y + s)], fill=palette[colour])
            image.save(out / "images" / f"{i}.png")
            task = {
                "id": f"c{i}", "problem": f"<image>\nWhat color is the {kind}?",
                "answer": f"<think>the {kind} is {colour}</think>\\boxed{{{colour}}}",
                "images": [f"images/{i}.png"], "capability": "perception", "level": 1,
            }
            tasks.write(json.dumps(task) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), small=sys.argv[2:] == ["small"])
