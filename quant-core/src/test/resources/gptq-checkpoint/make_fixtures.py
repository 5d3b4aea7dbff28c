"""Makes the GPTQ checkpoint fixtures of this folder with AutoGPTQ's own QuantLinear.pack and dequantization.

Usage (Debian's torch and numpy; AutoGPTQ's source tree unpacked at AUTOGPTQ, not installed):

    /usr/bin/python3 make_fixtures.py AUTOGPTQ OUT_DIR

Only auto_gptq/nn_modules/qlinear/qlinear_cuda.py is loaded, as a single file: its pack() is pure torch/numpy on
the CPU, and its forward() without CUDA unpacks qweight/qzeros and computes scales[g_idx] * (weight - zeros[g_idx]).
The module imports `transformers` only for an isinstance test against Conv1D, so a stand-in module is registered.
"""

import importlib.util
import json
import struct
import sys
import types

import numpy as np
import torch
import torch.nn as nn

OUT_FEATURES = 32
IN_FEATURES = 64
GROUP_SIZE = 16


def load_quant_linear(root):
    fake = types.ModuleType("transformers")
    fake.pytorch_utils = types.SimpleNamespace(Conv1D=type("Conv1D", (), {}))
    sys.modules["transformers"] = fake
    path = root + "/auto_gptq/nn_modules/qlinear/qlinear_cuda.py"
    spec = importlib.util.spec_from_file_location("qlinear_cuda", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.QuantLinear


def save_safetensors(path, tensors, metadata):
    """A minimal safetensors writer: JSON header (8-byte length, padded with spaces), then the raw data."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make_case(QuantLinear, bits, sym, desc_act, seed):
    rng = np.random.default_rng(seed)
    maxq = 2**bits - 1
    groups = IN_FEATURES // GROUP_SIZE
    codes = rng.integers(0, maxq + 1, size=(OUT_FEATURES, IN_FEATURES)).astype(np.int64)
    if sym:
        zeros = np.full((OUT_FEATURES, groups), 2 ** (bits - 1), dtype=np.int64)
    else:
        # checkpoint_format "gptq" stores zero - 1, so a zero-point of 0 cannot be stored
        zeros = rng.integers(1, maxq + 1, size=(OUT_FEATURES, groups)).astype(np.int64)
    scales16 = (rng.uniform(0.001, 0.05, size=(OUT_FEATURES, groups))).astype(np.float16)
    if desc_act:
        perm = rng.permutation(IN_FEATURES)
        g_idx = np.empty(IN_FEATURES, dtype=np.int64)
        g_idx[perm] = np.arange(IN_FEATURES) // GROUP_SIZE
    else:
        g_idx = np.arange(IN_FEATURES) // GROUP_SIZE

    s = torch.from_numpy(scales16.astype(np.float32))  # [out, groups]
    z = torch.from_numpy(zeros.astype(np.float32))
    gi = torch.from_numpy(g_idx).long()
    # W = scale * (code - zero), in float32: what GPTQ leaves in the layer before packing
    w = s[:, gi] * (torch.from_numpy(codes.astype(np.float32)) - z[:, gi])

    linear = nn.Linear(IN_FEATURES, OUT_FEATURES, bias=False)
    linear.weight.data = w
    ql = QuantLinear(bits, GROUP_SIZE, IN_FEATURES, OUT_FEATURES, bias=False, weight_dtype=torch.float32)
    ql.pack(linear, s, z, g_idx=gi.int())

    # AutoGPTQ's own dequantization (forward without CUDA) on the identity: x @ W^T with x = I gives W^T
    with torch.no_grad():
        wt = ql(torch.eye(IN_FEATURES, dtype=torch.float32))  # [in, out]
    dequant = wt.t().contiguous().numpy()
    expected = (s[:, gi] * (torch.from_numpy(codes.astype(np.float32)) - z[:, gi])).numpy()
    assert np.array_equal(dequant, expected), "AutoGPTQ's unpacking does not give back the codes"

    tensors = {
        "codes": ("U8", codes.astype(np.uint8)),
        "zeros": ("I32", zeros.T.astype(np.int32).copy()),
        "scales": ("F16", scales16.T.copy()),
        "g_idx": ("I32", g_idx.astype(np.int32)),
        "layer.qweight": ("I32", ql.qweight.numpy()),
        "layer.qzeros": ("I32", ql.qzeros.numpy()),
        "layer.scales": ("F16", ql.scales.to(torch.float16).numpy()),
        "layer.g_idx": ("I32", ql.g_idx.numpy().astype(np.int32)),
        "dequantized": ("F32", dequant),
    }
    meta = {
        "bits": str(bits),
        "sym": str(sym).lower(),
        "desc_act": str(desc_act).lower(),
        "group_size": str(GROUP_SIZE),
        "seed": str(seed),
    }
    return tensors, meta


def main():
    root, out = sys.argv[1], sys.argv[2]
    QuantLinear = load_quant_linear(root)
    seed = 100
    for bits in (2, 3, 4, 8):
        for sym in (True, False):
            for desc_act in (False, True):
                tensors, meta = make_case(QuantLinear, bits, sym, desc_act, seed)
                name = "b%d-%s-%s.safetensors" % (bits, "sym" if sym else "asym", "act" if desc_act else "noact")
                save_safetensors(out + "/" + name, tensors, meta)
                print(name, seed)
                seed += 1


if __name__ == "__main__":
    main()
