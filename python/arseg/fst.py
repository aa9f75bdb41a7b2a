"""The AR-Seg networks as FST trains them (method.md, "FST"), and their forward passes.

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
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def upsample(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


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
        """CReFF given the already warped keyframe feature Fw (N x C x H x W).

        The window is gathered one row of offsets at a time (a strided view of the zero-padded
        K and V, contracted with einsum) rather than with F.unfold over the whole window: the
        same sums, about 2.5x faster on a CPU and with a seventh of the temporary memory."""
        n, c, h, w = warped.shape
        u = upsample(lr, (h, w))
        qf = depthwise(u, self.q.weight, self.q.bias)
        kf = depthwise(warped, self.k.weight, self.k.bias)
        vf = depthwise(warped, self.v.weight, self.v.bias)
        kw, r = self.window, self.window // 2
        kp, vp = F.pad(kf, (r, r, r, r)), F.pad(vf, (r, r, r, r))  # zeros outside the image
        scores = [torch.einsum("nchw,nchwk->nhwk", qf, kp[:, :, dy:dy + h].unfold(3, kw, 1)) for dy in range(kw)]
        attn = torch.softmax(torch.cat(scores, -1), -1)  # N x H x W x K*K, offsets row-major
        out = u
        for dy in range(kw):
            out = out + torch.einsum("nhwk,nchwk->nchw", attn[..., dy * kw:(dy + 1) * kw],
                                     vp[:, :, dy:dy + h].unfold(3, kw, 1))
        return out

    def warp(self, key, motion):
        return warp(key, motion, self.sampling)


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
