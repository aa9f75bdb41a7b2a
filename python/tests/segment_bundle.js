#!/usr/bin/env node
'use strict';
// For the python tests that run converted bundles (test_export_roundtrip.py,
// test_official_end_to_end.py): runs a bundle through the Node pipeline
// (ArSeg.load(dir).segment(clip, { mode, logits: true })) for each mode, and writes what the
// pipeline fed its networks, so that PyTorch can compute the same frames:
//   OUT/hr-<i>.npy, OUT/lr-<i>.npy        the HR and LR image tensors, made as the bundle says
//                                         (input.lrInput: from the frame, or the LR from the HR tensor)
//   OUT/rgb-<i>.npy                       the decoded frame, H x W x 3 uint8
//   OUT/field-<i>.npy                     the reader's motion accumulated to the keyframe, 2 x cells (stride in frames.json)
//   OUT/motion-<i>.npy                    that motion resized to the HR feature size as the bundle says (2 x H x W)
//   OUT/logits-<mode>-<i>.npy             the pipeline's logits (decoder output, before upsampling)
//   OUT/labels-<mode>-<i>.npy             the pipeline's labels, H x W uint8
//   OUT/frames.json                       { stride, motionStride, device, devicePathReason,
//                                           frames: [{ index, isKeyframe, keyframeIndex, branch: { mode: branch }, bus: { mode: bytes } }] }
// Usage: node python/tests/segment_bundle.js BUNDLE_DIR CLIP OUT_DIR FRAMES [MODES=hr,lr,ar] [DEVICE=cpu]
// (MODES 'none': only what the reader gives: hr-, lr-, rgb- and field-<i>.npy)
// DEVICE 'cuda-emulated': the device path through the emulator (test_official_end_to_end.py
// compares it with the CPU path).
// The reader options below are ArSeg.segment's for the bundle (lib/pipeline.ts, #tensorSpecs).
const fs = require('node:fs');
const path = require('node:path');
const { ArSeg, openVideo, resizeMotion, writeNpy } = require('../../dist');

(async () => {
  const [bundleDir, clip, out, count, modeList = 'hr,lr,ar', device = 'cpu'] = process.argv.slice(2);
  const n = Number(count);
  fs.mkdirSync(out, { recursive: true });
  const seg = await ArSeg.load(bundleDir, { threads: 1, device });
  const devicePathReason = seg.devicePathReason;
  const m = seg.bundle.manifest;
  const p = seg.bundle.pipeline;
  // ArSeg.segment's default motionStride (per pixel for the official composition), given to both
  const MOTION_STRIDE = p.motionComposition === 'official' ? 1 : 4;
  const frames = new Map();
  const featureSize = new Map(); // frame -> [H, W] of the HR feature CReFF ran at
  try {
    for (const mode of modeList === 'none' ? [] : modeList.split(',')) {
      for await (const r of seg.segment(clip, { mode, logits: true, motionStride: MOTION_STRIDE })) {
        if (r.index >= n) break;
        const f = frames.get(r.index) ?? {
          index: r.index,
          isKeyframe: r.isKeyframe,
          keyframeIndex: r.keyframeIndex,
          branch: {},
          bus: {},
        };
        f.branch[mode] = r.branch;
        f.bus[mode] = r.bus ?? null;
        frames.set(r.index, f);
        await writeNpy(path.join(out, `logits-${mode}-${r.index}.npy`), r.logits.data, [...r.logits.dims]);
        await writeNpy(path.join(out, `labels-${mode}-${r.index}.npy`), r.labels, [r.height, r.width]);
        if (mode !== 'lr') featureSize.set(r.index, [r.logits.dims[2], r.logits.dims[3]]);
      }
    }
  } finally {
    await seg.close();
  }
  const norm = { mean: m.input.mean, std: m.input.std, channelOrder: m.input.channelOrder };
  const multiple = m.input.sizeMultiple ?? 8;
  const tensors =
    p.lrInput === 'hr-tensor-align-corners'
      ? [
          { scale: 1, multiple: 1, ...norm },
          { from: 0, scale: m.lrScale },
        ]
      : [
          { scale: 1, multiple, ...norm },
          { scale: m.lrScale, multiple, ...norm },
        ];
  const reader = openVideo(clip, {
    tensors,
    rgb: true,
    motion: 'accumulated',
    ...(p.motionComposition !== 'bilinear' ? { composition: p.motionComposition } : {}),
    stride: MOTION_STRIDE,
    keyframes: m.keyframeInterval,
  });
  for await (const f of reader) {
    if (f.index >= n) break;
    const [hr, lr] = f.tensors;
    await writeNpy(path.join(out, `hr-${f.index}.npy`), hr.data, [...hr.dims]);
    await writeNpy(path.join(out, `lr-${f.index}.npy`), lr.data, [...lr.dims]);
    await writeNpy(path.join(out, `rgb-${f.index}.npy`), f.rgb, [f.height, f.width, 3]);
    await writeNpy(path.join(out, `field-${f.index}.npy`), f.motion.data, [2, f.motion.height, f.motion.width]);
    const size = featureSize.get(f.index);
    if (size) {
      const [H, W] = size;
      await writeNpy(
        path.join(out, `motion-${f.index}.npy`),
        resizeMotion(f.motion, f.width, f.height, W, H, p.motionResize),
        [2, H, W],
      );
    }
  }
  const list = [...frames.values()].sort((a, b) => a.index - b.index);
  fs.writeFileSync(
    path.join(out, 'frames.json'),
    JSON.stringify(
      { stride: m.feature.stride, motionStride: MOTION_STRIDE, device, devicePathReason, frames: list },
      null,
      1,
    ),
  );
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
