"""The official PSPNet18 layout (CamVid: 12 classes, 64 feature channels, K=7), randomly
initialised, exported as a bundle: real cost, no training needed. For `ar-seg flops` (the
paper's 67% saving) and the pipeline benchmarks. Not committed (about 2 x 50 MB).

    /usr/bin/python3 python/tools/export_official_layout.py .bench-cache/psp18-official
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from arseg.bundle import export_bundle  # noqa: E402
from arseg.pspnet import random_ar_networks  # noqa: E402


def build():
    """The randomly initialised official-layout networks (HR, LR sharing the decoder) and CReFF."""
    return random_ar_networks(1.0, 7)


def main(out_dir):
    hr, lr, creff = build()
    export_bundle(out_dir, hr, lr, creff, name="psp18-official-layout-random",
                  description="PSPNet18 in the official layout, random weights: cost measurements only")
    print(f"wrote {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(".bench-cache", "psp18-official"))
