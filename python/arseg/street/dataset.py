"""Clips on disk: encoding with x264, label PNGs, metadata, splits (the layout is fixed)."""
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

from .render import CLASSES, make_scene, render

GENERATOR_VERSION = "1.0.0"
SPLIT_IDS = {"train": 0, "val": 1, "test": 2, "demo": 3}
SPLITS = ("train", "val", "test")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_OUT = os.path.join(REPO, ".data", "street")
DEFAULTS = dict(seed=0, train=48, val=6, test=12, frames=48, width=320, height=240, fps=30, gop=12,
                preset="medium")
FFMPEG = os.environ.get("ARSEG_FFMPEG", "ffmpeg")


def default_kbps(width, height):
    """CamVid's 3 Mbit/s at 960x720 scaled to the frame area (333 kbit/s at 320x240)."""
    return int(round(3000.0 * width * height / (960 * 720)))


def clip_seed(global_seed, split, index):
    """The seed of clip `index` of `split`: a clip regenerates from this number alone."""
    ss = np.random.SeedSequence([int(global_seed), SPLIT_IDS[split], int(index)])
    return int(ss.generate_state(1, np.uint32)[0])


def clip_name(split, index):
    return f"{split}_{index:03d}"


def x264_args(gop, kbps, preset):
    return ["-c:v", "libx264", "-preset", preset, "-b:v", f"{kbps}k", "-maxrate", f"{int(kbps * 1.5)}k",
            "-bufsize", f"{kbps}k", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-bf", "0", "-refs", "1", "-x264-params", "weightp=0:open-gop=0", "-threads", "1",
            "-pix_fmt", "yuv420p"]


def encode(frames, path, width, height, fps, gop=12, kbps=None, preset="medium"):
    """Encodes an iterable of uint8 H x W x 3 RGB frames to H.264 in MP4 at `path`."""
    kbps = kbps or default_kbps(width, height)
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
           "-i", "pipe:0", "-an", *x264_args(gop, kbps, preset),
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
           "-f", "mp4", path]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for f in frames:
            assert f.dtype == np.uint8 and f.shape == (height, width, 3)
            proc.stdin.write(np.ascontiguousarray(f).tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {err.strip()}")


def write_png(path, labels):
    Image.fromarray(np.ascontiguousarray(labels, np.uint8)).save(path, compress_level=6)


def write_clip(out_dir, seed, frames=48, width=320, height=240, fps=30, gop=12, kbps=None,
               preset="medium", extra_meta=None):
    """Renders clip `seed` into out_dir/{video.mp4, labels/NNNNNN.png, meta.json}.

    Written into a temporary sibling directory and renamed into place, so a clip directory
    that exists is complete. Returns (meta, seconds spent rendering).
    """
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p); multiples of 16 recommended")
    kbps = kbps or default_kbps(width, height)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(out_dir) + "-", dir=parent)
    os.chmod(tmp, 0o755)
    try:
        os.makedirs(os.path.join(tmp, "labels"))
        scene = make_scene(seed, frames, fps, width, height)
        counts = np.zeros(256, np.int64)
        render_s = [0.0]

        def frames_iter():
            for i in range(frames):
                t0 = time.process_time()
                rgb, lab = render(scene, i)
                render_s[0] += time.process_time() - t0
                counts[:] += np.bincount(lab.ravel(), minlength=256)
                write_png(os.path.join(tmp, "labels", f"{i:06d}.png"), lab)
                yield rgb

        encode(frames_iter(), os.path.join(tmp, "video.mp4"), width, height, fps, gop, kbps, preset)
        meta = dict(frames=frames, width=width, height=height, fps=fps, seed=int(seed), gop=gop,
                    kbps=kbps, generator=GENERATOR_VERSION,
                    class_pixels={CLASSES[c]: int(counts[c]) for c in range(len(CLASSES))})
        if extra_meta:
            meta.update(extra_meta)
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump(meta, fh, indent=1)
            fh.write("\n")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta, render_s[0]


def _job(args):
    out_dir, seed, cfg, extra = args
    t0 = time.time()
    meta, rs = write_clip(out_dir, seed, cfg["frames"], cfg["width"], cfg["height"], cfg["fps"],
                          cfg["gop"], cfg["kbps"], cfg["preset"], extra)
    return out_dir, meta, rs, time.time() - t0


def _complete(clip_dir, seed, cfg):
    try:
        with open(os.path.join(clip_dir, "meta.json")) as fh:
            m = json.load(fh)
    except (OSError, ValueError):
        return None
    same = (m.get("seed") == seed and m.get("generator") == GENERATOR_VERSION and
            all(m.get(k) == cfg[k] for k in ("frames", "width", "height", "fps", "gop", "kbps")))
    return m if same and os.path.exists(os.path.join(clip_dir, "video.mp4")) else None


def generate(out=DEFAULT_OUT, seed=0, train=48, val=6, test=12, frames=48, width=320, height=240,
             fps=30, gop=12, kbps=None, preset="medium", jobs=1, force=False, log=print):
    """Writes the whole dataset (clips that are already complete and identical are kept)."""
    kbps = kbps or default_kbps(width, height)
    cfg = dict(frames=frames, width=width, height=height, fps=fps, gop=gop, kbps=kbps, preset=preset)
    counts = dict(train=train, val=val, test=test)
    os.makedirs(out, exist_ok=True)
    todo, metas, names = [], {}, {}
    for split in SPLITS:
        names[split] = [clip_name(split, i) for i in range(counts[split])]
        for i, name in enumerate(names[split]):
            d = os.path.join(out, split, name)
            s = clip_seed(seed, split, i)
            m = None if force else _complete(d, s, cfg)
            if m is not None:
                metas[(split, name)] = m
            else:
                todo.append((d, s, cfg, dict(split=split, index=i, name=name)))
    log(f"street: {sum(counts.values())} clips in {out}, {len(todo)} to render ({jobs} job(s))")
    t0 = time.time()
    render_s, render_frames = 0.0, 0
    if todo:
        if jobs > 1:
            import multiprocessing as mp
            with mp.get_context("fork").Pool(jobs) as pool:
                results = pool.imap_unordered(_job, todo)
                for n, (d, m, rs, wall) in enumerate(results, 1):
                    metas[(m["split"], m["name"])] = m
                    render_s, render_frames = render_s + rs, render_frames + m["frames"]
                    log(f"  [{n}/{len(todo)}] {d}  {wall:.1f} s")
        else:
            for n, job in enumerate(todo, 1):
                d, m, rs, wall = _job(job)
                metas[(m["split"], m["name"])] = m
                render_s, render_frames = render_s + rs, render_frames + m["frames"]
                log(f"  [{n}/{len(todo)}] {d}  {wall:.1f} s")
    splits = {k: names[k] for k in SPLITS}
    splits.update(width=width, height=height, fps=fps, gop=gop, frames=frames, classes=CLASSES,
                  ignore_index=255,
                  generator=dict(version=GENERATOR_VERSION, seed=seed,
                                 params=dict(counts=counts, kbps=kbps, codec="h264 (libx264)",
                                             x264=" ".join(x264_args(gop, kbps, preset)),
                                             clip_seed="SeedSequence([seed, split_id, index]), "
                                                       "split_id train 0, val 1, test 2, demo 3")))
    _write_json(os.path.join(out, "splits.json"), splits)
    stats = {}
    for split in SPLITS:
        tot = np.zeros(len(CLASSES), np.int64)
        for name in names[split]:
            cp = metas[(split, name)]["class_pixels"]
            tot += np.array([cp[c] for c in CLASSES], np.int64)
        stats[split] = {c: round(float(v) / max(1, tot.sum()), 5) for c, v in zip(CLASSES, tot)}
    _write_json(os.path.join(out, "stats.json"), dict(class_share=stats))
    if render_frames:
        log(f"street: rendered {render_frames} frames, {1000 * render_s / render_frames:.1f} ms CPU "
            f"per frame; total {time.time() - t0:.0f} s")
    return splits, stats


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m arseg.street",
                                 description="Synthetic street dataset (see arseg/street/__init__.py).")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--frames", type=int, default=DEFAULTS["frames"])
        p.add_argument("--width", type=int, default=DEFAULTS["width"])
        p.add_argument("--height", type=int, default=DEFAULTS["height"])
        p.add_argument("--fps", type=int, default=DEFAULTS["fps"])
        p.add_argument("--gop", type=int, default=DEFAULTS["gop"])
        p.add_argument("--kbps", type=int, default=None,
                       help="video bitrate; default 3000 * W*H / (960*720) (333 at 320x240)")
        p.add_argument("--preset", default=DEFAULTS["preset"], help="x264 preset")

    g = sub.add_parser("generate", help="the train/val/test dataset")
    g.add_argument("--out", default=DEFAULT_OUT)
    g.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    for s in SPLITS:
        g.add_argument(f"--{s}", type=int, default=DEFAULTS[s], help=f"clips in {s}")
    g.add_argument("--jobs", type=int, default=1)
    g.add_argument("--force", action="store_true", help="re-render clips that are already complete")
    common(g)

    c = sub.add_parser("clip", help="one clip, from a seed or from (seed, split, index)")
    c.add_argument("--out", required=True)
    c.add_argument("--clip-seed", type=int, help="the clip's own seed (meta.json's seed)")
    c.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="global seed")
    c.add_argument("--split", choices=sorted(SPLIT_IDS), default="demo")
    c.add_argument("--index", type=int, default=0)
    common(c)

    a = ap.parse_args(argv)
    if a.cmd == "generate":
        generate(a.out, a.seed, a.train, a.val, a.test, a.frames, a.width, a.height, a.fps, a.gop,
                 a.kbps, a.preset, a.jobs, a.force)
    else:
        s = a.clip_seed if a.clip_seed is not None else clip_seed(a.seed, a.split, a.index)
        extra = None if a.clip_seed is not None else dict(split=a.split, index=a.index,
                                                          name=clip_name(a.split, a.index))
        meta, rs = write_clip(a.out, s, a.frames, a.width, a.height, a.fps, a.gop, a.kbps, a.preset, extra)
        print(f"street: {a.out} (seed {s}), {1000 * rs / meta['frames']:.1f} ms CPU per frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
