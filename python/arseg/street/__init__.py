"""Synthetic street dataset: driving-like clips with exact per-frame labels in CamVid's classes.

Classes (label values): 0 sky, 1 building, 2 pole, 3 road (lane marks and crossings count as
road), 4 pavement (kerbs too), 5 tree, 6 sign (signs, traffic lights), 7 fence, 8 car,
9 pedestrian, 10 bicyclist (bicycle and rider). 255 is the ignore value; the generator never
writes it: every pixel's label is the class of the surface its centre ray hits first.

The world (render.py). A straight street: a road of one or two lanes each way (lane width
3.0-3.6 m), parking strips, kerbs and pavements on both sides, and facades on both sides made of
blocks 7-32 m long and 3.5-26 m high (brick or plaster, window grids, shop fronts). Along it:
poles (some with lamp arms over the road, some carrying a sign), sign posts, traffic lights at
a zebra crossing, trees, fences (bars, mesh or planks, at the kerb or in front of the facade),
parked cars, cars ahead in the camera's lane and in the other lanes, oncoming cars,
pedestrians walking along the pavements or standing or crossing, bicyclists riding along the
road or crossing. Pedestrians swing their legs and arms and bicyclists pedal, so they move on
their own, as the cars do. The camera (focal 0.82-0.98 x width, 1.15-1.6 m high, pitched down
1-4 degrees) drives along its lane at 0 to 14 m/s, drifts sideways and pans (a steady pan plus a
sine, up to about +-20 degrees over a clip). Every surface is textured (asphalt, paving slabs,
brick, plaster, glass, foliage, bark, fabric, clouds): fixed-seed procedural noise, mip-mapped,
so the encoder finds real motion and texture. Rendering is numpy only, 30-37 ms of CPU per
320x240 frame (2-core dev machine, busy): the ground, facades and sky are ray-cast per pixel; every object is a planar
quad with an analytic mask, drawn far to near with a depth buffer. Distance haze, then a
[1 2 1]/4 optical blur of the colours (not of the labels). Thin structures (poles, lamp arms,
sign posts, lane marks, fence bars, far pedestrians) are kept exactly in the labels: they are
what low resolution loses.

Determinism. A clip is a function of its seed alone (meta.json's seed); clip i of a split has
seed SeedSequence([global seed, split id, i]) (train 0, val 1, test 2, demo 3), so any clip
regenerates identically on its own. Frames and labels are bit-identical from run to run with the
same numpy and ffmpeg; x264 runs with one thread, so the encoded bytes repeat as well (another
numpy build may round a few boundary pixels differently).

Layout (fixed; python/arseg/data.py reads it):
    DATASET/splits.json   {"train": [names], "val": [...], "test": [...], "width", "height", "fps",
                           "gop": 12, "frames", "classes": [11 names], "ignore_index": 255,
                           "generator": {"version", "seed", "params"}}
    DATASET/stats.json    class pixel shares per split
    DATASET/<split>/<clip>/video.mp4          H.264 (libx264), yuv420p, GOP 12 from frame 0
                          (-g 12 -keyint_min 12 -sc_threshold 0 -bf 0 -refs 1, weightp=0, no
                          open GOP; x264 clamps keyint_min to 7, irrelevant with scenecut 0:
                          I-frames are exactly frames 0, 12, 24...), ABR at CamVid's 3 Mbit/s
                          scaled to the frame area
                          (333 kbit/s at 320x240; maxrate 1.5x, VBV buffer 1 s), preset medium
    DATASET/<split>/<clip>/labels/000000.png  8-bit grayscale class indices, display order
    DATASET/<split>/<clip>/meta.json          {frames, width, height, fps, seed, gop, kbps,
                                               generator, class_pixels, split, index, name}
Clip names are <split>_<index:03d>. Defaults: 320x240, 30 fps, 48 frames (4 GOPs) per clip,
48 train, 6 val and 12 test clips, global seed 0, output .data/street in the repository.

Commands (python/ installed by scripts/setup.sh --python, or run from python/):
    python3 -m arseg.street generate [--out DIR] [--seed 0] [--train 48 --val 6 --test 12]
        [--frames 48 --width 320 --height 240 --fps 30 --kbps N --jobs 1 --force]
    python3 -m arseg.street clip --out DIR [--split demo --index 0 | --clip-seed S]
`generate` keeps clips already complete with the same seed and parameters (a clip directory
appears only when complete) and rewrites splits.json and stats.json.
The bundled demo clip, models/demo, is `clip --split demo --index 10 --out ../models/demo` (index
10 picked for a busy scene: pedestrians and bicyclists close by).

Class pixel shares of the default dataset (stats.json), test split: sky 15.3%, building 20.6%,
pole 1.07%, road 40.6%, pavement 5.4%, tree 9.5%, sign 0.38%, fence 1.45%, car 5.0%,
pedestrian 0.48%, bicyclist 0.20%; every clip of every split holds all 11 classes.
"""
from .dataset import (DEFAULT_OUT, GENERATOR_VERSION, clip_name, clip_seed, default_kbps, encode,
                      generate, write_clip)
from .render import CLASSES, make_scene, render, render_clip

__all__ = ["CLASSES", "DEFAULT_OUT", "GENERATOR_VERSION", "clip_name", "clip_seed", "default_kbps",
           "encode", "generate", "make_scene", "render", "render_clip", "write_clip"]
