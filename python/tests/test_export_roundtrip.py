"""Official-layout checkpoints -> `python -m arseg.export` -> bundle -> the Node pipeline, against
the PyTorch forward of the same networks.

Small-width HR and LR networks (random weights, batch norms given statistics, the LR network
sharing the HR network's final_conv) are saved as the official code saves them (torch.save of a
`module.`-prefixed state dict; the LR one wrapped in {'state_dict': ...}). The export CLI turns
them into a bundle; python/tests/segment_bundle.js runs it through ArSeg.segment() in modes
'hr', 'lr' and 'ar' on test/fixtures/translate-b.mp4 (I, P and B frames; keyframes every 12) and
writes the logits with what the pipeline fed the networks (image tensors, motion resized to the
HR feature size). The bundle is exported with this project's pipeline (--pipeline project): the
official one is test_official_end_to_end.py's. PyTorch then computes each frame from those inputs with the in-memory
networks (not the converted ones): hr = decode(encode_hr(x)), lr = decode(encode_lr(x_lr)),
ar = decode(CReFF(encode_lr(x_lr), keyframe feature, motion)) with arseg.creff.creff_reference,
decode being the HR network's final_conv. Logits must agree within 1e-3.
"""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arseg.creff import creff_reference
from arseg.export import main as export_main
from arseg.official import build, official_state_dict
from arseg.pspnet import randomise_batchnorm
from conftest import PYTHON_DIR, ROOT

FRAMES = 14  # keyframes 0 and 12; distances 1..11 (B-frames among them), then 1 again
CLIP = os.path.join(ROOT, "test", "fixtures", "translate-b.mp4")
# arch -> (width, CReFF sampling written in the manifest)
CASES = {"psp18": (0.1, "exact"), "bise18": (0.125, "official")}


def networks(arch, width, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    hr, lr = build(arch, "hr", 12, width), build(arch, "lr", 12, width)
    for net in (hr, lr):
        randomise_batchnorm(net, gen)
    with torch.no_grad():  # the LR network was trained with the HR decoder, frozen
        hr.final_conv.weight.mul_(20)  # logits of a few units, so that 1e-3 is a tight bound
        lr.final_conv.weight.copy_(hr.final_conv.weight)
        lr.final_conv.bias.copy_(hr.final_conv.bias)
        for conv in (lr.fuse_attention.lr_query_conv, lr.fuse_attention.hr_key_conv, lr.fuse_attention.hr_value_conv):
            conv.weight.normal_(0, 0.5, generator=gen)
            conv.bias.normal_(0, 0.1, generator=gen)
    return hr.eval(), lr.eval()


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module", params=sorted(CASES))
def roundtrip(request, tmp_path_factory, node):
    arch = request.param
    width, sampling = CASES[arch]
    tmp = tmp_path_factory.mktemp(arch)
    hr, lr = networks(arch, width, seed=11)
    torch.save(official_state_dict(hr), tmp / "hr.pth")
    torch.save({"state_dict": official_state_dict(lr), "epoch": 1}, tmp / "lr.pth")
    bundle = tmp / "bundle"
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run([sys.executable, "-m", "arseg.export", "--hr", str(tmp / "hr.pth"), "--lr", str(tmp / "lr.pth"),
         "--arch", arch, "--classes", "camvid", "--out", str(bundle), "--width", str(width),
         "--pipeline", "project", "--sampling", sampling, "--name", f"roundtrip-{arch}"], env=env, cwd=ROOT)
    out = tmp / "node"
    script = os.path.join(PYTHON_DIR, "tests", "segment_bundle.js")
    run([node, script, str(bundle), CLIP, str(out), str(FRAMES)], cwd=ROOT)
    with open(bundle / "arseg.json") as fh:
        manifest = json.load(fh)
    with open(out / "frames.json") as fh:
        frames = json.load(fh)["frames"]
    return SimpleNamespace(arch=arch, hr=hr, lr=lr, manifest=manifest, bundle=str(bundle), out=str(out), frames=frames,
                           cache={})


def feature(r, branch, i):
    """PyTorch's HR or LR encoder feature of frame i, from the tensors the pipeline used (cached)."""
    if (branch, i) not in r.cache:
        with torch.no_grad():
            net = r.hr if branch == "hr" else r.lr
            r.cache[branch, i] = net.encode(load(r.out, f"{branch}-{i}"))
    return r.cache[branch, i]


def load(out, name):
    return torch.from_numpy(np.load(os.path.join(out, f"{name}.npy")))


def test_manifest(roundtrip):
    arch, hr, lr, manifest = roundtrip.arch, roundtrip.hr, roundtrip.lr, roundtrip.manifest
    assert manifest["name"] == f"roundtrip-{arch}"
    assert manifest["feature"] == {"channels": hr.feature_channels, "stride": hr.feature_stride}
    assert manifest["input"]["sizeMultiple"] == hr.size_multiple
    assert manifest["creff"]["window"] == 7 and manifest["creff"]["sampling"] == CASES[arch][1]
    assert len(manifest["classes"]) == 12 and manifest["ignoreIndex"] == 11
    assert (manifest["lrScale"], manifest["keyframeInterval"]) == (0.5, 12)
    for conv, module in (("q", lr.fuse_attention.lr_query_conv), ("k", lr.fuse_attention.hr_key_conv),
                         ("v", lr.fuse_attention.hr_value_conv)):
        for part in ("weight", "bias"):
            saved = np.load(os.path.join(roundtrip.bundle, manifest["creff"][conv][part]))
            np.testing.assert_array_equal(saved, getattr(module, part).detach().numpy())


@pytest.mark.parametrize("mode", ["hr", "lr", "ar"])
def test_pipeline_logits_match_pytorch(roundtrip, mode):
    r = roundtrip
    arch, hr, lr, manifest, out, frames = r.arch, r.hr, r.lr, r.manifest, r.out, r.frames
    assert [f["index"] for f in frames] == list(range(FRAMES))
    assert [f["index"] for f in frames if f["isKeyframe"]] == [0, 12]
    stride = manifest["feature"]["stride"]
    window, sampling = manifest["creff"]["window"], manifest["creff"]["sampling"]
    w = lr.fuse_attention.weights()
    key = None
    worst = scale = 0.0
    motion_effect = 0.0  # how far the AR logits move when the motion is ignored
    with torch.no_grad():
        for f in frames:
            i = f["index"]
            if mode == "hr" or (mode == "ar" and f["isKeyframe"]):
                fused = feature(r, "hr", i)
                if mode == "ar":
                    key = fused
                expected_branch = "hr"
            elif mode == "lr":
                fused = feature(r, "lr", i)
                expected_branch = "lr"
            else:
                motion = load(out, f"motion-{i}").unsqueeze(0)
                assert tuple(motion.shape[2:]) == tuple(key.shape[2:])
                lr_feature = feature(r, "lr", i)
                fused = creff_reference(lr_feature, key, motion, w["q"], w["k"], w["v"], window, sampling=sampling)
                still = creff_reference(lr_feature, key, 0 * motion, w["q"], w["k"], w["v"], window, sampling=sampling)
                motion_effect = max(motion_effect, float((hr.decode(fused) - hr.decode(still)).abs().max()))
                expected_branch = "ar"
            assert f["branch"][mode] == expected_branch
            expected = hr.decode(fused)
            got = load(out, f"logits-{mode}-{i}")
            assert tuple(got.shape) == tuple(expected.shape)
            image = load(out, f"{'lr' if mode == 'lr' else 'hr'}-{i}")  # feature size = tensor size / stride
            assert tuple(got.shape[2:]) == (image.shape[2] // stride, image.shape[3] // stride)
            worst = max(worst, float((got - expected).abs().max()))
            scale = max(scale, float(expected.abs().max()))
    print(f"{arch} {mode}: max |Node - PyTorch| {worst:.2e}, logits up to {scale:.2f}, "
          f"motion effect {motion_effect:.2f}")
    assert scale > 1, "logits too small to compare meaningfully"
    if mode == "ar":
        assert motion_effect > 0.05, "the clip's motion should change the fused logits"
    assert worst < 1e-3, f"{arch} {mode}: max |Node - PyTorch| = {worst:.2e} (logits up to {scale:.1f})"


def test_export_refuses_swapped_checkpoints(roundtrip, tmp_path, capsys):
    arch = roundtrip.arch
    width = CASES[arch][0]
    hr, lr = networks(arch, width, seed=12)
    torch.save(official_state_dict(hr), tmp_path / "hr.pth")
    torch.save(official_state_dict(lr), tmp_path / "lr.pth")
    args = ["--hr", str(tmp_path / "lr.pth"), "--lr", str(tmp_path / "hr.pth"), "--arch", arch, "--classes", "camvid",
            "--out", str(tmp_path / "b"), "--width", str(width)]
    assert export_main(args) == 3
    err = capsys.readouterr().err
    assert "unexpected key(s)" in err and "fuse_attention.lr_query_conv.weight" in err and "pass it as --lr" in err
    assert not os.path.exists(tmp_path / "b")
    # the official width does not fit a small model: every mismatched shape is listed
    assert export_main(args[:-2] + ["--width", "1"]) == 3
    assert "shape mismatch(es)" in capsys.readouterr().err
