#!/usr/bin/env python3
"""Converts minivision-ai's MiniFASNet liveness weights (Silent-Face-Anti-Spoofing, Apache-2.0)
into ONNX files the device loads with tract: models/liveness/minifasnet-{v2,v1se}.onnx, listed
with their hashes and crops in models/liveness/liveness.json (what the device reads).

No PyTorch needed. The `.pth` files are PyTorch's legacy serialization: a few pickles (magic
number, protocol version, system info), the state dict as a pickle whose tensors point at
storages by key, the list of storage keys, then each storage as an int64 element count and raw
little-endian values. This reads them with `pickle` and numpy alone.

The network is rebuilt from the state dict's own names and shapes, as the authors'
`src/model_lib/MiniFASNet.py` defines it:
  conv1            Conv 3x3 stride 2 + BN + PReLU
  conv2_dw         depthwise Conv 3x3 + BN + PReLU
  conv_23/34/45    "Depth_Wise": 1x1 Conv+BN+PReLU, depthwise 3x3 stride 2 +BN+PReLU, 1x1 Conv+BN
  conv_3/4/5       "Residual": the same blocks at stride 1, each added to its input; a block
                   with `se_module` (V1SE) multiplies its output by a squeeze-excitation gate
                   (global average pool, 1x1 Conv+BN, ReLU, 1x1 Conv+BN, Sigmoid) before the add
  conv_6_sep       1x1 Conv + BN + PReLU (512 channels)
  conv_6_dw        depthwise Conv over the whole 5x5 map + BN
  linear + bn      512 -> 128, BatchNorm1d
  prob             128 -> 3 logits, then Softmax (written into the graph)
Every BatchNorm (eps 1e-5, PyTorch's default) is folded into the Conv or Gemm before it.

The ONNX files (opset 13):
  input  : float32 (1, 3, 80, 80), BGR, raw 0..255 (no mean, no scaling), the crop made by
           growing the detector's face box about its centre by the model's scale (2.7 for V2,
           4.0 for V1SE), shifted back inside the image, resized bilinearly to 80x80
  output : probs (1, 3): softmax; index 1 = live face, 0 and 2 = two kinds of attack
The authors average the two models' softmax and call probs[1] of the average the live score.

Usage:
  python3 -m venv /tmp/fas && /tmp/fas/bin/pip install numpy onnx
  /tmp/fas/bin/python scripts/minifasnet-to-onnx.py DIR_WITH_PTH [--out models/liveness]
where DIR_WITH_PTH holds `2.7_80x80_MiniFASNetV2.pth` and `4_0_0_80x80_MiniFASNetV1SE.pth`
from the repository's `resources/anti_spoof_models/`. With onnxruntime installed too, `--check`
runs each written file on random inputs beside a plain numpy forward pass of the unfolded
weights and prints the largest difference.
"""
import argparse
import collections
import hashlib
import json
import os
import pickle
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
BN_EPS = 1e-5
MAGIC = 0x1950A86A20F9469CFC6C
ELEMENT = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32}
MODELS = [
    # (file in the authors' repository, output name, crop scale)
    ("2.7_80x80_MiniFASNetV2.pth", "minifasnet-v2", 2.7),
    ("4_0_0_80x80_MiniFASNetV1SE.pth", "minifasnet-v1se", 4.0),
]


# ---------------------------------------------------------------- reading the legacy format


class _Storage:
    def __init__(self, kind, size):
        self.kind, self.size, self.array = kind, size, None


class _Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def numpy(self):
        a = self.storage.array
        if not self.shape:
            return a[self.offset].copy()
        itemsize = a.itemsize
        return np.lib.stride_tricks.as_strided(
            a[self.offset :], self.shape, [s * itemsize for s in self.stride]
        ).copy()


class _StorageKind:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, offset, shape, stride, *_rest):
    return _Tensor(storage, offset, shape, stride)


class _Unpickler(pickle.Unpickler):
    """Knows only what a state dict of plain tensors needs; anything else is refused."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in ELEMENT:
            return _StorageKind(name)
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the checkpoint")

    def persistent_load(self, pid):
        kind, dtype, key, _location, size, _view = pid
        if kind != "storage" or not isinstance(dtype, _StorageKind):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype.name, size)
        return self.storages[key]


def load_state_dict(path):
    """The checkpoint's tensors as numpy arrays, with DataParallel's `module.` prefix removed."""
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            sys.exit(f"{path}: not a PyTorch legacy checkpoint (wrong magic number)")
        pickle.load(f)  # protocol version
        info = pickle.load(f)
        if not info.get("little_endian", False):
            sys.exit(f"{path}: big-endian checkpoints are not supported")
        storages = {}
        state = _Unpickler(f, storages).load()
        for key in pickle.load(f):
            storage = storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            if count != storage.size:
                sys.exit(f"{path}: storage {key} holds {count} values, the pickle said {storage.size}")
            dtype = np.dtype(ELEMENT[storage.kind]).newbyteorder("<")
            storage.array = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
        if f.read(1):
            sys.exit(f"{path}: bytes left after the last storage")
    out = collections.OrderedDict()
    for name, tensor in state.items():
        out[name.removeprefix("module.")] = tensor.numpy()
    return out


# ---------------------------------------------------------------- building the graph


def fold(weight, sd, bn):
    """A conv (O, ...) or linear (O, I) weight with the BatchNorm after it folded in."""
    scale = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"] + BN_EPS)
    w = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    b = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale
    return w.astype(np.float32), b.astype(np.float32)


class Graph:
    def __init__(self, sd):
        self.sd = sd
        self.nodes = []
        self.inits = []
        self.used = set()

    def const(self, array, name):
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def op(self, kind, inputs, name, **attrs):
        self.nodes.append(helper.make_node(kind, inputs, [name], name=name, **attrs))
        return name

    def take(self, key):
        self.used.add(key)
        return self.sd[key]

    def conv_bn(self, x, prefix, stride, pad, activation):
        """`prefix`.conv + `prefix`.bn (+ `prefix`.prelu): Conv_block or Linear_block."""
        w = self.take(f"{prefix}.conv.weight")
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            self.used.add(f"{prefix}.bn.{k}")
        w, b = fold(w, self.sd, f"{prefix}.bn")
        out_c, in_per_group, kh, kw = w.shape
        in_c = self.channels[x]
        groups = in_c // in_per_group
        y = self.op(
            "Conv",
            [x, self.const(w, f"{prefix}.w"), self.const(b, f"{prefix}.b")],
            f"{prefix}.conv",
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=groups,
        )
        self.channels[y] = out_c
        if activation:
            slope = self.take(f"{prefix}.prelu.weight").reshape(-1, 1, 1)
            y = self.op("PRelu", [y, self.const(slope, f"{prefix}.slope")], f"{prefix}.prelu")
            self.channels[y] = out_c
        return y

    def depth_wise(self, x, prefix, stride, residual):
        y = self.conv_bn(x, f"{prefix}.conv", 1, 0, True)
        y = self.conv_bn(y, f"{prefix}.conv_dw", stride, 1, True)
        y = self.conv_bn(y, f"{prefix}.project", 1, 0, False)
        if f"{prefix}.se_module.fc1.weight" in self.sd:
            y = self.squeeze_excite(y, f"{prefix}.se_module")
        if residual:
            y = self.op("Add", [x, y], f"{prefix}.add")
            self.channels[y] = self.channels[x]
        return y

    def squeeze_excite(self, x, prefix):
        c = self.channels[x]
        g = self.op("GlobalAveragePool", [x], f"{prefix}.pool")
        for i, act in ((1, "Relu"), (2, "Sigmoid")):
            w = self.take(f"{prefix}.fc{i}.weight")
            for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                self.used.add(f"{prefix}.bn{i}.{k}")
            w, b = fold(w, self.sd, f"{prefix}.bn{i}")
            g = self.op(
                "Conv",
                [g, self.const(w, f"{prefix}.fc{i}.w"), self.const(b, f"{prefix}.fc{i}.b")],
                f"{prefix}.fc{i}",
                kernel_shape=[1, 1],
            )
            g = self.op(act, [g], f"{prefix}.{act.lower()}")
        y = self.op("Mul", [x, g], f"{prefix}.gate")
        self.channels[y] = c
        return y

    def residual(self, x, prefix):
        i = 0
        while f"{prefix}.model.{i}.conv.conv.weight" in self.sd:
            x = self.depth_wise(x, f"{prefix}.model.{i}", 1, True)
            i += 1
        if i == 0:
            sys.exit(f"no blocks under {prefix} in the checkpoint")
        return x

    def build(self, name, doc, metadata):
        self.channels = {"input": 3}
        x = self.conv_bn("input", "conv1", 2, 1, True)
        x = self.conv_bn(x, "conv2_dw", 1, 1, True)
        x = self.depth_wise(x, "conv_23", 2, False)
        x = self.residual(x, "conv_3")
        x = self.depth_wise(x, "conv_34", 2, False)
        x = self.residual(x, "conv_4")
        x = self.depth_wise(x, "conv_45", 2, False)
        x = self.residual(x, "conv_5")
        x = self.conv_bn(x, "conv_6_sep", 1, 0, True)
        x = self.conv_bn(x, "conv_6_dw", 1, 0, False)  # the kernel covers the whole map
        x = self.op("Flatten", [x], "flatten", axis=1)
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            self.used.add(f"bn.{k}")
        w, b = fold(self.take("linear.weight"), self.sd, "bn")
        x = self.op("Gemm", [x, self.const(w, "linear.w"), self.const(b, "linear.b")], "linear", transB=1)
        x = self.op("Gemm", [x, self.const(self.take("prob.weight"), "prob.w")], "prob", transB=1)
        self.op("Softmax", [x], "probs", axis=1)
        unused = [k for k in self.sd if k not in self.used]
        if unused:
            sys.exit(f"weights the rebuilt network does not use: {unused[:5]} ...")
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 80, 80])],
            [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
            self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="facegate scripts/minifasnet-to-onnx.py",
            doc_string=doc,
        )
        model.ir_version = 8
        helper.set_model_props(model, metadata)
        onnx.checker.check_model(model)
        return model


# ---------------------------------------------------------------- the reference check


def reference_forward(sd, x):
    """The network run straight from the unfolded weights in numpy, as the authors' forward
    pass reads: an independent path to compare the ONNX graph with."""

    def conv(x, w, stride, pad, groups):
        n, c, h, wd = x.shape
        o, ipg, kh, kw = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        oh = (h + 2 * pad - kh) // stride + 1
        ow = (wd + 2 * pad - kw) // stride + 1
        out = np.zeros((n, o, oh, ow), np.float64)
        opg = o // groups
        for g in range(groups):
            xs = xp[:, g * ipg : (g + 1) * ipg]
            ws = w[g * opg : (g + 1) * opg]
            for i in range(kh):
                for j in range(kw):
                    patch = xs[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
                    out[:, g * opg : (g + 1) * opg] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
        return out

    def bn(x, p):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        m, v = sd[f"{p}.running_mean"].reshape(shape), sd[f"{p}.running_var"].reshape(shape)
        return (x - m) / np.sqrt(v + BN_EPS) * sd[f"{p}.weight"].reshape(shape) + sd[f"{p}.bias"].reshape(shape)

    def block(x, p, stride, pad, act):
        w = sd[f"{p}.conv.weight"]
        y = bn(conv(x, w, stride, pad, x.shape[1] // w.shape[1]), f"{p}.bn")
        if act:
            a = sd[f"{p}.prelu.weight"].reshape(1, -1, 1, 1)
            y = np.where(y > 0, y, a * y)
        return y

    def dw(x, p, stride, residual):
        y = block(x, f"{p}.conv", 1, 0, True)
        y = block(y, f"{p}.conv_dw", stride, 1, True)
        y = block(y, f"{p}.project", 1, 0, False)
        if f"{p}.se_module.fc1.weight" in sd:
            g = y.mean(axis=(2, 3), keepdims=True)
            g = np.maximum(bn(conv(g, sd[f"{p}.se_module.fc1.weight"], 1, 0, 1), f"{p}.se_module.bn1"), 0)
            g = bn(conv(g, sd[f"{p}.se_module.fc2.weight"], 1, 0, 1), f"{p}.se_module.bn2")
            y = y / (1 + np.exp(-g))
        return x + y if residual else y

    x = block(x, "conv1", 2, 1, True)
    x = block(x, "conv2_dw", 1, 1, True)
    for down, res in (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5")):
        x = dw(x, down, 2, False)
        i = 0
        while f"{res}.model.{i}.conv.conv.weight" in sd:
            x = dw(x, f"{res}.model.{i}", 1, True)
            i += 1
    x = block(x, "conv_6_sep", 1, 0, True)
    x = block(x, "conv_6_dw", 1, 0, False).reshape(x.shape[0], -1)
    x = bn(x @ sd["linear.weight"].T, "bn")
    x = x @ sd["prob.weight"].T
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check(sd, path):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(3):
        x = rng.uniform(0, 255, (1, 3, 80, 80)).astype(np.float32)
        got = session.run(["probs"], {"input": x})[0]
        want = reference_forward(sd, x.astype(np.float64))
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"  onnxruntime vs numpy reference on 3 random inputs: largest difference {worst:.2e}")
    if worst > 1e-4:
        sys.exit(f"{path}: the ONNX graph disagrees with the reference forward pass")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="folder with the two .pth files")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "liveness"))
    parser.add_argument("--check", action="store_true", help="compare with a numpy forward pass (needs onnxruntime)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {"models": []}
    for source, name, scale in MODELS:
        src = os.path.join(args.weights, source)
        if not os.path.isfile(src):
            sys.exit(f"{src}: not found (get it from minivision-ai/Silent-Face-Anti-Spoofing, resources/anti_spoof_models/)")
        sd = load_state_dict(src)
        doc = (
            f"MiniFASNet liveness ({source}, minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0), "
            f"BatchNorm folded. Input (1,3,80,80) BGR 0..255 of the face box grown {scale}x; "
            "output probs (1,3), index 1 = live."
        )
        meta = {"source": source, "source_sha256": sha256(src), "crop_scale": str(scale), "live_index": "1"}
        model = Graph(sd).build(name, doc, meta)
        path = os.path.join(args.out, f"{name}.onnx")
        tmp = path + ".tmp"
        onnx.save(model, tmp)
        os.replace(tmp, path)
        print(f"{path}: {len(model.graph.node)} nodes, {sum(v.size for v in sd.values())} weights, sha256 {sha256(path)}")
        if args.check:
            check(sd, path)
        manifest["models"].append(
            {
                "file": f"{name}.onnx",
                "sha256": sha256(path),
                "crop_scale": scale,
                "input_size": 80,
                "live_index": 1,
                "source": f"minivision-ai/Silent-Face-Anti-Spoofing {source} (sha256 {sha256(src)}), Apache-2.0",
            }
        )
    path = os.path.join(args.out, "liveness.json")
    with open(path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print(f"{path}: {len(manifest['models'])} models")


if __name__ == "__main__":
    main()
