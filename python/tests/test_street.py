"""The synthetic street dataset generator (python/arseg/street): determinism, classes, layout, GOP."""
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from arseg.street import CLASSES, clip_seed, generate, make_scene, render, write_clip

pytestmark = pytest.mark.usefixtures("ffmpeg_clis")

SMALL = dict(frames=26, width=96, height=64, fps=30, gop=12)


def pict_types(video):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pict_type", "-of", "default=nw=1:nk=1", video],
                         check=True, capture_output=True, text=True).stdout
    return [t for t in out.split() if t]


def decoded_frames(video, width, height):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def read_labels(clip_dir, frames):
    return np.stack([np.array(Image.open(os.path.join(clip_dir, "labels", f"{i:06d}.png")))
                     for i in range(frames)])


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("street") / "clip")
    write_clip(d, 1234, **SMALL)
    return d


def test_clip_layout_and_sizes(small_clip):
    with open(os.path.join(small_clip, "meta.json")) as fh:
        meta = json.load(fh)
    for k in ("frames", "width", "height", "fps", "seed"):
        assert k in meta
    assert (meta["frames"], meta["width"], meta["height"], meta["fps"], meta["seed"]) == \
        (SMALL["frames"], SMALL["width"], SMALL["height"], SMALL["fps"], 1234)
    names = sorted(os.listdir(os.path.join(small_clip, "labels")))
    assert names == [f"{i:06d}.png" for i in range(SMALL["frames"])]
    for n in names:
        im = Image.open(os.path.join(small_clip, "labels", n))
        assert im.mode == "L" and im.size == (SMALL["width"], SMALL["height"])
    labels = read_labels(small_clip, SMALL["frames"])
    assert labels.max() < len(CLASSES)          # exact labels: no ignore pixels
    frames = decoded_frames(os.path.join(small_clip, "video.mp4"), SMALL["width"], SMALL["height"])
    assert frames.shape[0] == SMALL["frames"]
    assert sum(meta["class_pixels"].values()) == labels.size


def test_gop_is_12_without_b_frames(small_clip):
    types = pict_types(os.path.join(small_clip, "video.mp4"))
    assert len(types) == SMALL["frames"]
    assert types == ["I" if i % 12 == 0 else "P" for i in range(SMALL["frames"])]


def test_deterministic(small_clip, tmp_path):
    again = str(tmp_path / "again")
    write_clip(again, 1234, **SMALL)
    assert np.array_equal(read_labels(small_clip, SMALL["frames"]), read_labels(again, SMALL["frames"]))
    for name in ("video.mp4", "meta.json"):
        with open(os.path.join(small_clip, name), "rb") as a, open(os.path.join(again, name), "rb") as b:
            assert a.read() == b.read(), name
    # raw frames and labels straight from the renderer, from two independent scenes
    s1 = make_scene(99, 12, 30, 96, 64)
    s2 = make_scene(99, 12, 30, 96, 64)
    for i in (0, 5, 11):
        (r1, l1), (r2, l2) = render(s1, i), render(s2, i)
        assert np.array_equal(r1, r2) and np.array_equal(l1, l2)
    # and a different seed gives a different clip
    r3, _ = render(make_scene(100, 12, 30, 96, 64), 5)
    assert not np.array_equal(r3, render(s1, 5)[0])


def test_every_class_in_a_typical_clip():
    for split, index in (("test", 0), ("train", 7)):
        scene = make_scene(clip_seed(0, split, index))     # default 320x240, 48 frames
        seen = np.zeros(256, np.int64)
        for i in range(0, scene.frames, 4):
            rgb, lab = render(scene, i)
            assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
            assert lab.shape == (240, 320) and lab.dtype == np.uint8
            seen += np.bincount(lab.ravel(), minlength=256)
        missing = [CLASSES[c] for c in range(len(CLASSES)) if seen[c] == 0]
        assert not missing, f"{split} {index}: {missing}"
        assert seen[len(CLASSES):].sum() == 0


def test_objects_move_on_their_own():
    # a camera standing still still sees moving pedestrians, bicyclists and cars
    scene = make_scene(clip_seed(0, "test", 0), 12, 30, 160, 120)
    scene.speed, scene.pan_amp, scene.pan_rate, scene.drift_amp, scene.bob = 0.0, 0.0, 0.0, 0.0, 0.0
    _, l0 = render(scene, 0)
    _, l1 = render(scene, 11)
    moved = l0 != l1
    assert moved.any()
    assert set(np.unique(l0[moved]).tolist()) & {8, 9, 10}


def test_seeds_and_dataset_layout(tmp_path):
    seeds = {clip_seed(0, s, i) for s in ("train", "val", "test") for i in range(64)}
    assert len(seeds) == 3 * 64 and clip_seed(0, "demo", 0) not in seeds
    assert clip_seed(0, "test", 3) == clip_seed(0, "test", 3) != clip_seed(1, "test", 3)
    out = str(tmp_path / "ds")
    splits, stats = generate(out, seed=5, train=2, val=1, test=1, frames=12, width=64, height=48,
                             log=lambda *a: None)
    with open(os.path.join(out, "splits.json")) as fh:
        on_disk = json.load(fh)
    assert on_disk["train"] == ["train_000", "train_001"] and on_disk["val"] == ["val_000"]
    assert on_disk["test"] == ["test_000"]
    assert (on_disk["width"], on_disk["height"], on_disk["fps"], on_disk["gop"]) == (64, 48, 30, 12)
    assert on_disk["classes"] == CLASSES and len(CLASSES) == 11
    assert on_disk["generator"]["seed"] == 5 and "version" in on_disk["generator"]
    with open(os.path.join(out, "test", "test_000", "meta.json")) as fh:
        assert json.load(fh)["seed"] == clip_seed(5, "test", 0)
    assert abs(sum(stats["train"].values()) - 1) < 1e-3
    # a second run keeps the complete clips
    mtime = os.path.getmtime(os.path.join(out, "val", "val_000", "video.mp4"))
    generate(out, seed=5, train=2, val=1, test=1, frames=12, width=64, height=48, log=lambda *a: None)
    assert os.path.getmtime(os.path.join(out, "val", "val_000", "video.mp4")) == mtime
