"""Exports CReFF written with standard ONNX operators (arseg.creff.CReFFGraph) for the
ONNX Runtime comparison in bench/creff.js: C=64, K=7, randomly initialised (nn.Conv2d's
initialisation), dynamic spatial sizes.

    /usr/bin/python3 python/tools/export_creff_onnx.py test/fixtures/creff-graph/creff-c64-k7.onnx

Also writes <name>.weights.json with the q, k, v weights so the native kernels run the same
module, and checks the export against arseg.creff.creff_reference on a small input.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from arseg.creff import CReFFGraph, creff_reference  # noqa: E402


def main(path):
    torch.manual_seed(2023)
    c, window = 64, 7
    convs = {n: torch.nn.Conv2d(c, c, 3, padding=1, groups=c) for n in "qkv"}
    params = {n: (m.weight.detach(), m.bias.detach()) for n, m in convs.items()}
    graph = CReFFGraph(params["q"], params["k"], params["v"], window).eval()
    lr = torch.randn(1, c, 12, 16)
    key = torch.randn(1, c, 24, 32)
    motion = torch.randn(1, 2, 24, 32) * 3
    with torch.no_grad():
        expected = creff_reference(lr, key, motion, params["q"], params["k"], params["v"], window)
        got = graph(lr, key, motion)
    err = (expected - got).abs().max().item()
    assert err < 1e-4, f"graph formulation differs from the reference by {err}"
    torch.onnx.export(
        graph, (lr, key, motion), path, opset_version=16,
        input_names=["lr", "key", "motion"], output_names=["fused"],
        dynamic_axes={
            "lr": {2: "h", 3: "w"}, "key": {2: "H", 3: "W"}, "motion": {2: "H", 3: "W"}, "fused": {2: "H", 3: "W"}
        },
    )
    weights = {"channels": c, "window": window}
    for n, (wt, b) in params.items():
        weights[f"{n}Weight"] = wt.flatten().tolist()
        weights[f"{n}Bias"] = b.flatten().tolist()
    with open(os.path.splitext(path)[0] + ".weights.json", "w") as fh:
        json.dump(weights, fh)
    print(f"wrote {path} (graph vs reference: max difference {err:.2e})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/creff-graph/creff-c64-k7.onnx")
