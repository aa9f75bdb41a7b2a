"""A tiny stand-in for the street dataset, in the same layout, for the training tests.

    make_toy_dataset(root, width=64, height=48, frames=24, clips=(2, 1, 1))

writes root/splits.json and root/<split>/<clip>/{video.mp4, labels/NNNNNN.png, meta.json}:
a textured canvas (sky band, buildings, road) panned by the camera, thin poles on it, and a
"car" box moving on its own; labels are exact (CamVid's 11 class indices, 255 along the
horizon line as an ignore band). Encoded like the real dataset: H.264 by x264, GOP 12 starting
at frame 0, no B-frames, one reference. Deterministic for a seed (the pixels; x264's output is
deterministic for the same build and settings).
"""
import json
import os
import subprocess

import numpy as np
from PIL import Image

CLASSES = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"]
COLOURS = np.array([
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)], dtype=np.float32)


def _texture(rng, h, w, amplitude=40.0):
    """Blocky noise: something x264 finds motion in."""
    small = rng.standard_normal((h // 4 + 2, w // 4 + 2)).astype(np.float32)
    big = np.kron(small, np.ones((4, 4), np.float32))[:h, :w]
    return amplitude * big


def _render_clip(rng, width, height, frames):
    margin = 2 * width
    cw, ch = width + margin, height
    labels = np.empty((ch, cw), np.uint8)
    horizon = height // 2
    labels[:horizon // 2] = 0  # sky
    labels[horizon // 2:horizon] = 1  # building
    labels[horizon:] = 3  # road
    labels[horizon + height // 4:, : cw // 3] = 4  # pavement on the left third
    for x in range(3, cw, 11):  # poles, 2 pixels wide
        labels[horizon // 4:horizon + 2, x:x + 2] = 2
    canvas = COLOURS[labels] + _texture(rng, ch, cw)[..., None]
    pan = rng.uniform(0.6, 1.4)  # camera speed, pixels per frame
    car_speed = rng.uniform(-1.5, 1.5)
    car_w, car_h = max(6, width // 5), max(4, height // 6)
    car_tex = COLOURS[8] + _texture(rng, car_h, car_w, 30.0)[..., None]
    images, maps = [], []
    for t in range(frames):
        x0 = int(round(t * pan))
        img = canvas[:, x0:x0 + width].copy()
        lab = labels[:, x0:x0 + width].copy()
        cx = int(round(width / 3 + t * car_speed)) % (width - car_w)
        cy = horizon + 2
        img[cy:cy + car_h, cx:cx + car_w] = car_tex
        lab[cy:cy + car_h, cx:cx + car_w] = 8
        lab[horizon - 1:horizon + 1] = 255  # an ignore band, as real labels have
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        maps.append(lab)
    return images, maps


def _encode(images, path, fps, gop):
    h, w = images[0].shape[:2]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps),
           "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop),
           "-sc_threshold", "0", "-bf", "0", "-refs", "1", "-threads", "1", "-crf", "23", path]
    subprocess.run(cmd, input=b"".join(i.tobytes() for i in images), check=True)


def make_toy_dataset(root, width=64, height=48, frames=24, clips=(2, 1, 1), seed=0, fps=30, gop=12):
    rng = np.random.default_rng(seed)
    splits = {"width": width, "height": height, "fps": fps, "gop": gop, "classes": CLASSES,
              "frames": frames, "generator": "arseg.toydata"}
    for split, n in zip(("train", "val", "test"), clips):
        names = []
        for i in range(n):
            name = f"{split}-{i:03d}"
            clip_dir = os.path.join(root, split, name)
            os.makedirs(os.path.join(clip_dir, "labels"), exist_ok=True)
            images, maps = _render_clip(rng, width, height, frames)
            _encode(images, os.path.join(clip_dir, "video.mp4"), fps, gop)
            for t, lab in enumerate(maps):
                Image.fromarray(lab, mode="L").save(os.path.join(clip_dir, "labels", f"{t:06d}.png"))
            with open(os.path.join(clip_dir, "meta.json"), "w") as fh:
                json.dump({"frames": frames, "width": width, "height": height}, fh)
            names.append(name)
        splits[split] = names
    with open(os.path.join(root, "splits.json"), "w") as fh:
        json.dump(splits, fh, indent=1)
    return root


if __name__ == "__main__":
    import sys

    make_toy_dataset(sys.argv[1])
