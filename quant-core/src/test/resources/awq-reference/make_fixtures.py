"""Makes the AWQ reference fixtures of AwqReferenceTest by running llm-awq's own functions.

Not run by the build. Needs: a checkout of https://github.com/mit-han-lab/llm-awq (commit d6e797a), PyTorch (2.13.0+cpu
was used) and NumPy:

    python3 make_fixtures.py /path/to/llm-awq-checkout

awq/quantize/quantizer.py (pseudo_quantize_tensor) and awq/quantize/auto_clip.py (auto_clip_layer) are imported
unmodified; the modules they import but these functions do not use (transformers' BLOOM block, the package's qmodule
and utils, tqdm if absent) are stubbed. Writes W.npy [64, 128], X.npy [600, 128] (a few outlier channels), Q_b3_g32.npy
(pseudo_quantize_tensor(W, n_bit=3, zero_point=True, q_group_size=32)) and clip_b4_g64.npy (auto_clip_layer(W, X,
n_bit=4, q_config={zero_point: True, q_group_size: 64}), its best max value per row and group, [64, 2]).
"""
import os, sys, types

import numpy as np
import torch

for name in ["transformers", "transformers.models", "transformers.models.bloom",
             "transformers.models.bloom.modeling_bloom", "awq.quantize.qmodule", "awq.utils", "awq.utils.module"]:
    sys.modules[name] = types.ModuleType(name)
sys.modules["transformers.models.bloom.modeling_bloom"].BloomBlock = type("BloomBlock", (), {})
sys.modules["awq.quantize.qmodule"].ScaledActivation = type("ScaledActivation", (), {})
sys.modules["awq.utils.module"].set_op_by_name = None
try:
    import tqdm  # noqa: F401  (quantizer.py imports it for its progress bars)
except ImportError:
    sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda x, **k: x)
torch.cuda.empty_cache = lambda: None
sys.path.insert(0, sys.argv[1])
from awq.quantize.quantizer import pseudo_quantize_tensor  # noqa: E402
from awq.quantize.auto_clip import auto_clip_layer  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2026)
W = (0.05 * rng.standard_normal((64, 128))).astype(np.float32)
X = rng.standard_normal((600, 128)).astype(np.float32)
X[:, 3::17] *= 12
np.save(os.path.join(here, "W.npy"), W)
np.save(os.path.join(here, "X.npy"), X)
q = pseudo_quantize_tensor(torch.from_numpy(W.copy()), n_bit=3, zero_point=True, q_group_size=32)
np.save(os.path.join(here, "Q_b3_g32.npy"), q.numpy())
best = auto_clip_layer(torch.from_numpy(W.copy()), torch.from_numpy(X.copy()), n_bit=4,
                       q_config={"zero_point": True, "q_group_size": 64})
np.save(os.path.join(here, "clip_b4_g64.npy"), best.reshape(64, -1).numpy())
