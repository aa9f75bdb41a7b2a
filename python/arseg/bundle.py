"""Writes model bundles: the directory the Node pipeline loads (lib/bundle.ts, arseg.json).

A bundle holds the HR encoder, the LR encoder and the shared decoder as ONNX graphs with dynamic
spatial sizes, CReFF's q/k/v depthwise weights as .npy files, and the manifest.

The networks are any of arseg.official's (PSPNet18, BiSeNet18, the semseg PSPNet18): the encoder
graph is net.encode (image -> feature), the decoder graph net.final_conv (feature -> logits at
the feature's resolution), and the manifest's feature.stride is the HR network's feature_stride
(1 for the CamVid PSPNet18, 8 for BiSeNet18 and the semseg PSPNet18). `python -m arseg.export`
converts official checkpoints with it.
"""
import json
import os

import numpy as np
import torch

from .pspnet import Decoder, Encoder

FORMAT = "ar-seg-bundle"
FORMAT_VERSION = 1

CAMVID_CLASSES = [
    ("sky", (128, 128, 128)),
    ("building", (128, 0, 0)),
    ("pole", (192, 192, 128)),
    ("road", (128, 64, 128)),
    ("pavement", (0, 0, 192)),
    ("tree", (128, 128, 0)),
    ("sign", (192, 128, 128)),
    ("fence", (64, 64, 128)),
    ("car", (64, 0, 128)),
    ("pedestrian", (64, 64, 0)),
    ("bicyclist", (0, 128, 192)),
    ("void", (0, 0, 0)),
]

# The 19 Cityscapes train classes (trainId order) with their standard colours; the label 255
# marks ignored pixels (no class of the network).
CITYSCAPES_CLASSES = [
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
]

# name -> (classes, ignore index): CamVid's 11 classes plus void (ignored), Cityscapes' 19 (255)
DATASETS = {"camvid": (CAMVID_CLASSES, 11), "cityscapes": (CITYSCAPES_CLASSES, 255)}


def _export(module, name, inputs, input_name, output_name, path):
    torch.onnx.export(
        module.eval(), inputs, path, opset_version=16, input_names=[input_name], output_names=[output_name],
        dynamic_axes={input_name: {2: "height", 3: "width"}, output_name: {2: "height", 3: "width"}},
    )


def export_bundle(out_dir, hr_net, lr_net, creff, *, name, classes=CAMVID_CLASSES, ignore_index=11,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), lr_scale=0.5,
                  keyframe_interval=12, window=7, sampling="exact", size_multiple=8, description="",
                  lr_decoder_net=None, lr_input=None, motion_composition=None, motion_resize=None,
                  logits_upsampling=None):
    """creff: dict name -> (weight (C,1,3,3), bias (C,)) for 'q', 'k', 'v'. The feature stride is
    hr_net.feature_stride (1 when the network does not say). ignore_index: a class index, or 255
    (ignored label pixels that are no class of the network, as Cityscapes').

    The pipeline around the networks (lib/bundle.ts, BundlePipeline); None leaves a field out of
    the manifest, which then means this project's own choice:
    - lr_decoder_net: a network whose final_conv becomes lr_decoder.onnx (networks.lrDecoder),
      the decoder of LR and AR frames; None: decoder.onnx (the HR one) serves every frame;
    - lr_input: 'frame-swscale' (default) or 'hr-tensor-align-corners' (the official LR input);
    - motion_composition: 'bilinear' (default) or 'official' (mergeMotion);
    - motion_resize: 'cell-centres' (default), 'align-corners' (official evaluation) or 'nearest';
    - logits_upsampling: default hr_net.logits_upsampling ('align-corners' when it says nothing);
      also 'align-corners-via-input' or 'half-pixel-via-stride' (the official two-step resizes)."""
    os.makedirs(os.path.join(out_dir, "creff"), exist_ok=True)
    sample = torch.zeros(1, 3, 64, 64)
    networks = {"hrEncoder": "hr_encoder.onnx", "lrEncoder": "lr_encoder.onnx", "decoder": "decoder.onnx"}
    with torch.no_grad():
        channels = Encoder(hr_net).eval()(sample).shape[1]
        _export(Encoder(hr_net), "hr", (sample,), "image", "feature", os.path.join(out_dir, "hr_encoder.onnx"))
        _export(Encoder(lr_net), "lr", (sample,), "image", "feature", os.path.join(out_dir, "lr_encoder.onnx"))
        feature = torch.zeros(1, channels, 16, 16)
        _export(Decoder(hr_net), "decoder", (feature,), "feature", "logits", os.path.join(out_dir, "decoder.onnx"))
        if lr_decoder_net is not None:
            _export(Decoder(lr_decoder_net), "lr_decoder", (feature,), "feature", "logits",
                    os.path.join(out_dir, "lr_decoder.onnx"))
            networks["lrDecoder"] = "lr_decoder.onnx"
    files = {}
    for conv in "qkv":
        weight, bias = creff[conv]
        for part, tensor in (("weight", weight), ("bias", bias)):
            rel = f"creff/{conv}_{part}.npy"
            np.save(os.path.join(out_dir, rel), tensor.detach().float().numpy())
            files.setdefault(conv, {})[part] = rel
    manifest = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "name": name,
        "description": description,
        "classes": [{"name": n, "color": list(c)} for n, c in classes],
        "ignoreIndex": ignore_index,
        "input": {"mean": [float(v) for v in mean], "std": [float(v) for v in std], "channelOrder": "rgb",
                  "sizeMultiple": size_multiple},
        "networks": networks,
        "feature": {"channels": int(channels), "stride": int(getattr(hr_net, "feature_stride", 1))},
        "creff": {"window": window, "sampling": sampling, **files},
        "logitsUpsampling": logits_upsampling or getattr(hr_net, "logits_upsampling", "align-corners"),
        "lrScale": lr_scale,
        "keyframeInterval": keyframe_interval,
    }
    if lr_input is not None:
        manifest["input"]["lrInput"] = lr_input
    motion = {k: v for k, v in (("composition", motion_composition), ("resize", motion_resize)) if v is not None}
    if motion:
        manifest["motion"] = motion
    with open(os.path.join(out_dir, "arseg.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    return manifest
