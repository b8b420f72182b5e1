#!/usr/bin/env python3
"""Makes synthetic presentation attacks from face photos, to measure the liveness check on more
than the authors' three samples: each photo is re-rendered as a print held up to the camera and
as a phone screen held up to it, and put in a 640x480 scene.

  print  : the photo halftoned (a cyan/magenta/yellow/black dot screen, 45 lpi-like cells of 4 px,
           each ink at its own angle), on white paper with a border, slightly blurred, with the
           paper's own grain, held in front of a wall under a light gradient;
  screen : the photo shown on an RGB-stripe display (each pixel three subpixels), resampled by a
           camera at a non-integer pitch (which makes moire), a black bezel, a glare gradient,
           in front of the same wall.

The same photo is also written "plain": scaled into the scene the same way with no attack
pattern and no border, so a difference between plain and attack is the attack's, not the
framing's.

This is honest about what it is: patterns a printer and a screen leave, drawn by a program, not
photographs of real prints and screens; networks trained on real attacks may find them easier
or harder than real ones. docs/liveness.md reports both.

Usage:
  python3 -m venv /tmp/fas && /tmp/fas/bin/pip install numpy pillow
  /tmp/fas/bin/python scripts/liveness-attacks.py PHOTOS_DIR OUT_DIR [--limit 300] [--seed 1]
  target/release/facegate liveness config/demo.toml OUT_DIR/plain OUT_DIR/print OUT_DIR/screen
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageFilter, ImageOps

W, H = 640, 480


def photos(root, limit):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.lower().endswith((".jpg", ".jpeg", ".png")):
                out.append(os.path.join(d, f))
                if len(out) >= limit:
                    return out
    return out


def wall(rng):
    """A plain wall under a light gradient, with a little sensor noise."""
    base = rng.uniform(120, 210, 3)
    gy, gx = np.mgrid[0:H, 0:W] / np.array([H, W]).reshape(2, 1, 1)
    light = 0.75 + 0.35 * (rng.uniform() * gx + (1 - rng.uniform()) * gy)
    img = base[None, None, :] * light[..., None]
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255)


def place(scene, item, rng):
    """Pastes `item` (h, w, 3) into `scene` at a random spot, wholly inside."""
    h, w = item.shape[:2]
    y = int(rng.uniform(0, H - h))
    x = int(rng.uniform(0, W - w))
    scene[y : y + h, x : x + w] = item
    return scene


def halftone(rgb, cell, rng):
    """CMYK dot screen: each ink's coverage becomes dots on a grid turned to its own angle."""
    c, m, y = 1 - rgb[..., 0] / 255, 1 - rgb[..., 1] / 255, 1 - rgb[..., 2] / 255
    k = np.minimum(np.minimum(c, m), y)
    inks = [(c - k), (m - k), (y - k), k]
    angles = np.deg2rad([15, 75, 0, 45])
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dots = []
    for ink, a in zip(inks, angles):
        u = (xx * np.cos(a) + yy * np.sin(a)) / cell
        v = (-xx * np.sin(a) + yy * np.cos(a)) / cell
        # Distance to the nearest dot centre, 0..~0.7; a dot covers the share `ink` of its cell.
        d = np.hypot(u - np.round(u), v - np.round(v))
        dots.append((d < np.sqrt(np.clip(ink, 0, 1) / np.pi)).astype(np.float64))
    c, m, y, k = dots
    paper = np.array([250.0, 248.0, 240.0])
    out = np.stack([(1 - c), (1 - m), (1 - y)], -1) * (1 - k[..., None]) * paper
    return out + rng.normal(0, 4, out.shape)


def as_print(face, rng):
    """The photo halftoned on paper with a white border, as held up to the camera."""
    side = int(rng.uniform(300, 380))
    img = np.asarray(face.resize((side * 2, side * 2), Image.BICUBIC), np.float64)
    dots = halftone(img, 4.0, rng)
    dots = np.asarray(Image.fromarray(np.clip(dots, 0, 255).astype(np.uint8)).resize((side, side), Image.BILINEAR), np.float64)
    border = int(side * rng.uniform(0.06, 0.12))
    paper = np.full((side + 2 * border, side + 2 * border, 3), 246.0)
    paper[border : border + side, border : border + side] = dots
    # The paper is lit a little unevenly and seen slightly out of focus.
    g = np.linspace(0.85, 1.05, paper.shape[1])[None, :, None]
    paper = np.clip(paper * g, 0, 255)
    return np.asarray(Image.fromarray(paper.astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7)), np.float64)


def as_screen(face, rng):
    """The photo on an RGB-stripe display seen by a camera: subpixels, moire, bezel, glare."""
    side = int(rng.uniform(300, 380))
    pitch = rng.uniform(2.6, 3.4)  # camera pixels per display pixel, not an integer
    n = int(side / pitch)
    px = np.asarray(face.resize((n, n), Image.BILINEAR), np.float64)
    # Each display pixel as a 6x6 block of three vertical stripes (R, G, B) over a dark row.
    mask = np.zeros((6, 6, 3))
    for ch in range(3):
        mask[:, 2 * ch : 2 * ch + 2, ch] = 1.0
    mask[5, :, :] *= 0.35
    sub = np.repeat(np.repeat(px, 6, 0), 6, 1) * np.tile(mask, (n, n, 1))
    # The camera samples the stripes at a pitch that does not divide them: moire.
    # (through a lens: a little blur first, as a camera focused on the screen sees it).
    # Each channel lights a third of the area: the camera's exposure brings it back up.
    sub = Image.fromarray(sub.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    shot = np.asarray(sub.resize((side, side), Image.BILINEAR), np.float64) * 3.0
    yy, xx = np.mgrid[0:side, 0:side]
    glare = 40 * np.exp(-(((xx - side * rng.uniform(0.2, 0.8)) ** 2 + (yy - side * 0.3) ** 2) / (2 * (side * 0.25) ** 2)))
    shot = np.clip(shot * 0.9 + glare[..., None], 0, 255)
    bezel = int(side * rng.uniform(0.05, 0.09))
    phone = np.full((side + 2 * bezel, side + 2 * bezel, 3), 18.0)
    phone[bezel : bezel + side, bezel : bezel + side] = shot
    return phone


def plain(face, rng):
    side = int(rng.uniform(300, 380))
    return np.asarray(face.resize((side, side), Image.BICUBIC), np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos")
    ap.add_argument("out")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    files = photos(a.photos, a.limit)
    if not files:
        sys.exit(f"{a.photos}: no photos")
    for kind in ("plain", "print", "screen"):
        os.makedirs(os.path.join(a.out, kind), exist_ok=True)
    for i, f in enumerate(files):
        face = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
        for k, (kind, make) in enumerate((("plain", plain), ("print", as_print), ("screen", as_screen))):
            rng = np.random.default_rng([a.seed, i, k])
            scene = place(wall(rng), make(face, rng), rng)
            name = os.path.join(a.out, kind, f"{i:05d}.jpg")
            Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8)).save(name, quality=92)
        if (i + 1) % 50 == 0 or i + 1 == len(files):
            print(f"\r{i + 1}/{len(files)} photos", end="", file=sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
