"""The official AR-Seg networks by name, and loading their checkpoints with strict checking.

Architectures (`--arch` of `python -m arseg.export`):
- 'psp18': CamVid PSPNet18 (arseg.pspnet.PSPNet / PSPNetWithFuse), feature 64 x 1/1;
- 'bise18': BiSeNet18 (arseg.bisenet.BiSeNetV1 / BiSeNetV1WithFuse), feature 256 x 1/8;
- 'psp18-semseg': Cityscapes PSPNet18 (arseg.pspnet_semseg), feature 512 x 1/8.
Each network has encode(x) -> feature, decode(feature) -> logits at the feature's resolution
(final_conv), official_forward(x) (the official forward's main output), feature_stride,
feature_channels and size_multiple; LR networks also fuse_attention (CReFF) and fuse().

Checkpoints: what the official code saves (torch.save of a DataParallel model's state dict,
hence the `module.` prefix), with or without the prefix, bare or wrapped in {'state_dict': ...}
or {'model': ...}. Loading is strict: every key of the network present, no other key, every
shape equal; a checkpoint that disagrees raises CheckpointError listing the missing,
unexpected and mismatched keys. The official state dicts hold aliased modules twice
(final_conv = cls.4 or conv_out.conv_out, feat_conv_out = conv_out.conv): both keys are
required and must hold equal values.
"""
import os
from collections import OrderedDict

import torch

from .bisenet import BiSeNetV1, BiSeNetV1WithFuse
from .pspnet import PSPNet, PSPNetWithFuse
from .pspnet_semseg import PSPNetSemseg, PSPNetSemsegWithFuse

# arch -> (HR class, LR class, the python/tests/fixtures/official-state-dicts.json entries of HR and LR, None: derived)
ARCHS = {
    "psp18": (PSPNet, PSPNetWithFuse, "camvid-psp18-HR", "camvid-psp18-LR"),
    "bise18": (BiSeNetV1, BiSeNetV1WithFuse, "camvid-bise18-HR", "camvid-bise18-LR"),
    "psp18-semseg": (PSPNetSemseg, PSPNetSemsegWithFuse, None, "cityscapes-psp18-LR"),
}

DEFAULT_CLASSES = {"psp18": 12, "bise18": 12, "psp18-semseg": 19}


# The input statistics of the official data loaders (ToTensor, then Normalize(mean, std)):
# dataset/camvid.py for CamVid; dataset/cityscapes.py for Cityscapes, where the BiSeNet models
# (whose HR network is a pretrained BiSeNet) have their own and the PSPNets ImageNet's.
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CAMVID_STATS = ((0.39068785, 0.40521392, 0.41434407), (0.29652068, 0.30514979, 0.30080369))
CITYSCAPES_BISENET_STATS = ((0.3257, 0.3690, 0.3223), (0.2112, 0.2148, 0.2115))

# How each official network's logits become labels (lib/bundle.ts, LogitsUpsampling): the
# PSPNets resize to their input size with align_corners=True (the CamVid one then applies its
# final_logsoftmax, a per-pixel shift common to all classes that leaves the arg-max of any later
# linear resize as it is) and the evaluation to the label size likewise; BiSeNet18's x8 head is
# align_corners=False, then the evaluation's resize.
OFFICIAL_LOGITS_UPSAMPLING = {
    "psp18": "align-corners-via-input",
    "psp18-semseg": "align-corners-via-input",
    "bise18": "half-pixel-via-stride",
}


def input_stats(arch, dataset):
    """(mean, std) the official loader of `dataset` ('camvid' or 'cityscapes') gives `arch`."""
    if dataset == "camvid":
        return CAMVID_STATS
    if dataset == "cityscapes":
        return CITYSCAPES_BISENET_STATS if arch == "bise18" else IMAGENET_STATS
    raise ValueError(f"unknown dataset {dataset!r}")


def official_pipeline(arch, dataset):
    """Every choice of the official evaluation path (evaluation.py and its data loaders), as
    export_bundle's keyword arguments: normalisation, LR input, motion composition and resize,
    the warp, the labels."""
    mean, std = input_stats(arch, dataset)
    return {
        "mean": mean,
        "std": std,
        "lr_input": "hr-tensor-align-corners",
        "motion_composition": "official",
        "motion_resize": "align-corners",
        "sampling": "official",
        "logits_upsampling": OFFICIAL_LOGITS_UPSAMPLING[arch],
    }


def project_pipeline(arch, dataset):
    """This project's own choices (what bundles got before official_pipeline): ImageNet
    statistics, the LR input from the frame, bilinear composition, cell-centre motion resize,
    the exact warp, one resize of the logits as the network's head does it."""
    mean, std = IMAGENET_STATS
    return {
        "mean": mean,
        "std": std,
        "lr_input": "frame-swscale",
        "motion_composition": "bilinear",
        "motion_resize": "cell-centres",
        "sampling": "exact",
        "logits_upsampling": "half-pixel" if arch == "bise18" else "align-corners",
    }


class CheckpointError(ValueError):
    pass


def build(arch, role, n_classes=None, width=1.0, window=7):
    """A network of the official layout: role 'hr' (no CReFF) or 'lr' (with fuse_attention).
    In eval mode."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: one of {', '.join(ARCHS)}")
    if role not in ("hr", "lr"):
        raise ValueError(f"role must be 'hr' or 'lr', got {role!r}")
    hr_cls, lr_cls = ARCHS[arch][:2]
    n = DEFAULT_CLASSES[arch] if n_classes is None else n_classes
    net = hr_cls(n_classes=n, width=width) if role == "hr" else lr_cls(n_classes=n, width=width, window=window)
    return net.eval()


def read_checkpoint(path):
    """The state dict in a checkpoint file, unwrapped and without the `module.` prefix."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(f"{path}: torch.load cannot read it: {err}") from err
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj, source="checkpoint"):
    for _ in range(2):  # e.g. {'model': {'state_dict': ...}} at most
        if isinstance(obj, dict) and not _is_state_dict(obj):
            for key in ("state_dict", "model"):
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
    if not isinstance(obj, dict) or not _is_state_dict(obj):
        keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{source}: not a state dict (expected name -> tensor, "
            f"or {{'state_dict': ...}} / {{'model': ...}}; found {keys})"
        )
    out = OrderedDict()
    for key, value in obj.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if name in out:
            raise CheckpointError(f"{source}: {key!r} and {name!r} both present (with and without `module.`)")
        out[name] = value
    return out


def _is_state_dict(d):
    return len(d) > 0 and all(isinstance(k, str) and torch.is_tensor(v) for k, v in d.items())


def _describe(keys, limit=40):
    keys = sorted(keys)
    shown = "\n    ".join(keys[:limit])
    more = f"\n    ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"\n    {shown}{more}"


def check_state_dict(net, state_dict, source="checkpoint", what="network"):
    """Raises CheckpointError unless state_dict has exactly net's keys and shapes (prefix-free)."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {list(state_dict[k].shape)}, {what} {list(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s):{_describe(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s):{_describe(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es):{_describe(mismatched)}")
    if problems:
        hint = ""
        if any(k.startswith("fuse_attention.") for k in unexpected):
            hint = "\n  (fuse_attention keys: this is an LR checkpoint; pass it as --lr)"
        elif any(k.startswith("fuse_attention.") for k in missing) and len(missing) <= 6:
            hint = "\n  (no fuse_attention keys: this is an HR checkpoint; pass it as --hr)"
        raise CheckpointError(f"{source} does not fit the {what}:\n  " + "\n  ".join(problems) + hint)
    # aliased modules (the same tensor under two names) must be given equal values
    by_storage = {}
    for k, v in expected.items():
        if v.numel():
            by_storage.setdefault((v.data_ptr(), tuple(v.shape)), []).append(k)
    for names in by_storage.values():
        for other in names[1:]:
            if not torch.equal(state_dict[names[0]].float(), state_dict[other].float()):
                raise CheckpointError(f"{source}: {names[0]} and {other} name the same module but differ")


def load_checkpoint(net, path_or_state_dict, what="network"):
    """Loads an official-layout checkpoint (a path or a state dict) into net, strictly."""
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        source = str(path_or_state_dict)
        state_dict = read_checkpoint(source)
    else:
        source = "state dict"
        state_dict = unwrap_state_dict(path_or_state_dict, source)
    check_state_dict(net, state_dict, source, what)
    net.load_state_dict(state_dict, strict=True)
    return net


def official_state_dict(net):
    """net's state dict as the official code saves it: with DataParallel's `module.` prefix."""
    return OrderedDict(("module." + k, v) for k, v in net.state_dict().items())
