"""arseg.bundle_import: models/default's ONNX networks and CReFF back in PyTorch compute what the
Node pipeline computes with the bundle.

python/tests/segment_bundle.js runs the bundle through ArSeg.segment() in modes 'hr', 'lr' and
'ar' on test/fixtures/translate-b.mp4 (I, P and B frames, keyframes every 12) and writes the
logits and what the pipeline fed the networks; the imported networks recompute every frame from
those inputs (hr = decode(encode_hr(x)), lr = decode(encode_lr(x_lr)), ar = decode(CReFF(...)))
and must agree within 1e-3 (ONNX Runtime against PyTorch, float rounding of the folded batch
norms). Also: a bundle of another width or with a graph that does not fit fails with
BundleImportError, not with wrong weights.
"""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from arseg.bundle_import import BundleImportError, load_bundle
from conftest import PYTHON_DIR, ROOT

BUNDLE = os.path.join(ROOT, "models", "default")
CLIP = os.path.join(ROOT, "test", "fixtures", "translate-b.mp4")
FRAMES = 14  # keyframes 0 and 12; distances 1..11, then 1 again


@pytest.fixture(scope="module")
def imported():
    return load_bundle(BUNDLE)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, node):
    out = tmp_path_factory.mktemp("default-bundle")
    script = os.path.join(PYTHON_DIR, "tests", "segment_bundle.js")
    proc = subprocess.run([node, script, BUNDLE, CLIP, str(out), str(FRAMES)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(out / "frames.json") as fh:
        return str(out), json.load(fh)["frames"]


def _load(out, name):
    return torch.from_numpy(np.load(os.path.join(out, f"{name}.npy")))


@pytest.mark.parametrize("mode", ["hr", "lr", "ar"])
def test_imported_networks_match_the_pipeline(imported, pipeline, mode):
    manifest, hr, lr, creff = imported
    out, frames = pipeline
    assert [f["index"] for f in frames] == list(range(FRAMES))
    worst = scale = 0.0
    key = None
    with torch.no_grad():
        for f in frames:
            i = f["index"]
            if mode == "hr" or (mode == "ar" and f["isKeyframe"]):
                feature = hr.encode(_load(out, f"hr-{i}"))
                key = feature
            elif mode == "lr":
                feature = lr.encode(_load(out, f"lr-{i}"))
            else:
                feature = creff(lr.encode(_load(out, f"lr-{i}")), key, _load(out, f"motion-{i}").unsqueeze(0))
            expected = hr.decode(feature)
            got = _load(out, f"logits-{mode}-{i}")
            assert tuple(got.shape) == tuple(expected.shape)
            worst = max(worst, float((got - expected).abs().max()))
            scale = max(scale, float(expected.abs().max()))
    print(f"{mode}: max |Node - imported PyTorch| {worst:.2e}, logits up to {scale:.2f}")
    assert scale > 1, "logits too small to compare meaningfully"
    assert worst < 1e-3, f"{mode}: max |Node - imported PyTorch| = {worst:.2e}"


def test_imported_batch_norms_are_identities_in_eval_mode(imported):
    _, hr, lr, _ = imported
    for net in (hr, lr):
        bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert bns and all(not m.training for m in bns)
        x = torch.randn(1, bns[0].num_features, 4, 4)
        with torch.no_grad():
            np.testing.assert_allclose(bns[0](x) - bns[0].bias.view(1, -1, 1, 1), x, atol=1e-5)


def test_wrong_width_and_missing_creff_fail_clearly(tmp_path):
    with pytest.raises(BundleImportError, match="feature channels|convolution"):
        load_bundle(BUNDLE, width=0.5)
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    with open(bundle / "arseg.json") as fh:
        manifest = json.load(fh)
    del manifest["creff"]
    with open(bundle / "arseg.json", "w") as fh:
        json.dump(manifest, fh)
    with pytest.raises(BundleImportError, match="no CReFF"):
        load_bundle(str(bundle))


def test_a_graph_of_another_network_fails(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    shutil.copy(bundle / "decoder.onnx", bundle / "hr_encoder.onnx")  # one conv: not a PSPNet encoder
    with pytest.raises(BundleImportError, match="convolutions"):
        load_bundle(str(bundle))
