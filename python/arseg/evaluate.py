"""PyTorch-side evaluation with the paper's protocol (docs/method.md, "Evaluation protocol").

The dataset's clips are encoded with an I-frame every `gop` frames from frame 0, so the frame at
GOP position d is at reference distance d from its keyframe, which starts its GOP: mIoU_d pools
the confusion of every labelled frame at position d over the split; the reported figure is the
mean over d = 0..gop-1. Modes: 'hr' (HR network on every frame), 'lr' (LR network on every frame,
logits upsampled with align_corners=True), 'ar' (HR on keyframes, else LR + CReFF with the
keyframe's HR feature and the motion accumulated to it). Label 255 is ignored. A class's IoU is
TP / (TP + FP + FN); mIoU averages the classes present in the labels or the predictions.
"""
import numpy as np
import torch

from .fst import normalise, upsample

IGNORE = 255


def confusion(pred, target, classes):
    pred = np.asarray(pred, np.int64).ravel()
    target = np.asarray(target, np.int64).ravel()
    keep = target < classes
    return np.bincount(target[keep] * classes + pred[keep], minlength=classes * classes).reshape(classes, classes)


def iou(conf):
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def miou(conf):
    v = iou(conf)
    return float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan")


@torch.no_grad()
def evaluate(dataset, split, scale, hr=None, lr=None, creff=None, modes=("hr",), batch=4, log=None):
    """Returns {mode: {"per_distance": [mIoU_0 .. mIoU_{gop-1}], "mean": mean over d,
    "pooled": mIoU over all frames, "iou": per-class IoU pooled}}. 'ar' runs CReFF as
    creff.fuse(LR feature, warp(keyframe feature, motion)), which equals creff.py's reference
    formulation (python/tests/test_train.py checks it) at a fraction of its cost."""
    classes, gop = len(dataset.classes), dataset.gop
    conf = {m: np.zeros((gop, classes, classes), np.int64) for m in modes}
    for net in (hr, lr, creff):
        if net is not None:
            net.eval()
    clips = dataset.clips(split)
    for ci, clip in enumerate(clips):
        hr_frames, lr_frames, labels = clip.hr(), clip.lr(scale), clip.labels()
        n = hr_frames.shape[0]
        size = tuple(hr_frames.shape[1:3])
        motion = clip.motion() if "ar" in modes else None
        keys, hr_pred = {}, {}
        need_hr = [t for t in range(n) if "hr" in modes or ("ar" in modes and t % gop == 0)]
        for s in range(0, len(need_hr), batch):
            idx = need_hr[s:s + batch]
            feat = hr.encode(normalise(hr_frames[idx]))
            pred = hr.final_conv(feat).argmax(1).numpy()
            for j, t in enumerate(idx):
                hr_pred[t] = pred[j]
                if t % gop == 0 and "ar" in modes:
                    keys[t] = feat[j]
        if "hr" in modes:
            for t in range(n):
                conf["hr"][t % gop] += confusion(hr_pred[t], labels[t], classes)
        if "lr" in modes or "ar" in modes:
            for s in range(0, n, batch):
                idx = list(range(s, min(n, s + batch)))
                feat = lr.encode(normalise(lr_frames[idx]))
                if "lr" in modes:
                    pred = upsample(lr.final_conv(feat), size).argmax(1).numpy()
                    for j, t in enumerate(idx):
                        conf["lr"][t % gop] += confusion(pred[j], labels[t], classes)
                if "ar" in modes:
                    rows = [j for j, t in enumerate(idx) if t % gop]
                    for j, t in enumerate(idx):
                        if t % gop == 0:  # a keyframe: the HR network's output
                            conf["ar"][0] += confusion(hr_pred[t], labels[t], classes)
                    if rows:
                        ts = [idx[j] for j in rows]
                        key = torch.stack([keys[t - t % gop] for t in ts])
                        m = torch.from_numpy(np.asarray(motion[ts], np.float32))
                        fused = creff.fuse(feat[rows], creff.warp(key, m))
                        pred = hr.final_conv(fused).argmax(1).numpy()
                        for j, t in enumerate(ts):
                            conf["ar"][t % gop] += confusion(pred[j], labels[t], classes)
        if log and (ci + 1) % 5 == 0:
            log(f"  evaluated {ci + 1}/{len(clips)} {split} clips")
    out = {}
    for m in modes:
        per = [miou(conf[m][d]) for d in range(gop)]
        pooled = conf[m].sum(0)
        out[m] = {"per_distance": per, "mean": float(np.nanmean(per)), "pooled": miou(pooled),
                  "iou": [None if np.isnan(v) else float(v) for v in iou(pooled)]}
    return out


def recovery(result, hr="hr", lr="lr", ar="ar"):
    """The share of the HR-LR gap AR wins back, (AR - LR) / (HR - LR): on the mean over d, and per d
    (None where HR and LR tie)."""
    def share(a, lo, hi):
        return None if abs(hi - lo) < 1e-12 else (a - lo) / (hi - lo)
    per = [share(a, lo, hi) for a, lo, hi in zip(result[ar]["per_distance"], result[lr]["per_distance"],
                                                 result[hr]["per_distance"])]
    return {"mean": share(result[ar]["mean"], result[lr]["mean"], result[hr]["mean"]), "per_distance": per}


def format_table(result, classes=None):
    modes = list(result)
    gop = len(result[modes[0]]["per_distance"])
    lines = ["mode    " + " ".join(f"d={d:<4d}" for d in range(gop)) + "  mean   pooled"]
    for m in modes:
        r = result[m]
        lines.append(f"{m:<7s} " + " ".join(f"{100 * v:6.2f}" for v in r["per_distance"])
                     + f"  {100 * r['mean']:6.2f} {100 * r['pooled']:6.2f}")
    if classes:
        lines.append("per-class IoU (pooled): " + "; ".join(
            f"{c}: "
            + "/".join("-" if result[m]["iou"][i] is None else f"{100 * result[m]['iou'][i]:.1f}" for m in modes)
            for i, c in enumerate(classes)) + f"  ({'/'.join(modes)})")
    return "\n".join(lines)
