#!/usr/bin/env python3
"""Makes config/demo/frames/ from the demo's public-domain portraits (see PROVENANCE.md).

01: another photo of an enrolled person (obama2.jpg);
02: the enrollment photo itself (the case the synthetic-trained default model can be sure of);
03: the same photo with a surgical-mask-like patch over nose, mouth and chin (an occluded face);
04: a frame without a face.
Also config/demo/bench/obama-640x480.jpg: the enrollment photo scaled into the doorway at a
camera's 640x480, the frame `facegate bench --photo` uses for the 10,000-frame memory run.
Needs Pillow. Deterministic: rerunning rewrites the same files.
"""
from pathlib import Path
import shutil
from PIL import Image, ImageDraw

demo = Path(__file__).resolve().parent.parent / "config" / "demo"
frames = demo / "frames"
frames.mkdir(exist_ok=True)
for old in frames.glob("*"):
    old.unlink()
shutil.copy(demo / "originals" / "obama2.jpg", frames / "01-obama-another-photo.jpg")
shutil.copy(demo / "enroll" / "obama.jpg", frames / "02-obama-enrolled-photo.jpg")
img = Image.open(demo / "enroll" / "obama.jpg").convert("RGB")
draw = ImageDraw.Draw(img)
# Face box from `facegate explain config/demo.toml config/demo/enroll/obama.jpg`.
x1, y1, x2, y2 = 385, 82, 612, 416
top = y1 + int((y2 - y1) * 0.55)
draw.rounded_rectangle([x1 + 10, top, x2 - 10, y2 + 10], radius=30, fill=(168, 200, 220))
img.save(frames / "03-obama-masked.jpg", quality=92)
wall = Image.new("RGB", (640, 480), (200, 196, 188))
ImageDraw.Draw(wall).rectangle([250, 120, 390, 460], fill=(120, 84, 60))
wall.save(frames / "04-empty-doorway.jpg", quality=92)
bench = demo / "bench"
bench.mkdir(exist_ok=True)
frame = wall.copy()
face = Image.open(demo / "enroll" / "obama.jpg").convert("RGB")
h = 420
w = round(face.width * h / face.height)
frame.paste(face.resize((w, h), Image.LANCZOS), ((640 - w) // 2, 480 - h))
frame.save(bench / "obama-640x480.jpg", quality=90)
