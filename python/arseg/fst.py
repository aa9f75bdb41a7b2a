"""The AR-Seg networks as FST trains them (docs/method.md, "FST: training"), and their forward passes.

- HR network: a PSPNet (pspnet.py) at full resolution; its final_conv is THE decoder.
- LR network: a PSPNet with its own encoder weights whose decoder is the HR network's
  final_conv (shared, frozen once the HR network is trained). It runs on the frame downscaled by
  `scale`; its logits are upsampled to the frame size with align_corners=True (as the pipeline).
- CReFF: three depthwise 3x3 convolutions with bias (q, k, v), window K, creff.py's reference
  formulation with 'exact' sampling. `fuse()` is CReFF after the warp: training warps the
  keyframe's HR feature once per pair (the HR branch is frozen) and crops the warped feature, so
  that motion pointing outside a crop still finds the keyframe's feature; `fuse(lr, warp(key,
  motion))` is `creff_reference(lr, key, motion)` exactly (tested).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .creff import creff_reference, depthwise, warp
from .pspnet import PSPNet

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalise(rgb):
    """uint8 N x H x W x 3 (numpy or tensor) -> float32 N x 3 x H x W, as the bundle's input spec."""
    x = torch.from_numpy(np.array(rgb, np.uint8, copy=True)) if not torch.is_tensor(rgb) else rgb
    x = x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def upsample(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class LocalAttention(torch.autograd.Function):
    """CReFF's attention (docs/method.md, "CReFF, step by step", step 4): out(p) = sum over the K x K offsets o of
    softmax_o(sum_c q(c, p) k(c, p + o)) v(:, p + o), k and v zero outside the image (an
    out-of-image offset scores 0 and stays in the softmax).

    One offset at a time over whole (N, C, H, W) slices of the zero-padded k and v, with the
    backward pass written out: it keeps only q, the padded k and v and the N x K*K x H x W
    weights, where autograd through F.unfold keeps several N x C x K*K x H x W tensors (about
    6x faster on a CPU; python/tests/test_train.py checks it against creff.py and gradcheck)."""

    @staticmethod
    def forward(ctx, q, k, v, window):
        n, c, h, w = q.shape
        r, kk = window // 2, window * window
        kp, vp = F.pad(k, (r, r, r, r)), F.pad(v, (r, r, r, r))
        scores = q.new_empty(n, kk, h, w)
        tmp = torch.empty_like(q)
        for i in range(kk):
            dy, dx = divmod(i, window)
            torch.mul(q, kp[:, :, dy:dy + h, dx:dx + w], out=tmp)
            torch.sum(tmp, 1, out=scores[:, i])
        attn = torch.softmax(scores, 1)
        out = torch.zeros_like(q)
        for i in range(kk):
            dy, dx = divmod(i, window)
            out.addcmul_(attn[:, i:i + 1], vp[:, :, dy:dy + h, dx:dx + w])
        ctx.save_for_backward(q, kp, vp, attn)
        ctx.window = window
        return out

    @staticmethod
    def backward(ctx, grad):
        q, kp, vp, attn = ctx.saved_tensors
        window = ctx.window
        n, c, h, w = q.shape
        r, kk = window // 2, window * window
        grad = grad.contiguous()
        dattn = torch.empty_like(attn)
        tmp = torch.empty_like(q)
        dvp = torch.zeros_like(vp)
        for i in range(kk):
            dy, dx = divmod(i, window)
            torch.mul(grad, vp[:, :, dy:dy + h, dx:dx + w], out=tmp)
            torch.sum(tmp, 1, out=dattn[:, i])
            dvp[:, :, dy:dy + h, dx:dx + w].addcmul_(attn[:, i:i + 1], grad)
        dscores = attn * (dattn - (attn * dattn).sum(1, keepdim=True))  # softmax backward
        dq = torch.zeros_like(q)
        dkp = torch.zeros_like(kp)
        for i in range(kk):
            dy, dx = divmod(i, window)
            dq.addcmul_(dscores[:, i:i + 1], kp[:, :, dy:dy + h, dx:dx + w])
            dkp[:, :, dy:dy + h, dx:dx + w].addcmul_(dscores[:, i:i + 1], q)
        return dq, dkp[:, :, r:r + h, r:r + w], dvp[:, :, r:r + h, r:r + w], None


class CReFF(nn.Module):
    def __init__(self, channels, window=7, sampling="exact"):
        super().__init__()
        self.window, self.sampling = window, sampling
        self.q = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.k = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.v = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def weights(self):
        return {n: (getattr(self, n).weight, getattr(self, n).bias) for n in "qkv"}

    def forward(self, lr, key, motion):
        """The reference formulation on the raw keyframe feature and motion (evaluation)."""
        w = self.weights()
        return creff_reference(lr, key, motion, w["q"], w["k"], w["v"], window=self.window, sampling=self.sampling)

    def fuse(self, lr, warped):
        """CReFF given the already warped keyframe feature Fw (N x C x H x W)."""
        c = warped.shape[1]
        u = upsample(lr, warped.shape[2:])
        qf = depthwise(u, self.q.weight, self.q.bias)
        kf = depthwise(warped, self.k.weight, self.k.bias)
        vf = depthwise(warped, self.v.weight, self.v.bias)
        assert qf.shape[1] == c
        return u + LocalAttention.apply(qf, kf, vf, self.window)

    def warp(self, key, motion):
        return warp(key, motion, self.sampling)

    def warp_crop(self, key, motion, y0, x0):
        """The crop at (y0, x0) of warp(key, full motion field), from the full keyframe feature
        key (N, C, H, W) and the crop of the motion field (N, 2, h, w): exactly what warping the
        whole frame and cropping gives (motion pointing outside the crop still finds the
        keyframe's feature), at the cost of the crop."""
        n, _, hk, wk = key.shape
        h, w = motion.shape[2:]
        ys, xs = torch.meshgrid(torch.arange(h, dtype=motion.dtype) + y0, torch.arange(w, dtype=motion.dtype) + x0,
                                indexing="ij")
        px, py = xs + motion[:, 0], ys + motion[:, 1]
        if self.sampling == "exact":
            gx, gy = (2 * px + 1) / wk - 1, (2 * py + 1) / hk - 1
        else:
            gx, gy = 2 * px / (wk - 1) - 1, 2 * py / (hk - 1) - 1
        return F.grid_sample(key, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="zeros", align_corners=False)


def make_networks(classes, width, window=7):
    """HR network, LR network sharing its decoder, CReFF: all randomly initialised."""
    hr = PSPNet(n_classes=classes, width=width)
    lr = PSPNet(n_classes=classes, width=width)
    lr.final_conv = hr.final_conv
    creff = CReFF(hr.feature_channels, window)
    return hr, lr, creff


def encoder_parameters(net):
    """An encoder's parameters: everything but the decoder (final_conv) and the unused auxiliary head."""
    return [p for n, p in net.named_parameters() if not n.startswith(("final_conv.", "classifier."))]


def encoder_state(net):
    return {k: v for k, v in net.state_dict().items() if not k.startswith(("final_conv.", "classifier."))}


def lr_logits(lr_net, lr_image, size):
    """LR branch alone: logits at the frame size."""
    return upsample(lr_net(lr_image), size)


def ar_feature(lr_net, creff, lr_image, key_feature, motion):
    """The fused feature of a non-key frame: CReFF(LR feature, keyframe HR feature, motion)."""
    return creff(lr_net.encode(lr_image), key_feature, motion)
