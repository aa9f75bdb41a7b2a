"""The same rendered street frames encoded in several configurations, to compare the motion each
one gives AR-Seg (bench/motion-configs.js, BENCHMARKS.md "End to end: encoder configurations").

Rendering is the slow part (numpy, tens of ms per frame), so it is done once and kept raw; every
configuration then encodes the same frames at the same bitrate and GOP:

    python3 -m arseg.street.variants render [--out .data/street-frames] [--split test] [--seed 0]
        [--clips 12 --frames 48 --width 320 --height 240 --fps 30]
    python3 -m arseg.street.variants encode [--frames-dir .data/street-frames]
        [--out .data/street-variants] [--configs h264-1ref,h264-x264-defaults,...] [--kbps N]
        [--passes 2]

`render` writes, per clip of the split, frames.rgb (raw uint8, frames x height x width x 3),
labels/ and meta.json: the same seeds, frames and labels as `python3 -m arseg.street generate`
(clip i of the split has seed SeedSequence([seed, split id, i])). `encode` writes one dataset
per configuration, <out>/<config>/ in the layout `ar-seg eval` reads: splits.json, and per clip
video.mp4, meta.json and labels/ (a symbolic link to the rendered clip's labels).

Configurations (CONFIGS): every one at CamVid's 3 Mbit/s scaled to the frame area (333 kbit/s
at 320x240, the dataset's default; maxrate 1.5x, a one-second VBV buffer) and GOP 12 from frame
0 (closed GOPs, no scene-cut keyframes), one encoder thread so the bytes repeat, two passes each
(in one pass the encoders miss the rate by up to 8% on these short clips, x264 and x265 in
opposite directions, and libvpx by 20-35%; the HR-LR gap, and so AR's share of it, moves with
the rate):
  h264-1ref           the dataset's own encode (x264 medium, no B-frames, 1 reference, weightp 0)
  h264-x264-defaults  x264 medium's defaults: 3 references, 3 B-frames, B-pyramid, weightp 2
  h264-4ref           as h264-1ref with 4 references
  hevc-x265-defaults  x265 medium's defaults: 3 references, 4 B-frames, B-pyramid
  vp9                 libvpx-vp9 (good, cpu-used 2): no motion vectors in the bitstream, so
                      the reader estimates the motion (native/motion/estimator.h)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from .dataset import DEFAULTS, FFMPEG, GENERATOR_VERSION, _write_json, clip_name, clip_seed, \
    default_kbps, x264_args
from .render import CLASSES, make_scene, render

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FRAMES_DIR = os.path.join(REPO, ".data", "street-frames")
VARIANTS_DIR = os.path.join(REPO, ".data", "street-variants")


def _vbv(kbps):
    return ["-b:v", f"{kbps}k", "-maxrate", f"{int(kbps * 1.5)}k", "-bufsize", f"{kbps}k"]


def _gop(gop):
    return ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]


def config_args(name, gop, kbps):
    """ffmpeg output arguments of configuration `name` (see the module docstring)."""
    if name == "h264-1ref":
        return x264_args(gop, kbps, "medium")
    if name == "h264-4ref":
        args = x264_args(gop, kbps, "medium")
        args[args.index("-refs") + 1] = "4"
        return args
    if name == "h264-x264-defaults":
        # Only the rate, the GOP (closed, every `gop` frames) and the thread count are set.
        return ["-c:v", "libx264", "-preset", "medium", *_vbv(kbps), *_gop(gop),
                "-x264-params", "open-gop=0", "-threads", "1", "-pix_fmt", "yuv420p"]
    if name == "hevc-x265-defaults":
        params = (f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:vbv-maxrate={int(kbps * 1.5)}:"
                  f"vbv-bufsize={kbps}:pools=none:frame-threads=1:log-level=error")
        return ["-c:v", "libx265", "-preset", "medium", "-b:v", f"{kbps}k", "-x265-params", params,
                "-tag:v", "hvc1", "-pix_fmt", "yuv420p"]
    if name == "vp9":
        return ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "2", *_vbv(kbps),
                "-g", str(gop), "-keyint_min", str(gop), "-threads", "1", "-row-mt", "0",
                "-pix_fmt", "yuv420p"]
    raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")


CONFIGS = ("h264-1ref", "h264-x264-defaults", "h264-4ref", "hevc-x265-defaults", "vp9")


def _pass_args(args, n, log_file):
    """`args` for pass n of 2. ffmpeg's -pass reaches x264 and libvpx; libx265 takes its pass and
    statistics file through -x265-params."""
    if "libx265" in args:
        out = list(args)
        i = out.index("-x265-params") + 1
        out[i] = f"{out[i]}:pass={n}:stats={log_file}"
        return out
    return [*args, "-pass", str(n), "-passlogfile", log_file]


def render_split(out=FRAMES_DIR, split="test", seed=0, clips=12, frames=48, width=320, height=240,
                 fps=30, log=print):
    """Renders the split's clips once: frames.rgb, labels/, meta.json per clip (kept if complete)."""
    os.makedirs(out, exist_ok=True)
    names = []
    for i in range(clips):
        name = clip_name(split, i)
        names.append(name)
        d = os.path.join(out, split, name)
        s = clip_seed(seed, split, i)
        meta_path = os.path.join(d, "meta.json")
        if os.path.exists(meta_path):
            with open(meta_path) as fh:
                m = json.load(fh)
            if (m.get("seed"), m.get("frames"), m.get("width"), m.get("height"), m.get("generator")) == \
                    (s, frames, width, height, GENERATOR_VERSION):
                continue
        t0 = time.time()
        parent = os.path.dirname(d)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-" + name + "-", dir=parent)
        try:
            os.makedirs(os.path.join(tmp, "labels"))
            scene = make_scene(s, frames, fps, width, height)
            counts = np.zeros(256, np.int64)
            with open(os.path.join(tmp, "frames.rgb"), "wb") as fh:
                for f in range(frames):
                    rgb, lab = render(scene, f)
                    counts += np.bincount(lab.ravel(), minlength=256)
                    fh.write(np.ascontiguousarray(rgb, np.uint8).tobytes())
                    Image.fromarray(np.ascontiguousarray(lab, np.uint8)).save(
                        os.path.join(tmp, "labels", f"{f:06d}.png"), compress_level=6)
            _write_json(os.path.join(tmp, "meta.json"), dict(
                frames=frames, width=width, height=height, fps=fps, seed=int(s), gop=None,
                generator=GENERATOR_VERSION, split=split, index=i, name=name,
                class_pixels={CLASSES[c]: int(counts[c]) for c in range(len(CLASSES))}))
            if os.path.exists(d):
                shutil.rmtree(d)
            os.replace(tmp, d)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f"  rendered {d} ({time.time() - t0:.1f} s)")
    _write_json(os.path.join(out, "frames.json"), dict(split=split, clips=names, seed=seed, frames=frames,
                                                       width=width, height=height, fps=fps))
    return names


def encode_variant(frames_dir, out, config, gop=12, kbps=None, passes=2, log=print):
    """Encodes every rendered clip of `frames_dir` in `config` into the dataset <out>/<config>.
    passes: 2 (the comparison's rate control), or 1 (h264-1ref is then byte for byte the street
    dataset's own encode of the clip)."""
    if passes not in (1, 2):
        raise ValueError(f"passes must be 1 or 2, not {passes!r}")
    with open(os.path.join(frames_dir, "frames.json")) as fh:
        info = json.load(fh)
    split, width, height, fps = info["split"], info["width"], info["height"], info["fps"]
    kbps = kbps or default_kbps(width, height)
    args = config_args(config, gop, kbps)
    root = os.path.join(out, config)
    for name in info["clips"]:
        src = os.path.join(frames_dir, split, name)
        dst = os.path.join(root, split, name)
        os.makedirs(dst, exist_ok=True)
        video = os.path.join(dst, "video.mp4")
        tmp = video + ".tmp.mp4"
        head = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
                "-i", os.path.join(src, "frames.rgb"), "-an"]
        tail = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", "-f", "mp4", tmp]
        with tempfile.TemporaryDirectory() as scratch:
            log_file = os.path.join(scratch, "pass")
            if passes == 2:
                commands = [head + _pass_args(args, 1, log_file) + ["-f", "null", os.devnull],
                            head + _pass_args(args, 2, log_file) + tail]
            else:
                commands = [head + args + tail]
            for cmd in commands:
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"{config}: ffmpeg failed on {name}: {proc.stderr.strip()}")
        os.replace(tmp, video)
        labels = os.path.join(dst, "labels")
        if not os.path.islink(labels):
            if os.path.exists(labels):
                shutil.rmtree(labels)
            os.symlink(os.path.relpath(os.path.join(src, "labels"), dst), labels)
        with open(os.path.join(src, "meta.json")) as fh:
            meta = json.load(fh)
        meta.update(gop=gop, kbps=kbps, passes=passes, config=config, encoder=" ".join(args))
        _write_json(os.path.join(dst, "meta.json"), meta)
    splits = {s: (info["clips"] if s == split else []) for s in ("train", "val", "test")}
    params = dict(config=config, kbps=kbps, passes=passes, encoder=" ".join(args))
    splits.update(width=width, height=height, fps=fps, gop=gop, frames=info["frames"], classes=CLASSES,
                  ignore_index=255, generator=dict(version=GENERATOR_VERSION, seed=info["seed"], params=params))
    _write_json(os.path.join(root, "splits.json"), splits)
    log(f"  {config}: {len(info['clips'])} clips in {root}")
    return root


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m arseg.street.variants",
                                 description="Street frames rendered once, encoded in several configurations.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="render a split's clips to raw frames and labels")
    r.add_argument("--out", default=FRAMES_DIR)
    r.add_argument("--split", default="test", choices=("train", "val", "test", "demo"))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--clips", type=int, default=12)
    for k in ("frames", "width", "height", "fps"):
        r.add_argument(f"--{k}", type=int, default=DEFAULTS[k])
    e = sub.add_parser("encode", help="encode the rendered clips in each configuration")
    e.add_argument("--frames-dir", default=FRAMES_DIR)
    e.add_argument("--out", default=VARIANTS_DIR)
    e.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of: {', '.join(CONFIGS)}")
    e.add_argument("--gop", type=int, default=12)
    e.add_argument("--kbps", type=int, default=None, help="default: 3000 * W*H / (960*720)")
    e.add_argument("--passes", type=int, default=2, choices=(1, 2), help="rate control passes (default 2)")
    a = ap.parse_args(argv)
    if a.cmd == "render":
        render_split(a.out, a.split, a.seed, a.clips, a.frames, a.width, a.height, a.fps)
    else:
        for config in a.configs.split(","):
            encode_variant(a.frames_dir, a.out, config.strip(), a.gop, a.kbps, a.passes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
