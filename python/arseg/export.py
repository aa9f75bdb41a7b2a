"""Converts official AR-Seg checkpoints (an HR network and an LR network with its CReFF module)
into a model bundle for the Node pipeline, which then runs the official evaluation path.

    /usr/bin/python3 -m arseg.export --hr HR.pth --lr LR.pth \\
        --arch psp18|bise18|psp18-semseg --classes camvid|cityscapes --out DIR \\
        [--name NAME] [--lr-scale 0.5] [--interval 12] [--pipeline official|project] \\
        [--normalisation dataset|imagenet] [--lr-input hr-tensor-align-corners|frame-swscale] \\
        [--motion-composition official|bilinear] [--motion-resize align-corners|nearest|cell-centres] \\
        [--sampling official|exact] [--logits-upsampling official|align-corners|half-pixel|...] \\
        [--lr-decoder auto|shared]

The bundle's HR encoder is the HR network's encode(), its LR encoder the LR network's, its
decoder the HR network's final_conv, and, when the LR checkpoint's final_conv differs from it,
that one as the LR and AR frames' decoder (lr_decoder.onnx: the official evaluation applies the
LR network's own); its CReFF weights the LR checkpoint's
fuse_attention.{lr_query_conv,hr_key_conv,hr_value_conv} (q, k, v). The feature stride and the
input size multiple follow the architecture (arseg.official).

The pipeline around the networks is the official one by default (--pipeline official,
arseg.official.official_pipeline): the input statistics of the official loader of --classes
(CamVid's own; Cityscapes: BiSeNet's own, ImageNet's for the PSPNets), the LR input interpolated
from the HR tensor (align_corners=True, int(H*s) x int(W*s)), motion composed as mergeMotion and
resized with align_corners=True, the official warp grid, the logits resized as the official
networks and evaluation do. `--pipeline project` selects this project's choices instead; each
option overrides one choice. Checkpoints load strictly (arseg.official.load_checkpoint): any
missing, unexpected or mis-shaped key stops the conversion with the list. Exit codes: 0 written,
2 usage, 3 a checkpoint that does not fit.
"""
import argparse
import sys
import warnings

import torch

from .bundle import DATASETS, export_bundle
from .official import (ARCHS, IMAGENET_STATS, OFFICIAL_LOGITS_UPSAMPLING, CheckpointError, build, input_stats,
                       load_checkpoint, official_pipeline, project_pipeline)

LOGITS_UPSAMPLINGS = ["align-corners", "half-pixel", "align-corners-via-input", "half-pixel-via-stride"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m arseg.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--hr", required=True, help="HR checkpoint (official layout)")
    p.add_argument("--lr", required=True, help="LR checkpoint with its fuse_attention (CReFF) weights")
    p.add_argument("--arch", required=True, choices=sorted(ARCHS))
    p.add_argument("--classes", required=True, choices=sorted(DATASETS),
                   help="dataset: the class list and colours, and the official loader's input statistics")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--name", help="bundle name (default ARCH-CLASSES)")
    p.add_argument("--description", default="", help="free text for the manifest")
    p.add_argument("--lr-scale", type=float, default=0.5, help="LR scale per side the LR network was trained for")
    p.add_argument("--interval", type=int, default=12, help="default keyframe interval (GOP length)")
    p.add_argument("--window", type=int, default=7, help="CReFF window K (atten_k; 7 in every official model)")
    p.add_argument("--width", type=float, default=1.0,
                   help="channel width factor of the networks (1: the official networks; less: small test models)")
    g = p.add_argument_group("pipeline", "how the bundle runs around the networks; each default comes from --pipeline")
    g.add_argument("--pipeline", choices=["official", "project"], default="official",
                   help="'official' (default): the official evaluation path; 'project': this project's own choices")
    g.add_argument("--normalisation", choices=["dataset", "imagenet"],
                   help="input statistics: the official loader's for --classes (official), or ImageNet's (project)")
    g.add_argument("--lr-input", choices=["hr-tensor-align-corners", "frame-swscale"],
                   help="LR input: the HR tensor interpolated (official) or the frame resized by swscale (project)")
    g.add_argument("--motion-composition", choices=["official", "bilinear"],
                   help="motion composed to the keyframe as mergeMotion (official) or bilinearly (project)")
    g.add_argument("--motion-resize", choices=["align-corners", "nearest", "cell-centres"],
                   help="motion to the feature size: align_corners=True as the evaluation (official), nearest as "
                        "the training, or cell centres (project)")
    g.add_argument("--sampling", choices=["official", "exact"],
                   help="CReFF warp: the official code's half-pixel-shifted grid (official) or exact (project)")
    g.add_argument("--logits-upsampling", choices=["official"] + LOGITS_UPSAMPLINGS,
                   help="how logits become labels: 'official' (the architecture's official resizes) "
                        "or one of lib/bundle.ts's LogitsUpsampling")
    g.add_argument("--lr-decoder", choices=["auto", "shared"],
                   help="'auto' (official): the LR checkpoint's own final_conv for LR and AR frames when it differs "
                        "from the HR one; 'shared' (project): the HR one for every frame")
    args = p.parse_args(argv)
    if not 0 < args.lr_scale <= 1:
        p.error("--lr-scale must be in (0, 1]")
    if args.interval < 1:
        p.error("--interval must be a positive integer")
    if args.window < 1 or args.window % 2 == 0:
        p.error("--window must be a positive odd integer")
    if not args.width > 0:
        p.error("--width must be positive")
    return args


def pipeline_choices(args):
    """The export_bundle keyword arguments of the pipeline: the preset, then each option given."""
    preset = official_pipeline if args.pipeline == "official" else project_pipeline
    choices = preset(args.arch, args.classes)
    choices["lr_decoder"] = "auto" if args.pipeline == "official" else "shared"
    if args.normalisation is not None:
        choices["mean"], choices["std"] = input_stats(args.arch, args.classes) if args.normalisation == "dataset" \
            else IMAGENET_STATS
    for option in ("lr_input", "motion_composition", "motion_resize", "sampling", "lr_decoder"):
        if getattr(args, option) is not None:
            choices[option] = getattr(args, option)
    if args.logits_upsampling is not None:
        choices["logits_upsampling"] = OFFICIAL_LOGITS_UPSAMPLING[args.arch] if args.logits_upsampling == "official" \
            else args.logits_upsampling
    return choices


def convert(args):
    classes, ignore_index = DATASETS[args.classes]
    hr = load_checkpoint(build(args.arch, "hr", len(classes), args.width), args.hr, what=f"{args.arch} HR network")
    lr = load_checkpoint(build(args.arch, "lr", len(classes), args.width, args.window), args.lr,
                         what=f"{args.arch} LR network")
    choices = pipeline_choices(args)
    lr_decoder = choices.pop("lr_decoder")
    notes = []
    distinct = any(not torch.equal(a, b) for a, b in
                   zip(hr.final_conv.state_dict().values(), lr.final_conv.state_dict().values()))
    if distinct and lr_decoder == "auto":
        notes.append("the LR checkpoint's final_conv differs from the HR checkpoint's: exported as lr_decoder.onnx, "
                     "the decoder of LR and AR frames (as the official evaluation applies it)")
    elif distinct:
        notes.append("the LR checkpoint's final_conv differs from the HR checkpoint's: not used (--lr-decoder shared), "
                     "the HR decoder serves every frame")
    name = args.name or f"{args.arch}-{args.classes}"
    manifest = export_bundle(
        args.out, hr, lr, lr.fuse_attention.weights(), name=name, classes=classes, ignore_index=ignore_index,
        lr_scale=args.lr_scale, keyframe_interval=args.interval, window=args.window, size_multiple=hr.size_multiple,
        description=args.description or f"{args.arch} ({args.classes}) converted from {args.hr} and {args.lr}",
        lr_decoder_net=lr if distinct and lr_decoder == "auto" else None, **choices,
    )
    return manifest, notes


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # torch.onnx's shape-inference chatter about constants, harmless for these graphs
    warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
    try:
        manifest, notes = convert(args)
    except CheckpointError as err:
        print(f"arseg.export: {err}", file=sys.stderr)
        return 3
    for note in notes:
        print(f"arseg.export: note: {note}", file=sys.stderr)
    f = manifest["feature"]
    print(f"wrote {args.out}: {manifest['name']}, {len(manifest['classes'])} classes, feature {f['channels']} channels "
          f"at stride {f['stride']}, CReFF K={manifest['creff']['window']}, {args.pipeline} pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
