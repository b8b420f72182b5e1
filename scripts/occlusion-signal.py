#!/usr/bin/env python3
"""How often the device's occlusion rule (contract/src/occlusion.rs, default settings) flags
each facial region on the default model's synthetic test sets: the measurement behind the
rule's defaults and the README's "Occlusion-aware matching" section.

Usage: scripts/occlusion-signal.py [--faces 300]   (needs numpy, onnxruntime, Pillow and
data/synth from scripts/default-model). Re-implements the rule in numpy; the Rust rule is the
reference and its unit tests pin the same definitions.
"""
import argparse, json
from pathlib import Path
import numpy as np, onnxruntime as ort
from PIL import Image

root = Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("--faces", type=int, default=300)
ap.add_argument("--radius-sigmas", type=float, default=3.0)
ap.add_argument("--min-radius-cells", type=float, default=3.0)
ap.add_argument("--displaced-share", type=float, default=0.8)
ap.add_argument("--min-filters", type=int, default=3)
a = ap.parse_args()

card = json.load(open(root / "models/default/facegate.card.json"))
sess = ort.InferenceSession(str(root / "models/default/facegate.onnx"))
size = card["input"]["width"]
mh, mw = card["outputs"]["maps"]["height"], card["outputs"]["maps"]["width"]
cell = size / mw
p = [(q["x"], q["y"]) for q in card["alignment"]["points"]]
mid = lambda u, v: ((u[0] + v[0]) / 2, (u[1] + v[1]) / 2)
eyes, mouth, nose = mid(p[0], p[1]), mid(p[3], p[4]), p[2]
centres = [(eyes[0], 2 * eyes[1] - nose[1]), p[0], p[1], nose, mouth, (mouth[0], 2 * mouth[1] - nose[1])]
names = ["forehead", "left_eye", "right_eye", "nose", "mouth", "chin"]
region, expect = [], []
for f in card["filter_peaks"]:
    q = f["positive"]
    if q is None:
        region.append(-1); expect.append(None); continue
    region.append(int(np.argmin([(c[0] - q["x"]) ** 2 + (c[1] - q["y"]) ** 2 for c in centres])))
    expect.append((q["x"], q["y"], q["sigma"]))
members = [[j for j, r in enumerate(region) if r == k] for k in range(6)]
print("filters per region:", {n: len(m) for n, m in zip(names, members)})

def maps_of(name):
    d = root / "data/synth/test" / name
    rows = [l.split(",")[0] for l in open(d / "manifest.csv") if not l.startswith(("#", "path"))][: a.faces]
    x = []
    for r in rows:
        im = np.asarray(Image.open(d / r).convert("RGB"), dtype=np.float32)
        o = (im.shape[0] - size) // 2
        x.append(((im[o:o + size, o:o + size] - 127.5) / 127.5).transpose(2, 0, 1))
    x = np.stack(x)
    return np.concatenate([sess.run(None, {"face": x[i:i + 50]})[1] for i in range(0, len(x), 50)])

print(f"share of faces with each region judged occluded ({a.faces} faces per set)")
print("set         " + " ".join(f"{n:>9s}" for n in names) + "   any")
for name in ["clean", "sunglasses", "scarf", "mask", "hand", "hat", "window"]:
    m = maps_of(name).reshape(-1, len(region), mh * mw)
    moved = np.zeros(m.shape[:2], bool)
    for j, e in enumerate(expect):
        if e is None:
            continue
        am, mx = m[:, j].argmax(1), m[:, j].max(1)
        x, y = (am % mw + 0.5) * cell - 0.5, (am // mw + 0.5) * cell - 0.5
        r = max(a.radius_sigmas * e[2], a.min_radius_cells * cell)
        moved[:, j] = (mx <= 0) | (np.hypot(x - e[0], y - e[1]) > r)
    flags = np.stack([
        moved[:, mem].mean(1) >= a.displaced_share if len(mem) >= a.min_filters else np.zeros(len(m), bool)
        for mem in members], 1)
    print(f"{name:11s} " + " ".join(f"{v:9.2f}" for v in flags.mean(0)) + f" {flags.any(1).mean():5.2f}")
