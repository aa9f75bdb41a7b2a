"""FST training on CPU: the HR network, the LR network (FST stage 1), LR + CReFF (FST stage 2).

    /usr/bin/python3 -m arseg.train --config CONFIG.json --stage hr|lr|fst --out RUN_DIR [--resume]
    /usr/bin/python3 -m arseg.train eval --run RUN_DIR [--split val|test] [--json FILE]
    /usr/bin/python3 -m arseg.train export --run RUN_DIR --out models/default [--name NAME]

Stages (docs/method.md, "FST: training"); each reads the previous stages' RUN_DIR/<stage>/model.pt:
- hr:  the HR network, cross-entropy at full resolution on random crops.
- lr:  the LR network alone on the crop downscaled by `scale` (the LR frame as the pipeline
       makes it), logits upsampled to the label size (align_corners=True), cross-entropy; its
       encoder starts from the HR encoder; the decoder is the HR network's, shared and frozen.
- fst: LR network + CReFF fed with the keyframe's HR feature warped by the motion accumulated to
       the keyframe (pairs: frame t at GOP position d in `distances`, default [11], and its
       keyframe t - d); loss = cross-entropy of the fused output's logits + mse_weight x MSE
       between the fused feature and the HR feature of frame t. HR network and decoder frozen
       (their features are computed once per frame and cached in RUN_DIR/fst/pairs-*/).

Data: the decoded compressed frames and motion fields, cached once per clip (data.py).
The configuration (JSON, validated by load_config; paths relative to the working directory):
    dataset, cache (default RUN_DIR/cache), seed, threads, width, scale, crop [h, w], hflip,
    window, class_weighting (none | median-frequency | sqrt-median-frequency),
    checkpoint_every, log_every, eval_split, eval_batch, and one section per stage:
    {steps, batch, optimizer: adam|sgd, lr, weight_decay, momentum, schedule: poly|constant,
    power, crop (default: the top-level crop)} (+ fst: mse_weight, distances).
Export: the bundle (bundle.py's export_bundle) has the dataset's 11 classes as outputs, no
'void' output, and ignoreIndex 255 (label pixels 255 are ignored in training and evaluation,
and are no class of the network: the Cityscapes convention), CReFF 'exact' sampling, window
`window`, lrScale `scale`, keyframeInterval the dataset's GOP.

Determinism: the samples, crops and flips of step s are a pure function of (seed, stage, s), and a
checkpoint (RUN_DIR/<stage>/checkpoint.pt: weights, batch-norm statistics, optimizer state,
step) is written every `checkpoint_every` steps, so --resume continues exactly where the run
stopped. Progress goes to stdout and RUN_DIR/train.log; the val mIoU closes each stage
(RUN_DIR/<stage>/metrics.json).
"""
import argparse
import copy
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data import Dataset, scaled_size
from .evaluate import evaluate, format_table, recovery
from .fst import encoder_parameters, encoder_state, lr_logits, make_networks, normalise

STAGES = ("hr", "lr", "fst")
STAGE_IDS = {"hr": 1, "lr": 2, "fst": 3}
# Settings that do not change what a run computes: a resumed run may change them.
OPERATIONAL_KEYS = ("threads", "checkpoint_every", "log_every", "eval_split", "eval_batch", "comment")
CLASS_WEIGHTINGS = ("none", "median-frequency", "sqrt-median-frequency")


class ConfigError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# configuration

_STAGE_KEYS = {
    "steps": (int, None), "batch": (int, None), "optimizer": (str, "adam"), "lr": (float, None),
    "weight_decay": (float, 0.0), "momentum": (float, 0.9), "schedule": (str, "poly"), "power": (float, 0.9),
    "crop": (list, []),  # [] = the top-level crop
}
_FST_KEYS = {"mse_weight": (float, 1.0), "distances": (list, [11])}
_TOP_KEYS = {
    "dataset": (str, None), "cache": (str, ""), "seed": (int, 0), "threads": (int, 2), "width": (float, 0.25),
    "scale": (float, 0.5), "crop": (list, None), "hflip": (bool, True), "window": (int, 7),
    "checkpoint_every": (int, 100), "log_every": (int, 10), "eval_split": (str, "val"), "eval_batch": (int, 4),
    "class_weighting": (str, "none"),
    "hr": (dict, None), "lr": (dict, None), "fst": (dict, None), "comment": (str, ""),
}


def _check_type(where, value, kind):
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"config: '{where}' must be {kind.__name__}, got {json.dumps(value)}")
    return float(value) if kind is float else value


def _fill(section, spec, where):
    if not isinstance(section, dict):
        raise ConfigError(f"config: '{where}' must be an object")
    unknown = sorted(set(section) - set(spec))
    if unknown:
        names = ", ".join(repr(where + k) for k in unknown)
        raise ConfigError(f"config: unknown key{'s' if len(unknown) > 1 else ''} {names}")
    out = {}
    for key, (kind, default) in spec.items():
        if key in section:
            out[key] = _check_type(where + key, section[key], kind)
        elif default is None:
            raise ConfigError(f"config: '{where}{key}' is required")
        else:
            out[key] = copy.deepcopy(default)
    return out


def validate_config(raw):
    """Checks a configuration dict and fills in defaults; raises ConfigError naming the field."""
    cfg = _fill(raw, _TOP_KEYS, "")
    for stage in STAGES:
        cfg[stage] = _fill(cfg[stage], {**_STAGE_KEYS, **(_FST_KEYS if stage == "fst" else {})}, stage + ".")
        s = cfg[stage]
        if s["steps"] < 1:
            raise ConfigError(f"config: '{stage}.steps' must be at least 1")
        if s["batch"] < 1:
            raise ConfigError(f"config: '{stage}.batch' must be at least 1")
        if s["optimizer"] not in ("adam", "sgd"):
            raise ConfigError(f"config: '{stage}.optimizer' must be 'adam' or 'sgd', got {s['optimizer']!r}")
        if s["schedule"] not in ("poly", "constant"):
            raise ConfigError(f"config: '{stage}.schedule' must be 'poly' or 'constant', got {s['schedule']!r}")
        if not s["lr"] > 0:
            raise ConfigError(f"config: '{stage}.lr' must be positive")
        if s["weight_decay"] < 0:
            raise ConfigError(f"config: '{stage}.weight_decay' must not be negative")
    fst = cfg["fst"]
    if fst["mse_weight"] < 0:
        raise ConfigError("config: 'fst.mse_weight' must not be negative")
    if not fst["distances"] or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                       for d in fst["distances"]):
        raise ConfigError(
            f"config: 'fst.distances' must be a non-empty list of integers >= 1, got {json.dumps(fst['distances'])}"
        )
    if not 0 < cfg["width"] <= 1:
        raise ConfigError(f"config: 'width' must be in (0, 1], got {cfg['width']}")
    inv = 1.0 / cfg["scale"] if cfg["scale"] > 0 else 0
    if not (0 < cfg["scale"] <= 1) or abs(inv - round(inv)) > 1e-9:
        raise ConfigError(f"config: 'scale' must be 1/n for an integer n >= 1 (0.5, 0.25...), got {cfg['scale']}")
    step = 8 * int(round(inv))
    for where, crop in [("crop", cfg["crop"])] + [(f"{st}.crop", cfg[st]["crop"]) for st in STAGES if cfg[st]["crop"]]:
        if len(crop) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 and c % step == 0
                                     for c in crop):
            raise ConfigError(f"config: '{where}' must be [height, width], positive multiples of {step} "
                              f"(8 / scale: the LR crop must be a multiple of 8), got {json.dumps(crop)}")
    for st in STAGES:
        cfg[st]["crop"] = list(cfg[st]["crop"] or cfg["crop"])
    if cfg["window"] < 1 or cfg["window"] % 2 == 0:
        raise ConfigError(f"config: 'window' must be a positive odd integer, got {cfg['window']}")
    for key in ("threads", "checkpoint_every", "log_every", "eval_batch"):
        if cfg[key] < 1:
            raise ConfigError(f"config: '{key}' must be at least 1")
    if cfg["class_weighting"] not in CLASS_WEIGHTINGS:
        raise ConfigError(
            f"config: 'class_weighting' must be one of {', '.join(CLASS_WEIGHTINGS)}, got {cfg['class_weighting']!r}"
        )
    if cfg["eval_split"] not in ("train", "val", "test"):
        raise ConfigError(f"config: 'eval_split' must be train, val or test, got {cfg['eval_split']!r}")
    return cfg


def load_config(path):
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except OSError as err:
        raise ConfigError(f"config: cannot read {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"config: {path} is not valid JSON: {err}") from err
    return validate_config(raw)


def check_dataset(cfg, ds):
    scale = cfg["scale"]
    for st in STAGES:
        crop = cfg[st]["crop"]
        if crop[0] > ds.height or crop[1] > ds.width:
            raise ConfigError(
                f"config: '{st}.crop' {crop} is larger than the dataset's frames ({ds.height} x {ds.width})"
            )
    w, h = scaled_size(ds.width, ds.height, scale)
    if (w, h) != (ds.width * scale, ds.height * scale):
        raise ConfigError(f"config: the LR frame ({w} x {h}) must be exactly the frame ({ds.width} x {ds.height}) "
                          f"times scale {scale}: pick a scale that keeps both sides multiples of 8")
    bad = [d for d in cfg["fst"]["distances"] if d >= ds.gop]
    if bad:
        raise ConfigError(f"config: 'fst.distances' {bad} must be below the dataset's GOP ({ds.gop})")


# ---------------------------------------------------------------------------------------------
# logging, checkpoints

class Log:
    def __init__(self, run_dir):
        os.makedirs(run_dir, exist_ok=True)
        self.fh = open(os.path.join(run_dir, "train.log"), "a")

    def __call__(self, msg):
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.fh.write(line + "\n")
        self.fh.flush()


def _save(path, obj):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _sha1(path):
    with open(path, "rb") as fh:
        return hashlib.sha1(fh.read()).hexdigest()


def _load_model(run_dir, stage):
    path = os.path.join(run_dir, stage, "model.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: train stage '{stage}' first")
    return torch.load(path), path


# ---------------------------------------------------------------------------------------------
# deterministic sampling

def _rng(cfg, stage, *keys):
    return np.random.default_rng([cfg["seed"], STAGE_IDS[stage], *keys])


def batch_indices(cfg, stage, step, count):
    """Sample indices of a step: consecutive slices of one permutation per epoch."""
    b = cfg[stage]["batch"]
    out = []
    for pos in range(step * b, (step + 1) * b):
        epoch, i = divmod(pos, count)
        out.append(int(_rng(cfg, stage, 0, epoch).permutation(count)[i]))
    return out


def crops(cfg, stage, step, n, height, width):
    """(y0, x0, flip) per sample: offsets multiples of 1/scale so the LR crop aligns exactly."""
    rng = _rng(cfg, stage, 1, step)
    ch, cw = cfg[stage]["crop"]
    a = int(round(1 / cfg["scale"]))
    out = []
    for _ in range(n):
        y0 = a * int(rng.integers(0, (height - ch) // a + 1))
        x0 = a * int(rng.integers(0, (width - cw) // a + 1))
        flip = bool(rng.integers(0, 2)) if cfg["hflip"] else False
        out.append((y0, x0, flip))
    return out


def _crop(a, y0, x0, h, w, flip):
    """a: (..., H, W) numpy -> contiguous copy of the crop, flipped along W."""
    c = a[..., y0:y0 + h, x0:x0 + w]
    if flip:
        c = c[..., ::-1]
    return np.ascontiguousarray(c)


def _crop_hwc(a, y0, x0, h, w, flip):
    c = a[y0:y0 + h, x0:x0 + w]
    if flip:
        c = c[:, ::-1]
    return np.ascontiguousarray(c)


# ---------------------------------------------------------------------------------------------
# stages

def _optimizer(params, s):
    if s["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=s["lr"], weight_decay=s["weight_decay"])
    return torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])


def _lr_at(s, step):
    if s["schedule"] == "constant":
        return s["lr"]
    return s["lr"] * (1 - step / s["steps"]) ** s["power"]


class Frames:
    """Training samples of the hr/lr stages: every (clip, frame) of the train split."""

    def __init__(self, clips, scale):
        self.clips, self.scale = clips, scale
        self.index = [(c, t) for c in range(len(clips)) for t in range(clips[c].frames())]

    def batch(self, cfg, stage, step):
        idx = batch_indices(cfg, stage, step, len(self.index))
        ch, cw = cfg[stage]["crop"]
        a = int(round(1 / self.scale))
        hr, lr, lab = [], [], []
        first = self.clips[0]
        for (y0, x0, flip), i in zip(crops(cfg, stage, step, len(idx), first.height, first.width), idx):
            c, t = self.index[i]
            clip = self.clips[c]
            lab.append(_crop(clip.labels()[t], y0, x0, ch, cw, flip))
            if stage == "hr":
                hr.append(_crop_hwc(clip.hr()[t], y0, x0, ch, cw, flip))
            else:
                lr.append(_crop_hwc(clip.lr(self.scale)[t], y0 // a, x0 // a, ch // a, cw // a, flip))
        image = normalise(np.stack(hr if stage == "hr" else lr))
        return image, torch.from_numpy(np.stack(lab)).long()


class Pairs:
    """Training samples of the fst stage: (frame t, keyframe t - d) for d in `distances`. The
    frozen HR branch's features of the keyframes and of the frames t are computed once and
    cached per clip (RUN_DIR/fst/pairs-<HR model hash>/, float16); a batch warps the crop of each
    keyframe feature with the crop of t's motion field (CReFF.warp_crop: the crop of the
    full-frame warp, exactly)."""

    def __init__(self, clips, scale, distances, gop, hr, creff, cache_dir, log):
        self.clips, self.scale, self.creff = clips, scale, creff
        self.index, self.arrays, self.rows = [], [], []
        os.makedirs(cache_dir, exist_ok=True)
        for c, clip in enumerate(clips):
            n = clip.frames()
            ts = [t for t in range(n) if t % gop in distances]
            frames = sorted(set(ts) | {t - t % gop for t in ts})
            tag = hashlib.sha1(",".join(map(str, frames)).encode()).hexdigest()[:8]
            path = os.path.join(cache_dir, f"{clip.split}-{clip.name}-{tag}.npy")
            if not os.path.exists(path):
                hr_frames = clip.hr()
                out = np.empty((len(frames), hr.feature_channels, clip.height, clip.width), np.float16)
                with torch.no_grad():
                    for s in range(0, len(frames), 4):
                        out[s:s + 4] = hr.encode(normalise(hr_frames[frames[s:s + 4]])).numpy()
                tmp = path + ".tmp.npy"
                np.save(tmp, out)
                os.replace(tmp, path)
                if (c + 1) % 10 == 0:
                    log(f"  HR features cached for {c + 1}/{len(clips)} clips")
            self.arrays.append(np.load(path, mmap_mode="r"))
            self.rows.append({t: i for i, t in enumerate(frames)})
            self.index += [(c, t) for t in ts]

    def batch(self, cfg, stage, step):
        idx = batch_indices(cfg, stage, step, len(self.index))
        ch, cw = cfg[stage]["crop"]
        first = self.clips[0]
        samples = [self.sample(i, y0, x0, ch, cw, flip)
                   for (y0, x0, flip), i in zip(crops(cfg, stage, step, len(idx), first.height, first.width), idx)]
        return collate(samples)

    def sample(self, i, y0, x0, ch, cw, flip):
        """Pair i cropped at (y0, x0), ch x cw, flipped: (LR crop uint8 HWC, warped keyframe
        feature, HR feature of frame t, labels)."""
        a = int(round(1 / self.scale))
        c, t = self.index[i]
        clip, feats, rows = self.clips[c], self.arrays[c], self.rows[c]
        gop = clip.dataset.gop
        f32 = lambda x: torch.from_numpy(np.array(x, np.float32))  # noqa: E731
        lr = _crop_hwc(clip.lr(self.scale)[t], y0 // a, x0 // a, ch // a, cw // a, flip)
        key = f32(feats[rows[t - t % gop]]).unsqueeze(0)
        motion = f32(clip.motion()[t][:, y0:y0 + ch, x0:x0 + cw]).unsqueeze(0)
        w = self.creff.warp_crop(key, motion, y0, x0)[0]
        target = torch.from_numpy(_crop(feats[rows[t]], y0, x0, ch, cw, flip).astype(np.float32))
        return lr, (w.flip(-1) if flip else w), target, _crop(clip.labels()[t], y0, x0, ch, cw, flip)


def collate(samples):
    """A batch of Pairs samples: normalised LR images, warped keyframe features, HR targets, labels."""
    lr, warped, target, lab = zip(*samples)
    return normalise(np.stack(lr)), torch.stack(warped), torch.stack(target), torch.from_numpy(np.stack(lab)).long()


def class_weights(cfg, clips, classes):
    """Cross-entropy class weights from the train labels: median frequency balancing (SegNet's
    CamVid recipe: freq(c) = pixels of c / pixels of the frames where c appears, weight =
    median freq / freq(c)), or its square root (milder); None for 'none'."""
    if cfg["class_weighting"] == "none":
        return None
    pixels = np.zeros(classes, np.float64)
    present = np.zeros(classes, np.float64)
    for clip in clips:
        labels = clip.labels()
        for t in range(labels.shape[0]):
            counts = np.bincount(labels[t].ravel(), minlength=256)[:classes]
            pixels += counts
            present += (counts > 0) * labels[t].size
    freq = np.where(present > 0, pixels / np.maximum(present, 1), np.nan)
    w = np.nanmedian(freq) / freq
    w = np.where(np.isnan(w), 0.0, w)
    if cfg["class_weighting"] == "sqrt-median-frequency":
        w = np.sqrt(w)
    return torch.tensor(w, dtype=torch.float32)


def _networks(cfg, ds):
    torch.manual_seed(cfg["seed"])
    return make_networks(len(ds.classes), cfg["width"], cfg["window"])


def train_stage(cfg, stage, run_dir, resume=False, log=None, max_steps=None, final_eval=True):
    """Trains one stage; `max_steps` stops early (after writing a checkpoint) and final_eval=False
    skips the closing evaluation, for tests."""
    log = log or Log(run_dir)
    torch.set_num_threads(cfg["threads"])
    stage_dir = os.path.join(run_dir, stage)
    ckpt_path = os.path.join(stage_dir, "checkpoint.pt")
    os.makedirs(stage_dir, exist_ok=True)
    if os.path.exists(ckpt_path) and not resume:
        raise RuntimeError(f"{ckpt_path} exists: pass --resume to continue that run, or use a new --out")
    with open(os.path.join(stage_dir, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=1)
    ds = Dataset(cfg["dataset"], cfg["cache"] or os.path.join(run_dir, "cache"))
    check_dataset(cfg, ds)
    s = cfg[stage]
    hr, lr, creff = _networks(cfg, ds)
    log(f"stage {stage}: {s['steps']} steps, batch {s['batch']}, crop {s['crop']}, {s['optimizer']} lr {s['lr']}, "
        f"width {cfg['width']} ({hr.feature_channels} feature channels), scale {cfg['scale']}, seed {cfg['seed']}, "
        f"{cfg['threads']} threads")
    log(f"  dataset {cfg['dataset']}: {len(ds.splits['train'])} train / {len(ds.splits['val'])} val clips, "
        f"{ds.width}x{ds.height}, GOP {ds.gop}, {len(ds.classes)} classes")
    t0 = time.time()
    clips = ds.prepare("train", cfg["scale"], motion=(stage == "fst"), log=log)
    ds.prepare(cfg["eval_split"], cfg["scale"], motion=(stage == "fst"), log=log)
    log(f"  data ready in {time.time() - t0:.1f} s")

    if stage == "hr":
        modules = {"hr": hr}
        params = encoder_parameters(hr) + list(hr.final_conv.parameters())
        data = Frames(clips, cfg["scale"])
    else:
        hr_model, hr_path = _load_model(run_dir, "hr")
        hr.load_state_dict(hr_model["hr"])
        hr.eval()
        for p in hr.parameters():
            p.requires_grad_(False)
        if stage == "lr":
            lr.load_state_dict(encoder_state(hr), strict=False)  # the LR encoder starts from the HR encoder
            modules = {"lr": lr}
            params = encoder_parameters(lr)
            data = Frames(clips, cfg["scale"])
        else:
            lr_model, _ = _load_model(run_dir, "lr")
            lr.load_state_dict(lr_model["lr"])
            modules = {"lr": lr, "creff": creff}
            params = encoder_parameters(lr) + list(creff.parameters())
            cache = os.path.join(stage_dir, f"pairs-{_sha1(hr_path)[:12]}")
            t0 = time.time()
            data = Pairs(clips, cfg["scale"], set(s["distances"]), ds.gop, hr, creff, cache, log)
            log(f"  {len(data.index)} pairs (distances {s['distances']}), "
                f"HR features ready in {time.time() - t0:.1f} s")
    weights = class_weights(cfg, clips, len(ds.classes))
    if weights is not None:
        listed = ", ".join(f"{c} {w:.2f}" for c, w in zip(ds.classes, weights.tolist()))
        log(f"  class weights ({cfg['class_weighting']}): {listed}")
    opt = _optimizer(params, s)
    start = 0
    if resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        changed = sorted(k for k in set(cfg) | set(ck["config"])
                         if k not in OPERATIONAL_KEYS and cfg.get(k) != ck["config"].get(k))
        if changed:
            raise ConfigError(f"{ckpt_path} was written with another configuration (differs in {', '.join(changed)}): "
                              "resuming would not continue the same run")
        for name, m in modules.items():
            m.load_state_dict(ck["modules"][name])
        opt.load_state_dict(ck["optimizer"])
        start = ck["step"]
        log(f"  resumed from {ckpt_path} at step {start}")
    for m in modules.values():
        m.train()

    def save_checkpoint(step):
        _save(ckpt_path, {"step": step, "modules": {n: m.state_dict() for n, m in modules.items()},
                          "optimizer": opt.state_dict(), "config": cfg})

    end = s["steps"] if max_steps is None else min(s["steps"], max_steps)
    window_t, window_n, window_steps, sums = time.time(), 0, 0, {}
    for step in range(start, end):
        for g in opt.param_groups:
            g["lr"] = _lr_at(s, step)
        if stage == "fst":
            image, warped, target, label = data.batch(cfg, stage, step)
            fused = creff.fuse(lr.encode(image), warped)
            ce = F.cross_entropy(hr.final_conv(fused), label, weight=weights, ignore_index=255)
            mse = F.mse_loss(fused, target)
            loss = ce + s["mse_weight"] * mse
            parts = {"loss": loss.item(), "ce": ce.item(), "mse": mse.item()}
        else:
            image, label = data.batch(cfg, stage, step)
            if stage == "hr":
                logits = hr(image)
            else:
                logits = lr_logits(lr, image, tuple(label.shape[1:]))
            loss = F.cross_entropy(logits, label, weight=weights, ignore_index=255)
            parts = {"loss": loss.item()}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window_n += image.shape[0]
        window_steps += 1
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        done = step + 1
        if done % cfg["log_every"] == 0 or done == end:
            dt = time.time() - window_t
            avg = " ".join(f"{k} {v / window_steps:.4f}" for k, v in sums.items())
            log(f"  {stage} step {done}/{s['steps']} {avg} lr {_lr_at(s, step):.2e} "
                f"{window_n / dt:.2f} samples/s ({dt / window_steps:.2f} s/step)")
            window_t, window_n, window_steps, sums = time.time(), 0, 0, {}
        if done % cfg["checkpoint_every"] == 0 or done == end:
            save_checkpoint(done)
    if end < s["steps"]:
        return None
    _save(os.path.join(stage_dir, "model.pt"), {n: m.state_dict() for n, m in modules.items()})
    log(f"  stage {stage} trained: {stage_dir}/model.pt")
    if not final_eval:
        return None
    t0 = time.time()
    split = cfg["eval_split"]
    if stage == "fst":
        result = evaluate_run(run_dir, ds, split, cfg, hr=hr, lr_fst=lr, creff=creff, reuse=True, log=log)
    else:
        result = evaluate(ds, split, cfg["scale"], hr=hr, lr=lr, modes=(stage,), batch=cfg["eval_batch"], log=log)
    log(f"  {split} mIoU after stage {stage} ({time.time() - t0:.1f} s), per reference distance d:\n"
        + format_table(result, ds.classes) + _recovery_line(result))
    with open(os.path.join(stage_dir, "metrics.json"), "w") as fh:
        json.dump({"split": split, **result}, fh, indent=1)
    return result


def _recovery_line(result):
    if not {"hr", "lr", "ar"} <= set(result):
        return ""
    lines = []
    for base in ("lr", "lr-fst"):
        if base in result:
            r = recovery(result, lr=base)
            d11 = r["per_distance"][-1]
            fmt = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731
            lines.append(f"\nAR recovers {fmt(r['mean'])} of the HR-{base} gap on the mean over d, "
                         f"{fmt(d11)} at d={len(r['per_distance']) - 1}")
    return "".join(lines)


def evaluate_run(run_dir, ds, split, cfg, hr=None, lr_fst=None, creff=None, reuse=False, log=None):
    """The full table of a run: 'hr' (HR network), 'lr' (the LR network of stage lr, alone),
    'lr-fst' (the FST-trained LR encoder alone: what a bundle's --mode lr runs), 'ar'.
    With reuse, 'hr' and 'lr' come from the hr and lr stages' metrics.json when they hold `split`."""
    result = {}
    for stage in ("hr", "lr"):
        path = os.path.join(run_dir, stage, "metrics.json")
        if reuse and os.path.exists(path):
            with open(path) as fh:
                m = json.load(fh)
            if m.get("split") == split and stage in m:
                result[stage] = m[stage]
                continue
        if stage == "hr":
            result["hr"] = evaluate(ds, split, cfg["scale"], hr=hr, modes=("hr",), batch=cfg["eval_batch"],
                                    log=log)["hr"]
        else:
            _, lr1, _ = make_networks(len(ds.classes), cfg["width"], cfg["window"])
            lr1.load_state_dict(_load_model(run_dir, "lr")[0]["lr"])
            result["lr"] = evaluate(ds, split, cfg["scale"], hr=hr, lr=lr1, modes=("lr",), batch=cfg["eval_batch"],
                                    log=log)["lr"]
    if lr_fst is not None and creff is not None:
        r = evaluate(ds, split, cfg["scale"], hr=hr, lr=lr_fst, creff=creff, modes=("lr", "ar"),
                     batch=cfg["eval_batch"], log=log)
        result["lr-fst"], result["ar"] = r["lr"], r["ar"]
    return result


def load_run(run_dir):
    """HR network, LR network (after fst if trained, else after lr) and CReFF of a run, in eval mode."""
    last = next(st for st in ("fst", "lr", "hr") if os.path.exists(os.path.join(run_dir, st, "config.json")))
    with open(os.path.join(run_dir, last, "config.json")) as fh:
        cfg = validate_config(json.load(fh))
    hr, lr, creff = make_networks(_classes(cfg), cfg["width"], cfg["window"])
    hr.load_state_dict(_load_model(run_dir, "hr")[0]["hr"])
    if os.path.exists(os.path.join(run_dir, "fst", "model.pt")):
        m = _load_model(run_dir, "fst")[0]
        lr.load_state_dict(m["lr"])
        creff.load_state_dict(m["creff"])
    else:
        lr.load_state_dict(_load_model(run_dir, "lr")[0]["lr"])
    return cfg, hr.eval(), lr.eval(), creff.eval()


def _classes(cfg):
    with open(os.path.join(cfg["dataset"], "splits.json")) as fh:
        return len(json.load(fh)["classes"])


# ---------------------------------------------------------------------------------------------
# command line

def export_run(run_dir, out_dir, name="default", description=None):
    from .bundle import CAMVID_CLASSES, export_bundle

    cfg, hr, lr, creff = load_run(run_dir)
    with open(os.path.join(cfg["dataset"], "splits.json")) as fh:
        splits = json.load(fh)
    colours = dict(CAMVID_CLASSES)
    classes = [(c, colours.get(c, (255, 255, 255))) for c in splits["classes"]]
    lr.final_conv = hr.final_conv
    desc = description or (f"PSPNet18 layout at width {cfg['width']} trained with FST on the synthetic street dataset "
                           f"({len(classes)} classes, no void output; label 255 is ignored)")
    return export_bundle(out_dir, hr, lr, {n: (w.detach(), b.detach()) for n, (w, b) in creff.weights().items()},
                         name=name, classes=classes, ignore_index=255, mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225), lr_scale=cfg["scale"], keyframe_interval=splits["gop"],
                         window=cfg["window"], sampling="exact", description=desc)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        p = argparse.ArgumentParser(prog="python -m arseg.train export", description="write a model bundle from a run")
        p.add_argument("--run", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--name", default="default")
        a = p.parse_args(argv[1:])
        m = export_run(a.run, a.out, a.name)
        print(f"wrote {a.out}: {m['name']}, {len(m['classes'])} classes, {m['feature']['channels']} feature channels")
        return 0
    if argv[:1] == ["eval"]:
        p = argparse.ArgumentParser(prog="python -m arseg.train eval",
                                    description="PyTorch-side mIoU per reference distance")
        p.add_argument("--run", required=True)
        p.add_argument("--split", default="val")
        p.add_argument("--json")
        a = p.parse_args(argv[1:])
        cfg, hr, lr, creff = load_run(a.run)
        if not os.path.exists(os.path.join(a.run, "fst", "model.pt")):
            lr = creff = None
        torch.set_num_threads(cfg["threads"])
        ds = Dataset(cfg["dataset"], cfg["cache"] or os.path.join(a.run, "cache"))
        ds.prepare(a.split, cfg["scale"], motion=lr is not None)
        result = evaluate_run(a.run, ds, a.split, cfg, hr=hr, lr_fst=lr, creff=creff)
        print(f"{a.split} mIoU per reference distance d:\n" + format_table(result, ds.classes) + _recovery_line(result))
        if a.json:
            with open(a.json, "w") as fh:
                json.dump({"split": a.split, **result}, fh, indent=1)
        return 0
    p = argparse.ArgumentParser(prog="python -m arseg.train", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--out", required=True, help="the run directory")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/<stage>/checkpoint.pt")
    a = p.parse_args(argv)
    try:
        cfg = load_config(a.config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    train_stage(cfg, a.stage, a.out, resume=a.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
