"""Writes the CReFF parity goldens under test/fixtures/creff/<case>/ (float32 .npy + case.json).

    /usr/bin/python3 python/tools/make_creff_goldens.py

Inputs are random (fixed seeds): features N(0, 1), and the q, k, v depthwise convolutions
initialised as torch.nn.Conv2d initialises them (uniform in +-1/sqrt(fan_in) = +-1/3, bias the
same), i.e. a freshly constructed CReFF module. The output is computed by
arseg.creff.creff_reference in float64 from the float32 inputs, then stored as float32. The motion fields move
content partly out of the image: a smooth field of a few pixels plus a band displaced far outside.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from arseg.creff import creff_reference  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "creff")

CASES = [
    # name, C, H, W, h, w, K, sampling, mode, motion kind
    ("small", 8, 24, 32, 12, 16, 7, "exact", "exact", "mixed"),
    ("realistic", 64, 90, 120, 45, 60, 7, "exact", "exact", "mixed"),
    ("small-official", 8, 24, 32, 12, 16, 7, "official", "exact", "mixed"),
    ("small-keyframe-conv", 8, 24, 32, 12, 16, 7, "exact", "keyframe-conv", "mixed"),
    ("window3", 8, 24, 32, 12, 16, 3, "exact", "exact", "mixed"),
    ("window1", 8, 24, 32, 12, 16, 1, "exact", "exact", "mixed"),
    ("pixel", 4, 1, 1, 1, 1, 7, "exact", "exact", "subpixel"),
    ("far-outside", 8, 24, 32, 12, 16, 7, "exact", "exact", "far"),
    ("odd-sizes", 5, 17, 23, 9, 11, 5, "exact", "exact", "mixed"),
]


def motion_field(kind, h, w, gen):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    if kind == "far":
        return torch.full((1, 2, h, w), 1000.0, dtype=torch.float64)
    if kind == "subpixel":
        return torch.tensor([[[[0.3]], [[-0.6]]]], dtype=torch.float64)
    noise = torch.randn(h, w, generator=gen, dtype=torch.float64)
    mx = 2.5 * torch.sin(ys / 5.0) + 1.5 * torch.cos(xs / 7.0) + 0.7 * noise
    my = -1.5 + 2.0 * torch.cos(xs / 6.0 + ys / 9.0) + 0.7 * torch.randn(h, w, generator=gen, dtype=torch.float64)
    band = xs < max(1, w // 5)  # a band on the left pointing far out of the image
    mx = torch.where(band, mx - (w + 5), mx)
    return torch.stack([mx, my]).unsqueeze(0)


def main():
    for name, c, H, W, h, w, K, sampling, mode, kind in CASES:
        gen = torch.Generator().manual_seed(sum(map(ord, name)) * 7919)
        f32 = lambda *s, scale=1.0: (torch.randn(*s, generator=gen) * scale).float()  # noqa: E731
        lr = f32(1, c, h, w)
        key = f32(1, c, H, W)
        motion = motion_field(kind, H, W, gen).float()
        bound = 1.0 / 3.0  # 1 / sqrt(fan_in), fan_in = 1 x 3 x 3 for a depthwise 3x3
        uniform = lambda *s: ((torch.rand(*s, generator=gen) * 2 - 1) * bound).float()  # noqa: E731
        conv = {n: (uniform(c, 1, 3, 3), uniform(c)) for n in "qkv"}
        d = lambda t: t.double()  # noqa: E731
        out = creff_reference(
            d(lr), d(key), d(motion), *[(d(conv[n][0]), d(conv[n][1])) for n in "qkv"],
            window=K, sampling=sampling, mode=mode,
        ).float()
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        arrays = {"lr": lr[0], "key": key[0], "motion": motion[0], "out": out[0]}
        for n in "qkv":
            arrays[f"{n}_weight"], arrays[f"{n}_bias"] = conv[n]
        for k, v in arrays.items():
            np.save(os.path.join(folder, f"{k}.npy"), v.numpy().astype(np.float32))
        meta = {"channels": c, "height": H, "width": W, "lrHeight": h, "lrWidth": w, "window": K,
                "sampling": sampling, "mode": mode, "motion": kind, "torch": torch.__version__}
        with open(os.path.join(folder, "case.json"), "w") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
        print(f"{name}: out range [{out.min():.3f}, {out.max():.3f}]")


if __name__ == "__main__":
    main()
