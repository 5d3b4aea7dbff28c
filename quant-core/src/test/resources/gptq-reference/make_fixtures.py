"""Makes the GPTQ reference fixtures of GptqReferenceTest by running the reference implementation itself.

Not run by the build. Needs: a checkout of https://github.com/IST-DASLab/gptq (commit 2d65066, "Update README.md"),
whose gptq.py and quant.py are imported unmodified, PyTorch (2.13.0+cpu was used) and NumPy:

    python3 make_fixtures.py /path/to/gptq-checkout

Writes W.npy [32, 256] and the reference's H.npy (its add_batch on one [1024, 256] batch: H = 2 X^T X), and, per
configuration, Q_<name>.npy (layer.weight after fasterquant) and a line of reference.tsv with the reported error.
"""
import contextlib, io, os, sys, types

import numpy as np
import torch
import torch.nn as nn

sys.modules["transformers"] = types.SimpleNamespace(Conv1D=type("Conv1D", (nn.Module,), {}))  # only isinstance'd
torch.cuda.synchronize = lambda *a, **k: None  # fasterquant calls it; this is a CPU build
sys.path.insert(0, sys.argv[1])
from gptq import GPTQ  # noqa: E402
from quant import Quantizer  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2026)
rows, cols, tokens = 32, 256, 1024
W = (0.05 * rng.standard_normal((rows, cols))).astype(np.float32)
mix = rng.standard_normal((12, cols))
X = rng.standard_normal((tokens, 12)) @ mix + 0.5 * rng.standard_normal((tokens, cols))
X[:, 5::29] *= 15  # a few outlier features
X = X.astype(np.float32)
np.save(os.path.join(here, "W.npy"), W)

# name, bits, groupsize, sym, actorder, static_groups
configs = [
    ("b4_channel_asym", 4, -1, False, False, False),
    ("b4_g32_asym_act", 4, 32, False, True, False),
    ("b3_g32_sym_act_static", 3, 32, True, True, True),
    ("b2_g16_asym", 2, 16, False, False, False),
    ("b8_channel_asym", 8, -1, False, False, False),
    ("b3_g64_sym", 3, 64, True, False, False),
]
lines = ["name\tbits\tgroupsize\tsym\tactorder\tstatic_groups\terror"]
for name, bits, group, sym, act, static in configs:
    layer = nn.Linear(cols, rows, bias=False)
    layer.weight.data = torch.from_numpy(W.copy())
    g = GPTQ(layer)
    g.add_batch(torch.from_numpy(X), None)
    if name == configs[0][0]:
        np.save(os.path.join(here, "H.npy"), g.H.numpy())
    g.quantizer = Quantizer()
    g.quantizer.configure(bits, perchannel=True, sym=sym, mse=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # fasterquant prints "time ..." and "error <sum of Losses>"
        g.fasterquant(blocksize=128, percdamp=0.01, groupsize=group, actorder=act, static_groups=static)
    error = [line.split()[1] for line in printed.getvalue().splitlines() if line.startswith("error")][0]
    np.save(os.path.join(here, f"Q_{name}.npy"), layer.weight.data.numpy())
    lines.append(f"{name}\t{bits}\t{group}\t{int(sym)}\t{int(act)}\t{int(static)}\t{error}")
with open(os.path.join(here, "reference.tsv"), "w") as f:
    f.write("\n".join(lines) + "\n")
