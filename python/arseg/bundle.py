"""Writes model bundles: the directory the Node pipeline loads (lib/bundle.ts, arseg.json).

A bundle holds the HR encoder, the LR encoder and the shared decoder as ONNX graphs with dynamic
spatial sizes, CReFF's q/k/v depthwise weights as .npy files, and the manifest.
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


def _export(module, name, inputs, input_name, output_name, path):
    torch.onnx.export(
        module.eval(), inputs, path, opset_version=16, input_names=[input_name], output_names=[output_name],
        dynamic_axes={input_name: {2: "height", 3: "width"}, output_name: {2: "height", 3: "width"}},
    )


def export_bundle(out_dir, hr_net, lr_net, creff, *, name, classes=CAMVID_CLASSES, ignore_index=11,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), lr_scale=0.5,
                  keyframe_interval=12, window=7, sampling="exact", size_multiple=8, description=""):
    """creff: dict name -> (weight (C,1,3,3), bias (C,)) for 'q', 'k', 'v'."""
    os.makedirs(os.path.join(out_dir, "creff"), exist_ok=True)
    sample = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        channels = Encoder(hr_net).eval()(sample).shape[1]
        _export(Encoder(hr_net), "hr", (sample,), "image", "feature", os.path.join(out_dir, "hr_encoder.onnx"))
        _export(Encoder(lr_net), "lr", (sample,), "image", "feature", os.path.join(out_dir, "lr_encoder.onnx"))
        feature = torch.zeros(1, channels, 16, 16)
        _export(Decoder(hr_net), "decoder", (feature,), "feature", "logits", os.path.join(out_dir, "decoder.onnx"))
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
        "input": {"mean": list(mean), "std": list(std), "channelOrder": "rgb", "sizeMultiple": size_multiple},
        "networks": {"hrEncoder": "hr_encoder.onnx", "lrEncoder": "lr_encoder.onnx", "decoder": "decoder.onnx"},
        "feature": {"channels": int(channels), "stride": 1},
        "creff": {"window": window, "sampling": sampling, **files},
        "lrScale": lr_scale,
        "keyframeInterval": keyframe_interval,
    }
    with open(os.path.join(out_dir, "arseg.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    return manifest
