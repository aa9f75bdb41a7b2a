"""`ar-seg eval` reproduces the official AR-Seg evaluation from a converted checkpoint and an
HEVC stream encoded as the official pipeline encodes it (issue 12; docs/conversion.md).

The clip: the sheared scene of test_official_end_to_end.py at 232x152 (LR input 116x76, neither
side a multiple of 16), 24 frames, encoded with x265 as the official pre-processing does: GOP 12
(keyint 12, no scene cuts), no B-frames, 3 references. The networks: the small official-layout
PSPNet18 and BiSeNet18 of test_official_end_to_end.py (random weights, the LR networks with their
own final_conv), converted by `python -m arseg.export` with its defaults. The labels (that every
mode scores in part): the official HR prediction on the left half of each frame, on the right
half the official LR one fused with motion half a pixel off the official field, and bands of
255 and of CamVid's void that move with the scene.

Node: `ar-seg eval VIDEO --labels DIR --model BUNDLE --json` (modes hr, lr, ar; keyframes every
12 frames).

The official side, independently of the pipeline from the decoded frame on: the HEVC vectors
and their references (`ar-seg mvs --dump`, the bitstream's) composed by the transcription of the
official mergeMotion (python/tools/merge_motion_golden.py) per GOP, the frames through the
transcription of the official evaluation path (official_eval.py: EvalConstRes for hr, lr and
the keyframes of ar, EvalAlterRes for the other ar frames), one confusion matrix per mode and
reference distance d, and mIoU_d as `eval` defines it (docs/cli.md: classes with a union, CamVid's
void not scored). Targets: the reader's official field equals mergeMotion's exactly, and every
mIoU_d agrees within 1e-3 (a label pixel in 1000 may differ, as in the end-to-end test).

What `eval` does not reproduce (docs/conversion.md): the official evaluation decodes its frames
with the ffmpeg CLI into PNGs and encodes one clip per labelled frame and distance; the decoded
frame is the common start here.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from arseg.official import official_state_dict
from conftest import PYTHON_DIR, ROOT
from official_eval import OfficialNetwork, eval_alter_res, eval_const_res
from test_official_end_to_end import ARCHS, networks, run, scene_coordinates, scene_frames

sys.path.insert(0, os.path.join(PYTHON_DIR, "tools"))
from merge_motion_golden import flows_from_vectors, merge_motion  # noqa: E402

WIDTH, HEIGHT, FRAMES, GOP = 232, 152, 24, 12
SCALE = 0.5
CLASSES, VOID = 12, 11  # CamVid: 11 classes and void, which the bundle's ignoreIndex names
MIOU_TOLERANCE = 1e-3


def overlay(labels, k):
    """Frame k's labels with bands of 255 and of CamVid's void that move with the scene."""
    u, v = scene_coordinates(WIDTH, HEIGHT, k)
    labels = labels.copy()
    labels[(np.floor(u / 41) + np.floor(v / 37)).astype(np.int64) % 7 == 0] = 255
    labels[(np.floor(u / 53) - np.floor(v / 31)).astype(np.int64) % 9 == 0] = VOID
    return labels


@pytest.fixture(scope="module")
def clip(tmp_path_factory, ffmpeg_clis):
    """video.mp4 (x265 as the official pipeline: keyint 12, no B-frames, 3 references,
    single-threaded)."""
    root = tmp_path_factory.mktemp("hevc-clip")
    frames = scene_frames(WIDTH, HEIGHT, FRAMES)
    video = root / "video.mp4"
    params = "log-level=error:keyint=12:min-keyint=12:scenecut=0:bframes=0:ref=3:pools=none:frame-threads=1"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", "25",
           "-i", "-", "-c:v", "libx265", "-preset", "medium", "-crf", "20", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
           "-x265-params", params, "-fflags", "+bitexact", "-flags:v", "+bitexact", str(video)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    return root


@pytest.fixture(scope="module")
def stream(clip, node):
    """What the bitstream says, read once: frame types, vectors and references (`ar-seg mvs`)."""
    dump = clip / "mvs"
    out = run([node, os.path.join(ROOT, "dist", "cli", "index.js"), "mvs", str(clip / "video.mp4"), "--dump", str(dump),
               "--json", "--no-progress"], cwd=ROOT)
    summary = json.loads(out.stdout)
    types = (dump / "frame_types.txt").read_text().split()
    vectors = [np.load(dump / "motion_vectors" / f"mvs-{i}.npy") for i in range(FRAMES)]
    refs = [np.load(dump / "motion_vectors" / f"refs-{i}.npy") for i in range(FRAMES)]
    return summary, types, vectors, refs


def official_fields(types, vectors, refs):
    """mergeMotion per GOP: frame -> (H, W, 2) float64 pixels to its keyframe, as the official
    loaders give the flow (quarter pixels / 4)."""
    fields = {}
    for start in range(0, FRAMES, GOP):
        assert types[start] == "I"
        flows = {j: flows_from_vectors(vectors[start + j], refs[start + j], HEIGHT, WIDTH)
                 for j in range(1, GOP) if start + j < FRAMES}
        dp = merge_motion(flows, HEIGHT, WIDTH, max_ref_num=3)
        for j in flows:
            fields[start + j] = dp[:, :, j, :].astype(np.float64) / 4
    return fields


def miou(confusion, ignore):
    """eval's mIoU (lib/metrics.ts): IoU per class with a union, the ignored class left out."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    keep = [c for c in range(len(tp)) if c not in ignore and union[c] > 0]
    return float(np.mean(tp[keep] / union[keep]))


@pytest.fixture(scope="module", params=sorted(ARCHS))
def evaluated(request, tmp_path_factory, node, clip, stream):
    arch = request.param
    width = ARCHS[arch]
    tmp = tmp_path_factory.mktemp(f"eval-{arch}")
    hr, lr = networks(arch, width, seed=7)
    torch.save(official_state_dict(hr), tmp / "hr.pth")
    torch.save({"state_dict": official_state_dict(lr), "epoch": 1}, tmp / "lr.pth")
    bundle = tmp / "bundle"
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run([sys.executable, "-m", "arseg.export", "--hr", str(tmp / "hr.pth"), "--lr", str(tmp / "lr.pth"),
         "--arch", arch, "--classes", "camvid", "--out", str(bundle), "--width", str(width)], env=env, cwd=ROOT)
    # the decoded frames and the reader's own official fields (what the pipeline composes)
    frames_dir = tmp / "reader"
    run([node, os.path.join(PYTHON_DIR, "tests", "segment_bundle.js"), str(bundle), str(clip / "video.mp4"),
         str(frames_dir), str(FRAMES), "none"], cwd=ROOT)
    with open(bundle / "arseg.json") as fh:
        manifest = json.load(fh)
    hr, lr = OfficialNetwork(arch, hr), OfficialNetwork(arch, lr)
    # Labels that every mode scores in part, so that a wrong label pixel anywhere shows: the
    # left half the official HR prediction, the right half the official LR prediction with
    # CReFF fed motion half a pixel off the official field (the LR one on keyframes), then bands
    # of 255 and void
    mean, std = manifest["input"]["mean"], manifest["input"]["std"]
    fields = official_fields(*stream[1:])
    labels = tmp / "labels"
    labels.mkdir()
    with torch.no_grad():
        for i in range(FRAMES):
            rgb = np.load(frames_dir / f"rgb-{i}.npy")
            label = eval_const_res(hr, rgb, mean, std, 1.0)[0].numpy().astype(np.uint8)
            if i % GOP:
                key_rgb = np.load(frames_dir / f"rgb-{i - i % GOP}.npy")
                right = eval_alter_res(hr, lr, rgb, key_rgb, fields[i] + 0.5, mean, std, SCALE)[0]
            else:
                right = eval_const_res(lr, rgb, mean, std, SCALE)[0]
            label[:, WIDTH // 2:] = right.numpy()[:, WIDTH // 2:]
            Image.fromarray(overlay(label, i), mode="L").save(labels / f"{i:06d}.png")
    report = json.loads(run([node, os.path.join(ROOT, "dist", "cli", "index.js"), "eval", str(clip / "video.mp4"),
                             "--labels", str(labels), "--model", str(bundle), "--json", "--no-progress"],
                            cwd=ROOT).stdout)
    return arch, hr, lr, manifest, report, frames_dir, labels


def test_the_stream_is_the_official_encoding(stream):
    summary, types, vectors, refs = stream
    assert summary["codec"] == "hevc" and summary["motionExact"]
    assert "".join(types) == ("I" + "P" * (GOP - 1)) * (FRAMES // GOP)
    distances = set(int(d) for r in refs for d in r)
    assert distances <= {1, 2, 3} and {1, 2} <= distances, f"references at {sorted(distances)}"


def test_eval_reproduces_the_official_protocol(evaluated, stream):
    arch, hr, lr, manifest, report, frames_dir, labels = evaluated
    _, types, vectors, refs = stream
    mean, std = manifest["input"]["mean"], manifest["input"]["std"]
    assert manifest["motion"]["composition"] == "official"
    assert report["interval"] == GOP and report["scale"] == SCALE and report["ignore"] == [VOID, 255]
    fields = official_fields(types, vectors, refs)
    # the reader composes exactly as mergeMotion on this stream (the pipeline reads it per pixel)
    for i, flow in fields.items():
        got = np.load(frames_dir / f"field-{i}.npy")
        assert np.array_equal(got.transpose(1, 2, 0), flow), f"frame {i}: the reader's field is not mergeMotion's"
    confusion = {m: np.zeros((GOP, CLASSES, CLASSES), dtype=np.int64) for m in ("hr", "lr", "ar")}
    moved = 0  # AR label pixels that the bilinear composition of the same vectors would change
    with torch.no_grad():
        for i in range(FRAMES):
            d = i % GOP
            rgb = np.load(frames_dir / f"rgb-{i}.npy")
            gt = torch.from_numpy(np.array(Image.open(labels / f"{i:06d}.png")).astype(np.int64))
            keep = (gt != 255) & (gt != VOID)
            preds = {"hr": eval_const_res(hr, rgb, mean, std, 1.0)[0],
                     "lr": eval_const_res(lr, rgb, mean, std, SCALE)[0]}
            if d == 0:
                preds["ar"] = preds["hr"]
            else:
                key_rgb = np.load(frames_dir / f"rgb-{i - d}.npy")
                preds["ar"] = eval_alter_res(hr, lr, rgb, key_rgb, fields[i], mean, std, SCALE)[0]
                if d in (3, 11):
                    off = fields[i] + 0.5  # a field half a pixel off: what rounding loses
                    moved += int((eval_alter_res(hr, lr, rgb, key_rgb, off, mean, std, SCALE)[0] != preds["ar"]).sum())
            for m, p in preds.items():
                confusion[m][d] += torch.bincount(gt[keep] * CLASSES + p[keep], minlength=CLASSES * CLASSES).view(
                    CLASSES, CLASSES).numpy()
    assert moved > 0, "half a pixel of motion changes no AR label: the test could not tell compositions apart"
    worst = 0.0
    for m in ("hr", "lr", "ar"):
        ours = report["modes"][m]
        assert ours["frames"] == [FRAMES // GOP] * GOP
        for d in range(GOP):
            expected = miou(confusion[m][d], ignore={VOID})
            worst = max(worst, abs(ours["perDistance"][d] - expected))
            assert abs(ours["perDistance"][d] - expected) <= MIOU_TOLERANCE, \
                f"{arch} {m} d={d}: eval {ours['perDistance'][d]:.5f}, official {expected:.5f}"
    means = {m: report["modes"][m]["mean"] for m in ("hr", "lr", "ar")}
    print(f"{arch}: eval mIoU hr {means['hr']:.4f} lr {means['lr']:.4f} ar {means['ar']:.4f}; "
          f"largest |eval - official| mIoU_d {worst:.1e}")
    assert len({round(v, 6) for v in means.values()}) == 3, "the modes should score differently"
    assert len(report["classes"]) >= 4 and all(0.05 < v < 0.95 for v in means.values()), "a meaningful score"
