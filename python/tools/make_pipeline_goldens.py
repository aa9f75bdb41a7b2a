"""Golden logits for the pipeline parity test (test/pipeline.test.js).

    npm run build && /usr/bin/python3 python/tools/make_pipeline_goldens.py

Runs the Node reader (dump_pipeline_inputs.js) to get exactly the tensors and motion fields the
pipeline feeds its networks for the first frames of test/fixtures/tiny.h264, then computes with
PyTorch, from the same modules the tiny test bundle was exported from (make_test_bundle.build),
the decoder logits of each mode: 'hr' (HR encoder), 'lr' (LR encoder), 'ar' (HR on keyframes,
LR fused with the keyframe's HR feature through arseg.creff.creff_reference elsewhere).
Writes test/fixtures/pipeline/<mode>-<frame>.npy (1 x classes x h x w float32).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from arseg.creff import creff_reference  # noqa: E402
from make_test_bundle import build  # noqa: E402

FRAMES = 14
KEEP = [0, 1, 2, 6, 11, 12, 13]  # keyframes 0 and 12, distances 1, 2, 6, 11 and 1 again


def main():
    out = os.path.join(ROOT, "test", "fixtures", "pipeline")
    os.makedirs(out, exist_ok=True)
    bundle = os.path.join(ROOT, "test", "fixtures", "bundles", "tiny-psp18")
    manifest = json.load(open(os.path.join(bundle, "arseg.json")))
    hr, lr, creff = build()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["node", os.path.join(HERE, "dump_pipeline_inputs.js"), bundle,
                        os.path.join(ROOT, "test", "fixtures", "tiny.h264"), tmp, str(FRAMES)], check=True)
        frames = json.load(open(os.path.join(tmp, "frames.json")))
        load = lambda kind, i: torch.from_numpy(np.load(os.path.join(tmp, f"{kind}-{i}.npy")))  # noqa: E731
        key_feature = None
        with torch.no_grad():
            for f in frames:
                i = f["index"]
                hr_feature = hr.encode(load("hr", i))
                lr_feature = lr.encode(load("lr", i))
                if f["isKeyframe"]:
                    key_feature = hr_feature
                    ar_feature = hr_feature
                else:
                    ar_feature = creff_reference(lr_feature, key_feature, load("motion", i).unsqueeze(0),
                                                 creff["q"], creff["k"], creff["v"], manifest["creff"]["window"],
                                                 sampling=manifest["creff"].get("sampling", "exact"))
                if i not in KEEP:
                    continue
                for mode, feature in (("hr", hr_feature), ("lr", lr_feature), ("ar", ar_feature)):
                    np.save(os.path.join(out, f"{mode}-{i}.npy"), hr.final_conv(feature).numpy().astype(np.float32))
        with open(os.path.join(out, "frames.json"), "w") as fh:
            json.dump({"clip": "tiny.h264", "frames": [f for f in frames if f["index"] in KEEP],
                       "torch": torch.__version__}, fh, indent=1)
            fh.write("\n")
    print(f"wrote {len(KEEP) * 3} golden logits to {out}")


if __name__ == "__main__":
    main()
