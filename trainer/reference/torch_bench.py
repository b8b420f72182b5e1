#!/usr/bin/env python3
"""PyTorch reference for `facegate-train bench`: the same network and `full`-mode objective as the
Rust trainer (trainer/src/model, trainer/src/loss, trainer/src/train/objective.rs), timed the same
way, plus ONNX Runtime on the exact ONNX file the Rust side exported.

Prints one JSON line per measured workload:
  {"framework": ..., "workload": "train-full" | "inference", "batch": N, "seconds_per_batch": s}

Needs: torch, and onnxruntime for the ONNX row (skipped with a note when absent). Never installed
by CI; install them yourself, e.g. `python3 -m venv .venv && .venv/bin/pip install torch onnxruntime`.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# (stride, channels in the paper's network) of the 14 encoder layers, k0_1 .. k4_2.
LAYERS = [(1, 32), (1, 64), (2, 64), (1, 64), (1, 128), (2, 128), (1, 96), (1, 192),
          (2, 192), (1, 128), (1, 256), (2, 256), (1, 160), (1, 320)]
K2_2, K3_2 = 7, 10


def channels(paper, width):
    return max(1, int(round(paper * width)))


def conv_bn(cin, cout, k, stride):
    conv = nn.Conv2d(cin, cout, k, stride, k // 2)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5))


def l2n(x):
    return x / x.pow(2).sum(1, keepdim=True).clamp_min(1e-12).sqrt()


class FaceNet(nn.Module):
    def __init__(self, size, width, classes, top_k=24, dropout=0.4):
        super().__init__()
        self.layers = nn.ModuleList()
        cin = 3
        for stride, c in LAYERS:
            cout = channels(c, width)
            self.layers.append(conv_bn(cin, cout, 3, stride))
            cin = cout
        hc = channels(192, width)
        self.p3 = conv_bn(channels(256, width), hc, 1, 1)
        self.p4 = conv_bn(channels(320, width), hc, 1, 1)
        filters = channels(320, width)
        self.head = conv_bn(channels(192, width) + 2 * hc, filters, 3, 1)
        self.map = size // 4
        self.top_k = top_k
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(filters, classes)

    def embed(self, x):
        taps = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = F.elu(x)
            taps[i] = x
        up = lambda t: F.interpolate(t, size=(self.map, self.map), mode="bilinear",
                                     align_corners=False)
        p3 = l2n(F.elu(self.p3(up(taps[K3_2]))))
        p4 = l2n(F.elu(self.p4(up(x))))
        dense = self.head(torch.cat([l2n(taps[K2_2]), p3, p4], 1))
        n, c, h, w = dense.shape
        mag = dense.detach().abs().reshape(n, c, h * w)
        kth = mag.topk(min(self.top_k, h * w), dim=2).values[:, :, -1:]
        maps = dense * (mag > kth).float().reshape(n, c, h, w)
        return maps, maps.mean((2, 3))

    def logits(self, f):
        return self.classifier(self.dropout(f))


def mean_pairwise_cos2(rows):
    b, r, _ = rows.shape
    unit = rows / rows.pow(2).sum(2, keepdim=True).clamp_min(1e-24).sqrt()
    cos2 = (unit @ unit.transpose(1, 2)).pow(2)
    off = 1.0 - torch.eye(r, device=rows.device)
    return (cos2 * off).reshape(b, -1).sum(1) / max(r * (r - 1), 1)


def gaussian(sigma=1.5):
    k = torch.tensor([[math.exp(-((x - 1) ** 2 + (y - 1) ** 2) / (2 * sigma * sigma))
                       for x in range(3)] for y in range(3)])
    return k / k.sum()


def sad(maps, kernel):
    n, c, h, w = maps.shape
    smooth = F.conv2d(maps, kernel.expand(c, 1, 3, 3), padding=1, groups=c)
    return mean_pairwise_cos2(smooth.reshape(n, c, h * w)).mean()


def objective(net, clean, occluded, labels, kernel, keep):
    mc, fc = net.embed(clean)
    mo, fo = net.embed(occluded)
    delta = (fc - fo).abs().mean(0)
    order = torch.argsort(delta.detach(), stable=True)
    mask = torch.zeros_like(delta)
    mask[order[:keep]] = 1.0
    fad = (delta * mask).sum()
    ce = F.cross_entropy(net.logits(fc), labels)
    masked = F.cross_entropy(net.logits(fo * mask), labels)
    w = net.head[0].weight
    div = mean_pairwise_cos2(w.reshape(w.shape[0], w.shape[1], 9).transpose(1, 2)).mean()
    return 2 * ce + 2 * masked + sad(mc, kernel) + sad(mo, kernel) + 0.1 * fad + 100 * div


def timed(repeats, fn, sync):
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(max(repeats, 1)):
        fn()
    sync()
    return (time.perf_counter() - start) / max(repeats, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input", type=int, default=96)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--classes", type=int, default=10575)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--onnx", default=None)
    a = ap.parse_args()

    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    net = FaceNet(a.input, a.width, a.classes).to(dev)
    # Counted as burn counts them: BatchNorm running statistics included.
    stats = sum(b.numel() for name, b in net.named_buffers() if name.endswith(("mean", "var")))
    print(f"bench: the PyTorch reference has {sum(p.numel() for p in net.parameters()) + stats} "
          "parameters", file=sys.stderr)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    clean = torch.rand(a.batch, 3, a.input, a.input, device=dev) * 2 - 1
    occluded = clean.clone()
    off = max(110 - a.input, 0) // 2
    occluded[:, :, 40 - off:52 - off, 39 - off:71 - off] = -1.0
    labels = torch.arange(a.batch, device=dev) % a.classes
    kernel = gaussian().to(dev)
    keep = (channels(320, a.width) * 260 + 319) // 320

    def step():
        opt.zero_grad(set_to_none=True)
        loss = objective(net, clean, occluded, labels, kernel, keep)
        loss.backward()
        opt.step()
        loss.item()

    framework = f"pytorch/{dev.type}"
    net.train()
    rows = [(framework, "train-full", timed(a.repeats, step, sync))]

    net.eval()
    with torch.no_grad():
        rows.append((framework, "inference",
                     timed(a.repeats, lambda: net.embed(clean)[1].cpu(), sync)))

    if a.onnx:
        try:
            import onnxruntime as ort
            sess = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])
            x = clean.cpu().numpy()
            rows.append(("onnxruntime/cpu", "inference",
                         timed(a.repeats, lambda: sess.run(None, {"face": x}), lambda: None)))
        except ImportError:
            print("onnxruntime not installed: no ONNX Runtime row", file=sys.stderr)

    for framework, workload, seconds in rows:
        print(json.dumps({"framework": framework, "workload": workload, "batch": a.batch,
                          "seconds_per_batch": seconds}))


if __name__ == "__main__":
    main()
