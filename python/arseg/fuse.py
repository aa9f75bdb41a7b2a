"""CReFF as the official LR networks hold it: the module `fuse_attention` with three depthwise 3x3
convolutions (with bias) named lr_query_conv, hr_key_conv and hr_value_conv, whose state-dict
keys are fuse_attention.{lr_query_conv,hr_key_conv,hr_value_conv}.{weight,bias}, weights
C x 1 x 3 x 3 (python/tests/fixtures/official-state-dicts.json).

`FuseAttention.forward(hr_feat, lr_feat)` takes the arguments the official module takes: the
keyframe's HR feature ALREADY WARPED to the current frame, and the LR feature. It computes
docs/method.md's steps 1 and 3-5: U = bilinear upsampling of the LR feature to the HR feature's size
(align_corners=True, as the official code), Q = q(U), K = k(warped), V = v(warped), zero padding;
a softmax over the K x K window of Q.K scores, with out-of-image offsets scoring exactly 0 and
taking part in the softmax (the official CUDA extension's zero-padded window); output U + A.
`fuse(lr, key, motion)` adds the warp (step 2) with arseg.creff.warp, 'exact' sampling by
default (docs/method.md) or the official code's 'official' sampling.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .creff import warp


def local_attention(q, k, v, window):
    """q, k, v: (N, C, H, W). Softmax over the window's Q.K scores, zero outside the image."""
    n, c, h, w = q.shape
    r = window // 2
    kk = window * window
    k_unf = F.unfold(k, window, padding=r).view(n, c, kk, h * w)
    v_unf = F.unfold(v, window, padding=r).view(n, c, kk, h * w)
    scores = (q.view(n, c, 1, h * w) * k_unf).sum(1)
    attn = torch.softmax(scores, dim=1)
    return (attn.unsqueeze(1) * v_unf).sum(2).view(n, c, h, w)


class FuseAttention(nn.Module):
    def __init__(self, channels, window=7):
        super().__init__()
        self.window = window
        self.lr_query_conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.hr_key_conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.hr_value_conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, hr_feat, lr_feat):
        u = F.interpolate(lr_feat, size=hr_feat.shape[2:], mode="bilinear", align_corners=True)
        a = local_attention(self.lr_query_conv(u), self.hr_key_conv(hr_feat), self.hr_value_conv(hr_feat), self.window)
        return u + a

    def fuse(self, lr_feat, key_feat, motion, sampling="exact"):
        """CReFF with the warp: motion (N, 2, H, W) in HR-feature pixels, accumulated to the keyframe."""
        return self(warp(key_feat, motion, sampling), lr_feat)

    def weights(self):
        """{'q'|'k'|'v': (weight (C,1,3,3), bias (C,))}: the form export_bundle and creff_reference take."""
        convs = {"q": self.lr_query_conv, "k": self.hr_key_conv, "v": self.hr_value_conv}
        return {name: (conv.weight.detach(), conv.bias.detach()) for name, conv in convs.items()}
