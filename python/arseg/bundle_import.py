"""A bundle's networks back in PyTorch: the PSPNet encoders and decoder of a bundle exported by
`arseg.train export` (bundle.py), and its CReFF weights, as the modules fst.py trains.

What for: a bundle is all that is kept of a trained run (the run's checkpoints are not), and
fine-tuning a part of it (creff_tune.py: CReFF on other encoders' motion fields) needs the
frozen rest in PyTorch.

How: the export traces `net.encode` with batch norm in eval mode, and torch.onnx folds each
batch norm into the convolution before it (the bundle's Conv nodes carry the folded weight and a
bias; no BatchNormalization node is left). The ONNX graph's Conv nodes are in execution order, so
they pair one to one with the PyTorch encoder's convolutions in the order a forward pass calls
them (recorded with hooks; every pair is checked by shape). A convolution followed by a batch
norm takes the folded weight, and its batch norm becomes the identity plus the folded bias
(mean 0, variance 1 - eps, scale 1): in eval mode it computes what the ONNX graph computes, to
float rounding (python/tests/test_bundle_import.py checks the logits against the Node pipeline's).
The PReLU slopes pair with the PReLU modules in the same way. Only bundles of the PSPNet layout
(pspnet.py) are supported; anything else fails with BundleImportError.

Uses the `onnx` package (Debian: python3-onnx) to read the graphs; nothing is executed by it.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn

from .fst import make_networks


class BundleImportError(Exception):
    pass


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as err:  # pragma: no cover - setup installs it
        raise BundleImportError("the 'onnx' Python package is needed to read a bundle (apt-get install python3-onnx)") \
            from err
    return onnx, numpy_helper


def _graph_params(path):
    """(conv nodes as (weight, bias or None), PReLU slopes) of an ONNX file, in graph order."""
    onnx, numpy_helper = _onnx()
    model = onnx.load(path)
    g = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    producer = {o: n for n in g.node for o in n.output}

    def value(name):
        """The constant behind a tensor name, through the reshapes the exporter may put between
        an initializer and its use (a PReLU slope of C values unsqueezed to C x 1 x 1)."""
        if name in init:
            return init[name]
        if name in consts:
            return consts[name]
        n = producer.get(name)
        if n is not None and n.op_type in ("Unsqueeze", "Reshape", "Identity", "Squeeze"):
            return value(n.input[0])
        return None

    convs, slopes = [], []
    for n in g.node:
        if n.op_type == "Conv":
            w = value(n.input[1])
            b = value(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            if w is None:
                raise BundleImportError(f"{path}: Conv node {n.name} has a weight that is not a constant")
            convs.append((w, b))
        elif n.op_type == "PRelu":
            s = value(n.input[1])
            if s is None:
                raise BundleImportError(f"{path}: PRelu node {n.name} has a slope that is not a constant")
            slopes.append(s)
        elif n.op_type == "BatchNormalization":
            raise BundleImportError(f"{path}: an unfolded BatchNormalization node: not a bundle this importer reads")
    return convs, slopes


def _call_order(net, size):
    """The encoder's nn.Conv2d and nn.PReLU modules in the order net.encode calls them, and for
    each conv the batch norm that follows it (or None)."""
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.PReLU, nn.BatchNorm2d))]
    try:
        with torch.no_grad():
            net.eval().encode(torch.zeros(1, 3, *size))
    finally:
        for h in hooks:
            h.remove()
    convs, prelus = [], []
    for i, m in enumerate(order):
        if isinstance(m, nn.Conv2d):
            bn = order[i + 1] if i + 1 < len(order) and isinstance(order[i + 1], nn.BatchNorm2d) else None
            convs.append((m, bn))
        elif isinstance(m, nn.PReLU):
            prelus.append(m)
    return convs, prelus


def load_encoder(net, path):
    """Loads the ONNX encoder at `path` into the PSPNet `net` (in place; net in eval mode)."""
    convs, slopes = _graph_params(path)
    modules, prelus = _call_order(net, (64, 64))
    if len(convs) != len(modules) or len(slopes) != len(prelus):
        raise BundleImportError(f"{path}: {len(convs)} convolutions and {len(slopes)} PReLUs, the network has "
                                f"{len(modules)} and {len(prelus)}: another architecture or width")
    with torch.no_grad():
        for k, ((w, b), (conv, bn)) in enumerate(zip(convs, modules)):
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise BundleImportError(f"{path}: convolution {k} has shape {w.shape}, the network's "
                                        f"{tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
            bias = torch.zeros(w.shape[0]) if b is None else torch.from_numpy(np.array(b, np.float32))
            if bn is not None:
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
                if conv.bias is not None:
                    conv.bias.zero_()
            elif conv.bias is not None:
                conv.bias.copy_(bias)
            elif b is not None and np.any(b != 0):
                raise BundleImportError(f"{path}: convolution {k} has a bias the network cannot hold")
        for s, prelu in zip(slopes, prelus):
            s = torch.from_numpy(np.array(s, np.float32)).reshape(-1)
            if s.numel() != prelu.weight.numel():
                raise BundleImportError(f"{path}: a PReLU with {s.numel()} slopes, the network's has "
                                        f"{prelu.weight.numel()}")
            prelu.weight.copy_(s)
    return net.eval()


def load_bundle(bundle_dir, width=None):
    """(manifest, hr, lr, creff) of a bundle of the PSPNet layout, in eval mode; lr shares hr's
    final_conv (the decoder). `width`: the networks' channel width; by default the one whose
    feature channels are the manifest's (16 channels: width 0.25)."""
    with open(os.path.join(bundle_dir, "arseg.json")) as fh:
        manifest = json.load(fh)
    classes = len(manifest["classes"])
    channels = manifest["feature"]["channels"]
    width = width if width is not None else channels / 64
    creff_spec = manifest.get("creff")
    if creff_spec is None:
        raise BundleImportError(f"{bundle_dir}: the bundle has no CReFF")
    hr, lr, creff = make_networks(classes, width, creff_spec["window"])
    if hr.feature_channels != channels:
        raise BundleImportError(f"{bundle_dir}: {channels} feature channels; width {width} gives {hr.feature_channels}")
    creff.sampling = creff_spec.get("sampling", "exact")
    files = manifest.get("networks", {})
    hr_path = os.path.join(bundle_dir, files.get("hrEncoder", "hr_encoder.onnx"))
    lr_path = os.path.join(bundle_dir, files.get("lrEncoder", "lr_encoder.onnx"))
    dec_path = os.path.join(bundle_dir, files.get("decoder", "decoder.onnx"))
    load_encoder(hr, hr_path)
    load_encoder(lr, lr_path)
    dec, _ = _graph_params(dec_path)
    if len(dec) != 1 or tuple(dec[0][0].shape) != tuple(hr.final_conv.weight.shape):
        raise BundleImportError(f"{dec_path}: expected one 1x1 convolution of shape "
                                f"{tuple(hr.final_conv.weight.shape)}")
    with torch.no_grad():
        hr.final_conv.weight.copy_(torch.from_numpy(np.array(dec[0][0], np.float32)))
        hr.final_conv.bias.copy_(torch.from_numpy(np.array(dec[0][1], np.float32)))
        for name in "qkv":
            conv = getattr(creff, name)
            for part in ("weight", "bias"):
                a = np.load(os.path.join(bundle_dir, creff_spec[name][part]))
                if a.size != getattr(conv, part).numel():
                    raise BundleImportError(f"{bundle_dir}: CReFF {name}.{part} has {a.size} values, expected "
                                            f"{getattr(conv, part).numel()}")
                param = getattr(conv, part)
                param.copy_(torch.from_numpy(np.array(a, np.float32)).reshape(param.shape))
    return manifest, hr.eval(), lr.eval(), creff.eval()
