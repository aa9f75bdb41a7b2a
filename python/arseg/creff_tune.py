"""Fine-tunes a bundle's CReFF on the motion fields of other encoder configurations (issue 13):
the bundle's networks are imported into PyTorch (bundle_import.py) and frozen, and only CReFF's
q/k/v depthwise convolutions are trained, with FST stage 2's loss (train.py, stage 'fst':
cross-entropy of the fused feature's logits + mse_weight x MSE between the fused feature and the
HR feature of the same frame), on pairs (frame t, its keyframe) drawn from several datasets, each
with its own reference distances.

    python3 -m arseg.creff_tune train --bundle models/default --out RUN_DIR \\
        --data DATASET[:DISTANCES] --data DATASET[:DISTANCES] ... [--clips N] [--steps 600] [--lr 5e-4]
        [--batch 8] [--crop 128,160] [--mse-weight 1] [--seed 0] [--threads 1] [--resume]
    python3 -m arseg.creff_tune export --run RUN_DIR --bundle models/default --out NEW_BUNDLE

DATASET is a street dataset (data.py's layout: the `train` split is used), e.g. one
configuration of python/arseg/street/variants.py encoded from the train split; DISTANCES is
`1-11` or `3,7,11` (default 11). Every dataset gets the same share of the samples whatever its
number of pairs (a step's samples are drawn dataset by dataset, round robin), so a dataset
trained at one distance is not drowned by one trained at eleven. --clips keeps the first N
clips of each dataset's train split.

Why CReFF alone: the encoders and the decoder are what the bundle ships, trained on the
1-reference stream; CReFF is what sees the motion field, and is 16 x 3 x (9 + 1) weights. The
LR encoder stays in eval mode (its batch norms are folded in the bundle anyway).

Deterministic like train.py: the samples, crops and flips of step s are a function of (seed, s);
a checkpoint (RUN_DIR/checkpoint.pt: CReFF, optimizer, step) is written every
--checkpoint-every steps and --resume continues from it. The motion fields come from
`ar-seg mvs --dense 1 --keyframes gop` (the reader's defaults, motion fill on), cached per
dataset under RUN_DIR/cache/<dataset name>/ (or --cache) with the decoded frames and the HR
features (the HR features depend on the bundle: a shared cache is for one bundle).
`export` writes NEW_BUNDLE: a copy of the bundle with the tuned CReFF weights (creff/*.npy);
`export --checkpoint` takes them from the last checkpoint of a run stopped early.
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from .bundle_import import load_bundle
from .data import Dataset
from .train import Log, Pairs, _lr_at, _save, class_weights, collate, crops

STAGE_ID = 4  # train.py's stages are 1..3: another stream of random numbers


def parse_data(spec):
    """'DATASET[:DISTANCES]' -> (path, sorted distances)."""
    path, _, dist = spec.partition(":")
    if not dist:
        return path, [11]
    out = set()
    for part in dist.split(","):
        lo, _, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError as err:
            raise ValueError(f"--data {spec!r}: distances must be like 1-11 or 3,7,11") from err
        if lo < 1 or hi < lo:
            raise ValueError(f"--data {spec!r}: distances must be at least 1, ranges increasing")
        out.update(range(lo, hi + 1))
    return path, sorted(out)


def _rng(seed, *keys):
    return np.random.default_rng([seed, STAGE_ID, *keys])


class MultiPairs:
    """Pairs of several datasets; step s draws its samples round robin over the datasets, each
    from its own sequence of per-epoch permutations."""

    def __init__(self, sources, seed):
        self.sources, self.seed = sources, seed

    def indices(self, step, batch):
        """[(source, pair index)] of step `step`."""
        out = []
        for pos in range(step * batch, (step + 1) * batch):
            k, n = pos % len(self.sources), pos // len(self.sources)
            count = len(self.sources[k].index)
            epoch, i = divmod(n, count)
            out.append((k, int(_rng(self.seed, 0, k, epoch).permutation(count)[i])))
        return out

    def batch(self, step, batch, crop, scale, hflip):
        cfg = {"seed": self.seed, "scale": scale, "hflip": hflip, "fst": {"crop": crop}}
        first = self.sources[0].clips[0]
        idx = self.indices(step, batch)
        # train.crops draws from train.py's 'fst' stream: offset the step so it is another stream
        places = crops(cfg, "fst", 1_000_000_000 + step, len(idx), first.height, first.width)
        return collate([self.sources[k].sample(i, y0, x0, crop[0], crop[1], flip)
                        for (y0, x0, flip), (k, i) in zip(places, idx)])


def train(args, log=None, max_steps=None):
    """Trains (or resumes) the run `args` describes (main's parsed `train` arguments); max_steps
    stops early after a checkpoint (for tests). Returns the tuned CReFF (None when stopped early)."""
    os.makedirs(args.out, exist_ok=True)
    log = log or Log(args.out)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = {k: v for k, v in vars(args).items() if k not in ("cmd", "resume", "threads", "cache", "log_every")}
    manifest, hr, lr, creff = load_bundle(args.bundle)
    for p in list(hr.parameters()) + list(lr.parameters()):
        p.requires_grad_(False)
    scale = manifest["lrScale"]
    crop = [int(v) for v in args.crop.split(",")]
    log(f"creff-tune: bundle {args.bundle}, {args.steps} steps, batch {args.batch}, crop {crop}, adam lr {args.lr} "
        f"(poly 0.9), mse weight {args.mse_weight}, seed {args.seed}, {args.threads} threads")
    sources, train_clips = [], None
    for spec in args.data:
        path, distances = parse_data(spec)
        name = os.path.basename(os.path.normpath(path))
        cache = os.path.join(args.cache or os.path.join(args.out, "cache"), name)
        ds = Dataset(path, cache)
        if ds.gop != manifest["keyframeInterval"]:
            raise ValueError(f"{path}: GOP {ds.gop}, the bundle's keyframe interval is {manifest['keyframeInterval']}")
        if max(distances) >= ds.gop:
            raise ValueError(f"--data {spec}: distances must be below the GOP ({ds.gop})")
        clips = ds.clips("train")[:args.clips or None]
        if not clips:
            raise ValueError(f"{path}: no train clips")
        t0 = time.time()
        for clip in clips:
            clip.hr(), clip.lr(scale), clip.labels(), clip.motion()
        pairs = Pairs(clips, scale, set(distances), ds.gop, hr, creff, os.path.join(cache, "hr-features"),
                      log)
        log(f"  {name}: {len(clips)} clips, {len(pairs.index)} pairs at d = {distances} ({time.time() - t0:.0f} s)")
        sources.append(pairs)
        train_clips = train_clips or clips
    weights = class_weights({"class_weighting": args.class_weighting}, train_clips, len(manifest["classes"]))
    data = MultiPairs(sources, args.seed)
    opt = torch.optim.Adam(creff.parameters(), lr=args.lr)
    schedule = {"schedule": "poly", "lr": args.lr, "steps": args.steps, "power": 0.9}
    ckpt = os.path.join(args.out, "checkpoint.pt")
    start = 0
    if args.resume and os.path.exists(ckpt):
        ck = torch.load(ckpt)
        if ck["config"] != config:
            raise ValueError(f"{ckpt} was written with another configuration: use a new --out")
        creff.load_state_dict(ck["creff"])
        opt.load_state_dict(ck["optimizer"])
        start = ck["step"]
        log(f"  resumed at step {start}")
    elif os.path.exists(ckpt):
        raise RuntimeError(f"{ckpt} exists: pass --resume to continue that run, or use a new --out")
    creff.train()
    sums, window_t, n = {}, time.time(), 0
    end = args.steps if max_steps is None else min(args.steps, max_steps)
    for step in range(start, end):
        for g in opt.param_groups:
            g["lr"] = _lr_at(schedule, step)
        image, warped, target, label = data.batch(step, args.batch, crop, scale, not args.no_flip)
        with torch.no_grad():
            lr_feature = lr.encode(image)
        fused = creff.fuse(lr_feature, warped)
        ce = F.cross_entropy(hr.final_conv(fused), label, weight=weights, ignore_index=255)
        mse = F.mse_loss(fused, target)
        loss = ce + args.mse_weight * mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k, v in (("loss", loss.item()), ("ce", ce.item()), ("mse", mse.item())):
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            dt = time.time() - window_t
            log(f"  step {done}/{args.steps} " + " ".join(f"{k} {v / n:.4f}" for k, v in sums.items())
                + f" lr {_lr_at(schedule, step):.2e} ({dt / n:.2f} s/step)")
            sums, window_t, n = {}, time.time(), 0
        if done % args.checkpoint_every == 0 or done == end:
            _save(ckpt, {"step": done, "creff": creff.state_dict(), "optimizer": opt.state_dict(), "config": config})
    if end < args.steps:
        return None
    _save(os.path.join(args.out, "creff.pt"), creff.state_dict())
    with open(os.path.join(args.out, "config.json"), "w") as fh:
        json.dump(config, fh, indent=1)
    log(f"  trained: {args.out}/creff.pt")
    return creff


def export(run_dir, bundle, out, checkpoint=False):
    """Copies `bundle` to `out` with the run's CReFF weights (float32, the bundle's shapes): the
    trained ones (RUN_DIR/creff.pt), or with `checkpoint` those of the last checkpoint of a run
    stopped early (RUN_DIR/checkpoint.pt; its step is returned)."""
    if checkpoint:
        ck = torch.load(os.path.join(run_dir, "checkpoint.pt"))
        state, step = ck["creff"], ck["step"]
    else:
        state, step = torch.load(os.path.join(run_dir, "creff.pt")), None
    if os.path.abspath(out) != os.path.abspath(bundle):
        if os.path.exists(out):
            raise FileExistsError(f"{out} exists")
        shutil.copytree(bundle, out)
    with open(os.path.join(out, "arseg.json")) as fh:
        manifest = json.load(fh)
    for name in "qkv":
        for part in ("weight", "bias"):
            path = os.path.join(out, manifest["creff"][name][part])
            old = np.load(path)
            new = state[f"{name}.{part}"].detach().numpy().astype(np.float32).reshape(old.shape)
            np.save(path, new)
    return step


def parser():
    ap = argparse.ArgumentParser(prog="python3 -m arseg.creff_tune", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fine-tune a bundle's CReFF")
    t.add_argument("--bundle", required=True)
    t.add_argument("--out", required=True, help="the run directory")
    t.add_argument("--data", action="append", required=True, help="DATASET[:DISTANCES], repeatable")
    t.add_argument("--cache", help="where decoded frames, motion fields and HR features are cached, per dataset "
                   "(default RUN_DIR/cache; runs on the same data and bundle can share one)")
    t.add_argument("--clips", type=int, default=0, help="the first N train clips of each dataset (0: all)")
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--crop", default="128,160", help="H,W")
    t.add_argument("--mse-weight", type=float, default=1.0)
    t.add_argument("--class-weighting", default="sqrt-median-frequency",
                   choices=("none", "median-frequency", "sqrt-median-frequency"))
    t.add_argument("--no-flip", action="store_true")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--resume", action="store_true")
    e = sub.add_parser("export", help="a copy of the bundle with the run's CReFF")
    e.add_argument("--run", required=True)
    e.add_argument("--bundle", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--checkpoint", action="store_true", help="the last checkpoint's CReFF (a run stopped early)")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    try:
        if a.cmd == "train":
            train(a)
        else:
            step = export(a.run, a.bundle, a.out, a.checkpoint)
            print(f"wrote {a.out}" + (f" (the checkpoint of step {step})" if step is not None else ""))
    except (ValueError, FileExistsError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
