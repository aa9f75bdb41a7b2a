"""The tiny test bundle (test/fixtures/bundles/tiny-psp18): the PSPNet18 layout at 1/10 width,
randomly initialised with fixed seeds, HR and LR encoders with separate weights, the HR
decoder shared, CReFF initialised as nn.Conv2d initialises it.

    /usr/bin/python3 python/tools/make_test_bundle.py [OUT_DIR]

build() is deterministic (fixed seeds): make_pipeline_goldens.py calls it again to get the same
PyTorch modules and compute the reference logits.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from arseg.bundle import export_bundle  # noqa: E402
from arseg.pspnet import random_ar_networks  # noqa: E402

WIDTH = 0.1  # feature channels 6; the bundle stays under 2 MB


def build():
    return random_ar_networks(WIDTH, 404)


def main(out_dir):
    hr, lr, creff = build()
    export_bundle(out_dir, hr, lr, creff, name="tiny-psp18",
                  description="PSPNet18 layout at 1/10 width, random weights: for tests only")
    print(f"wrote {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("test", "fixtures", "bundles", "tiny-psp18"))
