"""PyTorch running AR-Seg's reference formulation on the frames bench/pipeline.js segments: the
research code's speed on this CPU, for the side-by-side table in BENCHMARKS.md.

    node python/tools/dump_pipeline_inputs.js .bench-cache/psp18-official \\
        .bench-cache/bench-960x720-24f-tx3-ty1.mp4 .bench-cache/pytorch-inputs 24
    /usr/bin/python3 bench/pytorch_pipeline.py .bench-cache/pytorch-inputs [FRAMES]

Per mode ('hr', 'lr', 'ar' with scale 0.5 and a keyframe every 12 frames): encoders, CReFF,
decoder, bilinear upsampling of the logits (align_corners=True) and arg-max, from the same
decoded tensors and motion fields the Node pipeline uses (decoding excluded), 2 threads.
CReFF runs as arseg.creff.CReFFGraph (49 shifted slices): the unfold-based reference would
materialise 2 x 64 x 49 x 691,200 floats (17 GB) at this size and does not fit in memory.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "python", "tools"))
from arseg.creff import CReFFGraph  # noqa: E402
from export_official_layout import build  # noqa: E402


def main(inputs, frames):
    torch.set_num_threads(2)
    hr, lr, creff = build()
    fuse = CReFFGraph(creff["q"], creff["k"], creff["v"], 7).eval()
    meta = json.load(open(os.path.join(inputs, "frames.json")))[:frames]
    load = lambda kind, i: torch.from_numpy(np.load(os.path.join(inputs, f"{kind}-{i}.npy")))  # noqa: E731
    rows = {}
    with torch.no_grad():
        for mode in ("hr", "lr", "ar"):
            key = None
            start = time.perf_counter()
            for f in meta:
                i = f["index"]
                size = tuple(load("hr", i).shape[2:])
                if mode == "hr" or (mode == "ar" and i % 12 == 0):
                    feature = hr.encode(load("hr", i))
                    key = feature
                else:
                    feature = lr.encode(load("lr", i))
                    if mode == "ar":
                        feature = fuse(feature, key, load("motion", i).unsqueeze(0))
                logits = hr.final_conv(feature)
                F.interpolate(logits, size=size, mode="bilinear", align_corners=True).argmax(1)
            seconds = time.perf_counter() - start
            rows[mode] = {"frames": len(meta), "seconds": seconds, "fps": len(meta) / seconds}
            print(f"{mode}: {len(meta)} frames in {seconds:.1f} s, {len(meta) / seconds:.3f} fps", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 24)
