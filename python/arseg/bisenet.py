"""BiSeNet18 (BiSeNetV1 with a ResNet-18 context path) in the layout of the official AR-Seg
implementation: `BiSeNetV1` (HR; 'camvid-bise18-HR' in python/tests/fixtures/official-state-dicts.json)
and `BiSeNetV1WithFuse` (LR: the same plus CReFF's fuse_attention on 256 channels;
'camvid-bise18-LR'). Cityscapes uses the same layout with 19 classes.

Module tree (state-dict names without DataParallel's `module.` prefix):
- cp (context path): resnet (a plain ResNet-18: conv1/bn1, maxpool, layer1..4 with strides
  1, 2, 2, 2: features at 1/8, 1/16, 1/32), arm16 and arm32 (attention refinement: 3x3
  ConvBNReLU to 128, then a channel attention: global mean, 1x1 conv without bias, batch norm,
  sigmoid), conv_avg (1x1 ConvBNReLU on the global mean of the 1/32 feature), conv_head32 and
  conv_head16 (3x3 ConvBNReLU 128 -> 128).
- sp (spatial path): conv1 (7x7 stride 2), conv2, conv3 (3x3 stride 2), conv_out (1x1 to 128):
  128 channels at 1/8.
- ffm (feature fusion): convblk (1x1 ConvBNReLU 256 -> 256 on [sp, cp]), then a channel
  attention (global mean, conv 1x1 without bias, bn, sigmoid): out = feat * atten + feat.
- conv_out (BiSeNetOutput: conv = 3x3 ConvBNReLU 256 -> 256, conv_out = 1x1 256 -> classes, x8
  bilinear upsampling), with the official aliases feat_conv_out = conv_out.conv and
  final_conv = conv_out.conv_out (the same modules, hence both keys in the state dict).
- conv_out16, conv_out32: auxiliary heads on the context path's 1/8 and 1/16 outputs (3x3
  ConvBNReLU 128 -> 64, 1x1 to classes), training only.
- LR only: fuse_attention (arseg.fuse.FuseAttention, 256 channels).
Every ConvBNReLU is conv (no bias), bn, relu; keys <name>.conv.weight and <name>.bn.*.

The split for a bundle ("encoder" / "decoder"), exactly where the official LR network applies
CReFF (its forward_phase1 / forward_phase2):
- encoder: cp, sp (resized to the context path's 1/8 size), ffm, then feat_conv_out: the
  256-channel feature at 1/8 of the input (official `middle_feat`). Feature stride 8.
- decoder: final_conv, the 1x1 classifier, at the feature's resolution.
The official main output is out_upsample(final_conv(feature)): x8 bilinear with
align_corners=False (nn.Upsample's default). `official_forward()` computes it and
python/tests/test_official_layout.py checks it equals upsample_logits(decode(encode(x))).
The bundle records it (manifest logitsUpsampling: 'half-pixel'), and the Node pipeline resizes
the decoder's logits to the frame with the same coordinate map before the arg-max.

Official behaviour followed where it is implicit or unusual:
- the context path's up32/up16 are nn.Upsample(scale_factor=2) with the default mode, nearest;
  the x2 1/32 feature is then resized to the 1/16 size bilinearly with align_corners=True; the
  1/16 branch is not resized again (so the context path's "1/8" output is twice the 1/16 size);
- the spatial path's output is resized to the context path's 1/8 output bilinearly with
  align_corners=True.
So the feature is exactly 1/8 of the input when the input is a multiple of 16 (the bundle's
sizeMultiple); otherwise it can be one cell larger, as in the official network.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .fuse import FuseAttention


def _scaled(width):
    return lambda n: max(1, int(round(n * width)))


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, ks=3, stride=1, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        residual = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(shortcut + residual)


class ResNet18(nn.Module):
    """Plain ResNet-18 trunk: features at 1/8, 1/16 and 1/32."""

    def __init__(self, width=1.0):
        super().__init__()
        s = _scaled(width)
        c = [s(64), s(128), s(256), s(512)]
        self.conv1 = nn.Conv2d(3, c[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(c[0], c[0]), BasicBlock(c[0], c[0]))
        self.layer2 = nn.Sequential(BasicBlock(c[0], c[1], 2), BasicBlock(c[1], c[1]))
        self.layer3 = nn.Sequential(BasicBlock(c[1], c[2], 2), BasicBlock(c[2], c[2]))
        self.layer4 = nn.Sequential(BasicBlock(c[2], c[3], 2), BasicBlock(c[3], c[3]))
        self.channels = c

    def forward(self, x):
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


def _channel_attention(feat, conv, bn):
    return torch.sigmoid(bn(conv(feat.mean(dim=(2, 3), keepdim=True))))


class AttentionRefinementModule(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout, 3, 1, 1)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        return feat * _channel_attention(feat, self.conv_atten, self.bn_atten)


class ContextPath(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        s = _scaled(width)
        self.resnet = ResNet18(width)
        c = self.resnet.channels
        self.arm16 = AttentionRefinementModule(c[2], s(128))
        self.arm32 = AttentionRefinementModule(c[3], s(128))
        self.conv_head32 = ConvBNReLU(s(128), s(128), 3, 1, 1)
        self.conv_head16 = ConvBNReLU(s(128), s(128), 3, 1, 1)
        self.conv_avg = ConvBNReLU(c[3], s(128), 1, 1, 0)

    def forward(self, x):
        _, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        feat32_sum = self.arm32(feat32) + avg
        feat32_up = F.interpolate(feat32_sum, scale_factor=2.0, mode="nearest")
        feat32_up = F.interpolate(feat32_up, size=feat16.shape[2:], mode="bilinear", align_corners=True)
        feat32_up = self.conv_head32(feat32_up)
        feat16_sum = self.arm16(feat16) + feat32_up
        feat16_up = self.conv_head16(F.interpolate(feat16_sum, scale_factor=2.0, mode="nearest"))
        return feat16_up, feat32_up  # at 1/8 and 1/16


class SpatialPath(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        s = _scaled(width)
        self.conv1 = ConvBNReLU(3, s(64), 7, 2, 3)
        self.conv2 = ConvBNReLU(s(64), s(64), 3, 2, 1)
        self.conv3 = ConvBNReLU(s(64), s(64), 3, 2, 1)
        self.conv_out = ConvBNReLU(s(64), s(128), 1, 1, 0)

    def forward(self, x):
        return self.conv_out(self.conv3(self.conv2(self.conv1(x))))


class FeatureFusionModule(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, fsp, fcp):
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        return feat * _channel_attention(feat, self.conv, self.bn) + feat


class BiSeNetOutput(nn.Module):
    """conv (3x3 ConvBNReLU) then conv_out (1x1 classifier, with bias), then x up_factor bilinear
    upsampling with align_corners=False."""

    def __init__(self, cin, cmid, n_classes, up_factor):
        super().__init__()
        self.up_factor = up_factor
        self.conv = ConvBNReLU(cin, cmid, 3, 1, 1)
        self.conv_out = nn.Conv2d(cmid, n_classes, 1, bias=True)

    def upsample(self, x):
        return F.interpolate(x, scale_factor=float(self.up_factor), mode="bilinear", align_corners=False)

    def forward(self, x):
        return self.upsample(self.conv_out(self.conv(x)))


class BiSeNetV1(nn.Module):
    """BiSeNetV1(n_classes=12, backend=resnet18), aux_mode='train' (the auxiliary heads exist, as
    in the official checkpoints)."""

    feature_stride = 8
    size_multiple = 16
    logits_upsampling = "half-pixel"  # out_upsample: align_corners=False

    def __init__(self, n_classes=12, width=1.0):
        super().__init__()
        s = _scaled(width)
        self.cp = ContextPath(width)
        self.sp = SpatialPath(width)
        self.ffm = FeatureFusionModule(2 * s(128), s(256))
        self.conv_out = BiSeNetOutput(s(256), s(256), n_classes, up_factor=8)
        self.feat_conv_out = self.conv_out.conv  # official aliases: same modules, two names each
        self.final_conv = self.conv_out.conv_out
        self.conv_out16 = BiSeNetOutput(s(128), s(64), n_classes, up_factor=8)
        self.conv_out32 = BiSeNetOutput(s(128), s(64), n_classes, up_factor=16)
        self.feature_channels = s(256)

    def _context_and_spatial(self, x):
        feat_cp8, feat_cp16 = self.cp(x)
        feat_sp = F.interpolate(self.sp(x), size=feat_cp8.shape[2:], mode="bilinear", align_corners=True)
        return feat_cp8, feat_cp16, feat_sp

    def encode(self, x):
        feat_cp8, _, feat_sp = self._context_and_spatial(x)
        return self.feat_conv_out(self.ffm(feat_sp, feat_cp8))

    def decode(self, feature):
        return self.final_conv(feature)

    def upsample_logits(self, logits, size=None):
        """The official final resize (out_upsample): x8 bilinear, align_corners=False."""
        return self.conv_out.upsample(logits)

    def official_forward(self, x):
        """The official forward's main output: x8-upsampled logits."""
        return self.upsample_logits(self.decode(self.encode(x)))

    def aux_forward(self, x):
        """The official training outputs: (main, out16, out32, feature)."""
        feat_cp8, feat_cp16, feat_sp = self._context_and_spatial(x)
        feature = self.feat_conv_out(self.ffm(feat_sp, feat_cp8))
        main = self.upsample_logits(self.decode(feature))
        return main, self.conv_out16(feat_cp8), self.conv_out32(feat_cp16), feature

    def forward(self, x):
        return self.decode(self.encode(x))


class BiSeNetV1WithFuse(BiSeNetV1):
    """BiSeNetV1WithFuse(n_classes=12, backend=resnet18, atten_k=7): the LR network, plus
    fuse_attention (CReFF) on the 256-channel feature. Its final_conv is the HR network's."""

    def __init__(self, n_classes=12, width=1.0, window=7):
        super().__init__(n_classes, width)
        self.fuse_attention = FuseAttention(self.feature_channels, window)

    def fuse(self, lr_feature, key_feature, motion, sampling="exact"):
        return self.fuse_attention.fuse(lr_feature, key_feature, motion, sampling)
