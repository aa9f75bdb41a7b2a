"""A transcription of the official AR-Seg evaluation path (THU-LYJ-Lab/AR-Seg: evaluation.py's
EvalConstRes and EvalAlterRes, warpFeature, the data loaders' ToTensor + Normalize, the networks'
forward, forward_phase1 and forward_phase2), for the official-layout networks of arseg.official
(whose modules python/tests/test_official_layout.py checks against the official key layout).
Written from the official code step by step, in its order and dtypes (the motion in float64, as
the loaders give it); nothing here comes from this project's pipeline, which test_official_end_to_end.py
compares with it.

Per frame, from the decoded RGB frame (H x W x 3 uint8) and, off keyframes, the keyframe's frame
and the per-pixel motion to the keyframe (H x W x 2, pixels): the logits before the network's
upsampling (at the feature size), and the predicted labels at the frame (label) size.
"""
import torch
import torch.nn.functional as F


def to_tensor(rgb, mean, std):
    """transforms.ToTensor() then transforms.Normalize(mean, std), batched: (1, 3, H, W) float32."""
    x = torch.from_numpy(rgb).permute(2, 0, 1).contiguous().float().div(255)
    mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return x.sub(mean).div(std).unsqueeze(0)


def warp_feature(feature, flow):
    """evaluation.py warpFeature: flow (B, H, W, 2); the grid normalised by W-1 and H-1, sampled
    by grid_sample with its default align_corners=False (and zero padding)."""
    b, _, h, w = feature.shape
    flow = flow.permute(0, 3, 1, 2)
    xx = torch.arange(0, w).view(1, -1).repeat(h, 1)
    yy = torch.arange(0, h).view(-1, 1).repeat(1, w)
    xx = xx.view(1, 1, h, w).repeat(b, 1, 1, 1)
    yy = yy.view(1, 1, h, w).repeat(b, 1, 1, 1)
    grid = torch.cat((xx, yy), 1).float()
    vgrid = grid + flow
    vgrid[:, 0, :, :] = 2.0 * vgrid[:, 0, :, :].clone() / max(w - 1, 1) - 1.0
    vgrid[:, 1, :, :] = 2.0 * vgrid[:, 1, :, :].clone() / max(h - 1, 1) - 1.0
    vgrid = vgrid.permute(0, 2, 3, 1).float()
    return F.grid_sample(feature, vgrid, align_corners=False)


def resize_flow(flow, ref_p):
    """EvalAlterRes: the (1, H, W, 2) float64 flow to the keyframe feature's size, both components
    scaled by the height ratio, bilinear with align_corners=True."""
    flow = flow.transpose(2, 3).transpose(1, 2)
    flow = flow * ref_p.shape[-2] / flow.shape[-2]
    flow = F.interpolate(flow, [ref_p.shape[-2], ref_p.shape[-1]], mode="bilinear", align_corners=True)
    return flow.transpose(1, 2).transpose(2, 3)


class OfficialNetwork:
    """The official forward functions of one network of arseg.official ('psp18' or 'bise18'):
    forward(x) -> (main output, logits before upsampling, feature), as net(x)[0] and net(x)[-1]
    give them (the PSPNets: p; BiSeNet: feat_fuse, its 'middle_feat'); forward_phase1/2 as the
    LR networks define them."""

    def __init__(self, arch, net):
        self.arch, self.net = arch, net

    def _head(self, feature, size):
        logits = self.net.final_conv(feature)
        if self.arch == "bise18":  # out_upsample: nn.Upsample(scale_factor=8, bilinear, align_corners=False)
            return F.interpolate(logits, scale_factor=8.0, mode="bilinear", align_corners=False), logits
        # PSPNet (CamVid): interpolate to (H, W) with align_corners=True, then final_logsoftmax
        out = F.interpolate(logits, size, mode="bilinear", align_corners=True)
        return F.log_softmax(out, dim=1), logits

    def forward(self, x):
        p = self.forward_phase1(x)
        out, logits = self._head(p, x.shape[2:])
        return out, logits, p

    def forward_phase1(self, x):
        return self.net.encode(x)  # PSPNet: p after up_3; BiSeNet: feat_conv_out(ffm(...)), middle_feat

    def forward_phase2(self, p, ref_p):
        p = self.net.fuse_attention(ref_p, p)  # MyAttention.forward(hr_feat, lr_feat)
        out, logits = self._head(p, ref_p.shape[2:])
        return out, logits, p


def eval_const_res(net, rgb, mean, std, scale):
    """EvalConstRes for one frame: the input at int(H*scale) x int(W*scale) (align_corners=True),
    net(imgs)[0] resized to the label size (align_corners=True), softmax, argmax."""
    imgs = to_tensor(rgb, mean, std)
    n, c, h, w = imgs.shape
    imgs = F.interpolate(imgs, [int(h * scale), int(w * scale)], mode="bilinear", align_corners=True)
    out, logits, _ = net.forward(imgs)
    out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=True)
    return torch.argmax(torch.softmax(out, dim=1), dim=1)[0], logits, imgs


def eval_alter_res(highres_net, net, rgb, ref_rgb, flow, mean, std, scale, scores=False):
    """EvalAlterRes for one frame: the keyframe's HR feature, the flow resized and the feature
    warped, the LR input, forward_phase1 and forward_phase2 of the LR network, the output resized
    to the label size, softmax, argmax. flow: (H, W, 2) float64 pixels to the keyframe. With
    scores, also CReFF's largest |attention score| (attention_scores)."""
    imgs = to_tensor(rgb, mean, std)
    h, w = imgs.shape[2:]
    ref_p = highres_net.forward(to_tensor(ref_rgb, mean, std))[-1]
    flow = resize_flow(torch.as_tensor(flow, dtype=torch.float64).unsqueeze(0), ref_p)
    ref_p = warp_feature(ref_p, flow)
    lr = F.interpolate(imgs, [int(h * scale), int(w * scale)], mode="bilinear", align_corners=True)
    out_p = net.forward_phase1(lr)
    out, logits, _ = net.forward_phase2(out_p, ref_p)
    out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=True)
    labels = torch.argmax(torch.softmax(out, dim=1), dim=1)[0]
    if scores:
        return labels, logits, lr, float(attention_scores(net, out_p, ref_p).abs().max())
    return labels, logits, lr


def attention_scores(net, p, ref_p):
    """CReFF's attention scores (before the softmax) of forward_phase2(p, ref_p), as MyAttention
    computes them (f_similar: each position's query against the K x K window of keys, zero
    outside the image): (1, K*K, H, W)."""
    att = net.net.fuse_attention
    u = F.interpolate(p, size=ref_p.shape[2:], mode="bilinear", align_corners=True)
    q, k = att.lr_query_conv(u), att.hr_key_conv(ref_p)
    n, c, h, w = q.shape
    r = att.window // 2
    keys = F.unfold(k, att.window, padding=r).view(n, c, att.window * att.window, h, w)
    return (q.unsqueeze(2) * keys).sum(1)
