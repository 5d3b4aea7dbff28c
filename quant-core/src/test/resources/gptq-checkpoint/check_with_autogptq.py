"""Loads a GPTQ checkpoint folder written by `quant quantize --format gptq` into AutoGPTQ's QuantLinear and checks
that AutoGPTQ dequantizes every layer to exactly what `quant dequantize` wrote.

    /usr/bin/python3 check_with_autogptq.py AUTOGPTQ CHECKPOINT_DIR DEQUANTIZED.safetensors

AUTOGPTQ is AutoGPTQ's source tree; only auto_gptq/nn_modules/qlinear/qlinear_cuda.py is loaded (see make_fixtures.py).
Prints one line per layer and exits non-zero on any difference.
"""

import json
import struct
import sys

import numpy as np
import torch

from make_fixtures import load_quant_linear

DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "BF16": None, "U8": np.uint8, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b : 8 + n + end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out


def main():
    root, ckpt, deq_path = sys.argv[1], sys.argv[2], sys.argv[3]
    QuantLinear = load_quant_linear(root)
    config = json.load(open(ckpt + "/quantize_config.json"))
    bits, group_size = config["bits"], config["group_size"]
    tensors = read_safetensors(ckpt + "/model.safetensors")
    deq = read_safetensors(deq_path)
    failures = 0
    for name in tensors:
        if not name.endswith(".qweight"):
            continue
        p = name[: -len(".qweight")]
        qweight = tensors[name]
        infeatures, outfeatures = qweight.shape[0] * 32 // bits, qweight.shape[1]
        ql = QuantLinear(bits, group_size, infeatures, outfeatures, bias=False, weight_dtype=torch.float32)
        ql.qweight = torch.from_numpy(qweight.copy())
        ql.qzeros = torch.from_numpy(tensors[p + ".qzeros"].copy())
        ql.scales = torch.from_numpy(tensors[p + ".scales"].astype(np.float32))
        ql.g_idx = torch.from_numpy(tensors[p + ".g_idx"].copy())
        with torch.no_grad():
            w = ql(torch.eye(infeatures, dtype=torch.float32)).t().contiguous().numpy()
        expected = deq[p + ".weight"].astype(np.float32)
        same = np.array_equal(w, expected)
        print("%s [%d x %d] %d-bit g%d: %s (max |diff| %g)" % (
            p, outfeatures, infeatures, bits, group_size, "equal" if same else "DIFFERENT",
            float(np.max(np.abs(w - expected)))))
        failures += 0 if same else 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
