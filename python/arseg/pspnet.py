"""PSPNet18 in the layout of the official AR-Seg implementation (docs/method.md, "Networks"): the CamVid
networks, `PSPNet` (HR; 'camvid-psp18-HR' in python/tests/fixtures/official-state-dicts.json) and
`PSPNetWithFuse` (LR: the same plus CReFF's fuse_attention; 'camvid-psp18-LR').

The module and parameter names follow the official state dicts (without DataParallel's `module.`
prefix): feats (a dilated ResNet-18, output stride 8: layer3 and layer4 keep stride 1, their
first block undilated and their second dilated 2 and 4, as the official extractors.resnet18),
psp (pyramid pooling, bins 1, 2, 3, 6), up_1..3 (x2 bilinear, 3x3 conv, batch norm, PReLU),
final_conv (the 1x1 decoder), classifier (the auxiliary head, unused at inference), and for the
LR network fuse_attention (arseg.fuse.FuseAttention, 64 channels). `width` scales every channel
count, for small test models; width=1 is the official network (python/tests/test_official_layout.py
checks every key and shape against the json).

For export, `encode()` and `decode()` split the network where AR-Seg splits it: the encoder ends
with feature p (up_3's output, 64 channels at the input's resolution: feature stride 1), the
decoder is final_conv. `official_forward()` is the official forward's main output:
log_softmax of the logits upsampled to the input size with align_corners=True (an identity
resize when the input is a multiple of 8, which the bundle's sizeMultiple 8 ensures).
Adaptive average pooling is written with slices so that ONNX export keeps spatial sizes
dynamic; it computes exactly what nn.AdaptiveAvgPool2d computes.

Official behaviour followed where it is implicit: the pyramid's and the up-blocks' bilinear
upsampling call F.upsample without align_corners, which in the official environment (PyTorch
1.7, environment.yml) means align_corners=False; so they use align_corners=False. Dropout
layers (drop_1, drop_2) hold no weights and are identities at inference: they are left out.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .fuse import FuseAttention


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class DilatedResNet18(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        c = [max(1, int(round(n * width))) for n in (64, 128, 256, 512)]
        self.inplanes = c[0]
        self.conv1 = nn.Conv2d(3, c[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(c[0], 2)
        self.layer2 = self._make_layer(c[1], 2, stride=2)
        self.layer3 = self._make_layer(c[2], 2, dilation=2)
        self.layer4 = self._make_layer(c[3], 2, dilation=4)
        self.channels = c[3]

    def _make_layer(self, planes, blocks, stride=1, dilation=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x3 = self.layer3(x)
        return self.layer4(x3), x3


class AdaptiveAvgPool(nn.Module):
    """nn.AdaptiveAvgPool2d(size) with slices, so that ONNX export keeps H and W dynamic."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        rows = []
        for i in range(self.size):
            y0, y1 = (i * h) // self.size, ((i + 1) * h + self.size - 1) // self.size
            cols = []
            for j in range(self.size):
                x0, x1 = (j * w) // self.size, ((j + 1) * w + self.size - 1) // self.size
                cols.append(x[:, :, y0:y1, x0:x1].mean(dim=(2, 3), keepdim=True))
            rows.append(torch.cat(cols, 3))
        return torch.cat(rows, 2)


class PSPModule(nn.Module):
    def __init__(self, features, out_features, sizes=(1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList(
            [nn.Sequential(AdaptiveAvgPool(s), nn.Conv2d(features, features, 1, bias=False)) for s in sizes]
        )
        self.bottleneck = nn.Conv2d(features * (len(sizes) + 1), out_features, 1)
        self.relu = nn.ReLU()

    def forward(self, feats):
        h, w = feats.shape[2], feats.shape[3]
        priors = [F.interpolate(stage(feats), size=(h, w), mode="bilinear", align_corners=False)
                  for stage in self.stages]
        return self.relu(self.bottleneck(torch.cat(priors + [feats], 1)))


class PSPUpsample(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                                  nn.PReLU())

    def forward(self, x):
        x = F.interpolate(x, size=(2 * x.shape[2], 2 * x.shape[3]), mode="bilinear", align_corners=False)
        return self.conv(x)


class PSPNet(nn.Module):
    """PSPNet(sizes=(1,2,3,6), n_classes=12, psp_size=512, deep_features_size=256, backend=resnet18)."""

    def __init__(self, n_classes=12, width=1.0, sizes=(1, 2, 3, 6)):
        super().__init__()
        s = lambda n: max(1, int(round(n * width)))  # noqa: E731
        self.feats = DilatedResNet18(width)
        self.psp = PSPModule(self.feats.channels, s(1024), sizes)
        self.up_1 = PSPUpsample(s(1024), s(256))
        self.up_2 = PSPUpsample(s(256), s(64))
        self.up_3 = PSPUpsample(s(64), s(64))
        self.final_conv = nn.Conv2d(s(64), n_classes, 1)
        self.classifier = nn.Sequential(nn.Linear(s(256), 256), nn.ReLU(), nn.Linear(256, n_classes))
        self.feature_channels = s(64)

    feature_stride = 1  # feature p has the input's resolution
    size_multiple = 8  # the backbone's output stride: up_1..3 return exactly to the input size

    def encode(self, x):
        f, _ = self.feats(x)
        return self.up_3(self.up_2(self.up_1(self.psp(f))))

    def decode(self, feature):
        return self.final_conv(feature)

    def upsample_logits(self, logits, size):
        """The official final resize: bilinear to the input size, align_corners=True."""
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)

    def official_forward(self, x):
        """The official forward's main output (log-probabilities at the input size)."""
        return F.log_softmax(self.upsample_logits(self.decode(self.encode(x)), x.shape[2:]), dim=1)

    def forward(self, x):
        return self.final_conv(self.encode(x))


class PSPNetWithFuse(PSPNet):
    """PSPNetWithFuse(sizes=(1,2,3,6), n_classes=12, psp_size=512, deep_features_size=256,
    backend=resnet18, atten_k=7): the LR network, PSPNet plus fuse_attention (CReFF) on feature p.
    Its final_conv is the HR network's (shared, frozen in training)."""

    def __init__(self, n_classes=12, width=1.0, sizes=(1, 2, 3, 6), window=7):
        super().__init__(n_classes, width, sizes)
        self.fuse_attention = FuseAttention(self.feature_channels, window)

    def fuse(self, lr_feature, key_feature, motion, sampling="exact"):
        return self.fuse_attention.fuse(lr_feature, key_feature, motion, sampling)


class Encoder(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return self.net.encode(image)


class Decoder(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.final_conv = net.final_conv

    def forward(self, feature):
        return self.final_conv(feature)


def randomise_batchnorm(net, generator):
    """Gives batch norms non-trivial statistics, so an export test exercises them."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


def random_ar_networks(width, seed):
    """HR and LR networks of the given width, randomly initialised with batch norms given
    statistics, the LR network sharing the HR decoder, and CReFF's q/k/v depthwise convolutions
    as nn.Conv2d initialises them: what a bundle needs, for tests and cost measurements.
    Deterministic for a seed."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    hr, lr = PSPNet(width=width).eval(), PSPNet(width=width).eval()
    randomise_batchnorm(hr, gen)
    randomise_batchnorm(lr, gen)
    lr.final_conv = hr.final_conv  # the decoder is shared
    c = hr.feature_channels
    creff = {}
    for name in "qkv":
        conv = nn.Conv2d(c, c, 3, padding=1, groups=c)
        creff[name] = (conv.weight.detach(), conv.bias.detach())
    return hr, lr, creff
