"""Converted official checkpoints run the official AR-Seg, end to end (issue 12).

Official-layout PSPNet18 and BiSeNet18 (small widths, random weights, batch norms given
statistics) whose LR networks have their OWN final_conv (as an FST-trained checkpoint whose
decoder was not kept tied), saved as the official code saves them and converted by
`python -m arseg.export` with its defaults (the official pipeline). The Node pipeline
(python/tests/segment_bundle.js: ArSeg.segment in modes hr, lr and ar) runs the bundle on a
360x240 clip (LR input 180x120: neither side a multiple of 16, the width not even of 8) and
dumps each decoded frame, the motion its reader composed to the keyframe, its logits and its
labels. python/tests/official_eval.py, a transcription of the official evaluation path
(ToTensor + Normalize with the dataset's statistics, the LR input interpolated from the HR
tensor, the motion resized with align_corners=True and scaled by the height ratio, warpFeature,
forward_phase1/forward_phase2 with the LR network's own final_conv, the labels resized as the
official networks and evaluation do), computes the same frames from the same decoded pixels and
the same composed motion (expanded to per-pixel, as the official loaders give it) with the
in-memory PyTorch networks. Targets: logits within 1e-3 (where the grids match: both are at the
feature size), at most 0.1% of label pixels differing at frame size.

The device path (device 'cuda-emulated': ONNX Runtime on the CPU, CReFF, the decoder heads and
the labels through the GPU code's emulator) runs the same bundles and clip: HR and LR frames
give the CPU path's logits and labels bit for bit, AR frames within DEVICE_LOGIT_BOUND (CReFF's
sums run in another order on the device), with labels equal wherever the two best classes are
further apart than that allows.

Robustness (BiSeNet18): CReFF's attention scores reach the hundreds, so the AR logits amplify
small differences in the warp's sampling positions (this project computes them in float32, the
official code in float64). The test measures it: the official AR logits' change when the motion
moves by 1e-5 px, and the margin left under 1e-3; see docs/conversion.md, "Robustness".
"""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arseg.official import CAMVID_STATS, build, official_state_dict
from arseg.pspnet import randomise_batchnorm
from conftest import PYTHON_DIR, ROOT
from official_eval import OfficialNetwork, eval_alter_res, eval_const_res

WIDTH, HEIGHT, FRAMES = 360, 240, 14  # keyframes 0 and 12: distances 1..11, then 1
# The emulated device path runs the CUDA kernels' code on the CPU, one OS thread per CUDA thread
# and a futex per __syncthreads: PSPNet18's CReFF took 145 s for the 14 frames. A keyframe and
# two AR frames exercise every kernel of the path; the motion they fuse is the CPU path's own.
EMULATED_FRAMES = 3
SCALE = 0.5
# arch -> channel width of the small test networks
ARCHS = {"psp18": 0.1, "bise18": 0.125}
# Feature gain of the test networks: their features (the last batch norm before CReFF) are
# scaled up so that CReFF's attention scores reach the hundreds, as in the official checkpoints
# (the softmax is then sharp and the AR logits sensitive to the warp); the decoders scaled down
# by as much keep the logits at a few units.
FEATURE_GAIN = 30.0
LOGIT_TOLERANCE = 1e-3
LABEL_SHARE = 1e-3  # at most 0.1% of the label pixels may differ
NUDGE = 1e-5  # px: the motion perturbation of the robustness measure
# AR frames, the device path against the CPU path: CReFF's sums in another order (measured: under
# 1e-5 on logits of a few units, with the sharp attention of FEATURE_GAIN)
DEVICE_LOGIT_BOUND = 1e-4


def scene_coordinates(width, height, k):
    """Where pixel (x, y) of frame k is in the scene: a translation and a shear (a motion field
    that varies across the frame): the content moves right, faster lower down, and up."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return xs - k * (1.75 + 0.006 * ys), ys + k * 0.8


def scene_frames(width, height, count):
    """The frames (H x W x 3 uint8) of a smooth textured scene moving as scene_coordinates says."""
    frames = []
    for k in range(count):
        u, v = scene_coordinates(width, height, k)
        img = np.stack([
            0.5 + 0.2 * np.sin(u / 7.3 + v / 11.1) + 0.15 * np.cos(u / 17.0 - v / 5.9)
            + 0.1 * np.sin((u + 2 * v) / 23.0),
            0.5 + 0.25 * np.cos(u / 9.1 - v / 13.7) + 0.1 * np.sin(v / 4.3 + u / 31.0),
            0.5 + 0.2 * np.sin(u / 5.2) * np.cos(v / 8.8) + 0.15 * np.cos((u - v) / 15.5),
        ], axis=-1)
        frames.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return frames


def render_clip(path):
    """The scene, H.264 with P-frames only, GOP 12, single-threaded x264 (deterministic)."""
    frames = scene_frames(WIDTH, HEIGHT, FRAMES)
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", "25",
           "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "12", "-bf", "0", "-refs", "1", "-crf", "18",
           "-x264-params", "threads=1:scenecut=0", "-fflags", "+bitexact", "-flags:v", "+bitexact", str(path)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)


def networks(arch, width, seed):
    """HR and LR networks of the official layout; the LR network's final_conv its own."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    hr, lr = build(arch, "hr", 12, width), build(arch, "lr", 12, width)
    for net in (hr, lr):
        randomise_batchnorm(net, gen)
    with torch.no_grad():
        for net in (hr, lr):  # logits of a few units, so that 1e-3 is a tight bound
            net.final_conv.weight.normal_(0, 1.0, generator=gen)
            net.final_conv.bias.normal_(0, 0.5, generator=gen)
        for conv in (lr.fuse_attention.lr_query_conv, lr.fuse_attention.hr_key_conv, lr.fuse_attention.hr_value_conv):
            conv.weight.normal_(0, 0.5, generator=gen)
            conv.bias.normal_(0, 0.1, generator=gen)
        for net in (hr, lr):
            bn = net.feat_conv_out.bn if arch == "bise18" else net.up_3.conv[1]  # the feature's last batch norm
            bn.weight.mul_(FEATURE_GAIN)
            bn.bias.mul_(FEATURE_GAIN)
            net.final_conv.weight.div_(FEATURE_GAIN)
    return hr.eval(), lr.eval()


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "sheared.mp4"
    render_clip(path)
    return str(path)


@pytest.fixture(scope="module", params=sorted(ARCHS))
def e2e(request, tmp_path_factory, node, clip):
    arch = request.param
    width = ARCHS[arch]
    tmp = tmp_path_factory.mktemp(arch)
    hr, lr = networks(arch, width, seed=5)
    torch.save(official_state_dict(hr), tmp / "hr.pth")
    torch.save({"state_dict": official_state_dict(lr), "epoch": 1}, tmp / "lr.pth")
    bundle = tmp / "bundle"
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    export = run([sys.executable, "-m", "arseg.export", "--hr", str(tmp / "hr.pth"), "--lr", str(tmp / "lr.pth"),
                  "--arch", arch, "--classes", "camvid", "--out", str(bundle), "--width", str(width)],
                 env=env, cwd=ROOT)
    out = tmp / "node"
    run([node, os.path.join(PYTHON_DIR, "tests", "segment_bundle.js"), str(bundle), clip, str(out), str(FRAMES)],
        cwd=ROOT)
    # The same stream's motion composed this project's way (bilinear, per pixel): what the AR
    # frames would have been fed without the official composition.
    bilinear = tmp / "bilinear"
    run([node, os.path.join(ROOT, "dist", "cli", "index.js"), "mvs", clip, "--dump", str(bilinear), "--dense", "1",
         "--composition", "bilinear", "--no-progress"], cwd=ROOT)
    with open(bundle / "arseg.json") as fh:
        manifest = json.load(fh)
    with open(out / "frames.json") as fh:
        dump = json.load(fh)
    return SimpleNamespace(arch=arch, hr=OfficialNetwork(arch, hr), lr=OfficialNetwork(arch, lr), manifest=manifest,
                           out=str(out), frames=dump["frames"], motion_stride=dump["motionStride"],
                           bilinear=str(bilinear / "motion_fields"), export_stderr=export.stderr)


@pytest.fixture(scope="module")
def emulated(e2e, node, clip):
    """The same bundle and clip through the device path, emulated (segment_bundle.js DEVICE)."""
    out = os.path.join(os.path.dirname(e2e.out), "node-emulated")
    run([node, os.path.join(PYTHON_DIR, "tests", "segment_bundle.js"), os.path.join(os.path.dirname(e2e.out), "bundle"),
         clip, out, str(EMULATED_FRAMES), "hr,lr,ar", "cuda-emulated"], cwd=ROOT)
    with open(os.path.join(out, "frames.json")) as fh:
        dump = json.load(fh)
    return SimpleNamespace(out=out, frames=dump["frames"], reason=dump["devicePathReason"])


def load(out, name):
    return np.load(os.path.join(out, f"{name}.npy"))


def per_pixel_flow(field, stride):
    """The reader's cell field (2, gh, gw) as the per-pixel (H, W, 2) float64 field the official
    loaders give (every pixel its cell's displacement)."""
    full = np.repeat(np.repeat(field, stride, axis=1), stride, axis=2)[:, :HEIGHT, :WIDTH]
    return np.ascontiguousarray(full.transpose(1, 2, 0)).astype(np.float64)


def test_conversion_selects_the_official_pipeline(e2e):
    m = e2e.manifest
    assert m["input"]["mean"] == pytest.approx(list(CAMVID_STATS[0]))
    assert m["input"]["std"] == pytest.approx(list(CAMVID_STATS[1]))
    assert m["input"]["lrInput"] == "hr-tensor-align-corners"
    assert m["motion"] == {"composition": "official", "resize": "align-corners"}
    assert m["creff"]["sampling"] == "official"
    assert m["logitsUpsampling"] == {"psp18": "align-corners-via-input", "bise18": "half-pixel-via-stride"}[e2e.arch]
    assert m["networks"]["lrDecoder"] == "lr_decoder.onnx"
    assert "exported as lr_decoder.onnx" in e2e.export_stderr


@pytest.mark.parametrize("mode", ["hr", "lr", "ar"])
def test_pipeline_matches_the_official_evaluation(e2e, mode):
    r = e2e
    mean, std = r.manifest["input"]["mean"], r.manifest["input"]["std"]
    assert [f["index"] for f in r.frames] == list(range(FRAMES))
    assert [f["index"] for f in r.frames if f["isKeyframe"]] == [0, 12]
    worst = scale = 0.0
    differing = pixels = 0
    nudged = 0.0  # robustness: how far the official AR logits move when the motion moves by NUDGE
    top_score = 0.0  # CReFF's largest |attention score|
    with torch.no_grad():
        for f in r.frames:
            i = f["index"]
            rgb = load(r.out, f"rgb-{i}")
            assert rgb.shape == (HEIGHT, WIDTH, 3)
            if mode == "hr" or (mode == "ar" and f["isKeyframe"]):
                labels, logits, _ = eval_const_res(r.hr, rgb, mean, std, 1.0)
                branch = "hr"
            elif mode == "lr":
                labels, logits, image = eval_const_res(r.lr, rgb, mean, std, SCALE)
                # the official LR input itself: 120 x 180, and what the reader made natively
                assert tuple(image.shape[2:]) == (int(HEIGHT * SCALE), int(WIDTH * SCALE))
                got_image = load(r.out, f"lr-{i}")
                assert float(np.abs(got_image - image.numpy()).max()) < 1e-5
                branch = "lr"
            else:
                flow = per_pixel_flow(load(r.out, f"field-{i}"), r.motion_stride)
                ref_rgb = load(r.out, f"rgb-{f['keyframeIndex']}")
                labels, logits, _, score = eval_alter_res(r.hr, r.lr, rgb, ref_rgb, flow, mean, std, SCALE, scores=True)
                _, moved, _ = eval_alter_res(r.hr, r.lr, rgb, ref_rgb, flow + NUDGE, mean, std, SCALE)
                nudged = max(nudged, float((moved - logits).abs().max()))
                top_score = max(top_score, score)
                branch = "ar"
            assert f["branch"][mode] == branch
            got = torch.from_numpy(load(r.out, f"logits-{mode}-{i}"))
            assert tuple(got.shape) == tuple(logits.shape), \
                f"frame {i}: logits {tuple(got.shape)} vs {tuple(logits.shape)}"
            worst = max(worst, float((got - logits).abs().max()))
            scale = max(scale, float(logits.abs().max()))
            got_labels = load(r.out, f"labels-{mode}-{i}")
            assert got_labels.shape == (HEIGHT, WIDTH)
            differing += int((torch.from_numpy(got_labels.astype(np.int64)) != labels).sum())
            pixels += got_labels.size
    share = differing / pixels
    margin = (f", attention scores up to {top_score:.0f}, a {NUDGE:g} px motion nudge moves the official logits by "
              f"{nudged:.2e}, margin {LOGIT_TOLERANCE / max(worst, 1e-12):.0f}x") if mode == "ar" else ""
    print(f"{r.arch} {mode}: max |Node - official| logits {worst:.2e} (logits up to {scale:.2f}), "
          f"labels differing {differing}/{pixels} ({100 * share:.4f}%){margin}")
    assert scale > 1, "logits too small to compare meaningfully"
    assert worst < LOGIT_TOLERANCE, f"{r.arch} {mode}: max |Node - official| = {worst:.2e}"
    assert share <= LABEL_SHARE, f"{r.arch} {mode}: {100 * share:.3f}% of label pixels differ"


def test_the_official_choices_matter(e2e):
    """Each official choice changes the result on this clip, so the test above could fail: the
    project's LR input, motion resize and shared decoder give other logits."""
    r = e2e
    mean, std = r.manifest["input"]["mean"], r.manifest["input"]["std"]
    with torch.no_grad():
        f = next(f for f in r.frames if f["index"] == 11)
        rgb = load(r.out, "rgb-11")
        _, logits, image = eval_const_res(r.lr, rgb, mean, std, SCALE)
        shared = OfficialNetwork(r.arch, r.lr.net)
        saved = r.lr.net.final_conv
        try:
            r.lr.net.final_conv = r.hr.net.final_conv
            _, with_hr_decoder, _ = eval_const_res(shared, rgb, mean, std, SCALE)
        finally:
            r.lr.net.final_conv = saved
        assert float((with_hr_decoder - logits).abs().max()) > 0.1, "the LR network's own decoder makes a difference"
        flow = per_pixel_flow(load(r.out, "field-11"), r.motion_stride)
        assert np.abs(flow).max() > 10, "the clip's motion reaches the keyframe features"
        ref_rgb = load(r.out, f"rgb-{f['keyframeIndex']}")
        _, ar, _ = eval_alter_res(r.hr, r.lr, rgb, ref_rgb, flow, mean, std, SCALE)
        _, still, _ = eval_alter_res(r.hr, r.lr, rgb, ref_rgb, 0 * flow, mean, std, SCALE)
        assert float((ar - still).abs().max()) > 0.05, "the motion changes the fused logits"


def test_official_composition_reaches_the_ar_frames(e2e):
    """The bundle's `motion.composition: 'official'` reaches the reader the pipeline opens: the
    fields hold whole pixels (mergeMotion rounds every step), per pixel (stride 1), and the
    pipeline's AR logits are the official path's on those fields, not on the bilinear
    composition of the same vectors (which the clip's fractional, sheared motion makes differ)."""
    r = e2e
    assert r.motion_stride == 1
    mean, std = r.manifest["input"]["mean"], r.manifest["input"]["std"]
    fractional = 0
    gap = []
    drifts = []
    with torch.no_grad():
        for f in r.frames:
            i = f["index"]
            field = load(r.out, f"field-{i}")
            assert field.shape == (2, HEIGHT, WIDTH)
            assert np.array_equal(field, np.round(field)), f"frame {i}: the official field holds fractions"
            bilinear = np.load(os.path.join(r.bilinear, f"field-{i}.npy"))
            assert bilinear.shape == field.shape
            if f["isKeyframe"]:
                assert not field.any() and not bilinear.any()
                continue
            assert np.abs(field).max() >= 1, f"frame {i}: no motion"
            # the bilinear composition is the same motion, but fractional. mergeMotion rounds
            # every step (up to half a pixel each), so the two part by up to k / 2 px at k
            # frames from the keyframe (inside the frame: at its edges mergeMotion clips
            # positions to the frame, the bilinear composition does not)
            k = i - f["keyframeIndex"]
            inner = (slice(None), slice(32, -32), slice(32, -32))
            drift = float(np.abs(bilinear[inner] - field[inner]).mean())
            assert drift <= 0.5 * k + 0.5, f"frame {i}: the compositions part by {drift:.2f} px"
            drifts.append(f"{k}: {drift:.2f}")
            fractional += int((bilinear != np.round(bilinear)).sum())
            if i in (1, 6, 11):
                ref_rgb = load(r.out, f"rgb-{f['keyframeIndex']}")
                rgb = load(r.out, f"rgb-{i}")
                flow = np.ascontiguousarray(bilinear.transpose(1, 2, 0)).astype(np.float64)
                _, other, _ = eval_alter_res(r.hr, r.lr, rgb, ref_rgb, flow, mean, std, SCALE)
                got = torch.from_numpy(load(r.out, f"logits-ar-{i}"))
                gap.append(float((got - other).abs().max()))
    assert fractional > 0, "the bilinear composition of this clip is fractional"
    print(f"{r.arch}: official vs bilinear composition, mean |difference| px by distance "
          + ", ".join(drifts) + "; AR logits against the official path on bilinear fields: max |difference| "
          + ", ".join(f"{g:.2e}" for g in gap))
    # the pipeline matches the official fields within LOGIT_TOLERANCE (above), and is 10x that
    # far from the bilinear ones: its AR frames were fed the official fields
    assert min(gap) > 10 * LOGIT_TOLERANCE


def upsampled_margins(logits, manifest, height, width):
    """Each frame pixel's margin between its two best classes after the AR frames' resize to the
    frame (the bundle's logitsUpsampling, in float64): BiSeNet18's x8 half-pixel, then
    align-corners; the PSPNets' AR logits straight to the frame, align-corners."""
    x = torch.from_numpy(logits).double()
    if manifest["logitsUpsampling"] == "half-pixel-via-stride":
        stride = manifest["feature"]["stride"]
        x = torch.nn.functional.interpolate(x, size=(x.shape[2] * stride, x.shape[3] * stride), mode="bilinear",
                                            align_corners=False)
    x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=True)
    top2 = torch.topk(x[0], 2, dim=0).values
    return (top2[0] - top2[1]).numpy()


@pytest.mark.parametrize("mode", ["hr", "lr", "ar"])
def test_device_path_matches_the_cpu_path(e2e, emulated, mode):
    """The official pipeline (its LR input, motion composition and resize, the LR network's own
    decoder, the two-step labels) through the emulated device path: HR and LR frames bit for
    bit; AR frames' logits within DEVICE_LOGIT_BOUND and their labels wherever no two classes
    come within twice that."""
    assert emulated.reason is None, emulated.reason
    assert [g["index"] for g in emulated.frames] == list(range(EMULATED_FRAMES))
    worst = 0.0
    near_ties = 0
    for f, g in zip(e2e.frames, emulated.frames):
        i = f["index"]
        assert g["index"] == i and g["branch"][mode] == f["branch"][mode]
        assert g["bus"][mode] is not None and f["bus"][mode] is None, "the device path ran, and only there"
        cpu_logits, dev_logits = load(e2e.out, f"logits-{mode}-{i}"), load(emulated.out, f"logits-{mode}-{i}")
        cpu_labels, dev_labels = load(e2e.out, f"labels-{mode}-{i}"), load(emulated.out, f"labels-{mode}-{i}")
        assert dev_logits.shape == cpu_logits.shape
        if f["branch"][mode] != "ar":
            assert np.array_equal(dev_logits, cpu_logits), f"frame {i}: logits differ"
            assert np.array_equal(dev_labels, cpu_labels), f"frame {i}: labels differ"
            continue
        worst = max(worst, float(np.abs(dev_logits - cpu_logits).max()))
        margins = upsampled_margins(cpu_logits, e2e.manifest, HEIGHT, WIDTH)
        differ = dev_labels != cpu_labels
        assert not (differ & (margins > 2 * DEVICE_LOGIT_BOUND)).any(), f"frame {i}: labels differ away from ties"
        near_ties += int(differ.sum())
    said = f"AR logits at most {worst:.2e} apart, {near_ties} labels differing at near ties" if mode == "ar" \
        else "bit for bit"
    print(f"{e2e.arch} {mode}: the device path against the CPU path: {said}")
    assert worst < DEVICE_LOGIT_BOUND, f"{e2e.arch} {mode}: AR logits {worst:.2e} apart"
