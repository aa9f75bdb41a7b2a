"""Converts official AR-Seg checkpoints (an HR network and an LR network with its CReFF module)
into a model bundle for the Node pipeline.

    /usr/bin/python3 -m arseg.export --hr HR.pth --lr LR.pth \\
        --arch psp18|bise18|psp18-semseg --classes camvid|cityscapes --out DIR \\
        [--name NAME] [--lr-scale 0.5] [--interval 12]

The bundle's HR encoder is the HR network's encode(), its LR encoder the LR network's, its
decoder the HR network's final_conv (shared: the LR network was trained with it frozen; a
different final_conv in the LR checkpoint is reported and not used), its CReFF weights the LR
checkpoint's fuse_attention.{lr_query_conv,hr_key_conv,hr_value_conv} (q, k, v). The feature
stride and the input size multiple follow the architecture (arseg.official). Checkpoints load
strictly (arseg.official.load_checkpoint): any missing, unexpected or mis-shaped key stops the
conversion with the list. Exit codes: 0 written, 2 usage, 3 a checkpoint that does not fit.
"""
import argparse
import sys
import warnings

import torch

from .bundle import DATASETS, export_bundle
from .official import ARCHS, CheckpointError, build, load_checkpoint


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m arseg.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--hr", required=True, help="HR checkpoint (official layout)")
    p.add_argument("--lr", required=True, help="LR checkpoint with its fuse_attention (CReFF) weights")
    p.add_argument("--arch", required=True, choices=sorted(ARCHS))
    p.add_argument("--classes", required=True, choices=sorted(DATASETS), help="class list and colours of the bundle")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--name", help="bundle name (default ARCH-CLASSES)")
    p.add_argument("--description", default="", help="free text for the manifest")
    p.add_argument("--lr-scale", type=float, default=0.5, help="LR scale per side the LR network was trained for")
    p.add_argument("--interval", type=int, default=12, help="default keyframe interval (GOP length)")
    p.add_argument("--window", type=int, default=7, help="CReFF window K (atten_k; 7 in every official model)")
    p.add_argument("--sampling", choices=["exact", "official"], default="exact",
                   help="CReFF warp: 'exact' (docs/method.md) or the official code's half-pixel-shifted grid")
    p.add_argument("--width", type=float, default=1.0,
                   help="channel width factor of the networks (1: the official networks; less: small test models)")
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


def convert(args):
    classes, ignore_index = DATASETS[args.classes]
    hr = load_checkpoint(build(args.arch, "hr", len(classes), args.width), args.hr, what=f"{args.arch} HR network")
    lr = load_checkpoint(build(args.arch, "lr", len(classes), args.width, args.window), args.lr,
                         what=f"{args.arch} LR network")
    notes = []
    hr_head, lr_head = hr.final_conv.state_dict().values(), lr.final_conv.state_dict().values()
    if any(not torch.equal(a, b) for a, b in zip(hr_head, lr_head)):
        notes.append("the LR checkpoint's final_conv differs from the HR checkpoint's: "
                     "the bundle's decoder is the HR one (shared)")
    name = args.name or f"{args.arch}-{args.classes}"
    manifest = export_bundle(
        args.out, hr, lr, lr.fuse_attention.weights(), name=name, classes=classes, ignore_index=ignore_index,
        lr_scale=args.lr_scale, keyframe_interval=args.interval, window=args.window, sampling=args.sampling,
        size_multiple=hr.size_multiple,
        description=args.description or f"{args.arch} ({args.classes}) converted from {args.hr} and {args.lr}",
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
          f"at stride {f['stride']}, CReFF K={manifest['creff']['window']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
