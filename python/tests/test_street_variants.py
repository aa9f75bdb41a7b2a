"""python/arseg/street/variants.py: frames rendered once, encoded per configuration."""
import json
import os
import subprocess

import numpy as np
import pytest

from arseg.street import clip_seed, default_kbps, write_clip
from arseg.street.variants import CONFIGS, config_args, encode_variant, render_split

# scripts/setup.sh installs the ffmpeg CLIs: a machine without them fails (conftest.ffmpeg_clis)
pytestmark = pytest.mark.usefixtures("ffmpeg_clis")

SMALL = dict(clips=2, frames=14, width=96, height=64, fps=30)


def pict_types(video):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pict_type", "-of", "default=nw=1:nk=1", video],
                         check=True, capture_output=True, text=True).stdout
    return "".join(t for t in out.split() if t)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    frames = str(root / "frames")
    render_split(frames, "test", 0, log=lambda *_: None, **SMALL)
    return root, frames


def test_render_layout_and_reuse(rendered):
    root, frames = rendered
    info = json.load(open(os.path.join(frames, "frames.json")))
    assert info["clips"] == ["test_000", "test_001"]
    clip = os.path.join(frames, "test", "test_000")
    raw = np.fromfile(os.path.join(clip, "frames.rgb"), np.uint8)
    assert raw.size == SMALL["frames"] * SMALL["height"] * SMALL["width"] * 3
    assert len(os.listdir(os.path.join(clip, "labels"))) == SMALL["frames"]
    assert json.load(open(os.path.join(clip, "meta.json")))["seed"] == clip_seed(0, "test", 0)
    # A complete clip is kept, not rendered again.
    before = os.stat(os.path.join(clip, "frames.rgb")).st_mtime_ns
    render_split(frames, "test", 0, log=lambda *_: None, **SMALL)
    assert os.stat(os.path.join(clip, "frames.rgb")).st_mtime_ns == before


def test_h264_1ref_is_the_datasets_own_encode(rendered):
    root, frames = rendered
    # one pass, as the dataset encodes: the rendered frames are then the dataset's, byte for byte
    out = encode_variant(frames, str(root / "out"), "h264-1ref", passes=1, log=lambda *_: None)
    reference = str(root / "reference")
    write_clip(reference, clip_seed(0, "test", 1), frames=SMALL["frames"], width=SMALL["width"],
               height=SMALL["height"], fps=SMALL["fps"])
    with open(os.path.join(out, "test", "test_001", "video.mp4"), "rb") as a, \
            open(os.path.join(reference, "video.mp4"), "rb") as b:
        assert a.read() == b.read()
    splits = json.load(open(os.path.join(out, "splits.json")))
    assert splits["test"] == ["test_000", "test_001"] and splits["train"] == [] and splits["gop"] == 12
    labels = os.path.join(out, "test", "test_001", "labels")
    assert os.path.islink(labels)
    assert sorted(os.listdir(labels)) == sorted(os.listdir(os.path.join(reference, "labels")))


@pytest.mark.parametrize("config", CONFIGS)
def test_every_configuration_keeps_frames_and_gop(rendered, config):
    root, frames = rendered
    out = encode_variant(frames, str(root / "out"), config, log=lambda *_: None)
    types = pict_types(os.path.join(out, "test", "test_000", "video.mp4"))
    assert len(types) == SMALL["frames"]
    assert types[0] == "I" and types[12] == "I", types
    if config in ("h264-x264-defaults", "hevc-x265-defaults"):
        assert "B" in types  # the defaults use B-frames
    meta = json.load(open(os.path.join(out, "test", "test_000", "meta.json")))
    assert meta["config"] == config and meta["kbps"] == default_kbps(96, 64) and meta["passes"] == 2


def test_unknown_configuration():
    with pytest.raises(ValueError, match="unknown configuration"):
        config_args("h266", 12, 333)


def test_passes_are_one_or_two(rendered):
    root, frames = rendered
    with pytest.raises(ValueError, match="passes must be 1 or 2"):
        encode_variant(frames, str(root / "out"), "h264-1ref", passes=3, log=lambda *_: None)
