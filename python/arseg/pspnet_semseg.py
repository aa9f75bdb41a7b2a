"""The Cityscapes PSPNet18 of the official AR-Seg implementation, in its "semseg" layout (after
hszhao/semseg's PSPNet): `PSPNetSemseg` (HR) and `PSPNetSemsegWithFuse` (LR,
'cityscapes-psp18-LR: pspnet_semseg.PSPNetWithFuse(bins=(1,2,3,6), classes=19, feat_dim=512,
layers=18)' in python/tests/fixtures/official-state-dicts.json). The HR checkpoint has the same keys
minus fuse_attention (the official convert_model_for_cityscapes.py adds the final_conv alias to
the semseg checkpoint).

Module tree (state-dict names without DataParallel's `module.` prefix):
- layer0 = (conv1 7x7 stride 2, bn1, relu, maxpool), layer1..4: a ResNet-18 with layer3 and
  layer4 at stride 1. The official code builds it from its extractors.resnet18 (whose layer3
  and layer4 have an undilated first block and a second block dilated 2 and 4) and then sets
  the dilation of every block's conv2 in layer3 to 2 and in layer4 to 4 (with the padding).
  So: layer3.0.conv1 dilation 1, layer3.0.conv2 2, layer3.1.conv1 2, layer3.1.conv2 2; layer4
  likewise with 4. Output stride 8.
- ppm.features.{0..3} = (adaptive average pool to 1, 2, 3, 6; 1x1 conv 512 -> 128 without bias;
  batch norm; relu), each resized back bilinearly with align_corners=True and concatenated after
  the input: 1024 channels.
- cls = (3x3 conv 1024 -> 512 without bias, batch norm, relu, dropout, 1x1 conv 512 -> classes);
  final_conv is the alias of cls.4 (the same module, both keys in the state dict).
- aux = (3x3 conv 256 -> 256 without bias, bn, relu, dropout, 1x1 to classes) on layer3's
  output: the training-time auxiliary head.
- LR only: fuse_attention (arseg.fuse.FuseAttention, 512 channels).

The split for a bundle, where the official LR network applies CReFF (forward_phase1/phase2):
- encoder: layer0..layer4, ppm, cls[:4] (conv, bn, relu, dropout = identity at inference): the
  512-channel feature p at 1/8 of the input. Feature stride 8 (exact for inputs that are a
  multiple of 8; the bundle's sizeMultiple).
- decoder: final_conv (= cls.4), the 1x1 classifier.
The official main output resizes the logits to the input size bilinearly with
align_corners=True: the same resize the Node pipeline applies (to the frame size).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .fuse import FuseAttention
from .pspnet import AdaptiveAvgPool, BasicBlock


def _scaled(width):
    return lambda n: max(1, int(round(n * width)))


class PPM(nn.Module):
    def __init__(self, in_dim, reduction_dim, bins):
        super().__init__()
        self.features = nn.ModuleList(
            [
                nn.Sequential(
                    AdaptiveAvgPool(b),
                    nn.Conv2d(in_dim, reduction_dim, 1, bias=False),
                    nn.BatchNorm2d(reduction_dim),
                    nn.ReLU(inplace=True),
                )
                for b in bins
            ]
        )

    def forward(self, x):
        size = x.shape[2:]
        out = [x] + [F.interpolate(f(x), size=size, mode="bilinear", align_corners=True) for f in self.features]
        return torch.cat(out, 1)


class PSPNetSemseg(nn.Module):
    """pspnet_semseg.PSPNet(layers=18, bins=(1,2,3,6), classes=19, feat_dim=512), with the
    final_conv alias the official conversion adds."""

    feature_stride = 8
    size_multiple = 8

    def __init__(self, n_classes=19, width=1.0, bins=(1, 2, 3, 6)):
        super().__init__()
        s = _scaled(width)
        c = [s(64), s(128), s(256), s(512)]
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, c[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(c[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.layer1 = self._layer(c[0], c[0])
        self.layer2 = self._layer(c[0], c[1], stride=2)
        self.layer3 = self._layer(c[1], c[2], dilation=2)
        self.layer4 = self._layer(c[2], c[3], dilation=4)
        reduction = c[3] // len(bins)
        self.ppm = PPM(c[3], reduction, bins)
        mid = s(512)
        self.cls = nn.Sequential(
            nn.Conv2d(c[3] + reduction * len(bins), mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Dropout2d(p=0.1),
            nn.Conv2d(mid, n_classes, 1),
        )
        self.final_conv = self.cls[4]
        self.aux = nn.Sequential(
            nn.Conv2d(c[2], s(256), 3, padding=1, bias=False),
            nn.BatchNorm2d(s(256)),
            nn.ReLU(inplace=True),
            nn.Dropout2d(p=0.1),
            nn.Conv2d(s(256), n_classes, 1),
        )
        self.feature_channels = mid

    @staticmethod
    def _layer(cin, cout, stride=1, dilation=1):
        downsample = None
        if stride != 1 or cin != cout:
            downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        first = BasicBlock(cin, cout, stride, downsample)
        second = BasicBlock(cout, cout, dilation=dilation)
        if dilation > 1:  # the official post-hoc change: every conv2 of the layer dilated
            first.conv2.dilation, first.conv2.padding = (dilation, dilation), (dilation, dilation)
        return nn.Sequential(first, second)

    def _trunk(self, x):
        x = self.layer2(self.layer1(self.layer0(x)))
        x3 = self.layer3(x)
        return self.layer4(x3), x3

    def encode(self, x):
        x, _ = self._trunk(x)
        return self.cls[:4](self.ppm(x))

    def decode(self, feature):
        return self.final_conv(feature)

    def upsample_logits(self, logits, size):
        """The official final resize: bilinear to the input size, align_corners=True."""
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)

    def official_forward(self, x):
        """The official forward's main output: logits at the input size."""
        return self.upsample_logits(self.decode(self.encode(x)), x.shape[2:])

    def aux_forward(self, x):
        """The official training outputs: (main, aux, feature)."""
        x4, x3 = self._trunk(x)
        feature = self.cls[:4](self.ppm(x4))
        size = x.shape[2:]
        return self.upsample_logits(self.decode(feature), size), self.upsample_logits(self.aux(x3), size), feature

    def forward(self, x):
        return self.decode(self.encode(x))


class PSPNetSemsegWithFuse(PSPNetSemseg):
    """pspnet_semseg.PSPNetWithFuse(layers=18, bins=(1,2,3,6), classes=19, feat_dim=512,
    atten_k=7): the LR network, plus fuse_attention (CReFF) on the 512-channel feature p."""

    def __init__(self, n_classes=19, width=1.0, bins=(1, 2, 3, 6), window=7):
        super().__init__(n_classes, width, bins)
        self.fuse_attention = FuseAttention(self.feature_channels, window)

    def fuse(self, lr_feature, key_feature, motion, sampling="exact"):
        return self.fuse_attention.fuse(lr_feature, key_feature, motion, sampling)
