"""The street dataset as training reads it: decoded compressed frames, labels, motion fields.

Layout (python/arseg/street*, fixed):
    DATASET/splits.json   {"train": [...], "val": [...], "test": [...], "width", "height", "fps",
                           "gop", "classes": [11 names], ...}
    DATASET/<split>/<clip>/video.mp4          H.264, GOP `gop` from frame 0, no B-frames
    DATASET/<split>/<clip>/labels/NNNNNN.png  8-bit class indices, 255 = ignore

Training sees exactly what the Node pipeline feeds the networks (native/video/frame_converter.cc):
the decoded frames converted by swscale, at full size with SWS_POINT|SWS_ACCURATE_RND, at the LR
size straight from YUV with SWS_BILINEAR; the ffmpeg CLI runs the same swscale conversions.
Motion fields are `ar-seg mvs --dense 1 --keyframes gop`'s fields accumulated to the GOP's
I-frame: frame t at p matches its keyframe at p + M_t(p), in pixels.

Everything decoded is cached once per clip as .npy under CACHE/<split>/<clip>/ (written to a
temporary name and renamed, so concurrent readers never see half a file):
    hr.npy      uint8  N x H x W x 3
    lr-<w>x<h>.npy uint8 N x h x w x 3
    labels.npy  uint8  N x H x W
    motion.npy  float16 N x 2 x H x W (zero on keyframes)
    types.txt   picture types, one a line
"""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# ARSEG_MVS_CLI: another built package's CLI (e.g. a checkout whose dist/ is built while this one's is not)
MVS_CLI = os.environ.get("ARSEG_MVS_CLI") or os.path.join(REPO, "dist", "cli", "index.js")


class DatasetError(Exception):
    pass


def scaled_size(width, height, scale, multiple=8):
    """The pipeline's tensor size for a scale: each side times scale, rounded to the nearest
    multiple, at least one multiple (lib/frame.ts)."""
    fit = lambda n: max(multiple, int(round(n * scale / multiple)) * multiple)  # noqa: E731
    return fit(width), fit(height)


def _save_atomic(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def decode_rgb(video, width, height, resize=False):
    """All frames of `video` as uint8 N x height x width x 3, converted as the native reader does."""
    if resize:
        vf = ["-vf", f"scale={width}:{height}:flags=bilinear,format=rgb24"]
    else:
        vf = ["-sws_flags", "neighbor+accurate_rnd"]
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-i", video, *vf,
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    frame = width * height * 3
    if len(raw) % frame:
        raise DatasetError(f"{video}: decoded {len(raw)} bytes, not a whole number of {width}x{height} frames")
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).copy()


def motion_fields(video, frames, width, height, node="node"):
    """Runs `ar-seg mvs VIDEO --dump DIR --dense 1 --keyframes gop`: float16 N x 2 x H x W, and the
    picture types."""
    if not os.path.exists(MVS_CLI):
        raise DatasetError(f"{MVS_CLI} is missing: build the package (npm run build) to extract motion fields")
    tmp = tempfile.mkdtemp(prefix="arseg-mvs-")
    try:
        subprocess.run([node, MVS_CLI, "mvs", video, "--dump", tmp, "--dense", "1", "--keyframes", "gop",
                        "--no-progress", "--json"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(tmp, "frame_types.txt")) as fh:
            types = fh.read().split()
        if len(types) != frames:
            raise DatasetError(f"{video}: mvs saw {len(types)} frames, the decoder {frames}")
        out = np.empty((frames, 2, height, width), np.float16)
        for i in range(frames):
            field = np.load(os.path.join(tmp, "motion_fields", f"field-{i}.npy"))
            if field.shape != (2, height, width):
                raise DatasetError(f"{video}: field-{i}.npy has shape {field.shape}, expected {(2, height, width)}")
            out[i] = field
        return out, types
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Clip:
    """One clip's cached arrays (memory-mapped)."""

    def __init__(self, dataset, split, name):
        self.dataset, self.split, self.name = dataset, split, name
        self.dir = os.path.join(dataset.root, split, name)
        self.cache = os.path.join(dataset.cache, split, name)
        self.width, self.height = dataset.width, dataset.height

    def _cached(self, fname, make):
        path = os.path.join(self.cache, fname)
        if not os.path.exists(path):
            _save_atomic(path, make())
        return np.load(path, mmap_mode="r")

    def hr(self):
        return self._cached("hr.npy", lambda: decode_rgb(os.path.join(self.dir, "video.mp4"), self.width, self.height))

    def lr(self, scale):
        w, h = scaled_size(self.width, self.height, scale)
        return self._cached(f"lr-{w}x{h}.npy",
                            lambda: decode_rgb(os.path.join(self.dir, "video.mp4"), w, h, resize=True))

    def labels(self):
        def make():
            n = self.hr().shape[0]
            out = np.empty((n, self.height, self.width), np.uint8)
            for i in range(n):
                path = os.path.join(self.dir, "labels", f"{i:06d}.png")
                if not os.path.exists(path):
                    raise DatasetError(f"{path} is missing")
                img = Image.open(path)
                if img.mode not in ("L", "P"):
                    raise DatasetError(f"{path}: expected 8-bit class indices, got mode {img.mode}")
                a = np.asarray(img)
                if a.shape != (self.height, self.width):
                    raise DatasetError(f"{path}: size {a.shape[::-1]}, expected {(self.width, self.height)}")
                out[i] = a
            return out
        return self._cached("labels.npy", make)

    def motion(self):
        path = os.path.join(self.cache, "motion.npy")
        if not os.path.exists(path):
            video = os.path.join(self.dir, "video.mp4")
            fields, types = motion_fields(video, self.hr().shape[0], self.width, self.height)
            gop = self.dataset.gop
            wrong = [i for i, t in enumerate(types) if (t == "I") != (i % gop == 0)]
            if wrong:
                raise DatasetError(
                    f"{self.dir}: I-frames must be exactly every {gop} frames from 0; frames {wrong[:5]} disagree"
                )
            with open(os.path.join(self.cache, "types.txt"), "w") as fh:
                fh.write("\n".join(types) + "\n")
            _save_atomic(path, fields)
        return np.load(path, mmap_mode="r")

    def frames(self):
        return self.hr().shape[0]


class Dataset:
    def __init__(self, root, cache):
        self.root, self.cache = root, cache
        path = os.path.join(root, "splits.json")
        if not os.path.exists(path):
            raise DatasetError(f"{path} is missing: not a dataset")
        with open(path) as fh:
            self.splits = json.load(fh)
        for key in ("train", "val", "width", "height", "gop", "classes"):
            if key not in self.splits:
                raise DatasetError(f"{path}: no '{key}'")
        self.width, self.height, self.gop = self.splits["width"], self.splits["height"], self.splits["gop"]
        self.classes = list(self.splits["classes"])

    def clips(self, split):
        return [Clip(self, split, name) for name in self.splits.get(split, [])]

    def prepare(self, split, scale, motion=False, log=print):
        """Decodes (and extracts motion for) every clip of a split once; later calls read the cache."""
        clips = self.clips(split)
        for i, clip in enumerate(clips):
            clip.hr(), clip.lr(scale), clip.labels()
            if motion:
                clip.motion()
            if log and (i + 1) % 10 == 0:
                log(f"  cached {i + 1}/{len(clips)} {split} clips")
        return clips
