"""CReFF in PyTorch, two ways.

- `creff_reference`: the reference formulation of docs/method.md ("CReFF, step by step"), as the official
  implementation computes it: bilinear upsampling with align_corners=True, grid_sample warping
  with zero padding, zero-padded depthwise 3x3 convolutions, unfold-based local attention
  (materialising the K*K unfolded keys and values), residual. The native kernels are tested
  against the goldens it writes (tools/make_creff_goldens.py).
- `CReFFGraph`: the same computation written with standard ONNX operators only (K*K shifted
  slices instead of unfold), exported to ONNX so ONNX Runtime's speed can be compared with the
  native kernels (bench/creff.js).

Sampling: 'exact' samples the keyframe at p + M(p) in pixels (docs/method.md); 'official' reproduces
the official code, which normalises the grid by W-1 and H-1 but calls grid_sample with
align_corners=False (a shift of up to half a pixel).
"""
import torch
import torch.nn.functional as F


def _grid(motion, sampling):
    """motion: (N, 2, H, W) pixels -> grid_sample grid (N, H, W, 2), for align_corners=False."""
    n, _, h, w = motion.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=motion.dtype), torch.arange(w, dtype=motion.dtype), indexing="ij"
    )
    px = xs.unsqueeze(0) + motion[:, 0]
    py = ys.unsqueeze(0) + motion[:, 1]
    if sampling == "exact":
        # align_corners=False maps g to ((g + 1) * size - 1) / 2: this g lands on px exactly.
        gx = (2 * px + 1) / w - 1
        gy = (2 * py + 1) / h - 1
    elif sampling == "official":
        gx = 2 * px / (w - 1) - 1
        gy = 2 * py / (h - 1) - 1
    else:
        raise ValueError(f"unknown sampling {sampling!r}")
    return torch.stack([gx, gy], dim=-1)


def warp(feature, motion, sampling="exact"):
    return F.grid_sample(
        feature, _grid(motion, sampling), mode="bilinear", padding_mode="zeros", align_corners=False
    )


def depthwise(x, weight, bias):
    return F.conv2d(x, weight, bias, padding=1, groups=x.shape[1])


def creff_reference(lr, key, motion, q, k, v, window=7, sampling="exact", mode="exact"):
    """lr (N,C,h,w), key (N,C,H,W), motion (N,2,H,W); q, k, v: (weight (C,1,3,3), bias (C,))."""
    n, c, h, w = key.shape
    u = F.interpolate(lr, size=(h, w), mode="bilinear", align_corners=True)
    if mode == "exact":
        fw = warp(key, motion, sampling)
        kf, vf = depthwise(fw, *k), depthwise(fw, *v)
    elif mode == "keyframe-conv":
        kf, vf = warp(depthwise(key, *k), motion, sampling), warp(depthwise(key, *v), motion, sampling)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    qf = depthwise(u, *q)
    r = window // 2
    kk = window * window
    k_unf = F.unfold(kf, window, padding=r).view(n, c, kk, h * w)
    v_unf = F.unfold(vf, window, padding=r).view(n, c, kk, h * w)
    scores = (qf.view(n, c, 1, h * w) * k_unf).sum(1)  # (N, K*K, HW)
    attn = torch.softmax(scores, dim=1)
    fused = (attn.unsqueeze(1) * v_unf).sum(2).view(n, c, h, w)
    return u + fused


class CReFFGraph(torch.nn.Module):
    """CReFF with ONNX-standard operators (Resize, GridSample, Conv, Pad, Slice, Softmax...)."""

    def __init__(self, q, k, v, window=7):
        super().__init__()
        self.window = window
        for name, (wt, b) in {"q": q, "k": k, "v": v}.items():
            self.register_buffer(f"{name}_weight", wt.clone())
            self.register_buffer(f"{name}_bias", b.clone())

    def forward(self, lr, key, motion):
        n, c, h, w = key.shape
        u = F.interpolate(lr, size=(h, w), mode="bilinear", align_corners=True)
        # exact sampling, written without meshgrid so the export stays shape-generic
        xs = torch.arange(w, dtype=key.dtype).view(1, 1, w).expand(1, h, w)
        ys = torch.arange(h, dtype=key.dtype).view(1, h, 1).expand(1, h, w)
        gx = (2 * (xs + motion[:, 0]) + 1) / w - 1
        gy = (2 * (ys + motion[:, 1]) + 1) / h - 1
        fw = F.grid_sample(key, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="zeros", align_corners=False)
        qf = F.conv2d(u, self.q_weight, self.q_bias, padding=1, groups=c)
        kf = F.conv2d(fw, self.k_weight, self.k_bias, padding=1, groups=c)
        vf = F.conv2d(fw, self.v_weight, self.v_bias, padding=1, groups=c)
        r = self.window // 2
        kp = F.pad(kf, (r, r, r, r))
        vp = F.pad(vf, (r, r, r, r))
        scores = []
        for dy in range(self.window):
            for dx in range(self.window):
                scores.append((qf * kp[:, :, dy : dy + h, dx : dx + w]).sum(1, keepdim=True))
        attn = torch.softmax(torch.cat(scores, 1), dim=1)
        out = u
        i = 0
        for dy in range(self.window):
            for dx in range(self.window):
                out = out + attn[:, i : i + 1] * vp[:, :, dy : dy + h, dx : dx + w]
                i += 1
        return out
