"""Makes the AWQ reference fixtures of AwqReferenceTest by running llm-awq's own functions.

Not run by the build. Needs: a checkout of https://github.com/mit-han-lab/llm-awq (commit d6e797a), PyTorch (2.13.0+cpu
was used), NumPy and, for the scale search, transformers (5.18.0 was used):

    python3 make_fixtures.py /path/to/llm-awq-checkout

awq/quantize/quantizer.py (pseudo_quantize_tensor) and awq/quantize/auto_clip.py (auto_clip_layer) are imported
unmodified; the modules they import but these functions do not use (transformers' BLOOM block, the package's qmodule
and utils, tqdm if absent) are stubbed. Writes W.npy [64, 128], X.npy [600, 128] (a few outlier channels), Q_b3_g32.npy
(pseudo_quantize_tensor(W, n_bit=3, zero_point=True, q_group_size=32)) and clip_b4_g64.npy (auto_clip_layer(W, X,
n_bit=4, q_config={zero_point: True, q_group_size: 64}), its best max value per row and group, [64, 2]), and
scales_fc1_b4_g32.npy: the scales auto_scale_block chooses for the fc1 of an OPT decoder layer whose fc1 weight is W
and whose fc1 input is X (4 bits, group 32). For fc1, llm-awq inspects the linear layer itself, which is AWQ on one
layer; the layer's other parts are stand-ins, only there because auto_scale_block searches them too.
"""
import os, sys, types

import numpy as np
import torch

sys.modules["awq_inference_engine"] = types.ModuleType("awq_inference_engine")  # CUDA kernels, not used here
try:
    import tqdm  # noqa: F401  (quantizer.py imports it for its progress bars)
except ImportError:
    sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda x, **k: x)
torch.cuda.empty_cache = lambda: None
sys.path.insert(0, sys.argv[1])
from awq.quantize.quantizer import pseudo_quantize_tensor  # noqa: E402
from awq.quantize.auto_clip import auto_clip_layer  # noqa: E402
from awq.quantize.auto_scale import auto_scale_block  # noqa: E402
from transformers.models.opt.modeling_opt import OPTDecoderLayer  # noqa: E402

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


class Attention(torch.nn.Module):  # a stand-in: auto_scale_block also searches q/k/v and out_proj
    def __init__(self, d):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (torch.nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        return self.q_proj(x) + self.k_proj(x) + self.v_proj(x)


layer = OPTDecoderLayer.__new__(OPTDecoderLayer)
torch.nn.Module.__init__(layer)
layer.self_attn_layer_norm = torch.nn.LayerNorm(128)
layer.self_attn = Attention(128)
layer.final_layer_norm = torch.nn.LayerNorm(128)
layer.fc1 = torch.nn.Linear(128, 64)
layer.fc1.weight.data = torch.from_numpy(W.copy())
layer.fc2 = torch.nn.Linear(64, 128)
x = torch.from_numpy(X.copy())
feats = {"self_attn.q_proj": x, "self_attn.out_proj": x, "fc1": x, "fc2": torch.relu(layer.fc1(x)).detach()}
scales = auto_scale_block(layer, {}, w_bit=4, q_config={"zero_point": True, "q_group_size": 32}, input_feat=feats)
fc1 = [sc for prev, names, sc in scales if names == ("fc1",)][0]
np.save(os.path.join(here, "scales_fc1_b4_g32.npy"), fc1.reshape(1, -1).numpy())
