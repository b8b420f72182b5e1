#!/usr/bin/env python3
"""ONNX Runtime reference for `facegate bench`: the same ONNX file, one face per run, timed the
same way (median of `--runs` after `--warmup`). Prints one JSON line:
  {"runtime": "onnxruntime", "threads": N, "median_ms": m, "p90_ms": p}
Needs numpy and onnxruntime (`pip install onnxruntime`); never installed by CI.
"""
import argparse, json, time
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--size", type=int, required=True)
ap.add_argument("--runs", type=int, default=200)
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
x = np.random.default_rng(1).uniform(-1, 1, (1, 3, a.size, a.size)).astype(np.float32)
name = sess.get_inputs()[0].name
for _ in range(a.warmup):
    sess.run(None, {name: x})
times = []
for _ in range(a.runs):
    t = time.perf_counter()
    sess.run(None, {name: x})
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"runtime": "onnxruntime", "threads": a.threads,
                  "median_ms": times[len(times) // 2], "p90_ms": times[int(len(times) * 0.9)]}))
